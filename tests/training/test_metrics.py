import numpy as np
import pytest

from training.metrics import auroc, average_precision, detection_metrics, rates_at_threshold


def test_auroc_of_perfect_reversed_and_tied_scores():
    labels = np.array([0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(labels, np.ones(4)) == 0.5


def test_auroc_counts_pairs():
    # positives 0.35 and 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered right
    assert auroc(np.array([0, 1, 0, 1]), np.array([0.1, 0.35, 0.4, 0.8])) == 0.75


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError):
        auroc(np.ones(3), np.arange(3.0))


def test_average_precision():
    assert average_precision(np.array([0, 1, 1]), np.array([0.1, 0.9, 0.8])) == 1.0
    # ranking: pos, neg, pos -> precisions 1 and 2/3
    assert average_precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7])) == pytest.approx(5 / 6)


def test_rates_at_threshold_flag_scores_strictly_above():
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.5, 0.7, 0.5, 0.9])
    assert rates_at_threshold(labels, scores, 0.5) == {"fpr": 0.25, "tpr": 0.5}
    assert set(detection_metrics(labels, scores, 0.5)) == {"auroc", "average_precision", "fpr", "tpr"}
