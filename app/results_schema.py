"""The results database's layout: its tables and indexes, the columns that files from earlier releases gain
when opened, the time format it stores, and opening it."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path

from app.store_file import set_aside_orphaned_journals

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    score_method TEXT NOT NULL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    threshold_source TEXT NOT NULL,
    target_fpr REAL,
    p_value REAL NOT NULL,
    is_anomaly INTEGER NOT NULL,
    scores TEXT NOT NULL,
    image BLOB NOT NULL,
    reconstruction BLOB NOT NULL,
    difference BLOB NOT NULL,
    heatmap_scale REAL NOT NULL,
    source TEXT,
    ref TEXT,
    idempotency_key TEXT,
    request_digest TEXT,
    review TEXT,
    review_note TEXT,
    reviewer TEXT,
    reviewed_at TEXT,
    review_api_key TEXT
);
-- Every review ever given, and every withdrawal (verdict NULL): the results' review columns hold only the
-- latest, and an audit must be able to see what was replaced. Pruned together with its result.
CREATE TABLE IF NOT EXISTS reviews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id TEXT NOT NULL,
    verdict TEXT,
    note TEXT,
    reviewer TEXT,
    reviewed_at TEXT NOT NULL,
    api_key TEXT
);
"""
# Columns added after a table's first release: a results database from before gets them when it is opened.
ADDED_COLUMNS = {
    "results": {"source": "TEXT", "ref": "TEXT", "idempotency_key": "TEXT", "request_digest": "TEXT",
                "review": "TEXT", "review_note": "TEXT", "reviewer": "TEXT", "reviewed_at": "TEXT",
                "review_api_key": "TEXT"},
    "reviews": {"api_key": "TEXT"},
}
INDEXES = """
CREATE INDEX IF NOT EXISTS results_by_verdict ON results (is_anomaly, seq);
CREATE INDEX IF NOT EXISTS results_by_source ON results (source, seq);
CREATE INDEX IF NOT EXISTS results_by_ref ON results (ref, seq);
DROP INDEX IF EXISTS results_for_tally;
CREATE INDEX IF NOT EXISTS results_for_tally_with_reviews
    ON results (source, model_name, model_version, is_anomaly, created_at, review);
CREATE INDEX IF NOT EXISTS results_by_time ON results (created_at);
CREATE INDEX IF NOT EXISTS results_by_review ON results (review, is_anomaly, seq);
CREATE INDEX IF NOT EXISTS reviews_by_result ON reviews (result_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS results_by_idempotency_key ON results (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""
# results_by_review serves an operator's work list (GET /results?anomalous=true&review=none) without reading the
# rows the list skips. results_for_tally_with_reviews covers GET /results/summary: counting from the table itself
# would read each row's image blobs to reach `source` behind them (190 ms instead of 30 ms for 100,000 rows). It
# replaces results_for_tally, which lacked `review`.


def stored_time(moment: dt.datetime) -> str:
    """`created_at` as stored: UTC, ISO 8601, always with microseconds, so that times compare as text
    (GET /results?since=). OverflowError for a moment outside the years 1-9999 in UTC."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def open_database(path: Path) -> sqlite3.Connection:
    """Creates the file and its schema if missing; OSError or sqlite3.Error when that cannot work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for journal in set_aside_orphaned_journals(path):
        log.warning("results store %s: the file was missing but a journal of it was not; that journal, set aside "
                    "as %s, would have garbled the new store", path, journal)
    connection = connect(path)
    try:
        connection.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in present:
                    try:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as error:
                        # Another worker process, opening the same database, added it first.
                        if "duplicate column name" not in str(error):
                            raise
        connection.executescript(INDEXES)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
    return connection
