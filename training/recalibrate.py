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

from training.calibration import CalibrationError, conformal_threshold, pixel_threshold
from training.data import DataError, check_background, normal_references
from training.evaluate import Scored, serving_signature, signature_outputs, write_scored_report
from training.metrics import test_set_metrics
from training.sources import SOURCE_RULE, is_source_name
from training.store import METADATA_PATH, REPORT_PATH, PublishedModel, publish, read_metadata, staging_directory
from training.test_sets import LabelledImages

log = logging.getLogger(__name__)


@dataclass
class NormalImages:
    """Normal images from the deployment, uint8 [N, 28, 28], and where they came from."""
    images: np.ndarray
    source: str
    fingerprint: str
    # Someone vouches that they are normal: the service's results, whose flags a person reviewed, or a folder
    # given with --even-if-flagged. Without that, a folder mostly flagged is taken for the wrong folder.
    vouched_for: bool = False


# A threshold flags about its target FPR (1 %) of normal images. A deployment's own normals may be flagged at a
# few times that, which is what recalibrating is for; flagged at over half, they are not the normals it saw.
MOSTLY_FLAGGED = 0.5


def recalibrate_and_publish(version_dir: Path, normals: NormalImages, target_fpr: float | None = None,
                            test_set: LabelledImages | None = None, progress: bool = False,
                            for_source: str | None = None) -> PublishedModel:
    """Publish a copy of `version_dir` calibrated on `normals`, next to it in the same model folder.

    The model's threshold is replaced, and the sources' own thresholds are kept (the model is the same,
    so their scores still hold). With `for_source`, only that source's threshold is calibrated
    (`recalibrate_sources_and_publish`). With a labelled test set, the new version's test metrics and
    report are computed at its model threshold. Raises CalibrationError when there are too few images
    for the target FPR, or over half score above the current threshold and are not `vouched_for`; and
    DataError when their background is the opposite of the model's or a source's name is not one the
    service accepts. Nothing is published then.
    """
    if for_source is not None:
        return recalibrate_sources_and_publish(version_dir, {for_source: normals}, target_fpr, test_set, progress)
    started = time.monotonic()
    base = read_metadata(version_dir)
    serve = serving_signature(version_dir)  # loaded once, for the calibration and the test images
    calibrated = _calibrate(serve, base, base, normals, target_fpr, progress)
    primary = base["score_method"]
    methods = list(base.get("thresholds_by_method") or [primary])
    thresholds = {m: conformal_threshold(calibrated.outputs[m], calibrated.target_fpr) for m in methods}
    metadata = _successor_metadata(base, sources=[])
    metadata.update({
        "threshold": thresholds[primary],
        "thresholds_by_method": thresholds,
        "target_fpr": calibrated.target_fpr,
        "calibration_scores": np.sort(calibrated.outputs[primary]).astype(float).tolist(),
        "calibration": calibrated.record,
        "heatmap_scale": pixel_threshold(calibrated.outputs["difference"], calibrated.target_fpr),
    })
    published = _publish(version_dir, metadata, thresholds, serve, test_set, progress)
    log.info("published %s version %d (the model's threshold recalibrated from version %s on %d images) in "
             "%.1f s", base["name"], published.version, base["version"], len(normals.images),
             time.monotonic() - started)
    return published


def recalibrate_sources_and_publish(version_dir: Path, normals_by_source: dict[str, NormalImages],
                                    target_fpr: float | None = None, test_set: LabelledImages | None = None,
                                    progress: bool = False) -> PublishedModel:
    """Publish a copy of `version_dir` with a threshold of its own for each source, from its normals.

    The model's threshold, and the thresholds of sources not named, stay as they were. Each source's
    target FPR is `target_fpr`, else the one it has already, else the model's. Errors as for
    `recalibrate_and_publish`; nothing is published then.
    """
    started = time.monotonic()
    if not normals_by_source:
        raise DataError("no source to calibrate a threshold for")
    refused = [name for name in normals_by_source if not is_source_name(name)]
    if refused:
        raise DataError(f"source {refused[0]!r}: a source is named by {SOURCE_RULE}, as the service's ?source=")
    base = read_metadata(version_dir)
    serve = serving_signature(version_dir)
    primary = base["score_method"]
    metadata = _successor_metadata(base, sources=sorted(normals_by_source))
    sources = dict(base.get("source_calibrations") or {})
    for name, normals in sorted(normals_by_source.items()):
        # What applied to these images until now: the source's own calibration, if it has one, else the model's.
        calibrated = _calibrate(serve, base, sources.get(name) or base, normals, target_fpr, progress)
        sources[name] = {
            "threshold": conformal_threshold(calibrated.outputs[primary], calibrated.target_fpr),
            "target_fpr": calibrated.target_fpr,
            "calibration_scores": np.sort(calibrated.outputs[primary]).astype(float).tolist(),
            "calibration": calibrated.record,
            "calibrated_at": metadata["created_at"],
        }
    metadata["source_calibrations"] = sources
    thresholds = base.get("thresholds_by_method") or {primary: base["threshold"]}
    published = _publish(version_dir, metadata, thresholds, serve, test_set, progress)
    log.info("published %s version %d (thresholds of %s recalibrated from version %s on %d images) in %.1f s",
             base["name"], published.version, ", ".join(sorted(normals_by_source)), base["version"],
             sum(len(normals.images) for normals in normals_by_source.values()), time.monotonic() - started)
    return published


@dataclass
class _Calibrated:
    outputs: dict
    target_fpr: float
    record: dict  # the metadata's `calibration`: where the images came from, and the rate they saw until now


def _calibrate(serve, base: dict, previous: dict, normals: NormalImages, target_fpr: float | None,
               progress: bool) -> _Calibrated:
    """Score `normals`, and measure the threshold that applied to them until now (`previous`'s)."""
    target_fpr = float(previous["target_fpr"] if target_fpr is None else target_fpr)
    check_background(normals.images, normal_references(base))
    outputs = signature_outputs(serve, normals.images, progress, what="calibration images")
    fpr_before = float(np.mean(outputs[base["score_method"]] > previous["threshold"]))
    if fpr_before > MOSTLY_FLAGGED:
        if not normals.vouched_for:
            raise CalibrationError(
                f"{100 * fpr_before:.0f} % of these {len(normals.images)} images score above the threshold "
                f"that applies to them now (version {base['version']}'s, set to flag "
                f"{100 * previous['target_fpr']:g} % of normal images). Calibrated on them, a folder that holds "
                "mostly anomalies would push the threshold above them and let real anomalies pass. Check that "
                "they are normal images, prepared like the model's training images (--invert?). If they are, and "
                "this is how the model now sees normal images, pass --even-if-flagged to publish anyway; "
                "retraining on such images (train --images) may serve better")
        log.warning("%.0f %% of these images score above version %s's threshold: check that they are normal "
                    "images, prepared like its training images", 100 * fpr_before, base["version"])
    record = {"source": normals.source, "sha256": normals.fingerprint, "n_images": len(normals.images),
              "recalibrated_from": {"name": base["name"], "version": base["version"]},
              "previous_threshold": previous["threshold"], "fpr_at_previous_threshold": fpr_before}
    return _Calibrated(outputs, target_fpr, record)


def _successor_metadata(base: dict, sources: list[str]) -> dict:
    """The base version's metadata for the version recalibrated from it; `sources` = [] for the model's."""
    metadata = {key: value for key, value in base.items() if key != "version"}
    metadata["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    metadata["origin"] = {"made_by": "recalibrate", "from_version": base["version"], "sources": sources}
    metadata["test_metrics"] = None
    metadata["test_folders"] = None  # set when this version's own report is computed on folders
    return metadata


def _publish(version_dir: Path, metadata: dict, thresholds: dict, serve, test_set: LabelledImages | None,
             progress: bool) -> PublishedModel:
    """Publish the base version's SavedModel with `metadata`, and with a labelled test set, its evidence."""
    write_evidence = None
    if test_set is not None and not test_set.is_anomaly.any():
        log.warning("no evaluation report: no anomalous image in the %s", test_set.description)
    elif test_set is not None:
        # Scored once: the same outputs give the metadata's test metrics and the report.
        scored = Scored.of(test_set, signature_outputs(serve, test_set.images, progress))
        metadata["test_metrics"] = test_set_metrics(scored.is_anomaly, scored.scores, thresholds,
                                                    metadata["score_method"])
        metadata["test_folders"] = test_set.folders

        def write_evidence(staging: Path, stamped: dict) -> None:
            write_scored_report(scored, stamped, staging / REPORT_PATH)

    model_dir = version_dir.parent
    with staging_directory(model_dir) as staging:
        # The SavedModel only: the base version's metadata and report describe its own calibration.
        shutil.copytree(version_dir, staging, dirs_exist_ok=True,
                        ignore=lambda folder, _: [METADATA_PATH.parent.name] if Path(folder) == version_dir else [])
        version = publish(model_dir, staging, metadata, before_rename=write_evidence)
    return PublishedModel(version, model_dir / str(version), {**metadata, "version": version})
