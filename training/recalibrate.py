"""Recalibrate a published version on new normal images, and publish the result as the next version.

Training calibrates on normal images held out from its own data, so they come from the writers, lines
or cameras the model learnt from. Normals from elsewhere can be flagged at quite another rate (MNIST's
test writers: docs/quality.md). Recalibrating fixes the threshold without retraining. The new version
holds the same SavedModel, byte for byte, with a threshold, calibration scores and heatmap scale
computed from the new images. Everything else (score method, its scale, reference images) is the
source version's, so the service's self-check still holds.
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
from training.evaluate import saved_model_outputs, write_report
from training.metrics import test_set_metrics
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


def recalibrate_and_publish(version_dir: Path, normals: NormalImages, target_fpr: float | None = None,
                            test_set: LabelledTestSet | None = None, progress: bool = False) -> PublishedModel:
    """Publish a copy of `version_dir` calibrated on `normals`, next to it in the same model folder.

    With a labelled test set, the new version's test metrics and report are computed at its new threshold.
    Raises CalibrationError when there are too few images for the target FPR; nothing is published then.
    """
    started = time.monotonic()
    source = read_metadata(version_dir)
    target_fpr = float(source["target_fpr"] if target_fpr is None else target_fpr)
    outputs = saved_model_outputs(version_dir, normals.images, progress, what="calibration images")
    methods = list(source.get("thresholds_by_method") or [source["score_method"]])
    thresholds = {m: conformal_threshold(outputs[m], target_fpr) for m in methods}
    primary = source["score_method"]
    metadata = {key: value for key, value in source.items() if key != "version"}
    metadata.update({
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "threshold": thresholds[primary],
        "thresholds_by_method": thresholds,
        "target_fpr": target_fpr,
        "calibration_scores": np.sort(outputs[primary]).astype(float).tolist(),
        "calibration": {"source": normals.source, "sha256": normals.fingerprint, "n_images": len(normals.images),
                        "recalibrated_from": {"name": source["name"], "version": source["version"]}},
        "heatmap_scale": pixel_threshold(outputs["difference"], target_fpr),
        "test_metrics": None,
    })
    normal_classes = [c for c in source["normal_classes"] if isinstance(c, int)]
    write_evidence = None
    if test_set is not None and normal_classes:
        test_scores = saved_model_outputs(version_dir, test_set.images, progress)
        metadata["test_metrics"] = test_set_metrics(normal_classes, test_scores, test_set.labels, thresholds, primary)

        def write_evidence(staging: Path, stamped: dict) -> None:
            write_report(staging, stamped, test_set.images, test_set.labels,
                         staging / "assets.extra" / "report", progress=False)

    model_dir = version_dir.parent
    with staging_directory(model_dir) as staging:
        # The SavedModel only: the source's metadata and report describe its own calibration.
        shutil.copytree(version_dir, staging, dirs_exist_ok=True,
                        ignore=lambda folder, _: [METADATA_PATH.parent.name] if Path(folder) == version_dir else [])
        version = publish(model_dir, staging, metadata, before_rename=write_evidence)
    log.info("published %s version %d (recalibrated from version %s on %d images) in %.1f s", source["name"],
             version, source["version"], len(normals.images), time.monotonic() - started)
    return PublishedModel(version, model_dir / str(version), {**metadata, "version": version})
