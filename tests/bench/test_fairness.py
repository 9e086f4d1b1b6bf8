"""bench/fairness.py runs: it starts the service, and prints the batch's time and the singles' latencies."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


def test_the_benchmark_prints_the_batch_and_the_singles_beside_it(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # as when it runs as a script: it imports bench/serve.py
    spec = importlib.util.spec_from_file_location("fairness_bench", BENCH / "fairness.py")
    fairness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fairness)
    fairness.main(["--batch", "3"])
    output = capsys.readouterr().out
    assert "one 6000x6000 PNG alone: median" in output
    assert "/score/batch of 3 such PNGs:" in output
    assert "singles posted meanwhile:" in output
    sys.modules.pop("serve", None)
