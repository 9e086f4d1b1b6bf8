import numpy as np
import pytest

from training.calibration import (
    CalibrationError,
    conformal_threshold,
    minimum_calibration_size,
    p_values,
    smallest_target_fpr,
)


def test_threshold_is_the_conformal_order_statistic():
    scores = np.arange(1, 100, dtype=float)  # n = 99: rank ceil(100 * 0.9) = 90
    assert conformal_threshold(scores[::-1], 0.1) == 90.0


def test_too_few_scores_for_the_target_is_an_error():
    with pytest.raises(CalibrationError, match="at least 99"):
        conformal_threshold(np.arange(50.0), 0.01)
    with pytest.raises(CalibrationError, match=r"in \(0, 1\)"):
        conformal_threshold(np.arange(50.0), 0.0)


@pytest.mark.parametrize("target_fpr, size", [(0.5, 1), (0.1, 9), (0.01, 99), (0.05, 19), (1e-6, 999_999)])
def test_minimum_calibration_size_is_the_fewest_scores_that_give_a_threshold(target_fpr, size):
    assert minimum_calibration_size(target_fpr) == size
    conformal_threshold(np.arange(float(size)), target_fpr)
    with pytest.raises(CalibrationError, match=f"at least {size} are needed"):
        conformal_threshold(np.arange(float(size - 1)), target_fpr)


@pytest.mark.parametrize("target_fpr", [1e-17, 5e-324])  # 1 - alpha rounds to 1; 1 / 5e-324 overflows
def test_a_target_fpr_too_small_for_any_calibration_is_an_error_not_a_crash(target_fpr):
    with pytest.raises(CalibrationError, match="too small for any number of calibration scores"):
        minimum_calibration_size(target_fpr)
    with pytest.raises(CalibrationError, match="too small for any number of calibration scores"):
        conformal_threshold(np.arange(2000.0), target_fpr)


@pytest.mark.parametrize("n, quoted", [(1, 0.5), (4, 0.2), (98, 0.011), (99, 0.01), (1817, 0.00056), (2022, 0.0005)])
def test_the_smallest_target_fpr_quoted_for_n_scores_is_one_they_support(n, quoted):
    assert smallest_target_fpr(n) == quoted  # 1/(n + 1), rounded up to two significant digits
    conformal_threshold(np.arange(float(n)), quoted)
    with pytest.raises(CalibrationError, match=f"they support {quoted:g} and up"):
        conformal_threshold(np.arange(float(n)), 0.9 / (n + 1))


def test_nan_scores_are_an_error_not_a_threshold():
    with pytest.raises(CalibrationError, match="1 of 200 calibration scores are NaN"):
        conformal_threshold(np.r_[np.arange(199.0), np.nan], 0.01)  # the NaN would sort into rank 199


def test_p_values_count_calibration_scores_at_least_as_large():
    calibration = np.array([1.0, 2.0, 3.0, 4.0])
    assert p_values(calibration, np.array([0.0, 2.0, 2.5, 9.0])).tolist() == [1.0, 0.8, 0.6, 0.2]


def test_threshold_and_p_values_agree():
    rng = np.random.default_rng(1)
    calibration = np.sort(rng.normal(size=999))
    threshold = conformal_threshold(calibration, 0.05)
    new = rng.normal(size=5000)
    assert np.all((new > threshold) == (p_values(calibration, new) <= 0.05))


def test_false_positive_rate_is_close_to_the_target_on_exchangeable_data():
    rng = np.random.default_rng(2)
    threshold = conformal_threshold(rng.normal(size=20000), 0.01)
    fpr = np.mean(rng.normal(size=200000) > threshold)
    assert abs(fpr - 0.01) < 0.002
