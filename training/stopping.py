"""Stopping a command-line job cleanly (`python -m training ...`, `vae-backup`): SIGTERM as Ctrl-C is.

Without a handler SIGTERM ends a job at once, skipping its clean-ups (the hidden folder of a version being
written, a backup's partial file); and in a container, where the job is process 1, it is ignored, so
`docker stop` waits 10 s and kills it. Inside `stoppable()` both become `Stopped`, raised where the job is,
after its `finally` blocks have run.

Raised where the job is, the stop can be lost: TensorFlow's C++ runs Python's signal handlers itself while it
executes an op, and can drop their exception (seen in Keras' fit, inside OptionalGetValue, in about 1 of 30
`docker stop`s on a busy machine: the job trained on until it was killed), or turn it into an error of its
own (exit 1, seen once in CI). So a SIGTERM is also recorded, and `raise_if_stopped()` raises it again at
the points where a job can stop cleanly: before each training step, each batch scored, and the renaming
that publishes a version. Ctrl-C, where Python would raise KeyboardInterrupt, goes the same way.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Stopped(BaseException):
    """A BaseException, as KeyboardInterrupt is: code that handles errors with `except Exception`, as libraries
    do to wrap them in errors of their own, must not turn a stop into a failure (exit 1, a traceback)."""

    def __init__(self, by: str, signum: int) -> None:
        super().__init__(f"stopped by {by}")
        self.by = by  # "Ctrl-C" or "SIGTERM", as a message names it
        self.exit_code = 128 + signum  # as a shell reports a process ended by the signal: 130, 143


_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}  # as a message names them

# Signals are the process's, and so is what one asked for: recorded by the handler, for `raise_if_stopped`.
_received: list[int] = []


def raise_if_stopped() -> None:
    """Raises `Stopped` if a SIGTERM or Ctrl-C has come since the job began (the module's docstring says why)."""
    if _received:
        raise _stopped()


def _stopped() -> Stopped:
    return Stopped(_NAMES[_received[0]], _received[0])


def _raise_stopped(signum, frame) -> None:
    _received.append(signum)
    raise _stopped()


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    # Python lets only the main thread set a handler; run from another, the job keeps the signals' defaults.
    handled = threading.current_thread() is threading.main_thread()
    _received.clear()  # a job run before in the same process (the tests) stopped then, not now
    previous = {}
    if handled:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_stopped)
        # Ctrl-C only where Python would raise KeyboardInterrupt: a job started in the background ignores it.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_stopped)
    try:
        yield
    except KeyboardInterrupt:  # raised by other means than the signal
        raise Stopped("Ctrl-C", signal.SIGINT) from None
    except Stopped:
        raise
    except BaseException as error:
        # Whatever ends the job after a stop is the stop, though the code it was raised in made an error of its
        # own of it: not only `except Exception` does that, which passes a BaseException on, but also a binding
        # that turns a Python exception into its library's error on the way back through C++.
        if _received:
            raise _stopped() from error
        raise
    finally:
        for signum, handler in previous.items():  # given back: the job may run inside another program
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        _received.clear()
