"""The quality benchmark's own logic: the FPR-bound chance figure and the docs section it rewrites."""

import importlib.util
import math
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("bench_quality", Path(__file__).parents[2] / "bench" / "quality.py")
quality = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(quality)


def exact_binomial_within(n: int, p: float, tolerance: float) -> float:
    low, high = math.ceil(n * (p - tolerance) - 1e-9), math.floor(n * (p + tolerance) + 1e-9)
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(low, high + 1))


def test_perfect_threshold_chance_matches_the_binomial_law():
    exact = exact_binomial_within(1000, 0.01, quality.FPR_TOLERANCE)
    assert quality.chance_within_tolerance(1000, None, 0.01) == pytest.approx(exact, abs=0.005)


def test_calibration_noise_lowers_the_chance_and_more_calibration_data_raises_it():
    perfect = quality.chance_within_tolerance(1000, None, 0.01)
    small = quality.chance_within_tolerance(1000, 500, 0.01)
    large = quality.chance_within_tolerance(1000, 5000, 0.01)
    assert small < large < perfect


def test_write_section_replaces_only_the_generated_part(tmp_path):
    doc = tmp_path / "quality.md"
    doc.write_text(f"# Title\nintro\n{quality.SECTION_START}\nold table\n{quality.SECTION_END}\nprose after\n")
    quality.write_section(doc, "new table\n")
    assert doc.read_text() == (f"# Title\nintro\n{quality.SECTION_START}\nnew table\n{quality.SECTION_END}\n"
                               "prose after\n")


def test_write_section_appends_to_a_file_without_markers_and_creates_a_missing_one(tmp_path):
    existing = tmp_path / "notes.md"
    existing.write_text("keep me\n")
    quality.write_section(existing, "table\n")
    assert existing.read_text() == f"keep me\n\n{quality.SECTION_START}\ntable\n{quality.SECTION_END}\n"
    missing = tmp_path / "new.md"
    quality.write_section(missing, "table\n")
    assert missing.read_text() == f"{quality.SECTION_START}\ntable\n{quality.SECTION_END}\n"
