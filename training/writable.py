"""Refuse, before minutes of training or scoring, a folder that a job could not write its output into.

Without this check the job does its work, then fails on its first write with a traceback. The commonest
cause is Docker's: a folder it mounts that did not exist on the host is created there as root's, and a job
run as the host's user (`--user`) cannot write into it.
"""

from __future__ import annotations

import os
from pathlib import Path


class FolderNotWritable(Exception):
    """The user can fix it: another folder, its owner or its mode, or the mount."""


def check_writable(folder: Path, label: str) -> None:
    """Raise FolderNotWritable unless `folder` can be written into, or created (it creates nothing).

    `label` names the folder in the message: the option that gave it, or what it is.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folder that `mkdir -p` would create the missing ones in
    if not existing.is_dir():
        raise FolderNotWritable(f"{label} {folder}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FolderNotWritable(f"{label} {folder}: cannot write into {existing}, {_why_not(existing)}")


def _why_not(folder: Path) -> str:
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return "which is on a read-only filesystem (in Docker: a volume mounted ':ro')"
    owner, uid = folder.stat().st_uid, os.geteuid()
    why = (f"which belongs to uid {owner} (mode {folder.stat().st_mode & 0o777:o}), and this job runs as uid {uid}: "
           f"run it as the folder's owner, or give uid {uid} write access")
    if owner == 0 and uid != 0:
        why += ("; a folder that Docker mounts is made as root's when it does not exist on the host: create it "
                "first as your own user (mkdir -p)")
    return why
