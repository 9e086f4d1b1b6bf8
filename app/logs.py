"""One log format for the service's own lines and uvicorn's, in every worker process.

uvicorn applies `log_config` in each worker it starts; `logging.basicConfig` in the supervisor does not
reach them, and with several workers the service's own lines (a refused request, a model swap, an error's
traceback) were lost.
"""

from __future__ import annotations

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(level: str) -> dict:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: everything through the root logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's loggers keep no handlers of their own, so their lines look like every other line.
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
