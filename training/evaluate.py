"""Evaluate an exported model version through its SavedModel only: on the MNIST test set, or on folders of
the user's own normal and anomalous images.

Writes metrics.json, report.md, four plots (histogram.png, roc.png, grid.png, misjudged.png) and report.html
(report.md as one web page with the plots) into a folder.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import check_background, load_mnist, normal_references
from training.metrics import (
    detection_metrics,
    misjudged,
    no_anomaly_among,
    operating_points,
    rates_at_threshold,
)
from training.preprocessing import framing_of_version, to_model_input
from training.progress import Progress
from training.report_page import REPORT_PAGE, render_report_page
from training.stopping import raise_if_stopped
from training.store import REPORT_PLOTS, read_metadata
from training.test_sets import LabelledImages, digit_test_set, folder_test_set, mnist_test_set

log = logging.getLogger(__name__)
CHUNK = 2000
MISJUDGED_SHOWN = 20  # rows of each list in report.md; metrics.json has them all


@dataclass
class Scored:
    """Every output of the SavedModel for a set of labelled test images."""
    test_set: LabelledImages
    scores: dict[str, np.ndarray]    # method (and "score") -> [N]
    reconstruction: np.ndarray       # float [N, 28, 28]
    difference: np.ndarray           # float [N, 28, 28]

    @property
    def images(self) -> np.ndarray:
        return self.test_set.images

    @property
    def labels(self) -> np.ndarray:
        return self.test_set.labels

    @property
    def is_anomaly(self) -> np.ndarray:
        return self.test_set.is_anomaly

    @property
    def label_kind(self) -> str:
        return self.test_set.label_kind

    def name(self, index: int) -> str:
        names = self.test_set.names
        return names[index] if names is not None else f"x_test[{index}]"

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                     normal_classes: list[int]) -> Scored:
        return cls.of(digit_test_set(images, labels, normal_classes), outputs)

    @classmethod
    def of(cls, test_set: LabelledImages, outputs: dict[str, np.ndarray]) -> Scored:
        return cls(test_set, scores={k: v for k, v in outputs.items() if v.ndim == 1},
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

    chunks, shown = [], Progress(len(images), what, "scored", enabled=progress)
    for start in range(0, len(images), CHUNK):
        raise_if_stopped()
        outputs = serve(images=tf.constant(to_model_input(images[start:start + CHUNK])))
        chunks.append({name: tensor.numpy() for name, tensor in outputs.items()})
        shown.advance(min(start + CHUNK, len(images)))
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
    by_label, counts = {}, {}
    for label in sorted(set(scored.labels[scored.is_anomaly].tolist())):
        subset = normal | (scored.labels == label)
        by_label[str(label)] = {method: detection_metrics(scored.is_anomaly[subset], scored.scores[method][subset],
                                                          cut[method])
                                for method in methods}
        counts[str(label)] = int((scored.is_anomaly & (scored.labels == label)).sum())
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
        "test_set": scored.test_set.description,
        "n_normal": int(normal.sum()), "n_anomalous": int(scored.is_anomaly.sum()),
        "primary": by_method[primary], "fpr_deviation_from_target": fpr - metadata["target_fpr"],
        "by_method": by_method, f"by_anomaly_{scored.label_kind}": by_label,
        f"n_by_anomaly_{scored.label_kind}": counts, "by_source": by_source,
        "operating_points": operating_points(scored.is_anomaly, scored.scores[primary]),
        **_misjudged(scored, scored.scores[primary], metadata["threshold"]),
        "refused": [{"image": name, "reason": why} for name, why in scored.test_set.refused.items()],
    }


def _misjudged(scored: Scored, scores: np.ndarray, threshold: float) -> dict:
    """The images the primary score gets wrong at the model's threshold, the worst first: which normal images
    a line would stop for, and which anomalies would pass."""
    false_alarms, missed = misjudged(scored.is_anomaly, scores, threshold)
    return {
        "false_alarms": [{"image": scored.name(i), "score": float(scores[i])} for i in false_alarms],
        "missed_anomalies": [{"image": scored.name(i), scored.label_kind: str(scored.labels[i]),
                              "score": float(scores[i])} for i in missed],
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _cell(text: str) -> str:
    """A folder's name as table text: a | would end its cell."""
    return text.replace("|", "\\|")


def _normal_of(normal_classes: list) -> str:
    digits = [str(c) for c in normal_classes if isinstance(c, int)]
    if not digits:
        return "the images of a folder (`train --images`)"
    return ("digit " if len(digits) == 1 else "digits ") + ", ".join(digits)


def render_markdown(metrics: dict) -> str:
    model = metrics["model"]
    primary = metrics["primary"]
    methods = metrics["by_method"]
    label_kind = "digit" if "by_anomaly_digit" in metrics else "kind"
    text = [
        f"# Evaluation of {model['name']} version {model['version']}",
        "",
        f"Normal: {_normal_of(model['normal_classes'])}; {metrics.get('test_set', 'MNIST test set')}: "
        f"{metrics['n_normal']} normal, {metrics['n_anomalous']} anomalous images. "
        "Scored through the exported SavedModel.",
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
        f"## Per anomaly {label_kind} (normal test images vs that {label_kind})",
        "",
        _table([[_cell(label), str(metrics[f"n_by_anomaly_{label_kind}"][label])]
                + [f"{values[m]['auroc']:.4f}" for m in methods] + [f"{values[model['score_method']]['tpr']:.2%}"]
                for label, values in metrics[f"by_anomaly_{label_kind}"].items()],
               [label_kind, "images"] + [f"AUROC {m}" for m in methods] + ["TPR (primary)"]),
        "",
        "Plots: `histogram.png` (score distributions with the threshold), `roc.png` (ROC of every method), "
        "`grid.png` (original / reconstruction / difference of sample test images), `misjudged.png` (the same "
        "for the worst false alarms and missed anomalies).",
        "",
    ]
    text += _operating_points_markdown(metrics)
    text += _misjudged_markdown(metrics, label_kind)
    text += _refused_markdown(metrics)
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


def _operating_points_markdown(metrics: dict) -> list[str]:
    points = metrics.get("operating_points")
    if not points:
        return []
    rows = ([f"FPR at most {p['target']:.1%}" for p in points["by_fpr"]]
            + [f"TPR at least {p['target']:.0%}" for p in points["by_tpr"]])
    values = points["by_fpr"] + points["by_tpr"]
    return [
        "## Other thresholds, read off these test images",
        "",
        f"What the primary score would do at other thresholds ({metrics['n_normal']} normal and "
        f"{metrics['n_anomalous']} anomalous images). They fit these images, so they are a guide: set one with "
        "`?threshold=` per request, or calibrate for a false-positive rate on normal images with `recalibrate`.",
        "",
        _table([[aim, f"{p['threshold']:.6g}", f"{p['fpr']:.2%}", f"{p['tpr']:.2%}"]
                for aim, p in zip(rows, values, strict=True)],
               ["aim", "threshold", "FPR on normals", "TPR on anomalies"]),
        "",
    ]


def _misjudged_markdown(metrics: dict, label_kind: str) -> list[str]:
    text = []
    for key, title, columns in (("false_alarms", "False alarms: normal images flagged", ["image", "score"]),
                                ("missed_anomalies", "Missed anomalies: not flagged", ["image", label_kind, "score"])):
        rows = metrics.get(key) or []
        text += [f"## {title} ({len(rows)})", ""]
        if not rows:
            continue
        shown = rows[:MISJUDGED_SHOWN]
        text += [_table([[f"`{_cell(row['image'])}`"] + ([_cell(row[label_kind])] if len(columns) == 3 else [])
                         + [f"{row['score']:.4g}"] for row in shown], columns), ""]
        if len(rows) > len(shown):
            text += [f"The worst {len(shown)}, by score; all {len(rows)} are in `metrics.json` (`{key}`).", ""]
    return text


def _refused_markdown(metrics: dict) -> list[str]:
    refused = metrics.get("refused") or []
    if not refused:
        return []
    shown = refused[:MISJUDGED_SHOWN]
    text = [f"## Refused, as the service would refuse them ({len(refused)})", "",
            "The service answers these with a 422 and no verdict, so they are in none of the figures above.", "",
            _table([[f"`{_cell(row['image'])}`", _cell(row["reason"])] for row in shown], ["image", "why"]), ""]
    if len(refused) > len(shown):
        text += [f"The first {len(shown)}; all {len(refused)} are in `metrics.json` (`refused`).", ""]
    return text


def write_report(version_dir: Path, metadata: dict, test_set: LabelledImages, report_dir: Path,
                 progress: bool = True) -> dict:
    """Score labelled test images through the SavedModel in `version_dir`; write the report files."""
    if not test_set.is_anomaly.any():
        raise ValueError(f"{version_dir}: no anomalous image in the {test_set.description} to evaluate against")
    if test_set.is_anomaly.all():
        raise ValueError(f"{version_dir}: no normal image in the {test_set.description} to evaluate against")
    outputs = saved_model_outputs(version_dir, test_set.images, progress,
                                  "test images" if test_set.names is None else "images")
    return write_scored_report(Scored.of(test_set, outputs), metadata, report_dir)


def write_scored_report(scored: Scored, metadata: dict, report_dir: Path) -> dict:
    """The report files for test images already scored through the version's SavedModel.

    They are written into a hidden folder inside `report_dir`, then moved into it: a write that fails (a full
    disk) leaves an earlier report there as it was, never half replaced by this one.
    """
    metrics = compute_metrics(scored, metadata)
    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-report-", dir=report_dir) as staging:
        _write_report_files(scored, metadata, metrics, Path(staging))
        for name in REPORT_PLOTS:  # an earlier report's plots beside this one's figures would contradict them
            (report_dir / name).unlink(missing_ok=True)
        for written in Path(staging).iterdir():
            os.replace(written, report_dir / written.name)
    return metrics


def _write_report_files(scored: Scored, metadata: dict, metrics: dict, folder: Path) -> None:
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    markdown = render_markdown(metrics)
    (folder / "report.md").write_text(markdown)
    try:
        from training.report import write_plots
        write_plots(scored, metadata, metrics, folder)
    except ImportError:
        log.warning("matplotlib is not installed: plots skipped (pip install '.[report]' for them)")
    plots = [name for name in REPORT_PLOTS if (folder / name).is_file()]
    (folder / REPORT_PAGE).write_text(render_report_page(markdown, plots))


def evaluate(version_dir: Path, data: str | None, report_dir: Path, progress: bool = True) -> dict:
    """Evaluate a version of an MNIST model on MNIST's test set."""
    metadata = read_metadata(version_dir)
    normal_classes = [c for c in metadata["normal_classes"] if isinstance(c, int)]
    if not normal_classes:  # said before loading MNIST for nothing
        raise ValueError(f"{version_dir} was trained on a folder of images, not on MNIST digits, so MNIST's test "
                         "set has nothing to evaluate it on: give --normals and --anomalies, folders of your own "
                         "normal and anomalous test images")
    mnist = load_mnist(data)
    if reason := no_anomaly_among(mnist.y_test, normal_classes):
        raise ValueError(f"{version_dir}: {reason}")
    metrics = write_report(version_dir, metadata, mnist_test_set(mnist, normal_classes), report_dir, progress)
    log.info("report written to %s", report_dir)
    return metrics


def evaluate_folders(version_dir: Path, normals: Path, anomalies: Path, report_dir: Path, invert: bool = False,
                     progress: bool = True) -> dict:
    """Evaluate a version on folders of the user's own normal and anomalous test images (`folder_test_set`),
    prepared as the service prepares uploads to this version.

    Raises DataError for folders that cannot be read, that overlap, or whose normal images have the opposite
    background of the model's; ValueError for a version whose framing this code does not know.
    """
    metadata = read_metadata(version_dir)
    test_set = folder_test_set(normals, anomalies, invert, framing_of_version(metadata))
    check_background(test_set.images[~test_set.is_anomaly], normal_references(metadata))
    metrics = write_report(version_dir, metadata, test_set, report_dir, progress)
    log.info("report written to %s", report_dir)
    return metrics
