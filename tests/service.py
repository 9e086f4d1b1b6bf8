"""`python -m app` (what `vae-serve` and `make serve` run) as a real process, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_log(db_path: Path) -> Path:
    """Where the service started with `db_path` writes its output."""
    return db_path.with_suffix(".log")


def start_service(db_path: Path, **env: str) -> tuple[subprocess.Popen, str, float]:
    """The service on a free port with its own results database and the VAE_* `env`, once it is ready:
    (process, base URL, seconds to ready). Its output goes to `service_log(db_path)`: a pipe nobody reads
    would stall the service once its buffer filled."""
    port = free_port()
    with service_log(db_path).open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=REPO_ROOT,
                                   env={**os.environ, "VAE_RESULTS_DB": str(db_path), **env},
                                   stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while time.monotonic() - started < 60:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return process, base, time.monotonic() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(service_log(db_path).read_text())
        time.sleep(0.1)
    process.kill()
    raise AssertionError("service not ready within 60 s")
