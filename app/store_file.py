"""The results store's file: consistent copies of it, and noticing when it is removed or replaced under the
service.

SQLite goes on writing to a database file that was removed or replaced while it had it open (an `rm`, a
`mv`, a copy put in its place): what it stores there vanishes, unseen, when the service stops. So the
writer checks before each commit that the path still names the file it opened; when it does not, it saves
what it holds beside the path, once, and refuses to store more until the file is back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
from pathlib import Path

from app.errors import StoreUnavailable

log = logging.getLogger(__name__)


def copy_database(source: sqlite3.Connection, destination: Path) -> None:
    """A consistent copy of the database open as `source` (SQLite's online backup: one snapshot, while
    others go on writing), checked, as one self-contained file that appears whole or not at all."""
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, not a file and its journal
            if damage := damage_in(target):
                raise sqlite3.DatabaseError(f"the copy failed SQLite's check ({damage}): the database it was "
                                            "copied from may be damaged")
        finally:
            target.close()
        _sync(partial)
        os.replace(partial, destination)
        _sync(destination.parent)
    finally:
        partial.unlink(missing_ok=True)


def damage_in(connection: sqlite3.Connection) -> str | None:
    """What SQLite's quick check finds wrong with the database, or None."""
    try:
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:  # damage the check cannot even read past
        return str(error)
    return None if verdict == "ok" else verdict


def set_aside_orphaned_journals(path: Path) -> list[Path]:
    """Before a database is created at `path`: a WAL journal that a removed database left there would be
    applied to the new one and garble it (SQLite cannot tell whose it is), so it is renamed out of the way,
    and kept. Returns the new names."""
    if path.exists():
        return []
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S.%fZ}"
    moved = []
    for suffix in ("-wal", "-shm"):
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            moved.append(journal.rename(journal.with_name(f"{journal.name}.orphaned-{stamp}")))
    return moved


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


class StoreFile:
    """The file a store opened at `path`, watched for being removed or replaced."""

    def __init__(self, path: Path):
        self.path = path.absolute()  # in the log, a path that works from wherever the operator reads it
        self._identity = _identity(path)
        self._lost = False

    @property
    def lost(self) -> bool:
        """Whether the path was last seen naming another file than the opened one, or none."""
        return self._lost

    def check(self, connection: sqlite3.Connection) -> None:
        """StoreUnavailable while the path does not name the opened file (see `notice`)."""
        if self.notice(connection):
            raise StoreUnavailable("the results store's file was removed or replaced while the service ran, so "
                                   "nothing was stored; the operator has it in the service's log. Try again later")

    def notice(self, connection: sqlite3.Connection) -> bool:
        """Whether the path no longer names the opened file. The first time, what `connection` holds is saved
        beside the path, and the log says where and how to go on; also while no results come, and when the
        service stops, which is when the removed file's contents would vanish."""
        if _identity(self.path) == self._identity:
            if self._lost:
                log.warning("results store %s: the file is back; results are stored again", self.path)
                self._lost = False
            return False
        if not self._lost:
            self._lost = True
            log.error("results store %s: the file this service opened was removed or replaced while it ran, so "
                      "no result is stored (503) until it is back at that path or the service restarts; %s",
                      self.path, self._salvage(connection))
        return True

    def _salvage(self, connection: sqlite3.Connection) -> str:
        saved = self.path.with_name(f"{self.path.name}.recovered-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S.%fZ}")
        try:
            saved.parent.mkdir(parents=True, exist_ok=True)
            copy_database(connection, saved)
        except (OSError, sqlite3.Error) as error:
            return f"saving what it holds failed ({error})"
        return (f"what it held is saved as {saved}: to serve it, stop the service, then "
                f"vae-backup --results-db {self.path} --restore {saved}")
