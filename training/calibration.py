"""Split-conformal calibration: a threshold with a false-positive-rate guarantee, and p-values.

With n held-out normal scores, the threshold is the ceil((n + 1)(1 - alpha))-th smallest; a new normal
image then exceeds it with probability at most alpha (and at least alpha - 1/(n + 1)).
"""

from __future__ import annotations

import math

import numpy as np


class CalibrationError(ValueError):
    pass


def conformal_threshold(calibration_scores: np.ndarray, target_fpr: float) -> float:
    if not 0.0 < target_fpr < 1.0:
        raise CalibrationError(f"target FPR must be in (0, 1), got {target_fpr}")
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    n = scores.size
    n_nan = int(np.isnan(scores).sum())
    if n_nan:  # sorted last, a NaN could become the threshold, and no score exceeds NaN
        raise CalibrationError(f"{n_nan} of {n} calibration scores are NaN; the model's outputs are broken")
    rank = _rank(n, target_fpr)
    if rank > n:
        raise CalibrationError(f"{n} calibration scores cannot support a target FPR of {target_fpr}; "
                               f"at least {minimum_calibration_size(target_fpr)} are needed"
                               + (f" (they support {smallest_target_fpr(n):g} and up)" if n else ""))
    return float(scores[rank - 1])


def _rank(n: int, target_fpr: float) -> int:
    return math.ceil((n + 1) * (1.0 - target_fpr))


def minimum_calibration_size(target_fpr: float) -> int:
    """The fewest normal scores a conformal threshold for `target_fpr` can be set from (99 for 1 %)."""
    if not 0.0 < target_fpr < 1.0:
        raise CalibrationError(f"target FPR must be in (0, 1), got {target_fpr}")
    if 1.0 - target_fpr == 1.0:
        # Below about 1e-16, 1 - alpha rounds to 1, so the rank is n + 1 for every n: no set of scores
        # supports the rate (and 1 / alpha may not even be a finite float).
        raise CalibrationError(f"a target FPR of {target_fpr} is too small for any number of calibration scores")
    n = max(math.ceil(1.0 / target_fpr) - 2, 1)  # 1/alpha - 1 in exact arithmetic; rounding decides
    while _rank(n, target_fpr) > n:
        n += 1
    return n


def smallest_target_fpr(n: int) -> float:
    """The smallest target FPR that n >= 1 calibration scores support, about 1/(n + 1), rounded *up* to two
    significant digits: a rate to quote to a user, so it must be one that works."""
    rate = 1.0 / (n + 1)
    step = 10.0 ** (math.floor(math.log10(rate)) - 1)
    shown = float(f"{math.ceil(rate / step) * step:.2g}")
    while _rank(n, shown) > n:  # float rounding at the boundary
        shown = float(f"{shown + step:.2g}")
    return shown


def p_values(sorted_calibration_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Conformal p-value of each score: (1 + #{calibration >= score}) / (n + 1). Small means anomalous."""
    calibration = np.asarray(sorted_calibration_scores, dtype=np.float64)
    at_least = calibration.size - np.searchsorted(calibration, np.asarray(scores, np.float64), side="left")
    return (1.0 + at_least) / (calibration.size + 1.0)


def pixel_threshold(differences: np.ndarray, target_fpr: float) -> float:
    """The pixel-level analogue of the threshold: the |input - reconstruction| that only `target_fpr` of
    the pixels of normal images exceed. Heatmaps saturate relative to it, so a colour means the same
    evidence on every image."""
    return float(max(np.quantile(np.abs(differences), 1.0 - target_fpr), 1e-3))
