"""The evaluation plots: score histograms, ROC curves, and original/reconstruction/difference grids of a sample
of test images and of those the model gets wrong."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from training.metrics import misjudged, roc_curve

GRID_PER_KIND = 6


def _pyplot():
    import matplotlib  # an optional dependency (the "report" extra); ImportError tells the caller

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _bins(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Log-spaced bins for positive scores spanning decades (reconstruction errors), else linear."""
    low, high = np.percentile(values, [0.1, 99.9])
    if low > 0 and high / low > 20:
        return np.geomspace(low, values.max(), 60), True
    return np.linspace(values.min(), values.max(), 60), False


def _histogram(axis, normal: np.ndarray, anomalous: np.ndarray, threshold: float, title: str,
               normal_label: str, anomalous_label: str) -> None:
    bins, log_scale = _bins(np.r_[normal, anomalous])
    axis.hist(normal, bins=bins, alpha=0.6, density=True, color="tab:blue", label=f"{normal_label} (n={len(normal)})")
    axis.hist(anomalous, bins=bins, alpha=0.6, density=True, color="tab:red",
              label=f"{anomalous_label} (n={len(anomalous)})")
    axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    if log_scale:
        axis.set_xscale("log")
    axis.set_title(title)
    axis.set_xlabel("anomaly score")
    axis.set_ylabel("density")
    axis.legend(fontsize=8)


def write_plots(scored, metadata: dict, metrics: dict, directory: Path) -> None:
    plt = _pyplot()
    method, threshold = metadata["score_method"], metadata["threshold"]
    scores = scored.scores[method]
    normal_digits = ",".join(str(c) for c in metadata["normal_classes"])

    contrast = _contrast(scored, metadata, metrics)
    figure, axes = plt.subplots(1, 2 if contrast else 1, figsize=(12 if contrast else 6.5, 4.5), squeeze=False)
    if scored.label_kind == "digit":
        names = f"normal ({normal_digits})", "anomalous (other digits)"
    else:
        names = "normal", "anomalous"
    _histogram(axes[0, 0], scores[~scored.is_anomaly], scores[scored.is_anomaly], threshold,
               f"All test images ({method} score)", *names)
    if contrast:
        title, normal_label, anomaly_label, normal, anomalous = contrast
        _histogram(axes[0, 1], scores[normal], scores[anomalous], threshold, title, normal_label, anomaly_label)
    with warnings.catch_warnings():
        # The legend goes where it hides the fewest bars ("best"). On a busy machine that search over thousands
        # of bars can pass matplotlib's one-second mark, and it warns: the plot is the same, only slower.
        warnings.filterwarnings("ignore", message='Creating legend with loc="best" can be slow', category=UserWarning)
        figure.tight_layout()
        figure.savefig(directory / "histogram.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 5.5))
    for name, values in metrics["by_method"].items():
        fpr, tpr = roc_curve(scored.is_anomaly, scored.scores[name])
        axis.plot(fpr, tpr, label=f"{name} (AUROC {values['auroc']:.4f})", linewidth=2 if name == method else 1)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axis.set_xscale("symlog", linthresh=0.01)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.01)
    axis.set_xlabel("false-positive rate (normal images flagged; symlog)")
    axis.set_ylabel("true-positive rate (anomalies flagged)")
    axis.set_title("ROC of every score method")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "roc.png", dpi=100)
    plt.close(figure)

    heatmap_scale = float(metadata.get("heatmap_scale", 0.25))
    _write_grid(plt, scored, scores, threshold, heatmap_scale, directory / "grid.png")
    _write_misjudged(plt, scored, scores, threshold, heatmap_scale, directory / "misjudged.png")


def _contrast(scored, metadata: dict, metrics: dict):
    """The second histogram: the tutorial's "1" vs "9" for MNIST; for folders, normal vs the kind of anomaly
    hardest to tell from it (lowest AUROC), if there are several kinds (with one, it repeats the first)."""
    anomaly_labels, counts = np.unique(scored.labels[scored.is_anomaly], return_counts=True)
    if scored.label_kind == "digit":
        contrast = 9 if 9 in anomaly_labels else int(anomaly_labels[np.argmax(counts)])
        first_normal = metadata["normal_classes"][0]
        return (f'"{first_normal}" vs "{contrast}"', f'"{first_normal}"', f'"{contrast}"',
                scored.labels == first_normal, scored.labels == contrast)
    if len(anomaly_labels) < 2:
        return None
    by_kind = metrics[f"by_anomaly_{scored.label_kind}"]
    hardest = min(by_kind, key=lambda kind: by_kind[kind][metadata["score_method"]]["auroc"])
    return (f"normal vs {_short(hardest)} (the hardest kind)", "normal", _short(hardest), ~scored.is_anomaly,
            scored.is_anomaly & (scored.labels == hardest))


def _short(label, length: int = 24) -> str:
    text = str(label)
    return text if len(text) <= length else text[:length - 1] + "…"


def _one_kind_after_another(rng, scored, count: int) -> np.ndarray:
    """Up to `count` random anomalies, taking each kind (digit) in turn, so that few kinds are not left out
    by chance."""
    anomalous = np.flatnonzero(scored.is_anomaly)
    kinds = rng.permutation(np.unique(scored.labels[anomalous]))
    queues = [list(rng.permutation(anomalous[scored.labels[anomalous] == kind])) for kind in kinds]
    picks = []
    while len(picks) < count and any(queues):
        for queue in queues:
            if queue and len(picks) < count:
                picks.append(queue.pop())
    return np.array(picks, dtype=int)


def _write_grid(plt, scored, scores, threshold: float, heatmap_scale: float, path: Path) -> None:
    rng = np.random.default_rng(0)
    normal = np.flatnonzero(~scored.is_anomaly)
    # Folders of a user's own images may hold fewer than a row's share of either.
    picks = np.r_[rng.choice(normal, min(GRID_PER_KIND, len(normal)), replace=False),
                  _one_kind_after_another(rng, scored, GRID_PER_KIND)]
    verdicts = ["ANOMALY" if scores[index] > threshold else "normal" for index in picks]
    _draw_columns(plt, scored, scores, heatmap_scale, picks, verdicts,
                  "Test images: label, score and verdict (left: normal, right: anomalous)", path)


def _write_misjudged(plt, scored, scores, threshold: float, heatmap_scale: float, path: Path) -> None:
    """The worst false alarms and missed anomalies, as the grid shows images: what the model gets wrong."""
    false_alarms, missed = misjudged(scored.is_anomaly, scores, threshold)
    picks = np.r_[false_alarms[:GRID_PER_KIND], missed[:GRID_PER_KIND]].astype(int)
    verdicts = ["FALSE ALARM" if not scored.is_anomaly[index] else "MISSED" for index in picks]
    title = (f"The worst false alarms (left, {len(false_alarms)} in all) and missed anomalies (right, "
             f"{len(missed)} in all) at the threshold {threshold:.4g}")
    _draw_columns(plt, scored, scores, heatmap_scale, picks, verdicts, title, path)


def _draw_columns(plt, scored, scores, heatmap_scale: float, picks, verdicts: list[str], title: str,
                  path: Path) -> None:
    """A column per image: original, reconstruction and difference, under its label, score and verdict."""
    if not len(picks):  # nothing to show: a figure that says so, rather than no file
        figure = plt.figure(figsize=(5.6, 1.5))
        figure.text(0.5, 0.5, title.replace(" (left", "\n(left"), ha="center", va="center", fontsize=10)
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return
    figure, axes = plt.subplots(3, len(picks), figsize=(max(1.4 * len(picks), 5.6), 5.2), squeeze=False)
    for column, (index, verdict) in enumerate(zip(picks, verdicts, strict=True)):
        rows = [(scored.images[index], "gray", 0, 255), (scored.reconstruction[index], "gray", 0, 1),
                (scored.difference[index], "seismic", -2 * heatmap_scale, 2 * heatmap_scale)]
        for row, (image, cmap, low, high) in enumerate(rows):
            axes[row, column].imshow(image, cmap=cmap, vmin=low, vmax=high)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[0, column].set_title(f'"{_short(scored.labels[index], 12)}" {scores[index]:.3g}\n{verdict}', fontsize=8,
                                  color="black" if verdict == "normal" else "tab:red")
    for row, name in enumerate(("original", "reconstruction", "difference")):
        axes[row, 0].set_ylabel(name, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
