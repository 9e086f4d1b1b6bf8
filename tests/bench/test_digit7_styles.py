"""The crossbar detector and order statistic behind docs/quality.md's digit-7 analysis."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location("digit7_styles", Path(__file__).parents[2] / "bench" / "digit7_styles.py")
styles = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(styles)


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
