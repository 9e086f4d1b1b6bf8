"""bench/decode.py: every kind of upload is decoded, and the photo's two paths are compared."""

from tests.bench import load_bench

decode_bench = load_bench("decode")


def test_the_benchmark_prints_a_row_per_upload_and_the_photo_comparison(capsys):
    decode_bench.main(["--repeats", "1"])
    output = capsys.readouterr().out
    rows = [line for line in output.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 3 + 1  # the header, three kinds of upload, the photo decoded the old way
    assert "decoded at full scale (before)" in rows[-1]
    assert "faster; the 28x28 result differs by at most 1 of 255" in output
