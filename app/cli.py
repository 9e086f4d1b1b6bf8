"""`vae-serve`: run the service with uvicorn; host, port and workers from options or VAE_* variables."""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import sys
import typing

from pydantic import ValidationError

from app.config import Settings
from app.logs import logging_config
from app.results_schema import open_database
from app.workers import serve, shared_metrics_directory

LOG_LEVELS = typing.get_args(Settings.model_fields["log_level"].annotation)


def _settings_or_exit() -> Settings:
    """The settings, or exit code 2 naming each bad VAE_* variable (not a pydantic traceback)."""
    try:
        return Settings()
    except ValidationError as error:
        lines = [f"  VAE_{'_'.join(map(str, e['loc'])).upper()}={_shown(e)}: {e['msg']}{_unit_hint(e)}"
                 for e in error.errors()]
        print("vae-serve: invalid configuration\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None


# What a number setting counts, by its name's ending: "16MB" or "10s" is refused, and should say how to write it.
_UNITS = (("_bytes", "a whole number of bytes, such as 16777216 for 16 MiB"), ("_s", "seconds, such as 10"),
          ("_ms", "milliseconds, such as 2"), ("_days", "days, such as 30"), ("_pixels", "a whole number of pixels"),
          ("_rows", "a whole number of rows"))


def _unit_hint(error: dict) -> str:
    if error["type"] not in ("int_parsing", "float_parsing", "int_from_float") or not error["loc"]:
        return ""
    name = str(error["loc"][0])
    unit = next((unit for ending, unit in _UNITS if name.endswith(ending)), None)
    return f" ({unit}, without a unit)" if unit else ""


def _check_results_db(settings: Settings) -> None:
    """Exit code 2 with the reason when the inspection log cannot be opened, before uvicorn prints a
    traceback for it from the app's startup."""
    try:
        if settings.results_db.is_dir():  # SQLite says only "unable to open database file"
            raise OSError("it is a folder; give the path of a file in it, such as "
                          f"{settings.results_db / 'results.db'}")
        open_database(settings.results_db).close()
    except (OSError, sqlite3.Error) as error:
        print(f"vae-serve: cannot open the results store VAE_RESULTS_DB={str(settings.results_db)!r}: {error}",
              file=sys.stderr)
        raise SystemExit(2) from None


def _check_host(host: str, port: int) -> None:
    """Exit code 2 naming the host when it does not resolve; uvicorn's own message ('Name or service not
    known') names neither the host nor the option."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        print(f"vae-serve: cannot listen on host {host!r} (--host or VAE_HOST): {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _positive_int(text: str) -> int:
    number = _whole_number(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _port(text: str) -> int:
    """A TCP port, checked here: the socket layer takes 70000 as 70000 - 65536 = 4464 without a word, while
    uvicorn announces 70000."""
    number = _whole_number(text)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {number}")
    return number


def _shown(error: dict) -> str:
    return "<hidden>" if error["loc"][:1] == ("api_keys",) else repr(error["input"])


def main(argv: list[str] | None = None) -> None:
    settings = _settings_or_exit()
    parser = argparse.ArgumentParser(prog="vae-serve", description=__doc__, epilog=(
        "Every other setting (model store, results database, API keys, limits) is a VAE_* variable: see "
        "Configuration in the README. An option's default is its variable's value, if set."))
    parser.add_argument("--host", default=settings.host,
                        help="address to listen on; 0.0.0.0 for every interface (VAE_HOST; default here: %(default)s)")
    parser.add_argument("--port", type=_port, default=settings.port,
                        help="port to listen on (VAE_PORT; default here: %(default)s)")
    parser.add_argument("--workers", type=_positive_int, default=settings.workers,
                        help="processes that serve requests, each with the model loaded (VAE_WORKERS; "
                             "default here: %(default)s)")
    parser.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default=settings.log_level,
                        help="how much to log (VAE_LOG_LEVEL; default here: %(default)s)")
    args = parser.parse_args(argv)
    _check_host(args.host, args.port)
    _check_results_db(settings)
    # The workers read their settings from the environment, and a worker's startup depends on their number.
    os.environ["VAE_WORKERS"] = str(args.workers)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with shared_metrics_directory(args.workers):
        serve("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
              root_path=settings.root_path, log_level=args.log_level, access_log=False,
              log_config=logging_config(args.log_level, settings.log_format))
