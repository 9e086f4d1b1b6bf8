"""A worker started by a supervisor (as uvicorn starts them) gets SIGTERM when the supervisor is killed."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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

