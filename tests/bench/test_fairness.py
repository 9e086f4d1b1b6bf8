"""bench/fairness.py runs: it starts the service, and prints the batch's time and the singles' latencies."""

from tests.bench import load_bench


def test_the_benchmark_prints_the_batch_and_the_singles_beside_it(capsys):
    load_bench("fairness").main(["--batch", "3"])
    output = capsys.readouterr().out
    assert "one 6000x6000 PNG alone: median" in output
    assert "/score/batch of 3 such PNGs:" in output
    assert "singles posted meanwhile:" in output
