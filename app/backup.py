"""`vae-backup`: copy the inspection log (results, reviews, Idempotency-Keys) while the service runs, and put
a copy back while it is stopped.

A plain `cp results.db` is not a backup. The store runs in WAL mode, so the newest results live in
`results.db-wal` until SQLite folds them into the file (every thousand pages or so), and a copy of the file
alone lacks them; copying both files while the service writes can pair a file with a journal of another
moment. SQLite's online backup reads one consistent snapshot instead, and the service keeps writing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from app.config import Settings
from app.results import BEYOND_MAX_ROWS, OLDER_THAN, retention_reasons
from app.results_schema import stored_time
from app.store_file import copy_database, damage_in, set_aside_orphaned_journals
from training.stopping import Stopped, stoppable

STDOUT = "-"


class Refused(Exception):
    """What the operator asked for cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class Contents:
    results: int
    reviews: int
    size: int

    def __str__(self) -> str:
        return f"{self.results:,} results and {self.reviews:,} reviews ({self.size / 1e6:.1f} MB)"


def backup(database: Path, destination: Path, overwrite: bool = False) -> Contents:
    """A consistent copy of the database at `destination`, which appears whole or not at all."""
    if destination.resolve() == database.resolve():
        raise Refused(f"{destination} is the results store itself; back it up to another file")
    if destination.exists() and not overwrite:
        raise Refused(f"{destination} exists; pass --overwrite to replace it, or give another name")
    if not database.exists():
        raise Refused(f"there is no results store at {database.absolute()} (VAE_RESULTS_DB, or --results-db; "
                      "a relative path is read from the current folder, as the service reads it from its own)")
    source = _open_results_store(database)
    try:
        return _write_copy(source, destination)
    finally:
        source.close()


def restore(copy: Path, database: Path, now: dt.datetime) -> tuple[Contents, list[Path]]:
    """Replaces the database's contents by the copy's; returns them, and what was kept of what was there: the
    replaced database, or the journals a removed one left. Refused while another process (a running service)
    has the database open."""
    if copy.resolve() == database.resolve():
        raise Refused(f"{copy} is the results store itself; restore from a backup of it")
    source = _open_results_store(copy)
    try:
        if damage := damage_in(source):
            raise Refused(f"{copy} is damaged ({damage}); restore from another backup")
        if not database.exists():
            database.parent.mkdir(parents=True, exist_ok=True)
            set_aside = set_aside_orphaned_journals(database)
            return _write_copy(source, database), set_aside
        kept = _unused(database.with_name(f"{database.name}.before-restore-{now:%Y%m%dT%H%M%SZ}"))
        _replace_contents(source, database, kept)
        return _contents(source, copy), [kept]
    finally:
        source.close()


def _unused(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`...: two restores within a second must not keep one database over another."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


def _replace_contents(source: sqlite3.Connection, database: Path, kept: Path) -> None:
    live = sqlite3.connect(database, timeout=0)
    try:
        try:
            # Leaving WAL mode needs the only connection: a service that has the file open holds it in WAL mode.
            live.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise Refused(f"{database} is open in another process (a running service?): stop it first; "
                              "nothing was changed") from None
            raise
        except sqlite3.DatabaseError:  # a damaged file, often the reason to restore: keep its bytes as they are
            live.close()
            _keep_damaged(database, kept)
            _write_copy(source, database)
            return
        _write_copy(live, kept)
        source.backup(live)
    finally:
        live.close()


def _keep_damaged(database: Path, kept: Path) -> None:
    shutil.copy2(database, kept)
    for suffix in ("-wal", "-shm"):  # a journal of the damaged file must not be applied to the restored one
        journal = database.with_name(database.name + suffix)
        if journal.exists():
            shutil.copy2(journal, kept.with_name(kept.name + suffix))
            journal.unlink()


def _open_results_store(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise Refused(f"there is no file {path}")
    if path.is_dir():
        raise Refused(f"{path} is a folder, not a results store")
    # mode=rw: never create a database where there was none.
    connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True, timeout=30)
    try:
        connection.execute("SELECT count(*) FROM results").fetchone()
    except sqlite3.DatabaseError as error:
        connection.close()
        if "malformed" in str(error):
            raise Refused(f"{path} is damaged ({error})") from None
        raise Refused(f"{path} is not a results store ({error})") from None
    return connection


def _write_copy(source: sqlite3.Connection, destination: Path) -> Contents:
    copy_database(source, destination)
    copy = sqlite3.connect(destination)
    try:
        return _contents(copy, destination)
    finally:
        copy.close()


def _contents(connection: sqlite3.Connection, path: Path) -> Contents:
    results, = connection.execute("SELECT count(*) FROM results").fetchone()
    reviews, = connection.execute("SELECT count(*) FROM reviews").fetchone()
    return Contents(results, reviews, path.stat().st_size)


def destination_for(target: str, now: dt.datetime) -> Path:
    """The backup file: `target` itself, or a dated file in it when it is a folder."""
    path = Path(target)
    if path.is_dir():
        return path / f"results-{now:%Y%m%dT%H%M%SZ}.db"
    if target.endswith(("/", os.sep)):
        raise Refused(f"there is no folder {path}; create it first")
    if not path.parent.is_dir():
        raise Refused(f"there is no folder {path.parent} for {path.name}; create it first")
    return path


DATED_BACKUP = re.compile(r"results-\d{8}T\d{6}Z\.db")


def remove_older_backups(folder: Path, keep: int, written: Path) -> list[Path]:
    """Removes the folder's dated backups but the newest `keep` (the one just written always stays); only
    files named as vae-backup names them, so nothing else in the folder is touched."""
    dated = sorted((p for p in folder.iterdir() if DATED_BACKUP.fullmatch(p.name) and p != written), reverse=True)
    removed = dated[keep - 1:]
    for path in removed:
        path.unlink()
    return removed


def retention_warning(database: Path, now: dt.datetime) -> str | None:
    """What the service's retention (VAE_RESULTS_MAX_ROWS, VAE_RESULTS_MAX_AGE_DAYS) removes from the restored
    store as soon as it starts: an old backup can be mostly past the age limit, which the operator should
    know before starting it, not after."""
    try:
        settings = Settings()
    except ValidationError:  # the service will not start as configured either; it says why itself
        return None
    connection = sqlite3.connect(database)
    try:
        beyond_rows, = connection.execute(f"SELECT count(*) FROM results WHERE {BEYOND_MAX_ROWS}",
                                          (settings.results_max_rows,)).fetchone()
        too_old = 0
        if settings.results_max_age is not None:
            too_old, = connection.execute(f"SELECT count(*) FROM results WHERE {OLDER_THAN}",
                                          (stored_time(now - settings.results_max_age),)).fetchone()
    finally:
        connection.close()
    if not (beyond_rows or too_old):
        return None
    reasons = retention_reasons(beyond_rows, too_old, settings.results_max_rows, settings.results_max_age)
    return (f"warning: the service removes at start what its retention does not keep: of the restored results, "
            f"{reasons}. To keep them, start it with those limits raised, or export them first from a service "
            "started on a copy (GET /results/export)")


def _default_database() -> Path:
    # Only this setting: a backup must work while another VAE_* setting is broken, as during an incident.
    return Path(os.environ.get("VAE_RESULTS_DB") or Settings.model_fields["results_db"].default)


def main(argv: list[str] | None = None) -> None:
    database = _default_database()
    parser = argparse.ArgumentParser(prog="vae-backup", description=__doc__.split("\n\n")[0], epilog=(
        "Exit status: 0 on success, 2 when refused (nothing changed), 1 when the copy failed (a full disk, "
        "say; no partial file is left), 130 or 143 when stopped by Ctrl-C or SIGTERM (no partial file is left)."))
    parser.add_argument("target", metavar="DEST", nargs="?",
                        help="where to write the backup: a file, a folder (for a file named by the time, such "
                             "as results-20261203T180000Z.db), or - for standard output")
    parser.add_argument("--restore", metavar="BACKUP", type=Path,
                        help="instead, replace the results store's contents by BACKUP's, with the service "
                             "stopped; the replaced database is kept beside it as <name>.before-restore-<time>")
    parser.add_argument("--results-db", type=Path, default=database,
                        help="the results store (VAE_RESULTS_DB; default here: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace DEST if it is a file that exists (default: refuse)")
    parser.add_argument("--keep", type=_at_least_one, metavar="N",
                        help="with a folder as DEST: then remove its dated backups (results-<time>.db) but the "
                             "newest N (default: remove none)")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing on success, only warnings, refusals and failures (for cron, which "
                             "mails whatever a job prints)")
    args = parser.parse_args(argv)
    done = (lambda line: None) if args.quiet else _say  # what succeeded; everything else is always said
    if (args.target is None) == (args.restore is None):
        parser.error("give either DEST, to back up, or --restore BACKUP")
    if args.keep is not None and (args.target is None or not Path(args.target).is_dir()):
        parser.error("--keep needs a folder as DEST: it removes that folder's older dated backups")
    try:
        with stoppable():
            _back_up_or_restore(args, done)
    except Refused as refusal:
        _say(f"refused: {refusal}")
        raise SystemExit(2) from None
    except (OSError, sqlite3.Error) as error:
        _say(f"failed: {error}; " + ("the results store is as it was" if args.restore else "nothing was written"))
        raise SystemExit(1) from None
    except Stopped as stop:
        # SQLite replaces a store's contents in one transaction: a restore stopped at any point did all or none
        _say(f"stopped by {stop.by} before it finished: no partial file is left" + (
            ", and the results store holds either its old contents or the backup's, whole" if args.restore else ""))
        raise SystemExit(stop.exit_code) from None


def _back_up_or_restore(args, done) -> None:
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    if args.restore is not None:
        contents, kept = restore(args.restore, args.results_db, now)
        kept_line = f"; what was there is kept as {', '.join(map(str, kept))}" if kept else ""
        done(f"restored {contents} from {args.restore} into {args.results_db}{kept_line}")
        if warning := retention_warning(args.results_db, now):
            _say(warning)
    elif args.target == STDOUT:
        contents = _backup_to_stdout(args.results_db, now)
        done(f"backed up {contents} from {args.results_db} to standard output "
             f"in {time.perf_counter() - started:.1f} s")
    else:
        destination = destination_for(args.target, now)
        contents = backup(args.results_db, destination, args.overwrite)
        done(f"backed up {contents} from {args.results_db} to {destination} "
             f"in {time.perf_counter() - started:.1f} s")
        if args.keep is not None:
            _remove_older(destination, args.keep, done)


def _remove_older(written: Path, keep: int, done) -> None:
    try:
        removed = remove_older_backups(written.parent, keep, written)
    except OSError as error:
        _say(f"failed to remove older backups: {error}; the new backup {written} is complete")
        raise SystemExit(1) from None
    if removed:
        done(f"removed {len(removed)} older backup{'s' * (len(removed) > 1)} (keeping the newest {keep}): "
             + ", ".join(p.name for p in sorted(removed)))


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}: the new backup is always kept")
    return number


def _backup_to_stdout(database: Path, now: dt.datetime) -> Contents:
    """For `docker compose exec -T api vae-backup - > results.db`: the copy lands on the host, owned by its
    user, and no folder in the container has to be writable for it."""
    if sys.stdout.isatty():
        raise Refused("standard output is a terminal; redirect it to a file: vae-backup - > results.db")
    with tempfile.TemporaryDirectory(prefix="vae-backup-") as scratch:
        copy = Path(scratch) / f"results-{now:%Y%m%dT%H%M%SZ}.db"
        contents = backup(database, copy)
        with copy.open("rb") as source:
            shutil.copyfileobj(source, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return contents


def _say(line: str) -> None:
    # Standard error: standard output may be the backup itself.
    print(f"vae-backup: {line}", file=sys.stderr)
