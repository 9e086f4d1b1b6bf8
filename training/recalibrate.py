"""Recalibrate a published version on new normal images, and publish the result as the next version.

Training calibrates on normal images held out from its own data, so they come from the writers, lines
or cameras the model learnt from. Normals from elsewhere can be flagged at quite another rate (MNIST's
test writers: docs/quality.md). Recalibrating fixes the threshold without retraining. The new version
holds the same SavedModel, byte for byte, with a threshold, calibration scores and heatmap scale
computed from the new images. Everything else (score method, its scale, reference images) is the
base version's, so the service's self-check still holds.

One threshold cannot fit two populations that the model judges differently (MNIST's two test-writer
populations again). So a version may also carry thresholds of its own for some sources (lines, cameras:
the service's `?source=`), each calibrated on that source's normal images (`--for-source`). The service
applies a source's threshold, and its p-values, to the images sent with that `?source=`, and the model's
to the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.calibration import conformal_threshold, pixel_threshold
from training.data import DataError
from training.evaluate import Scored, serving_signature, signature_outputs, write_scored_report
from training.metrics import test_set_metrics
from training.sources import SOURCE_RULE, is_source_name
from training.store import METADATA_PATH, publish, read_metadata, staging_directory
from training.train import PublishedModel

log = logging.getLogger(__name__)


@dataclass
class NormalImages:
    """Normal images from the deployment, uint8 [N, 28, 28], and where they came from."""
    images: np.ndarray
    source: str
    fingerprint: str


@dataclass
class LabelledTestSet:
    images: np.ndarray
    labels: np.ndarray


# Half the 0-255 range: a gap this wide between typical pixels is a polarity flip, not a lighting change.
BACKGROUND_GAP = 128


def check_background(images: np.ndarray, metadata: dict) -> None:
    """Refuse images whose background is the opposite of the model's normal images' (a scan not inverted).

    Calibrating on them would flag nearly all, set the threshold above every normal score and so let
    real anomalies pass: worse than no recalibration. Each image's median pixel is its background.
    """
    references = [r["pixels"] for r in metadata.get("reference_images") or [] if r["kind"] == "normal"]
    if not references:
        return
    model_background = float(np.median(np.median(np.asarray(references, np.float64), axis=(1, 2))))
    background = float(np.median(np.median(images.astype(np.float64), axis=(1, 2))))
    if abs(background - model_background) >= BACKGROUND_GAP:
        shade = "light" if background > model_background else "dark"
        raise DataError(f"these images have a {shade} background (median pixel {background:.0f}), the model's "
                        f"normal images the opposite ({model_background:.0f}); invert them (--invert) or "
                        "check that they are the right kind of image")


def recalibrate_and_publish(version_dir: Path, normals: NormalImages, target_fpr: float | None = None,
                            test_set: LabelledTestSet | None = None, progress: bool = False,
                            for_source: str | None = None) -> PublishedModel:
    """Publish a copy of `version_dir` calibrated on `normals`, next to it in the same model folder.

    With `for_source`, only that source's threshold is calibrated (`source_calibrations`): the model's own
    threshold, and every other source's, stay as they were. Otherwise the model's threshold is replaced,
    and the sources' own thresholds are kept (the model is the same, so their scores still hold).
    With a labelled test set, the new version's test metrics and report are computed at its model threshold.
    Raises CalibrationError when there are too few images for the target FPR, and DataError when their
    background is the opposite of the model's or the source's name is not one the service accepts;
    nothing is published then.
    """
    started = time.monotonic()
    base = read_metadata(version_dir)
    if for_source is not None and not is_source_name(for_source):
        raise DataError(f"source {for_source!r}: a source is named by {SOURCE_RULE}, as the service's ?source=")
    # What applied to these images until now: the source's own calibration, if it has one, else the model's.
    previous = (base.get("source_calibrations") or {}).get(for_source) or base
    target_fpr = float(previous["target_fpr"] if target_fpr is None else target_fpr)
    check_background(normals.images, base)
    serve = serving_signature(version_dir)  # loaded once, for the calibration and the test images
    outputs = signature_outputs(serve, normals.images, progress, what="calibration images")
    primary = base["score_method"]
    # The rate these images see today: how far off the threshold that applies to them is.
    fpr_before = float(np.mean(outputs[primary] > previous["threshold"]))
    if fpr_before > 0.5:
        log.warning("%.0f %% of these images score above version %s's threshold: check that they are normal "
                    "images, prepared like its training images", 100 * fpr_before, base["version"])
    calibration = {"source": normals.source, "sha256": normals.fingerprint, "n_images": len(normals.images),
                   "recalibrated_from": {"name": base["name"], "version": base["version"]},
                   "previous_threshold": previous["threshold"], "fpr_at_previous_threshold": fpr_before}
    metadata = {key: value for key, value in base.items() if key != "version"}
    metadata["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    metadata["origin"] = {"made_by": "recalibrate", "from_version": base["version"], "for_source": for_source}
    if for_source is None:
        methods = list(base.get("thresholds_by_method") or [primary])
        thresholds = {m: conformal_threshold(outputs[m], target_fpr) for m in methods}
        metadata.update({
            "threshold": thresholds[primary],
            "thresholds_by_method": thresholds,
            "target_fpr": target_fpr,
            "calibration_scores": np.sort(outputs[primary]).astype(float).tolist(),
            "calibration": calibration,
            "heatmap_scale": pixel_threshold(outputs["difference"], target_fpr),
        })
    else:
        thresholds = base.get("thresholds_by_method") or {primary: base["threshold"]}
        metadata["source_calibrations"] = {**(base.get("source_calibrations") or {}), for_source: {
            "threshold": conformal_threshold(outputs[primary], target_fpr),
            "target_fpr": target_fpr,
            "calibration_scores": np.sort(outputs[primary]).astype(float).tolist(),
            "calibration": calibration,
            "calibrated_at": metadata["created_at"],
        }}
    metadata["test_metrics"] = None
    normal_classes = [c for c in base["normal_classes"] if isinstance(c, int)]
    write_evidence = None
    if test_set is not None and normal_classes:
        # Scored once: the same outputs give the metadata's test metrics and the report.
        scored = Scored.from_outputs(signature_outputs(serve, test_set.images, progress), test_set.images,
                                     test_set.labels, normal_classes)
        metadata["test_metrics"] = test_set_metrics(normal_classes, scored.scores, test_set.labels, thresholds,
                                                    primary)

        def write_evidence(staging: Path, stamped: dict) -> None:
            write_scored_report(scored, stamped, staging / "assets.extra" / "report")

    model_dir = version_dir.parent
    with staging_directory(model_dir) as staging:
        # The SavedModel only: the base version's metadata and report describe its own calibration.
        shutil.copytree(version_dir, staging, dirs_exist_ok=True,
                        ignore=lambda folder, _: [METADATA_PATH.parent.name] if Path(folder) == version_dir else [])
        version = publish(model_dir, staging, metadata, before_rename=write_evidence)
    log.info("published %s version %d (%s recalibrated from version %s on %d images) in %.1f s", base["name"],
             version, "the model's threshold" if for_source is None else f"source {for_source}'s threshold",
             base["version"], len(normals.images), time.monotonic() - started)
    return PublishedModel(version, model_dir / str(version), {**metadata, "version": version})
