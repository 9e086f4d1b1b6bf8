"""A log line for each refused request (a 4xx), so that an operator can see why a client's requests fail.

uvicorn's access log is off (it costs throughput on every request), and metrics only count refusals by
status. A misbehaving client must not flood the log, so at most `burst` lines are written per
`interval_s`; the next line written says how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

DETAIL_LIMIT = 300  # characters of the problem's detail kept in the log line


class RefusalLog:
    def __init__(self, logger: logging.Logger, burst: int = 10, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._logger, self._burst, self._interval_s, self._clock = logger, burst, interval_s, clock
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._written = self._left_out = 0

    def record(self, method: str, path: str, client: str, status: int, title: str, detail: str,
               request_id: str | None = None) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self._interval_s:
                self._window_start, self._written = now, 0
            if self._written >= self._burst:
                self._left_out += 1
                return
            self._written += 1
            left_out, self._left_out = self._left_out, 0
        more = f" ({left_out} more refused requests were not logged)" if left_out else ""
        request = f" (request {request_id})" if request_id else ""
        self._logger.info("refused %s %s from %s%s: %d %s: %s%s", method, _one_line(path), client, request, status,
                          title, _one_line(detail, DETAIL_LIMIT), more,
                          extra={"request_id": request_id, "status": status})  # fields of JSON log lines


def _one_line(text: str, limit: int | None = None) -> str:
    """Clients choose paths and parts of details: no line breaks of theirs reach the log."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if limit is None or len(text) <= limit else text[:limit] + "…"
