"""How far a job that takes minutes has got: reading a folder of images, scoring test images.

On a terminal, one line that updates in place; in a log (standard error not a terminal: Docker, CI, a file),
a line every ten seconds and the last one, so that a long job shows it is alive without flooding the log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

TERMINAL_INTERVAL_S = 0.2
LOG_INTERVAL_S = 10.0


class Progress:
    def __init__(self, total: int, what: str, verb: str, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._total, self._what, self._verb, self._clock = total, what, verb, clock
        self._enabled = enabled and total > 0
        self._terminal = sys.stderr.isatty()
        self._interval = TERMINAL_INTERVAL_S if self._terminal else LOG_INTERVAL_S
        self._shown_at: float | None = None

    def advance(self, done: int) -> None:
        """`done` of the total so far: shown if it is the last, or if the previous line is old enough."""
        if not self._enabled:
            return
        now = self._clock()
        if done < self._total and self._shown_at is not None and now - self._shown_at < self._interval:
            return
        if done < self._total and self._shown_at is None:
            self._shown_at = now  # the first line waits an interval: a short job prints its last line only
            return
        self._shown_at = now
        line = f"{self._verb} {done}/{self._total} {self._what}"
        last = done >= self._total
        if self._terminal:
            print(f"\r{line}", end="\n" if last else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)
