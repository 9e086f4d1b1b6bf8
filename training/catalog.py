"""What each published version of a model is: how it was made, its thresholds, its test AUROC.

For `python -m training versions`: an operator choosing a version to roll back to, or checking what a
recalibration published, reads it here rather than in each version's metadata.json. Folders that look
like versions but are not served (incomplete, unreadable, an unfinished publish) are listed with why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from training.prune import PRUNED_PREFIX
from training.store import METADATA_PATH, REPORT_FILES, REPORT_PATH, STAGING_PREFIX, list_versions, read_metadata


@dataclass(frozen=True)
class VersionSummary:
    version: int
    created_at: str
    made_by: str  # in words: "train on 1", "recalibrate version 4 for line-3", "roll back to version 3"
    score_method: str
    threshold: float
    target_fpr: float
    source_thresholds: dict[str, float]  # sources with a threshold of their own (recalibrate --for-source)
    test_auroc: float | None  # on labelled test data, at publishing; None without
    report_files: list[str]  # the files of its evaluation report (REPORT_FILES it has), [] without one


@dataclass(frozen=True)
class Catalog:
    model_dir: Path
    versions: list[VersionSummary]  # newest first
    not_served: dict[str, str]  # folder name -> why the service does not consider it

    def as_json(self) -> dict:
        return {"model_dir": str(self.model_dir), "newest": self.versions[0].version if self.versions else None,
                "versions": [asdict(summary) for summary in self.versions], "not_served": self.not_served}


def read_catalog(model_dir: Path) -> Catalog:
    published = list_versions(model_dir)
    versions, not_served = [], {}
    for version in reversed(published):
        try:
            versions.append(summarise(version, read_metadata(model_dir / str(version)),
                                      report_files(model_dir / str(version))))
        except (OSError, ValueError, KeyError, TypeError) as error:  # the service refuses it as well
            not_served[str(version)] = f"its metadata cannot be read: {error!r}"
    listed = {str(v) for v in published}
    for entry in sorted(model_dir.iterdir()) if model_dir.is_dir() else []:
        if entry.name.startswith(STAGING_PREFIX):
            not_served[entry.name] = ("an unfinished publish: a job is writing it, or one stopped before it was "
                                      "renamed; delete it once no job runs")
        elif entry.name.startswith(PRUNED_PREFIX):
            not_served[entry.name] = ("a pruned version not yet deleted: prune is deleting it, or stopped midway; "
                                      "the next prune deletes it")
        elif entry.name.isdecimal() and entry.name not in listed:
            missing = [name for name in ("saved_model.pb", str(METADATA_PATH)) if not (entry / name).is_file()]
            not_served[entry.name] = f"incomplete: no {' and no '.join(missing)}"
    return Catalog(model_dir, versions, not_served)


def report_files(version_dir: Path) -> list[str]:
    return [name for name in REPORT_FILES if (version_dir / REPORT_PATH / name).is_file()]


def summarise(version: int, metadata: dict, report: list[str]) -> VersionSummary:
    sources = metadata.get("source_calibrations") or {}
    return VersionSummary(
        version=version, created_at=metadata["created_at"], made_by=made_by(metadata),
        score_method=metadata["score_method"], threshold=float(metadata["threshold"]),
        target_fpr=float(metadata["target_fpr"]),
        source_thresholds={name: float(entry["threshold"]) for name, entry in sorted(sources.items())},
        test_auroc=(metadata.get("test_metrics") or {}).get("auroc"), report_files=report)


def made_by(metadata: dict) -> str:
    origin = metadata.get("origin") or _origin_of_older_version(metadata)
    if origin["made_by"] == "rollback":
        return f"roll back to version {origin['from_version']} (replacing {origin['replaced_version']})"
    if origin["made_by"] == "recalibrate":
        scope = f" for {', '.join(origin['sources'])}" if origin.get("sources") else ""
        return f"recalibrate version {origin['from_version']}{scope}"
    classes = metadata.get("normal_classes") or []
    return "train on " + ("a folder of images" if classes == ["folder"] else ", ".join(map(str, classes)))


def _origin_of_older_version(metadata: dict) -> dict:
    """Versions published before `origin` was recorded: inferred from their calibration records."""
    calibrated_here = {name: (entry.get("calibration") or {}).get("recalibrated_from")
                       for name, entry in (metadata.get("source_calibrations") or {}).items()
                       if entry.get("calibrated_at") == metadata.get("created_at")}  # by this very publish
    calibrated_here = {name: base for name, base in calibrated_here.items() if base}
    if calibrated_here:
        base = next(iter(calibrated_here.values()))
        return {"made_by": "recalibrate", "from_version": base["version"], "sources": sorted(calibrated_here)}
    base = (metadata.get("calibration") or {}).get("recalibrated_from")
    if base:
        return {"made_by": "recalibrate", "from_version": base["version"], "sources": []}
    return {"made_by": "train"}


def format_catalog(catalog: Catalog) -> str:
    lines = []
    if catalog.versions:
        lines.append(f"{catalog.model_dir}: {len(catalog.versions)} published, newest first. A service serves the "
                     f"newest ({catalog.versions[0].version}) unless VAE_MODEL_VERSION pins another.")
        rows = [("version", "created (UTC)", "made by", "score", "threshold", "target FPR", "test AUROC",
                 "own thresholds of sources")]
        rows += [(str(s.version), s.created_at.replace("T", " ").removesuffix("+00:00"), s.made_by,
                  s.score_method, f"{s.threshold:.4g}", f"{100 * s.target_fpr:g} %",
                  "-" if s.test_auroc is None else f"{s.test_auroc:.4f}",
                  ", ".join(f"{name} {threshold:.4g}" for name, threshold in s.source_thresholds.items()) or "-")
                 for s in catalog.versions]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                  for row in rows]
        reported = [str(s.version) for s in catalog.versions if s.report_files]
        if reported:
            lines.append(f"Evaluation reports (of versions {', '.join(reported)}): {catalog.model_dir}/<version>/"
                         f"{REPORT_PATH}/, and on a service: /model/versions/<version>/report/report.html")
    else:
        lines.append(f"{catalog.model_dir}: no published version")
    if catalog.not_served:
        lines.append("Not served:")
        lines += [f"  {name}: {why}" for name, why in catalog.not_served.items()]
    return "\n".join(lines)


def catalog_json(catalog: Catalog) -> str:
    return json.dumps(catalog.as_json(), indent=1)
