"""Consistent copies of the results store's file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path



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


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
