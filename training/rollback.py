"""Roll back: publish an earlier version again, unchanged, as the newest version.

The service swaps in newer versions only, so removing a bad version would leave it served until a
restart, and pinning one (`VAE_MODEL_VERSION`) needs a restart too. Publishing the good version's
files again under the next number rolls every unpinned service back at its next poll. Nothing is
deleted: version numbers only grow, and every stored result still names the version that scored it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from training.data import DataError
from training.store import (
    PublishedModel,
    list_versions,
    publish,
    read_metadata,
    staging_directory,
)

log = logging.getLogger(__name__)


def roll_back(model_dir: Path, to_version: int) -> PublishedModel:
    """Publish version `to_version` of `model_dir` again as its next version.

    The new version holds the same files, report included (same model, same thresholds, so the same
    evidence), and the same metadata but for its `version`, `created_at` and `origin`, which names the
    version it copies and the one it replaced as the newest. Raises DataError when `to_version` is not
    published or is the newest already.
    """
    published = list_versions(model_dir)
    if to_version not in published:
        listed = ", ".join(map(str, published)) or "none"
        raise DataError(f"{model_dir} has no published version {to_version} (published: {listed})")
    newest = published[-1]
    if to_version == newest:
        raise DataError(f"version {to_version} is the newest in {model_dir} already: a service that is not "
                        "pinned (VAE_MODEL_VERSION) serves it; there is nothing to roll back")
    source = model_dir / str(to_version)
    metadata = {key: value for key, value in read_metadata(source).items() if key != "version"}
    metadata["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    metadata["origin"] = {"made_by": "rollback", "from_version": to_version, "replaced_version": newest}
    with staging_directory(model_dir) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)  # publish() rewrites the metadata
        version = publish(model_dir, staging, metadata)
    log.info("published %s version %d: version %d again, replacing version %d as the newest",
             metadata["name"], version, to_version, newest)
    return PublishedModel(version, model_dir / str(version), {**metadata, "version": version})
