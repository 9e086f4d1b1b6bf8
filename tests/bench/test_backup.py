"""bench/backup.py runs: it fills a store, backs it up while the service scores, and restores it."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


def test_the_benchmark_prints_the_backups_the_latencies_and_the_restore(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # as when it runs as a script: it imports bench/serve.py
    spec = importlib.util.spec_from_file_location("backup_bench", BENCH / "backup.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--results", "1500", "--repeats", "1"])
    output = capsys.readouterr().out
    assert "store of 1,500 results:" in output
    assert "backup (backup.db, 1 runs): median" in output
    assert "/score alone:" in output and "/score during a backup:" in output
    assert "restore, with the service stopped" in output
    sys.modules.pop("serve", None)
