"""bench/backup.py runs: it fills a store, backs it up while the service scores, and restores it."""

from tests.bench import load_bench


def test_the_benchmark_prints_the_backups_the_latencies_and_the_restore(capsys):
    load_bench("backup").main(["--results", "1500", "--repeats", "1"])
    output = capsys.readouterr().out
    assert "store of 1,500 results:" in output
    assert "backup (backup.db, 1 runs): median" in output
    assert "/score alone:" in output and "/score during a backup:" in output
    assert "restore, with the service stopped" in output
