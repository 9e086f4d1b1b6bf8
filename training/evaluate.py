"""Evaluate an exported model version on the MNIST test set, through its SavedModel only.

Writes metrics.json, report.md and three plots (histogram.png, roc.png, grid.png) into a folder.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import load_mnist
from training.metrics import detection_metrics, no_anomaly_among, rates_at_threshold
from training.preprocessing import to_model_input
from training.store import read_metadata

log = logging.getLogger(__name__)
CHUNK = 2000


@dataclass
class Scored:
    """Every output of the SavedModel for a set of labelled test images."""
    images: np.ndarray               # uint8 [N, 28, 28]
    labels: np.ndarray               # class labels
    is_anomaly: np.ndarray           # bool: label not among the normal classes
    scores: dict[str, np.ndarray]    # method (and "score") -> [N]
    reconstruction: np.ndarray       # float [N, 28, 28]
    difference: np.ndarray           # float [N, 28, 28]

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                     normal_classes: list[int]) -> Scored:
        return cls(images=images, labels=labels, is_anomaly=~np.isin(labels, normal_classes),
                   scores={k: v for k, v in outputs.items() if v.ndim == 1},
                   reconstruction=outputs["reconstruction"].reshape(-1, 28, 28),
                   difference=outputs["difference"].reshape(-1, 28, 28))


def serving_signature(version_dir: Path):
    """A version's `serving_default` signature, loaded from its SavedModel alone."""
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


def signature_outputs(serve, images: np.ndarray, progress: bool = True,
                      what: str = "test images") -> dict[str, np.ndarray]:
    """Every output of a serving signature for uint8 images [N, 28, 28], run in chunks."""
    import tensorflow as tf

    chunks = []
    for start in range(0, len(images), CHUNK):
        outputs = serve(images=tf.constant(to_model_input(images[start:start + CHUNK])))
        chunks.append({name: tensor.numpy() for name, tensor in outputs.items()})
        if progress:
            done = f"scored {min(start + CHUNK, len(images))}/{len(images)} {what}"
            print(f"\r{done}" if sys.stderr.isatty() else done, end="" if sys.stderr.isatty() else "\n",
                  file=sys.stderr, flush=True)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def saved_model_outputs(version_dir: Path, images: np.ndarray, progress: bool = True,
                        what: str = "test images") -> dict[str, np.ndarray]:
    """Every output of a version's serving signature for uint8 images [N, 28, 28]."""
    return signature_outputs(serving_signature(version_dir), images, progress, what)


def score_with_saved_model(version_dir: Path, images: np.ndarray, labels: np.ndarray,
                           normal_classes: list[int], progress: bool = True) -> Scored:
    return Scored.from_outputs(saved_model_outputs(version_dir, images, progress), images, labels, normal_classes)


def compute_metrics(scored: Scored, metadata: dict) -> dict:
    """Every method overall, and the primary score per anomaly digit, at the stored thresholds."""
    thresholds = metadata.get("thresholds_by_method") or {}
    methods = [m for m in metadata["score_methods"] if m in scored.scores]
    by_method, cut = {}, {}
    for method in methods:
        threshold = thresholds.get(method, metadata["threshold"] if method == metadata["score_method"] else None)
        cut[method] = np.inf if threshold is None else threshold  # no threshold stored: nothing is flagged
        by_method[method] = {**detection_metrics(scored.is_anomaly, scored.scores[method], cut[method]),
                             "threshold": threshold}
    normal = ~scored.is_anomaly
    by_digit = {}
    for digit in sorted(set(scored.labels[scored.is_anomaly].tolist())):
        subset = normal | (scored.labels == digit)
        by_digit[str(digit)] = {method: detection_metrics(scored.is_anomaly[subset], scored.scores[method][subset],
                                                          cut[method])
                                for method in methods}
    primary = metadata["score_method"]
    fpr = rates_at_threshold(scored.is_anomaly, scored.scores[primary], metadata["threshold"])["fpr"]
    # What each source's own threshold would do on this test set: the detection it costs or gains.
    by_source = {name: {"threshold": fields["threshold"], "target_fpr": fields["target_fpr"],
                        "n_calibration": len(fields["calibration_scores"]),
                        **rates_at_threshold(scored.is_anomaly, scored.scores[primary], fields["threshold"])}
                 for name, fields in sorted((metadata.get("source_calibrations") or {}).items())}
    return {
        "model": {"name": metadata["name"], "version": metadata.get("version"), "score_method": primary,
                  "threshold": metadata["threshold"], "target_fpr": metadata["target_fpr"],
                  "normal_classes": metadata["normal_classes"]},
        "n_normal": int(normal.sum()), "n_anomalous": int(scored.is_anomaly.sum()),
        "primary": by_method[primary], "fpr_deviation_from_target": fpr - metadata["target_fpr"],
        "by_method": by_method, "by_anomaly_digit": by_digit, "by_source": by_source,
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def render_markdown(metrics: dict) -> str:
    model = metrics["model"]
    primary = metrics["primary"]
    methods = metrics["by_method"]
    text = [
        f"# Evaluation of {model['name']} version {model['version']}",
        "",
        f"Normal classes {model['normal_classes']}; MNIST test set: {metrics['n_normal']} normal, "
        f"{metrics['n_anomalous']} anomalous images. Scored through the exported SavedModel.",
        "",
        f"Primary score **{model['score_method']}**, threshold {model['threshold']:.6g} "
        f"(calibrated for a {model['target_fpr']:.2%} false-positive rate): AUROC {primary['auroc']:.4f}, "
        f"average precision {primary['average_precision']:.4f}, FPR {primary['fpr']:.2%}, "
        f"TPR {primary['tpr']:.2%}.",
        "",
        "## Every score method",
        "",
        _table([[m + (" (primary)" if m == model["score_method"] else ""), f"{v['auroc']:.4f}",
                 f"{v['average_precision']:.4f}", f"{v['fpr']:.2%}", f"{v['tpr']:.2%}"]
                for m, v in methods.items()],
               ["method", "AUROC", "average precision", "FPR on normals", "TPR on anomalies"]),
        "",
        "## Per anomaly digit (normal test images vs that digit)",
        "",
        _table([[digit] + [f"{values[m]['auroc']:.4f}" for m in methods] + [f"{values[model['score_method']]['tpr']:.2%}"]
                for digit, values in metrics["by_anomaly_digit"].items()],
               ["digit"] + [f"AUROC {m}" for m in methods] + ["TPR (primary)"]),
        "",
        "Plots: `histogram.png` (score distributions with the threshold), `roc.png` (ROC of every method), "
        "`grid.png` (original / reconstruction / difference of sample test images).",
        "",
    ]
    if metrics.get("by_source"):
        text += [
            "## Thresholds of single sources",
            "",
            "Images sent with these `?source=` values are judged at their own threshold, calibrated on that "
            "source's normal images (`recalibrate --for-source`). On this test set, those thresholds would give:",
            "",
            _table([[f"`{name}`", f"{v['threshold']:.6g}", f"{v['target_fpr']:.2%}", str(v["n_calibration"]),
                     f"{v['fpr']:.2%}", f"{v['tpr']:.2%}"] for name, v in metrics["by_source"].items()],
                   ["source", "threshold", "target FPR", "calibration images", "FPR on normals", "TPR on anomalies"]),
            "",
        ]
    return "\n".join(text)


def write_report(version_dir: Path, metadata: dict, images: np.ndarray, labels: np.ndarray,
                 report_dir: Path, progress: bool = True) -> dict:
    """Score labelled test images through the SavedModel in `version_dir`; write the report files."""
    normal_classes = [c for c in metadata["normal_classes"] if isinstance(c, int)]
    if not normal_classes:
        raise ValueError(f"{version_dir} was not trained on MNIST classes; nothing labelled to evaluate on")
    if reason := no_anomaly_among(labels, normal_classes):
        raise ValueError(f"{version_dir}: {reason}")
    return write_scored_report(score_with_saved_model(version_dir, images, labels, normal_classes, progress),
                               metadata, report_dir)


def write_scored_report(scored: Scored, metadata: dict, report_dir: Path) -> dict:
    """The report files for test images already scored through the version's SavedModel."""
    metrics = compute_metrics(scored, metadata)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (report_dir / "report.md").write_text(render_markdown(metrics))
    try:
        from training.report import write_plots
        write_plots(scored, metadata, metrics, report_dir)
    except ImportError:
        log.warning("matplotlib is not installed: plots skipped (pip install '.[report]' for them)")
    return metrics


def evaluate(version_dir: Path, data: str | None, report_dir: Path, progress: bool = True) -> dict:
    mnist = load_mnist(data)
    metrics = write_report(version_dir, read_metadata(version_dir), mnist.x_test, mnist.y_test, report_dir,
                           progress)
    log.info("report written to %s", report_dir)
    return metrics
