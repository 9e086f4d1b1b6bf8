"""A worker started by a supervisor (as uvicorn starts them) gets SIGTERM when the supervisor is killed; the
metrics directory of several workers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.workers import shared_metrics_directory

SUPERVISOR = """
import multiprocessing, signal, sys, time
from pathlib import Path

def worker(marker):
    signal.signal(signal.SIGTERM, lambda *_: (Path(marker).write_text("stopped"), sys.exit(0)))
    from app.workers import stop_with_supervisor
    stop_with_supervisor()
    Path(marker + ".ready").write_text("")
    time.sleep(60)

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    multiprocessing.Process(target=worker, args=(sys.argv[1],)).start()
    time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_a_worker_is_stopped_when_its_supervisor_is_killed(tmp_path):
    marker = tmp_path / "worker"
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR)
    supervisor = subprocess.Popen([sys.executable, str(script), str(marker)],
                                  env={"PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        deadline = time.monotonic() + 30
        while not marker.with_suffix(".ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        supervisor.kill()
        supervisor.wait()
    assert marker.read_text() == "stopped"


def test_the_metrics_of_a_killed_service_are_removed_by_the_next_but_not_those_of_a_running_one(tmp_path,
                                                                                             monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with shared_metrics_directory(2):
        running = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        killed = tmp_path / "vae-metrics-killed"  # its supervisor's lock died with it
        killed.mkdir()
        (killed / "supervisor.lock").touch()
        (killed / "counter_12.db").write_bytes(b"counts")
        older = tmp_path / "vae-metrics-before-locks"  # no lock file: it cannot be told from a running one
        older.mkdir()
        with shared_metrics_directory(2):  # a second service on the same machine
            second = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
            assert running.is_dir() and older.is_dir() and not killed.exists()
        assert not second.exists() and running.is_dir()
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(running)  # the first service's, again
    assert not running.exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
