"""Prune: remove all but the newest published versions of a model, to bound the store's size.

Every recalibration and rollback publishes a version (about 5 MB for the default model), so a line
recalibrated nightly adds about 2 GB a year. Results stored by the service keep their images, so their
pictures, reviews and exports do not need the version that scored them.

A version is first renamed to a hidden `.pruned-*` folder, which the service and `list_versions` do not
consider, and only then deleted: a crash midway leaves debris to delete, never half a version that looks
servable. The next prune deletes such debris too.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from training.data import DataError
from training.store import folder_bytes, list_versions

log = logging.getLogger(__name__)

PRUNED_PREFIX = ".pruned-"


@dataclass(frozen=True)
class Pruning:
    kept: list[int]
    removed: list[int]
    freed_bytes: int  # the removed versions' and the debris'
    debris: list[str] = field(default_factory=list)  # the `.pruned-*` folders of an interrupted prune, removed too


def prune(model_dir: Path, keep: int, also_keep: frozenset[int] = frozenset(), dry_run: bool = False) -> Pruning:
    """Remove every published version of `model_dir` but the newest `keep` and those in `also_keep`.

    The newest version is always kept (it is what an unpinned service serves). DataError when `also_keep`
    names a version that is not published (a typo would otherwise let the pinned version go).
    """
    if keep < 1:
        raise DataError(f"--keep must be at least 1 (the newest version is what a service serves), got {keep}")
    published = list_versions(model_dir)
    missing = sorted(also_keep - set(published))
    if missing:
        listed = ", ".join(map(str, published)) or "none"
        raise DataError(f"{model_dir} has no published version {missing[0]} to keep (published: {listed})")
    kept = sorted(set(published[-keep:]) | also_keep)
    removed = [version for version in published if version not in kept]
    # A `.pruned-*` folder is never served and never becomes a version again: nothing is lost by deleting it,
    # even while another prune is still deleting it.
    debris = sorted(entry for entry in (model_dir.iterdir() if model_dir.is_dir() else ())
                    if entry.name.startswith(PRUNED_PREFIX))
    freed = sum(folder_bytes(path) for path in [*(model_dir / str(version) for version in removed), *debris])
    if not dry_run:
        for version in removed:
            hidden = Path(tempfile.mkdtemp(prefix=f"{PRUNED_PREFIX}{version}-", dir=model_dir))
            os.rename(model_dir / str(version), hidden / "version")  # atomic: no longer a version
            shutil.rmtree(hidden)
            log.info("removed version %d of %s", version, model_dir)
        for path in debris:
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed %s, left by a prune that was stopped midway", path)
    return Pruning(kept, removed, freed, [path.name for path in debris])

