import numpy as np
import pytest

from training.metrics import (
    auroc,
    average_precision,
    detection_metrics,
    misjudged,
    operating_points,
    rates_at_threshold,
)


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


def test_operating_points_of_known_scores():
    # 10 normals scored 0..9, 4 anomalies scored 5.5, 7.5, 8.5, 20
    labels = np.r_[np.zeros(10), np.ones(4)]
    scores = np.r_[np.arange(10.0), 5.5, 7.5, 8.5, 20.0]
    points = operating_points(labels, scores)
    by_fpr = {p["target"]: p for p in points["by_fpr"]}
    assert set(by_fpr) == {0.1}  # finer targets need more than 10 normals
    assert by_fpr[0.1] == {"target": 0.1, "threshold": 8.0, "fpr": 0.1, "tpr": 0.5}  # only the 9 flagged
    by_tpr = {p["target"]: p for p in points["by_tpr"]}
    # at least 90 % of 4 is all 4: the threshold is just below the lowest anomaly, 5.5
    assert by_tpr[0.9]["threshold"] == np.nextafter(5.5, -np.inf) and by_tpr[0.9]["tpr"] == 1.0
    assert by_tpr[0.9]["fpr"] == 0.4  # 6, 7, 8 and 9 are above it
    assert by_tpr[1.0] == by_tpr[0.9] | {"target": 1.0}


def test_operating_points_meet_their_targets_on_random_scores():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(2000), np.ones(300)]
    scores = np.round(np.r_[rng.normal(0, 1, 2000), rng.normal(2, 1, 300)], 1)  # rounded: many ties
    points = operating_points(labels, scores)
    assert [p["target"] for p in points["by_fpr"]] == [0.001, 0.005, 0.01, 0.02, 0.05, 0.1]
    for point in points["by_fpr"]:
        assert point["fpr"] <= point["target"]
        lower = rates_at_threshold(labels, scores, np.nextafter(point["threshold"], -np.inf))
        assert lower["fpr"] > point["target"]  # the lowest threshold that meets it
    for point in points["by_tpr"]:
        assert point["tpr"] >= point["target"]
        higher = rates_at_threshold(labels, scores, np.nextafter(point["threshold"], np.inf))
        assert higher["tpr"] < point["target"]  # the highest threshold that meets it


def test_misjudged_images_come_worst_first():
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    scores = np.array([0.9, 0.2, 0.7, 0.1, 0.5, 0.8, 0.5])  # threshold 0.5: a normal at 0.5 is not flagged
    false_alarms, missed = misjudged(labels, scores, 0.5)
    assert false_alarms.tolist() == [0, 2] and missed.tolist() == [3, 4]
