"""One log format for the service's own lines and uvicorn's, in every worker process: text, or JSON.

uvicorn applies `log_config` in each worker it starts; `logging.basicConfig` in the supervisor does not
reach them, and with several workers the service's own lines (a refused request, a model swap, an error's
traceback) were lost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per line, for log stores that index fields: a traceback stays inside its record
    instead of spreading over lines that would each be read as an entry of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for field in ("request_id", "status"):  # a refused or failed request's, for a query by field
            if getattr(record, field, None) is not None:
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(level: str, log_format: str = "text") -> dict:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: everything through the root logger."""
    formatter = {"()": JsonLines} if log_format == "json" else {"format": LOG_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "lines", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's loggers keep no handlers of their own, so their lines look like every other line.
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
