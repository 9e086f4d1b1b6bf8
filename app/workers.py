"""Running as several uvicorn workers: a supervisor that stops listening when it stops, metrics that add up
all of them, and workers that stop with their supervisor."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Read by prometheus_client when a worker imports it (app/metrics.py), so it is set before any worker starts.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX = "vae-metrics-"
SUPERVISOR_LOCK = "supervisor.lock"  # not a *.db file, so prometheus_client does not read it


def serve(app: str, **options) -> None:
    """uvicorn.run(app, **options), but with several workers under `ClosingSupervisor`."""
    if options.get("workers", 1) == 1:
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    with contextlib.suppress(KeyboardInterrupt):
        ClosingSupervisor(config, sockets=[config.bind_socket()]).run()


class ClosingSupervisor(Multiprocess):
    """uvicorn's supervisor of several workers, which closes its listening socket as soon as it stops.

    uvicorn's own holds it until its workers have exited. The workers close theirs at once, but the
    system goes on accepting connections on the supervisor's, which no worker will serve: every client's
    next request failed with a read error (34 of 34 clients in tests/test_serve_end_to_end.py), which
    leaves a client unsure whether it was scored. Once no process holds the socket, a connection is
    refused instead, which says the request was never sent, as with one worker.
    """

    def terminate_all(self) -> None:
        for listening in self.sockets:
            listening.close()  # this process's descriptor only: the workers keep accepting on theirs until they stop
        super().terminate_all()


@contextlib.contextmanager
def shared_metrics_directory(workers: int) -> Iterator[None]:
    """With several workers, a directory in which each keeps its metrics in files, so that a scrape, which
    reaches one worker, adds up all of them. A fresh one for each run, since old files would be counted
    again, and removed after it. One worker keeps its metrics in memory, whatever the environment says."""
    if workers == 1:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        yield
        return
    remove_abandoned_metrics_directories(Path(tempfile.gettempdir()))
    directory = Path(tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX))
    # Locked for as long as this process runs; the lock is taken before the file has its name, so that
    # no other service's cleanup finds it unlocked.
    with open(directory / f"{SUPERVISOR_LOCK}.new", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(directory / f"{SUPERVISOR_LOCK}.new", directory / SUPERVISOR_LOCK)
        outside = os.environ.get(METRICS_DIR_VARIABLE)
        os.environ[METRICS_DIR_VARIABLE] = str(directory)
        try:
            yield
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            # Not left naming a directory that is gone: metrics read in this process after it would fail.
            if outside is None:
                os.environ.pop(METRICS_DIR_VARIABLE, None)
            else:
                os.environ[METRICS_DIR_VARIABLE] = outside


def remove_abandoned_metrics_directories(parent: Path) -> None:
    """The metrics directories of services that were killed (kill -9) before they could remove theirs:
    the lock of a running one is held, by its supervisor, in whatever process namespace it runs."""
    for lock_path in parent.glob(f"{METRICS_DIR_PREFIX}*/{SUPERVISOR_LOCK}"):
        try:
            with open(lock_path) as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(lock_path.parent, ignore_errors=True)
        except OSError:  # held (BlockingIOError), or gone meanwhile: not ours to remove
            continue


def stop_with_supervisor() -> None:
    """Asks Linux to send this worker SIGTERM (a graceful stop) when its supervisor dies, even by SIGKILL.
    Otherwise the workers would go on serving, and holding the port, with nobody left to stop them: a
    restarted service could not listen. Docker and systemd stop them anyway; a shell's `kill -9` does not."""
    supervisor = multiprocessing.parent_process()
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with the supervisor: %s", os.strerror(ctypes.get_errno()))
        return
    if not supervisor.is_alive():  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
