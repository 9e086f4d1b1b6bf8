"""TensorFlow Serving's model-store layout, `<store>/<name>/<integer version>/`, and atomic publishing.

A version is published by exporting into a hidden `.tmp-*` directory inside the model's folder and
renaming it to the next integer: a crash at any point leaves no directory that looks like a version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from training.stopping import raise_if_stopped
from training.writable import said_when_full

# A model is a folder of the store: a name with a '/' or '..' would reach outside it, and '' or '.' is the
# store itself.
MODEL_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}"
MODEL_NAME_RULE = "letters, digits and ._-, not starting with '.' or '-', at most 64 (a folder of the store)"
METADATA_PATH = Path("assets.extra") / "metadata.json"
# Each version's evaluation report, its evidence (training/evaluate.py writes it; the service serves it).
REPORT_PATH = Path("assets.extra") / "report"
REPORT_PLOTS = ("histogram.png", "roc.png", "grid.png", "misjudged.png")  # training/report.py draws them
REPORT_FILES = ("report.md", "metrics.json", *REPORT_PLOTS)
STAGING_PREFIX = ".tmp-"  # a version being written: hidden, and not an integer, so never taken for one


@dataclass
class PublishedModel:
    version: int
    path: Path
    metadata: dict


def is_model_name(name: object) -> bool:
    return isinstance(name, str) and re.fullmatch(MODEL_NAME_PATTERN, name) is not None


def list_versions(model_dir: Path) -> list[int]:
    """Published versions, ascending: integer-named directories that hold a SavedModel and metadata."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(entry.name) for entry in model_dir.iterdir()
        if entry.name.isdecimal() and entry.is_dir()
        and (entry / "saved_model.pb").is_file() and (entry / METADATA_PATH).is_file()
    )


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def short_of_space(model_dir: Path) -> str | None:
    """Why a new version may not fit on the disk, said before minutes of training rather than after them.

    The newest version's size is the estimate (none without one), with a quarter more: a new version's report
    may be larger (a version trained here took 5.8 MB beside 5.5 MB), and a version of another architecture
    may be larger or smaller, so this warns and does not refuse.
    """
    versions = list_versions(model_dir)
    if not versions:
        return None
    needed, free = folder_bytes(model_dir / str(versions[-1])), shutil.disk_usage(model_dir).free
    if free >= 1.25 * needed:
        return None
    return (f"the disk holding {model_dir} has {free / 1e6:.1f} MB free, and version {versions[-1]} takes "
            f"{needed / 1e6:.1f} MB: a new one, about as large and often larger, may not fit, and the job would then "
            "fail when it writes it, after the training")


def _next_version(model_dir: Path) -> int:
    taken = [int(entry.name) for entry in model_dir.iterdir() if entry.name.isdecimal()]
    return max(taken, default=0) + 1


@contextlib.contextmanager
def staging_directory(model_dir: Path) -> Iterator[Path]:
    """A fresh hidden directory inside the model folder (same filesystem, so rename is atomic).

    Raises DiskFull when the disk fills while the version is written: after the directory is removed.
    """
    with said_when_full(model_dir, "Nothing was published: the version being written was removed"):
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_dir))
        staging.chmod(0o755)  # mkdtemp makes it owner-only; a published version must be readable by the server
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _write_json_durably(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def publish(model_dir: Path, staging: Path, metadata: dict,
            before_rename: Callable[[Path, dict], None] | None = None) -> int:
    """Stamp the next version number into the metadata, then rename the staging directory to it.

    A lock file serialises concurrent publishers, so two jobs never claim the same number.
    `before_rename(staging, metadata)` may add files that need the final metadata (the report).
    """
    with open(model_dir / ".publish.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        version = _next_version(model_dir)
        stamped = {**metadata, "version": version}
        _write_json_durably(staging / METADATA_PATH, stamped)
        if before_rename:
            before_rename(staging, stamped)
        raise_if_stopped()  # a stop lost on the way here still publishes nothing
        os.rename(staging, model_dir / str(version))
    return version


def read_metadata(version_dir: Path) -> dict:
    with open(version_dir / METADATA_PATH, encoding="utf-8") as handle:
        return json.load(handle)
