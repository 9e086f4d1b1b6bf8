"""Refuse, before minutes of training or scoring, a folder that a job could not write its output into; and
say so plainly when a disk fills while a job writes.

Without the check the job does its work, then fails on its first write with a traceback. The commonest
cause is Docker's: a folder it mounts that did not exist on the host is created there as root's, and a job
run as the host's user (`--user`) cannot write into it. A full disk cannot be checked for beforehand (how
much a job writes is known only once written), so it is translated where the writing fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# What a full disk, or a full quota, looks like: the errno of an OSError, or the text that shutil.copytree
# and TensorFlow keep of it.
_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
_OUT_OF_SPACE_TEXTS = tuple(os.strerror(code) for code in _OUT_OF_SPACE)


class FolderNotWritable(Exception):
    """The user can fix it: another folder, its owner or its mode, or the mount."""


class DiskFull(Exception):
    """A job's writing ran out of disk space or quota; what it had written was removed (the message says)."""


def is_out_of_space(error: BaseException) -> bool:
    if isinstance(error, shutil.Error):  # copytree gathers each file's failure as text
        return any(text in str(error) for text in _OUT_OF_SPACE_TEXTS)
    return isinstance(error, OSError) and error.errno in _OUT_OF_SPACE


@contextlib.contextmanager
def said_when_full(folder: Path, outcome: str) -> Iterator[None]:
    """Turns a full disk met inside the block into DiskFull, whose message names the disk of `folder`, its
    free space, and `outcome`: what the failure left behind (the clean-ups inside the block have run)."""
    try:
        yield
    except Exception as error:
        if not is_out_of_space(error):
            raise
        raise DiskFull(_out_of_space_message(folder, error, outcome)) from error


def _out_of_space_message(folder: Path, error: BaseException, outcome: str) -> str:
    try:
        usage = shutil.disk_usage(folder if folder.exists() else folder.parent)
        disk = f" ({usage.free / 1e6:.1f} MB free of {usage.total / 1e6:.1f} MB)"
    except OSError:
        disk = ""
    return (f"the disk holding {folder} is full{disk}: {_reason(error)}. {outcome}. Free space on that disk (or "
            "raise its quota) and run the job again")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in _OUT_OF_SPACE:
        return error.strerror or os.strerror(error.errno)
    return next(text for text in _OUT_OF_SPACE_TEXTS if text in str(error))


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
