"""Detection metrics in plain numpy. Labels: 1 = anomalous (positive), 0 = normal."""

from __future__ import annotations

import numpy as np


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUROC needs both normal and anomalous examples")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0:
        raise ValueError("average precision needs anomalous examples")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hits = labels[order]
    precision_at_k = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision_at_k[hits].mean())


def rates_at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """FPR on normals and TPR on anomalies when `score > threshold` flags an anomaly."""
    labels = np.asarray(labels).astype(bool)
    flagged = np.asarray(scores) > threshold
    return {
        "fpr": float(flagged[~labels].mean()) if (~labels).any() else float("nan"),
        "tpr": float(flagged[labels].mean()) if labels.any() else float("nan"),
    }


def detection_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {"auroc": auroc(labels, scores), "average_precision": average_precision(labels, scores),
            **rates_at_threshold(labels, scores, threshold)}


def no_anomaly_among(labels: np.ndarray, normal_classes: list[int]) -> str | None:
    """Why test images with these labels cannot evaluate a model of these normal classes (every image is of
    a normal class, as with --normal 0 1 2 3 4 5 6 7 8 9), or None if they can."""
    if np.isin(labels, normal_classes).all():
        return (f"every test image is of a normal class ({' '.join(map(str, normal_classes))}), so there is no "
                "anomaly to evaluate against")
    return None


def misjudged(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the false alarms (normals above the threshold), highest score first, and of the missed
    anomalies (at or below it), lowest first: each list worst first."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores)
    flagged = scores > threshold
    false_alarms, missed = np.flatnonzero(~labels & flagged), np.flatnonzero(labels & ~flagged)
    return (false_alarms[np.argsort(-scores[false_alarms], kind="stable")],
            missed[np.argsort(scores[missed], kind="stable")])


def test_set_metrics(is_anomaly: np.ndarray, scores_by_method: dict[str, np.ndarray], thresholds: dict[str, float],
                     primary: str) -> dict:
    """Every method's metrics on a labelled test set at its threshold; the primary method's at the top level."""
    by_method = {m: detection_metrics(is_anomaly, scores_by_method[m], thresholds[m]) for m in thresholds}
    return {**by_method[primary], "by_method": by_method,
            "n_normal": int((~is_anomaly).sum()), "n_anomalous": int(is_anomaly.sum())}


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores, hits = np.asarray(scores)[order], labels[order]
    last_of_tie = np.r_[np.diff(sorted_scores) != 0, True]
    true_positives = np.cumsum(hits)[last_of_tie]
    false_positives = np.cumsum(~hits)[last_of_tie]
    return (np.r_[0.0, false_positives / max(1, (~labels).sum())],
            np.r_[0.0, true_positives / max(1, labels.sum())])


# The rates a reader of a report asks about: what a threshold costs in false alarms for a share of
# anomalies caught, and what it catches for a rate of false alarms.
FPR_TARGETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)
TPR_TARGETS = (0.9, 0.95, 0.99, 1.0)


def operating_points(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """Thresholds read off a labelled test set (`score > threshold` flags): for each FPR target the lowest
    threshold that flags at most that share of its normals, and for each TPR target the highest that flags at
    least that share of its anomalies, each with both rates. FPR targets finer than one normal image (fewer
    than 1/target normals) are left out: the test set cannot tell them apart."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    normal, anomalous = np.sort(scores[~labels])[::-1], np.sort(scores[labels])
    points = {"by_fpr": [], "by_tpr": []}
    for target in FPR_TARGETS:
        if len(normal) * target < 1:
            continue
        allowed = int(np.floor(len(normal) * target + 1e-9))  # normals above the threshold
        threshold = float(normal[allowed]) if allowed < len(normal) else float(np.nextafter(normal[-1], -np.inf))
        points["by_fpr"].append({"target": target, "threshold": threshold,
                                 **rates_at_threshold(labels, scores, threshold)})
    for target in TPR_TARGETS:
        needed = int(np.ceil(len(anomalous) * target - 1e-9))  # anomalies above the threshold
        if needed < 1:
            continue
        threshold = float(np.nextafter(anomalous[len(anomalous) - needed], -np.inf))
        points["by_tpr"].append({"target": target, "threshold": threshold,
                                 **rates_at_threshold(labels, scores, threshold)})
    return points
