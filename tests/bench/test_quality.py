"""The quality benchmark's own logic: FPR figures and tables, and the docs section it rewrites."""

import math

import pytest

from tests.bench import load_bench

quality = load_bench("quality")


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


@pytest.fixture
def private_model(tmp_path, tiny_model):
    """A copy of the tiny model: recalibrating publishes versions beside it."""
    import shutil

    shutil.copytree(tiny_model.path, tmp_path / "store" / "tiny" / "1")
    return tmp_path / "store" / "tiny" / "1"


def test_population_fprs_split_the_test_set_at_image_5000(private_model, synthetic_mnist, monkeypatch):
    import numpy as np

    from training.evaluate import score_with_saved_model

    x_test = np.resize(np.load(synthetic_mnist)["x_test"], (5004, 28, 28))
    y_test = np.full(5004, 9)
    normal_positions = [0, 1, 4999, 5000, 5003]
    y_test[normal_positions] = 1
    scores = score_with_saved_model(private_model, x_test[normal_positions], y_test[normal_positions], [1],
                                    progress=False).scores["score"]
    threshold = float(np.median(scores))  # flags the images scored above the median, and only those
    # Five normals are too few to recalibrate on; the recalibrated thresholds are tested below.
    monkeypatch.setattr(quality, "cross_fitted_thresholds", lambda *_: np.full(5, -np.inf))

    result = quality.population_fprs(private_model, threshold, 1, x_test, y_test)

    by_population = result["fpr_by_population"]
    assert by_population["SD-3"] == {"fpr": pytest.approx(np.mean(scores[:3] > threshold)), "n": 3}
    assert by_population["SD-1"] == {"fpr": pytest.approx(np.mean(scores[3:] > threshold)), "n": 2}
    assert by_population["all"] == {"fpr": pytest.approx(np.mean(scores > threshold)), "n": 5}
    assert result["recalibrated"]["SD-1"] == {"fpr": 1.0, "n": 2}
    assert result["recalibrated_per_population"]["SD-3"] == {"fpr": 1.0, "n": 3}


def test_each_block_is_judged_at_the_threshold_recalibrated_on_the_other_blocks(private_model, monkeypatch):
    import numpy as np

    from tests.synthetic import make_images
    from training.calibration import conformal_threshold
    from training.evaluate import saved_model_outputs
    from training.store import list_versions, read_metadata

    monkeypatch.setattr(quality, "RECALIBRATION_BLOCK", 20)
    positions = np.arange(3, 83)  # blocks [0, 20), [20, 40), ...: halves 0, 1, 0, 1, 0
    bars = make_images(np.ones(len(positions), int), seed=5)  # only 8 distinct bars: add noise to tell them apart
    normals = np.clip(bars + np.random.default_rng(5).integers(0, 60, bars.shape), 0, 255).astype(np.uint8)
    scores = saved_model_outputs(private_model, normals, progress=False)["score"]
    target = read_metadata(private_model)["target_fpr"]

    thresholds = quality.cross_fitted_thresholds(private_model, normals, positions)

    half = (positions // 20) % 2
    assert np.all(thresholds[half == 0] == conformal_threshold(scores[half == 1], target))
    assert np.all(thresholds[half == 1] == conformal_threshold(scores[half == 0], target))
    assert thresholds[half == 0][0] != thresholds[half == 1][0]
    assert list_versions(private_model.parent) == [1, 2, 3]  # through `recalibrate`, as a user would


def test_per_population_each_block_is_judged_at_its_populations_threshold_from_the_other_blocks(private_model,
                                                                                                 monkeypatch):
    import numpy as np

    from tests.synthetic import make_images
    from training.calibration import conformal_threshold
    from training.evaluate import saved_model_outputs
    from training.store import list_versions, read_metadata

    monkeypatch.setattr(quality, "RECALIBRATION_BLOCK", 40)
    positions = np.arange(4920, 5080)  # in each population, a block of 40 of each half
    bars = make_images(np.ones(len(positions), int), seed=6)
    normals = np.clip(bars + np.random.default_rng(6).integers(0, 60, bars.shape), 0, 255).astype(np.uint8)
    scores = saved_model_outputs(private_model, normals, progress=False)["score"]
    target = read_metadata(private_model)["target_fpr"]
    populations = quality.population_of(positions, 10_000)
    assert list(populations[[0, 79, 80, 159]]) == ["SD-3", "SD-3", "SD-1", "SD-1"]

    thresholds = quality.cross_fitted_thresholds(private_model, normals, positions, populations)

    half = (positions // 40) % 2
    for name in ("SD-3", "SD-1"):
        for judged in (0, 1):
            mine = (populations == name) & (half == judged)
            calibrating = (populations == name) & (half != judged)
            assert np.all(thresholds[mine] == conformal_threshold(scores[calibrating], target)), (name, judged)
    assert list_versions(private_model.parent) == [1, 2, 3, 4, 5]  # one `recalibrate --for-source` each
    assert set(read_metadata(private_model.parent / "5")["source_calibrations"]) == {"SD-1"}


def test_population_table_lists_every_digit_and_marks_an_empty_population():
    rows = [{"digit": 4, "fpr": 0.02, "n_test_normal": 500,
             "fpr_by_population": {"SD-3": {"fpr": 0.02, "n": 500}, "SD-1": {"fpr": None, "n": 0}}},
            {"digit": 5, "fpr": 0.005, "n_test_normal": 1000,
             "fpr_by_population": {"SD-3": {"fpr": 0.0, "n": 400}, "SD-1": {"fpr": 5 / 600, "n": 600}}}]
    table = "\n".join(quality.population_lines(rows))
    assert "| 4 | 2.00% | 2.00% (500) | – |" in table
    assert "| 5 | 0.50% | 0.00% (400) | 0.83% (600) |" in table
    # pooled: 15 of 1,500 overall, 10 of 900 in SD-3, 5 of 600 in SD-1
    assert "| **pooled** | **1.00%** | **1.11%** (900) | **0.83%** (600) |" in table


def test_recalibration_table_pools_the_recalibrated_rates_and_counts_digits_within_the_bound():
    rows = [{"digit": 4, "fpr": 0.02, "n_test_normal": 1000, "target_fpr": 0.01,
             "recalibrated": {"all": {"fpr": 0.012, "n": 1000}, "SD-3": {"fpr": 0.014, "n": 500},
                              "SD-1": {"fpr": 0.01, "n": 500}},
             "recalibrated_per_population": {"all": {"fpr": 0.009, "n": 1000}, "SD-3": {"fpr": 0.008, "n": 500},
                                             "SD-1": {"fpr": 0.01, "n": 500}}},
            {"digit": 5, "fpr": 0.005, "n_test_normal": 1000, "target_fpr": 0.01,
             "recalibrated": {"all": {"fpr": 0.004, "n": 1000}, "SD-3": {"fpr": 0.002, "n": 500},
                              "SD-1": {"fpr": 0.006, "n": 500}},
             "recalibrated_per_population": {"all": {"fpr": 0.011, "n": 1000}, "SD-3": {"fpr": 0.012, "n": 500},
                                             "SD-1": {"fpr": None, "n": 0}}}]
    table = "\n".join(quality.recalibration_lines(rows))
    assert "| 4 | 2.00% | 1.20% | 1.40% | 1.00% | 0.90% | 0.80% | 1.00% |" in table
    assert "| 5 | 0.50% | 0.40% | 0.20% | 0.60% | 1.10% | 1.20% | – |" in table
    assert "| **pooled** | | **0.80%** | **0.80%** | **0.80%** | **1.00%** | **1.00%** | **1.00%** |" in table
    assert "**1 of 2 digits** with one threshold" in table and "**2 of 2** with one per population" in table


def test_machine_description_names_the_cpu_its_widest_vector_instructions_and_tensorflow(tmp_path):
    import tensorflow as tf

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n")
    described = quality.machine_description(cpuinfo)
    assert described.startswith("AMD EPYC, ") and ", AVX2; " in described
    assert f"TensorFlow {tf.__version__}" in described
