"""The inspection log: every scored image, its reconstruction, difference and verdict, in SQLite.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit), so storing results costs each request one short wait, not one fsync. WAL mode lets
reads proceed while the writer works. Each worker process has its own writer; a transaction takes the
write lock when it begins, so that a review conditional on the review it replaces (If-Match) is checked
and written with no other writer in between. Retention keeps the newest `max_rows` rows and, with
`max_age`, none older than that: pruned with every commit, and at least once a minute while no results
come.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import queue
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import results_schema
from app.errors import ReviewChanged, StoreUnavailable
from app.idempotency import ITEM_SEPARATOR, item_index
from app.periods import day_start, hour_start, offset_spans
from app.results_queries import local_tally_query, result_filters, tally_filters, tally_query, where_clause
from app.results_schema import stored_time
from app.store_file import StoreFile

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("seq", "id", "created_at", "model_name", "model_version", "score_method", "score",
                   "threshold", "threshold_source", "target_fpr", "p_value", "is_anomaly", "scores", "source", "ref",
                   "idempotency_key", "request_digest", "review", "review_note", "reviewer", "reviewed_at",
                   "review_api_key")
ARRAY_COLUMNS = ("image", "reconstruction", "difference", "heatmap_scale")
# A result with an idempotency key already stored keeps a retry's row out (the conflict target names the
# partial unique index); any other conflict, such as a duplicate id, still raises.
INSERT = (f"INSERT INTO results ({', '.join(SUMMARY_COLUMNS[1:] + ARRAY_COLUMNS)}) "
          f"VALUES ({', '.join('?' * (len(SUMMARY_COLUMNS) - 1 + len(ARRAY_COLUMNS)))}) "
          "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING")
REVIEW = ("UPDATE results SET review = ?, review_note = ?, reviewer = ?, reviewed_at = ?, review_api_key = ? "
          "WHERE id = ?")
READ_ONE = "SELECT * FROM results WHERE id = ?"
RECORD_REVIEW = ("INSERT INTO reviews (verdict, note, reviewer, reviewed_at, api_key, result_id) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
# While no results come, how late a result past the age limit may be pruned, and a removed store file noticed.
IDLE_CHECK_INTERVAL_S = 60.0
MAX_REF_LENGTH = 200


def ref_from_filename(filename: str | None) -> str | None:
    """An uploaded file's name as a result's ref: printable and at most MAX_REF_LENGTH characters."""
    ref = "".join(c for c in filename or "" if c.isprintable())[:MAX_REF_LENGTH]
    return ref if ref.strip() else None  # a name of spaces alone names nothing


@dataclass(frozen=True)
class Review:
    """A person's verdict on a result, after looking at it: a flagged image that is normal is a false alarm."""
    verdict: str | None  # "normal" or "anomalous"; None only in a review history, for a withdrawal
    reviewed_at: str  # when it was given (or withdrawn), in the stored time format
    note: str | None = None
    reviewer: str | None = None  # the name the client gave
    api_key: str | None = None  # the name of the API key it was sent with: what the service can vouch for


@dataclass(frozen=True)
class StoredResult:
    id: str
    created_at: str
    model_name: str
    model_version: int
    score_method: str
    score: float
    threshold: float
    threshold_source: str
    target_fpr: float | None
    p_value: float
    is_anomaly: bool
    scores: dict[str, float]
    image: np.ndarray           # uint8 [28, 28]
    reconstruction: np.ndarray  # uint8 [28, 28]
    difference: np.ndarray      # float16 [28, 28] (the storage types: rows are written as raw bytes)
    heatmap_scale: float
    source: str | None = None  # the line, camera or client that sent the image (?source=)
    ref: str | None = None     # the client's reference for the image: ?ref=, else the uploaded file's name
    idempotency_key: str | None = None  # the request's Idempotency-Key: a retry with it gets this result again
    request_digest: str | None = None   # what the request asked for, to tell a retry from a reused key
    review: Review | None = None        # set by PUT /results/{id}/review, after scoring
    seq: int | None = None

    @property
    def review_tag(self) -> str:
        return review_tag(self.id, self.review)


def review_tag(result_id: str, review: Review | None) -> str:
    """The entity tag of a result (its ETag, unquoted). The review is all of a result that ever changes, so the
    tag follows it: a client that sends it back in If-Match writes over the review it saw, and over no other.
    The id is in it too, so that a tag never matches another result's: a client that mixes up two unreviewed
    results (a list read off by one) is refused, not let through on the tag every unreviewed result would
    share."""
    return hashlib.sha256(json.dumps([result_id, *_review_values(review)]).encode()).hexdigest()[:20]


COUNTS = ("count", "anomalies", "reviewed", "false_alarms", "missed_anomalies", "unreviewed_flags")  # tallies add up


@dataclass(frozen=True)
class ResultTally:
    """How many results one source had scored by one model version (in one period), and how many were
    anomalous."""
    period: str | None  # start of the hour or day (ISO 8601, UTC or the zone asked for), when counted per period
    source: str | None
    model_name: str
    model_version: int
    count: int
    anomalies: int
    first_at: str  # created_at of the oldest and the newest of them
    last_at: str
    reviewed: int = 0  # of them, reviewed by a person (PUT /results/{id}/review)
    false_alarms: int = 0  # flagged, and reviewed as normal
    missed_anomalies: int = 0  # not flagged, and reviewed as anomalous
    unreviewed_flags: int = 0  # flagged, and not reviewed (yet)


def _row_values(r: StoredResult) -> tuple:
    return (r.id, r.created_at, r.model_name, r.model_version, r.score_method, r.score, r.threshold,
            r.threshold_source, r.target_fpr, r.p_value, int(r.is_anomaly), json.dumps(r.scores), r.source, r.ref,
            r.idempotency_key, r.request_digest, *_review_values(r.review),
            r.image.tobytes(), r.reconstruction.tobytes(), r.difference.tobytes(), r.heatmap_scale)


def _review_values(review: Review | None) -> tuple:
    """The review columns in their order in SUMMARY_COLUMNS (and in REVIEW)."""
    if review is None:
        return (None, None, None, None, None)
    return (review.verdict, review.note, review.reviewer, review.reviewed_at, review.api_key)


def _from_row(row: sqlite3.Row, with_arrays: bool) -> StoredResult:
    empty = np.empty(0)
    return StoredResult(
        seq=row["seq"], id=row["id"], created_at=row["created_at"], model_name=row["model_name"],
        model_version=row["model_version"], score_method=row["score_method"], score=row["score"],
        threshold=row["threshold"], threshold_source=row["threshold_source"],
        target_fpr=row["target_fpr"], p_value=row["p_value"],
        is_anomaly=bool(row["is_anomaly"]), scores=json.loads(row["scores"]), source=row["source"], ref=row["ref"],
        idempotency_key=row["idempotency_key"], request_digest=row["request_digest"],
        review=None if row["review"] is None else Review(row["review"], row["reviewed_at"], row["review_note"],
                                                         row["reviewer"], row["review_api_key"]),
        image=np.frombuffer(row["image"], np.uint8).reshape(28, 28) if with_arrays else empty,
        reconstruction=np.frombuffer(row["reconstruction"], np.uint8).reshape(28, 28) if with_arrays else empty,
        difference=np.frombuffer(row["difference"], np.float16).reshape(28, 28) if with_arrays else empty,
        heatmap_scale=row["heatmap_scale"] if with_arrays else 0.0,
    )


# What one result takes in the database, indexes included: 4.2 KB measured on 2,048 results, about 100 bytes of
# indexes on 100,000 (README, "Before production").
RESULT_BYTES = 4_300

# Retention's two conditions on the results table, with the number of rows to keep or the oldest time kept.
BEYOND_MAX_ROWS = "seq <= (SELECT MAX(seq) FROM results) - ?"
OLDER_THAN = "created_at < ?"


def retention_reasons(beyond: int, too_old: int, max_rows: int, max_age: dt.timedelta | None) -> str:
    """Why retention removes results, for the log and for vae-backup --restore: "8 beyond the newest 4
    (VAE_RESULTS_MAX_ROWS) and 1 older than 30 days (VAE_RESULTS_MAX_AGE_DAYS)"."""
    reasons = [f"{beyond:,} beyond the newest {max_rows} (VAE_RESULTS_MAX_ROWS)" if beyond else "",
               f"{too_old:,} older than {max_age.total_seconds() / 86400:g} days (VAE_RESULTS_MAX_AGE_DAYS)"
               if too_old and max_age else ""]
    return " and ".join(filter(None, reasons))


@dataclass(frozen=True)
class _ReviewUpdate:
    """A queued write of one result's review (a verdict of None withdraws it); with `if_match`, only over a
    review whose tag is one of those."""
    result_id: str
    review: Review
    if_match: frozenset[str] | None = None

    def latest(self) -> tuple:
        """The results table's review columns after it, in REVIEW's order."""
        return (*_review_values(self.review if self.review.verdict is not None else None), self.result_id)

    def history_row(self) -> tuple:
        """Its row of the reviews table, in RECORD_REVIEW's order."""
        r = self.review
        return (r.verdict, r.note, r.reviewer, r.reviewed_at, r.api_key, self.result_id)


def _write_review(connection: sqlite3.Connection, update: _ReviewUpdate) -> StoredResult | None | ReviewChanged:
    """Writes a review in the open transaction, and returns the result as it left it: None when there is no such
    result. Its condition is checked in the same transaction as the write, which holds the write lock, so that
    no other review can come in between; the result is read back in it too, so that its ETag is that of this
    review."""
    if update.if_match is not None:
        before = connection.execute(READ_ONE, (update.result_id,)).fetchone()
        if before is None:
            return None
        current = _from_row(before, with_arrays=False).review_tag
        if current not in update.if_match:
            return ReviewChanged(update.result_id, current)
    if connection.execute(REVIEW, update.latest()).rowcount != 1:
        return None
    connection.execute(RECORD_REVIEW, update.history_row())
    return _from_row(connection.execute(READ_ONE, (update.result_id,)).fetchone(), with_arrays=True)


def _describe_writes(results: int, reviews: int) -> str:
    parts = [f"{n} {what}{'s' * (n != 1)}" for n, what in ((results, "result"), (reviews, "review")) if n]
    return f"storing {' and '.join(parts) or 'nothing'}"


class ResultStore:
    def __init__(self, path: Path, max_rows: int, max_age: dt.timedelta | None = None):
        self._path = path.absolute()  # every log line names the store by a path that works from any folder
        self._max_rows = max_rows
        self._max_age = max_age
        self._queue: queue.Queue = queue.Queue()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._file: StoreFile | None = None
        self._last_write_failed = False

    def open(self) -> None:
        writer = results_schema.open_database(self._path)
        self._file = StoreFile(self._path)
        beyond, too_old = self._prune_now(writer)  # results past the age limit go before the service serves them
        if beyond or too_old:
            # Rows beyond the limit at start mean a limit lowered since the last run, which removes many at
            # once: a warning. Results that aged out while the service was stopped are routine.
            log.log(logging.WARNING if beyond else logging.INFO, "results store %s: retention removed %d results "
                    "at start: %s", self._path, beyond + too_old,
                    retention_reasons(beyond, too_old, self._max_rows, self._max_age))
        count, oldest = writer.execute("SELECT count(*), min(created_at) FROM results INDEXED BY results_by_time"
                                       ).fetchone()
        # Which file, and what is in it: a service started from another folder opens a new, empty
        # data/results.db there, and its results seem gone.
        log.info("results store %s: %d results%s", self._path, count,
                 f", the oldest from {oldest}" if oldest else "")
        self._warn_if_the_disk_cannot_hold(self._max_rows - count)
        self._reader = results_schema.connect(self._path)
        self._writer = threading.Thread(target=self._write_loop, args=(writer,), name="results-writer",
                                        daemon=True)
        self._writer.start()

    def _warn_if_the_disk_cannot_hold(self, more: int) -> None:
        """Says at start, not when scoring starts failing, that the disk will fill before retention caps the
        store: a full disk makes every /score a 503."""
        needed, free = more * RESULT_BYTES, shutil.disk_usage(self._path.parent).free
        if more > 0 and free < needed:
            log.warning("results store %s: %d more results, up to VAE_RESULTS_MAX_ROWS=%d, need about %d MB, but "
                        "its disk has %d MB free: once it is full, scoring answers 503 (fewer are kept if "
                        "VAE_RESULTS_MAX_AGE_DAYS removes them first). Free space, or lower VAE_RESULTS_MAX_ROWS",
                        self._path, more, self._max_rows, needed // 10**6, free // 10**6)

    def close(self) -> None:
        if self._writer:
            self._queue.put(None)
            self._writer.join(timeout=30)
        if self._reader:
            self._reader.close()

    async def save(self, results: list[StoredResult]) -> frozenset[str]:
        """Returns once the rows are committed (so a following GET finds them): the ids of those not stored
        because a result with their idempotency key already was (a concurrent retry committed first)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((results, loop, done))
        return await done

    async def review(self, result_id: str, review: Review,
                     if_match: frozenset[str] | None = None) -> StoredResult | None:
        """Sets the review of a stored result (a verdict of None withdraws it) and adds it to the result's
        review history; returns once committed, with the result as this review left it: None when no result has
        that id (never stored, or pruned by retention). With `if_match`, the tags (review_tag) of the reviews it
        may replace: ReviewChanged (a 412) when the review is another by then, and nothing is written."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((_ReviewUpdate(result_id, review, if_match), loop, done))
        return await done

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        while True:
            try:
                item = self._queue.get(timeout=IDLE_CHECK_INTERVAL_S)
            except queue.Empty:  # no results for a while: results may still age past the limit
                if not self._file.notice(connection) and self._max_age:
                    self._prune_now(connection)
                continue
            if item is None:
                self._file.notice(connection)  # stopping: the last moment to save a removed file's contents
                break
            jobs = [item]
            while True:  # group commit: take everything already waiting
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    self._queue.put(None)
                    break
                jobs.append(extra)
            error, skipped, found = None, set(), {}
            stored = [r for work, _, _ in jobs if isinstance(work, list) for r in work]
            reviews = sum(isinstance(work, _ReviewUpdate) for work, _, _ in jobs)
            try:
                self._file.check(connection)  # a removed file would lose what is written to it, unseen
                with connection:
                    # The write lock from the start: another worker's writer, on the same file, must not commit
                    # between what a conditional review reads and what it writes (with a deferred transaction,
                    # its commit would make this one fail as "database is locked").
                    connection.execute("BEGIN IMMEDIATE")
                    connection.executemany(INSERT, [_row_values(r) for r in stored if r.idempotency_key is None])
                    for result in (r for r in stored if r.idempotency_key is not None):
                        # One by one, to learn which rows a result with the same key kept out.
                        if connection.execute(INSERT, _row_values(result)).rowcount == 0:
                            skipped.add(result.id)
                    # Reviews after the inserts: a review queued with its result's own insert finds it.
                    for index, (work, _, _) in enumerate(jobs):
                        if isinstance(work, _ReviewUpdate):
                            found[index] = _write_review(connection, work)
                    self._prune(connection)
            except sqlite3.Error as exc:
                error = self._unavailable(exc, _describe_writes(len(stored), reviews))
            except Exception as exc:  # whatever fails, every waiting request must get an answer
                error = exc
            # A removed file is `storing`'s other half, which ends when the file is back, also without traffic.
            self._last_write_failed = error is not None and not self._file.lost
            for index, (work, loop, done) in enumerate(jobs):
                outcome = error or (found[index] if isinstance(work, _ReviewUpdate)
                                    else frozenset(r.id for r in work if r.id in skipped))
                loop.call_soon_threadsafe(_settle, done, outcome)
        connection.close()

    def _prune(self, connection: sqlite3.Connection) -> tuple[int, int]:
        """Removes what retention does not keep: how many results were beyond the newest max_rows, and how
        many older than max_age."""
        beyond = self._delete(connection, BEYOND_MAX_ROWS, self._max_rows)
        if self._max_age is None:
            return beyond, 0
        return beyond, self._delete(connection, OLDER_THAN, stored_time(dt.datetime.now(dt.UTC) - self._max_age))

    @staticmethod
    def _delete(connection: sqlite3.Connection, condition: str, value: object) -> int:
        """Deletes the results that meet `condition`, and their review history first; returns how many."""
        connection.execute(f"DELETE FROM reviews WHERE result_id IN (SELECT id FROM results WHERE {condition})",
                           (value,))
        return connection.execute(f"DELETE FROM results WHERE {condition}", (value,)).rowcount

    def _prune_now(self, connection: sqlite3.Connection) -> tuple[int, int]:
        """Pruning outside a commit of new results; a failure (a full disk) is logged, and the store serves
        on: the next commit prunes again."""
        try:
            with connection:
                return self._prune(connection)
        except sqlite3.Error as exc:
            self._unavailable(exc, "pruning old results")
            return 0, 0

    def _query(self, sql: str, parameters: tuple) -> list[sqlite3.Row]:
        with self._reader_lock:
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                translated = self._unavailable(exc, "reading results")
                if translated is exc:
                    raise
                raise translated from exc

    def _unavailable(self, error: sqlite3.Error, doing: str) -> Exception:
        """A full disk, an I/O error or a damaged file: the client gets a 503 and the operator a log line.

        Constraint violations stay what they are: they are bugs of this service, not of its storage.
        """
        if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            return error
        log.error("results store %s: %s failed: %s (free disk space, lower VAE_RESULTS_MAX_ROWS, or check "
                  "the file)", self._path, doing, error)
        return StoreUnavailable(f"the results store failed ({error}), so nothing was stored or read; "
                                "the operator has it in the service's log. Try again later")

    def get(self, result_id: str) -> StoredResult | None:
        """Blocking read (call via a worker thread)."""
        rows = self._query(READ_ONE, (result_id,))
        return _from_row(rows[0], with_arrays=True) if rows else None

    def review_history(self, result_id: str) -> list[Review]:
        """Every review of a result, oldest first, withdrawals included (verdict None)."""
        rows = self._query("SELECT verdict, reviewed_at, note, reviewer, api_key FROM reviews WHERE result_id = ? "
                           "ORDER BY seq", (result_id,))
        return [Review(*row) for row in rows]

    def get_by_idempotency_key(self, key: str) -> StoredResult | None:
        """The result stored for a request with this Idempotency-Key, if retention has kept it."""
        rows = self._query("SELECT * FROM results WHERE idempotency_key = ?", (key,))
        return _from_row(rows[0], with_arrays=True) if rows else None

    def get_batch_items(self, key: str) -> dict[int, StoredResult]:
        """The results stored for a batch sent with this Idempotency-Key, by their position in the batch."""
        # One range of the key index: every item key of `key` starts with it and the separator.
        start = f"{key}{ITEM_SEPARATOR}"
        rows = self._query("SELECT * FROM results WHERE idempotency_key >= ? AND idempotency_key < ?",
                           (start, start[:-1] + chr(ord(ITEM_SEPARATOR) + 1)))
        return {item_index(row["idempotency_key"]): _from_row(row, with_arrays=True) for row in rows}

    def page(self, *, anomalous: bool | None, limit: int, before: int | None, source: str | None = None,
             ref: str | None = None, since: str | None = None, until: str | None = None,
             review: str | None = None) -> list[StoredResult]:
        """Newest first; `before` is the `seq` cursor of the last row of the previous page. `since` and
        `until` are UTC times in the stored format (ISO 8601 with microseconds): since <= created_at < until.
        `review`: "normal" or "anomalous" (reviewed so), "none" (not reviewed) or "any" (reviewed)."""
        return self._listing(result_filters(anomalous, source, ref, since, until, review), [("seq < ?", before)],
                             "seq DESC", limit)

    def oldest_first(self, *, after: int, through: int, limit: int, anomalous: bool | None = None,
                     source: str | None = None, ref: str | None = None, since: str | None = None,
                     until: str | None = None, review: str | None = None) -> list[StoredResult]:
        """Like `page`, but oldest first: rows with after < seq <= through, for an export read page by page
        up to the newest row it started with."""
        return self._listing(result_filters(anomalous, source, ref, since, until, review),
                             [("seq > ?", after), ("seq <= ?", through)], "seq", limit)

    def _listing(self, filters: list[tuple[str, object]], cursor: list[tuple[str, object]], order: str,
                 limit: int) -> list[StoredResult]:
        where, parameters = where_clause(*filters, *cursor)
        rows = self._query(f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM results {where} ORDER BY {order} LIMIT ?",
                           (*parameters, limit))
        return [_from_row(row, with_arrays=False) for row in rows]

    def newest_seq(self) -> int:
        return self._query("SELECT COALESCE(MAX(seq), 0) FROM results", ())[0][0]

    def tally(self, *, source: str | None = None, since: str | None = None, until: str | None = None,
              every: str | None = None, zone: dt.tzinfo | None = None, max_groups: int | None = None,
              ) -> list[ResultTally]:
        """Counts per source and model version (and per hour or day: `every`, of UTC or of `zone`), ordered
        by them, no source first; filters as in `page`. At most `max_groups` + 1 groups, so a caller can tell
        that there were more."""
        if every is not None and zone is not None:
            return self._tally_in_zone(source, since, until, every, zone, max_groups)
        sql, parameters = tally_query(source, since, until, every)
        if max_groups is not None:
            sql, parameters = f"{sql} LIMIT ?", (*parameters, max_groups + 1)
        return [ResultTally(*row) for row in self._query(sql, parameters)]

    def _tally_in_zone(self, source: str | None, since: str | None, until: str | None, every: str,
                       zone: dt.tzinfo, max_groups: int | None) -> list[ResultTally]:
        where, parameters = where_clause(*tally_filters(source, since, until))
        ((first, last),) = self._query(f"SELECT MIN(created_at), MAX(created_at) FROM results {where}", parameters)
        if first is None:
            return []
        merged: dict[tuple, ResultTally] = {}
        spans = offset_spans(zone, dt.datetime.fromisoformat(first),
                             dt.datetime.fromisoformat(last) + dt.timedelta(microseconds=1))
        for span in spans:
            sql, span_parameters = local_tally_query(source, since, until, every, span)
            for row in self._query(sql, span_parameters):
                tally = ResultTally(*row)
                start = (hour_start(tally.period, span.offset) if every == "hour"
                         else day_start(tally.period, zone))
                key = (start, tally.source, tally.model_name, tally.model_version)
                earlier = merged.get(key)  # the same local day, before the offset changed
                merged[key] = dataclasses.replace(tally, period=start.isoformat()) if earlier is None else (
                    dataclasses.replace(tally, period=start.isoformat(), first_at=earlier.first_at,
                                        **{name: getattr(tally, name) + getattr(earlier, name) for name in COUNTS}))
            if max_groups is not None and len(merged) > max_groups:
                break
        ordered = [merged[key] for key in sorted(merged, key=lambda k: (k[0], k[1] is not None, k[1] or "", *k[2:]))]
        return ordered if max_groups is None else ordered[:max_groups + 1]

    @property
    def storing(self) -> bool:
        """Whether results are being stored: not while the store's file is removed or replaced under the service
        (noticed within a minute, also without traffic), nor after a failed write (a full disk, an I/O error)
        until a write succeeds."""
        return not (self._last_write_failed or (self._file is not None and self._file.lost))

    def unreviewed_flags(self) -> int:
        """How many flagged results have no review (counted on results_by_review)."""
        return self._query("SELECT COUNT(*) FROM results WHERE review IS NULL AND is_anomaly = 1", ())[0][0]

    def count(self) -> int:
        return self._query("SELECT COUNT(*) FROM results", ())[0][0]


def _settle(future: asyncio.Future, outcome: frozenset[str] | StoredResult | None | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
