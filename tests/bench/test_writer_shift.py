"""The diagnostics behind docs/quality.md's writer-population analysis: reweighting, crossbars, order."""

import numpy as np
import pytest

from tests.bench import load_bench

styles = load_bench("writer_shift")


def seven(crossbar: bool, stem_width: int = 2) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[4:6, 6:22] = 255  # the top bar
    for row in range(6, 24):  # the stem, slanting down to the left
        column = 20 - (row - 6) // 2
        image[row, column:column + stem_width] = 255
    if crossbar:
        image[14:16, 9:19] = 255
    return image


def test_longest_runs_counts_ink_per_row():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 3, 2:5] = 200
    image[0, 3, 10:17] = 128
    image[0, 3, 20] = 127  # below the ink level
    assert styles.longest_runs(image)[0, 3] == 7 and styles.longest_runs(image)[0, 4] == 0


@pytest.mark.parametrize("stem_width", [2, 4])
def test_a_crossbar_is_found_and_a_thick_stem_is_not_one(stem_width):
    images = np.stack([seven(True, stem_width), seven(False, stem_width)])
    assert styles.crossbar_mask(images).tolist() == [True, False]


def test_an_empty_image_has_no_crossbar():
    assert styles.crossbar_mask(np.zeros((1, 28, 28), np.uint8)).tolist() == [False]


def test_follow_rate_is_the_share_of_flags_directly_followed_by_another():
    assert styles.follow_rate([1, 1, 0, 1, 0, 0]) == pytest.approx(1 / 3)
    assert styles.follow_rate([1, 1, 1, 0]) == pytest.approx(2 / 3)


def test_a_stem_wider_than_the_minimum_run_is_still_not_a_crossbar():
    assert styles.crossbar_mask(seven(False, stem_width=8)[None]).tolist() == [False]


def test_reweighting_predicts_the_rate_a_feature_alone_would_cause():
    feature = np.arange(1000.0)
    flagged = feature < 100  # 10 % flagged, all in the lowest decile
    assert styles.reweighted_rate(feature, flagged, feature) == pytest.approx(0.10)
    lower_half = np.arange(0.0, 500.0)  # a target population with only the lower half of the feature
    assert styles.reweighted_rate(feature, flagged, lower_half) == pytest.approx(0.20)
    assert styles.reweighted_rate(feature, flagged, np.arange(500.0, 1000.0)) == 0.0


def test_tertile_rates_split_by_the_feature():
    feature = np.array([5, 1, 9, 2, 8, 3, 7, 4, 6.0])
    flagged = feature <= 3
    assert styles.tertile_rates(feature, flagged) == [1.0, 0.0, 0.0]


def test_shape_features_measure_ink_slant_and_height():
    upright, leaning = np.zeros((2, 28, 28), np.uint8)
    for row in range(4, 24):
        upright[row, 13:15] = 255
        leaning[row, 4 + row // 2:6 + row // 2] = 255  # moves right going down
    features = styles.shape_features(np.stack([upright, leaning]))
    assert features["ink"].tolist() == [40, 40]
    assert features["slant"][0] == pytest.approx(0.0, abs=1e-9) and features["slant"][1] == pytest.approx(0.5, abs=0.05)
    assert features["height"][0] == pytest.approx(np.std(np.arange(4, 24)), rel=1e-6)
    assert features["stroke intensity"].tolist() == pytest.approx([1.0, 1.0])


def test_block_bootstrap_ratio_is_one_for_independent_flags_and_grows_when_they_cluster():
    rng = np.random.default_rng(0)
    positions = np.arange(0, 10_000, 10)  # 1,000 images of one digit, spread over 10,000
    independent = rng.random(1000) < 0.05
    clustered = np.zeros(1000, bool)
    clustered[:50] = True  # the same share, all from one stretch of the order (one writer)
    assert styles.block_bootstrap_ratio(independent, positions, 10_000, 100, 4000, rng) == pytest.approx(1, abs=0.15)
    assert styles.block_bootstrap_ratio(clustered, positions, 10_000, 100, 4000, rng) > 5


def test_contact_sheet_lays_out_rows_of_framed_tiles():
    images = np.full((3, 28, 28), 255, np.uint8)
    sheet = np.asarray(styles.contact_sheet([images, images[:2]], scale=2, border=1, gap=4))
    assert sheet.shape == (2 * 58 + 4, 3 * 58)
    assert sheet[0, 0] == 90 and sheet[1, 1] == 255  # a grey frame around the white image
    assert sheet[58:62].min() == 255  # the gap between the rows is white
    assert sheet[62:, 116:].min() == 255  # the short row: blank paper after its two tiles
