"""vae-backup: a consistent copy of the inspection log while the service writes, and putting one back."""

import asyncio
import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest

from app import backup, store_file
from app.backup import main
from app.results import ResultStore, Review, StoredResult

NOW = dt.datetime(2026, 12, 3, 18, 0, 0, tzinfo=dt.UTC)


def _result(number: int) -> StoredResult:
    return StoredResult(id=f"{number:032x}", created_at="2026-12-03T10:00:00+00:00", model_name="m",
                        model_version=1, score_method="mse", score=0.1, threshold=0.2, threshold_source="model",
                        target_fpr=0.01, p_value=0.5, is_anomaly=False, scores={"mse": 0.1},
                        image=np.zeros((28, 28), np.uint8), reconstruction=np.zeros((28, 28), np.uint8),
                        difference=np.zeros((28, 28), np.float16), heatmap_scale=0.2)


def _add(store: ResultStore, first: int, count: int, reviewed: int = 0) -> None:
    async def write():
        await store.save([_result(n) for n in range(first, first + count)])
        for n in range(first, first + reviewed):
            await store.review(f"{n:032x}", Review("normal", "2026-12-03T11:00:00+00:00", note="fine"))
    asyncio.run(write())


@pytest.fixture
def running_store(tmp_path):
    """A results store open as the service holds it, with 40 results (3 reviewed) written through it."""
    store = ResultStore(tmp_path / "results.db", max_rows=1000)
    store.open()
    _add(store, 0, 40, reviewed=3)
    yield store
    store.close()


def _count(path, table="results") -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        connection.close()


def _run(monkeypatch, database, *argv) -> int:
    monkeypatch.setenv("VAE_RESULTS_DB", str(database))
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
        raise SystemExit(0)
    return exit_info.value.code


def test_a_backup_holds_the_results_a_copy_of_the_file_misses_while_the_service_runs(
        running_store, tmp_path, monkeypatch, capsys):
    database = tmp_path / "results.db"
    shutil.copy(database, tmp_path / "cp.db")  # what `cp` gives: the newest results are still in the WAL
    with pytest.raises(sqlite3.OperationalError, match="no such table"):  # here, even the tables are
        _count(tmp_path / "cp.db")

    assert _run(monkeypatch, database, str(tmp_path / "backup.db")) == 0
    assert _count(tmp_path / "backup.db") == 40 and _count(tmp_path / "backup.db", "reviews") == 3
    assert "backed up 40 results and 3 reviews" in capsys.readouterr().err
    # One self-contained file: not in WAL mode, so it needs no journal beside it wherever it is copied.
    assert (tmp_path / "backup.db").read_bytes()[18:20] == b"\x01\x01"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_service_keeps_writing_during_backups_and_each_backup_is_a_whole_snapshot(running_store, tmp_path):
    writing = threading.Thread(target=lambda: [_add(running_store, 40 + 10 * i, 10) for i in range(20)])
    writing.start()
    counts = []
    while writing.is_alive() or not counts:
        copy = tmp_path / f"backup-{len(counts)}.db"
        backup.backup(tmp_path / "results.db", copy)
        connection = sqlite3.connect(copy)
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts.append(connection.execute("SELECT count(*) FROM results").fetchone()[0])
        connection.close()
    writing.join()
    assert running_store.count() == 240  # every write went through
    assert all(40 <= count <= 240 and count % 10 == 0 for count in counts), counts  # whole commits only


def test_a_folder_gets_a_file_named_by_the_time(running_store, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    destination = backup.destination_for(str(folder), NOW)
    assert destination == folder / "results-20261203T180000Z.db"
    backup.backup(tmp_path / "results.db", destination)
    assert _count(destination) == 40


def test_a_backup_to_standard_output_is_the_database(running_store, tmp_path):
    with (tmp_path / "piped.db").open("wb") as output:
        finished = subprocess.run([sys.executable, "-c", "from app.backup import main; main()", "-"],
                                  stdout=output, stderr=subprocess.PIPE, text=True, timeout=60,
                                  env={**os.environ, "VAE_RESULTS_DB": str(tmp_path / "results.db")})
    assert finished.returncode == 0, finished.stderr
    assert "to standard output" in finished.stderr
    assert _count(tmp_path / "piped.db") == 40


@pytest.mark.parametrize("target, message", [
    ("results.db", "is the results store itself"),
    ("missing/backup.db", "there is no folder"),
    ("missing/", "there is no folder"),
])
def test_a_destination_that_cannot_be_right_is_refused(running_store, tmp_path, monkeypatch, capsys, target,
                                                       message):
    monkeypatch.chdir(tmp_path)
    assert _run(monkeypatch, tmp_path / "results.db", target) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "missing").exists() and running_store.count() == 40


def test_an_existing_backup_is_replaced_only_when_asked(running_store, tmp_path, monkeypatch, capsys):
    earlier = tmp_path / "backup.db"
    earlier.write_bytes(b"an earlier backup")
    assert _run(monkeypatch, tmp_path / "results.db", str(earlier)) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert earlier.read_bytes() == b"an earlier backup"
    assert _run(monkeypatch, tmp_path / "results.db", "--overwrite", str(earlier)) == 0
    assert _count(earlier) == 40


def test_no_store_means_nothing_to_back_up_and_none_is_created(tmp_path, monkeypatch, capsys):
    assert _run(monkeypatch, tmp_path / "results.db", str(tmp_path / "backup.db")) == 2
    assert f"there is no results store at {tmp_path / 'results.db'} (VAE_RESULTS_DB, or --results-db" \
        in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_results_store_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    assert _run(monkeypatch, tmp_path / "notes.txt", str(tmp_path / "backup.db")) == 2
    assert "is not a results store" in capsys.readouterr().err and not (tmp_path / "backup.db").exists()


def test_a_failed_copy_leaves_no_file_and_keeps_the_earlier_backup(running_store, tmp_path, monkeypatch, capsys):
    earlier = tmp_path / "backup.db"
    earlier.write_bytes(b"an earlier backup")

    def disk_full(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup.os, "replace", disk_full)
    assert _run(monkeypatch, tmp_path / "results.db", "--overwrite", str(earlier)) == 1
    assert "failed: [Errno 28] No space left on device; nothing was written" in capsys.readouterr().err
    assert earlier.read_bytes() == b"an earlier backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "results.db", "results.db-shm",
                                                          "results.db-wal"]


def _press_ctrl_c() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(("stop", "code", "by"), [
    (lambda: os.kill(os.getpid(), signal.SIGTERM), 143, "SIGTERM"),  # a cron job's timeout
    # what Python's SIGINT handler raises (a real SIGINT is ignored where the tests run in the background)
    (_press_ctrl_c, 130, "Ctrl-C"),
])
def test_a_backup_stopped_midway_leaves_no_partial_file(running_store, tmp_path, monkeypatch, capsys, stop, code,
                                                        by):
    folder = tmp_path / "backups"
    folder.mkdir()
    check = store_file.damage_in

    def stopped_while_checking_the_copy(connection):  # the copy is written, as a hidden partial file, by then
        assert [p.name for p in folder.iterdir()] and all(p.name.startswith(".") for p in folder.iterdir())
        stop()
        return check(connection)

    monkeypatch.setattr(store_file, "damage_in", stopped_while_checking_the_copy)
    handler = signal.getsignal(signal.SIGTERM)
    assert _run(monkeypatch, tmp_path / "results.db", str(folder)) == code
    assert capsys.readouterr().err.strip() == f"vae-backup: stopped by {by} before it finished: no partial file is left"
    assert list(folder.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is handler


def test_restore_is_refused_while_the_service_has_the_store_open(running_store, tmp_path, monkeypatch, capsys):
    backup.backup(tmp_path / "results.db", tmp_path / "backup.db")
    assert _run(monkeypatch, tmp_path / "results.db", "--restore", str(tmp_path / "backup.db")) == 2
    assert "is open in another process (a running service?): stop it first" in capsys.readouterr().err
    _add(running_store, 40, 1)
    assert running_store.count() == 41


def test_restore_puts_the_backup_back_and_keeps_what_it_replaced(running_store, tmp_path, monkeypatch, capsys):
    database = tmp_path / "results.db"
    backup.backup(database, tmp_path / "backup.db")
    _add(running_store, 40, 10)
    running_store.close()  # the service stopped

    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 0
    err = capsys.readouterr().err
    kept = tmp_path / "results.db.before-restore-"
    assert "restored 40 results and 3 reviews" in err and f"what was there is kept as {kept}" in err
    assert _count(database) == 40
    kept_files = [p for p in tmp_path.iterdir() if p.name.startswith("results.db.before-restore-")]
    assert [_count(p) for p in kept_files] == [50]

    # Twice within a second: the second keeps its own copy instead of replacing the first's.
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 0
    kept_files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("results.db.before-restore-"))
    assert len(kept_files) == 2 and sorted(_count(p) for p in kept_files) == [40, 50]

    store = ResultStore(database, max_rows=1000)  # the service starts on the restored store
    store.open()
    try:
        assert store.get(f"{39:032x}") is not None and store.get(f"{45:032x}") is None
        _add(store, 100, 1)
        assert store.count() == 41
    finally:
        store.close()


def test_restore_replaces_a_damaged_store_and_keeps_its_bytes(running_store, tmp_path, monkeypatch):
    database = tmp_path / "results.db"
    backup.backup(database, tmp_path / "backup.db")
    running_store.close()
    database.write_bytes(b"\0damaged" * 1000)
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 0
    assert _count(database) == 40
    [kept] = [p for p in tmp_path.iterdir() if p.name.startswith("results.db.before-restore-")]
    assert kept.read_bytes() == b"\0damaged" * 1000


def test_restore_onto_a_new_machine_creates_the_store(running_store, tmp_path, monkeypatch):
    backup.backup(tmp_path / "results.db", tmp_path / "backup.db")
    assert _run(monkeypatch, tmp_path / "new" / "results.db", "--restore", str(tmp_path / "backup.db")) == 0
    assert _count(tmp_path / "new" / "results.db") == 40


def test_a_damaged_backup_is_not_restored(running_store, tmp_path, monkeypatch, capsys):
    database = tmp_path / "results.db"
    backup.backup(database, tmp_path / "backup.db")
    running_store.close()
    damaged = bytearray((tmp_path / "backup.db").read_bytes())
    damaged[len(damaged) // 2:] = bytes(len(damaged) - len(damaged) // 2)
    (tmp_path / "backup.db").write_bytes(damaged)
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 2
    assert "damaged" in capsys.readouterr().err
    assert _count(database) == 40


def test_one_of_backup_or_restore_is_needed(monkeypatch, capsys, tmp_path):
    assert _run(monkeypatch, tmp_path / "results.db") == 2
    assert "give either DEST, to back up, or --restore BACKUP" in capsys.readouterr().err


def test_a_damaged_store_is_reported_as_damaged_and_no_backup_is_written(running_store, tmp_path, monkeypatch,
                                                                        capsys):
    database = tmp_path / "results.db"
    running_store.close()
    damaged = bytearray(database.read_bytes())
    damaged[len(damaged) // 2:] = bytes(len(damaged) - len(damaged) // 2)
    database.write_bytes(damaged)
    assert _run(monkeypatch, database, str(tmp_path / "backup.db")) == 1
    assert "the database it was copied from may be damaged; nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "backup.db").exists()


def test_keep_removes_the_folders_older_dated_backups_and_nothing_else(running_store, tmp_path, monkeypatch,
                                                                      capsys):
    folder = tmp_path / "backups"
    folder.mkdir()
    older = [folder / f"results-2026120{day}T000000Z.db" for day in range(1, 4)]
    for path in older:
        path.write_bytes(b"an older backup")
    others = [folder / "results-manual.db", folder / "notes.txt"]
    for path in others:
        path.write_text("not a dated backup")
    assert _run(monkeypatch, tmp_path / "results.db", str(folder), "--keep", "2") == 0
    err = capsys.readouterr().err
    assert "removed 2 older backups (keeping the newest 2): results-20261201T000000Z.db, " \
           "results-20261202T000000Z.db" in err
    new = [p for p in folder.iterdir() if p.name.startswith("results-2026") and p not in older]
    assert len(new) == 1 and _count(new[0]) == 40
    assert sorted(folder.iterdir()) == sorted([*new, older[2], *others])


@pytest.mark.parametrize("argv, message", [
    (["backup.db", "--keep", "3"], "--keep needs a folder as DEST"),
    (["--keep", "0", "."], "must be 1 or more, not 0: the new backup is always kept"),
])
def test_keep_needs_a_folder_and_keeps_at_least_the_new_backup(running_store, tmp_path, monkeypatch, capsys,
                                                               argv, message):
    monkeypatch.chdir(tmp_path)
    assert _run(monkeypatch, tmp_path / "results.db", *argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "backup.db").exists()


def test_restore_warns_of_the_results_the_services_retention_will_remove_at_start(running_store, tmp_path,
                                                                                   monkeypatch, capsys):
    database = tmp_path / "results.db"
    backup.backup(database, tmp_path / "backup.db")
    running_store.close()
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 0
    assert "warning" not in capsys.readouterr().err  # the default retention keeps all 40

    old = sqlite3.connect(tmp_path / "backup.db")
    with old:
        old.execute("UPDATE results SET created_at = '2020-01-01T00:00:00.000000+00:00' WHERE seq <= 10")
    old.close()
    monkeypatch.setenv("VAE_RESULTS_MAX_AGE_DAYS", "30")
    monkeypatch.setenv("VAE_RESULTS_MAX_ROWS", "25")
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 0
    err = capsys.readouterr().err
    assert "warning: the service removes at start what its retention does not keep: of the restored results, " \
           "15 beyond the newest 25 (VAE_RESULTS_MAX_ROWS) and 10 older than 30 days (VAE_RESULTS_MAX_AGE_DAYS)" \
           in err
    assert _count(database) == 40  # a warning: the restore itself keeps everything


def test_restore_where_the_store_was_removed_sets_its_journals_aside(running_store, tmp_path, monkeypatch,
                                                                      capsys):
    backup.backup(tmp_path / "results.db", tmp_path / "backup.db")
    running_store.close()
    other = tmp_path / "other"
    other.mkdir()
    store = ResultStore(other / "results.db", max_rows=1000)  # a store whose process died after an rm
    store.open()
    _add(store, 1000, 5)
    stale = (other / "results.db-wal").read_bytes()
    store.close()
    (other / "results.db").unlink()
    (other / "results.db-wal").write_bytes(stale)
    assert _run(monkeypatch, other / "results.db", "--restore", str(tmp_path / "backup.db")) == 0
    assert _count(other / "results.db") == 40  # the backup's, not garbled by the old journal
    [set_aside] = other.glob("results.db-wal.orphaned-*")
    assert f"what was there is kept as {set_aside}" in capsys.readouterr().err


def test_a_restore_that_fails_leaves_the_store_as_it_was(running_store, tmp_path, monkeypatch, capsys):
    database = tmp_path / "results.db"
    backup.backup(database, tmp_path / "backup.db")
    _add(running_store, 40, 10)
    running_store.close()

    def disk_full(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup, "copy_database", disk_full)  # keeping the replaced store fails first
    assert _run(monkeypatch, database, "--restore", str(tmp_path / "backup.db")) == 1
    assert "failed: [Errno 28] No space left on device; the results store is as it was" in capsys.readouterr().err
    assert _count(database) == 50


def test_quiet_prints_nothing_on_success_but_still_says_a_refusal(running_store, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "results-20261201T000000Z.db").write_bytes(b"an older backup")
    assert _run(monkeypatch, tmp_path / "results.db", str(folder), "--keep", "1", "--quiet") == 0
    assert capsys.readouterr().err == "" and not (folder / "results-20261201T000000Z.db").exists()
    assert _run(monkeypatch, tmp_path / "results.db", "--quiet", str(tmp_path / "missing" / "b.db")) == 2
    assert "refused: there is no folder" in capsys.readouterr().err
