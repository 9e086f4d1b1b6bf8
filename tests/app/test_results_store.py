"""The result store on its own: a failed write fails its requests, and the writer keeps going."""

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import sqlite3
import threading
import time
import zoneinfo

import numpy as np
import pytest

from app import results, results_queries, results_schema
from app.errors import PreconditionFailed, StoreUnavailable
from app.results import ResultStore, StoredResult
from app.results_schema import stored_time
from tests.app.conftest import limit_database_pages


def _result(result_id: str) -> StoredResult:
    return StoredResult(id=result_id, created_at="2026-01-01T00:00:00+00:00", model_name="m", model_version=1,
                        score_method="mse", score=0.1, threshold=0.2, threshold_source="model", target_fpr=0.01,
                        p_value=0.5, is_anomaly=False, scores={"mse": 0.1}, image=np.zeros((28, 28), np.uint8),
                        reconstruction=np.zeros((28, 28), np.uint8), difference=np.zeros((28, 28), np.float16),
                        heatmap_scale=0.2)


def test_a_failing_write_raises_instead_of_hanging_and_the_writer_survives(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.db", max_rows=10)
    store.open()
    real_row_values = results._row_values

    def broken(result):
        if result.id == "bad":
            raise ValueError("cannot serialise")
        return real_row_values(result)

    monkeypatch.setattr(results, "_row_values", broken)

    async def main():
        with pytest.raises(ValueError, match="cannot serialise"):
            await asyncio.wait_for(store.save([_result("bad")]), timeout=5)
        await asyncio.wait_for(store.save([_result("a" * 32)]), timeout=5)

    try:
        asyncio.run(main())
        assert store.get("a" * 32) is not None and store.count() == 1
    finally:
        store.close()


def test_duplicate_ids_are_rejected_not_overwritten(tmp_path):
    store = ResultStore(tmp_path / "r.db", max_rows=10)
    store.open()

    async def main():
        await store.save([_result("b" * 32)])
        with pytest.raises(Exception, match="UNIQUE"):
            await store.save([_result("b" * 32)])

    try:
        asyncio.run(main())
        assert store.count() == 1
    finally:
        store.close()


def test_a_full_disk_is_a_503_domain_error_and_keeps_what_was_stored(tmp_path, monkeypatch, caplog):
    limit_database_pages(monkeypatch, pages=40)
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()

    async def fill() -> int:
        for i in range(1000):
            try:
                await asyncio.wait_for(store.save([_result(f"{i:032x}")]), timeout=5)
            except StoreUnavailable as error:
                assert error.status == 503 and "database or disk is full" in error.detail
                return i
        raise AssertionError("the limited database never filled up")

    try:
        assert store.storing
        stored = asyncio.run(fill())
        assert stored > 0 and store.count() == stored
        assert not store.storing  # until a write succeeds
        assert store.get(f"{stored - 1:032x}") is not None  # nothing already stored was lost
        assert "results store" in caplog.text and "database or disk is full" in caplog.text
    finally:
        store.close()


def _save(store: ResultStore, *ids: str) -> None:
    async def save():
        await asyncio.wait_for(store.save([_result(i) for i in ids]), timeout=5)
    asyncio.run(save())


def test_a_removed_store_file_stops_storing_and_what_the_store_held_is_saved(tmp_path, caplog):
    """SQLite would go on writing to the removed file, and everything after the rm would vanish at the next
    start: so nothing is stored, and what the store held is saved for a restore."""
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32, "b" * 32)
        (tmp_path / "r.db").unlink()  # an operator's rm
        for attempt in range(2):
            with pytest.raises(StoreUnavailable, match="the results store's file was removed or replaced") as error:
                _save(store, f"{attempt:032x}")
            assert error.value.status == 503
        [logged] = [r.getMessage() for r in caplog.records if "was removed or replaced" in r.getMessage()]
        [saved] = tmp_path.glob("r.db.recovered-*")
        assert f"what it held is saved as {saved}: to serve it, stop the service, then vae-backup --results-db " \
               f"{tmp_path / 'r.db'} --restore {saved}" in logged
        copy = sqlite3.connect(saved)
        assert sorted(row[0] for row in copy.execute("SELECT id FROM results")) == ["a" * 32, "b" * 32]
        copy.close()
    finally:
        store.close()


def test_a_store_file_removed_while_no_results_come_is_saved_without_waiting_for_one(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "IDLE_CHECK_INTERVAL_S", 0.05)
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32)
        (tmp_path / "r.db").unlink()
        deadline = time.monotonic() + 5
        while not list(tmp_path.glob("r.db.recovered-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(tmp_path.glob("r.db.recovered-*"))) == 1
        assert not store.storing  # known without a result refused, for the metric an alert watches
    finally:
        store.close()
    assert len(list(tmp_path.glob("r.db.recovered-*"))) == 1  # saved once, not again at the stop


def test_a_store_file_removed_is_saved_at_the_latest_when_the_service_stops(tmp_path):
    store = ResultStore(tmp_path / "r.db", max_rows=1000)  # the idle check is a minute away
    store.open()
    _save(store, "a" * 32, "b" * 32)
    (tmp_path / "r.db").unlink()
    store.close()  # the moment the removed file's contents would vanish
    [saved] = tmp_path.glob("r.db.recovered-*")
    copy = sqlite3.connect(saved)
    assert copy.execute("SELECT count(*) FROM results").fetchone()[0] == 2
    copy.close()


def test_a_removed_store_opened_by_a_relative_path_is_named_by_its_absolute_one(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # the operator reads the log, and restores, from another folder
    store = ResultStore(results.Path("data/results.db"), max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32)
        (tmp_path / "data" / "results.db").unlink()
        with pytest.raises(StoreUnavailable):
            _save(store, "b" * 32)
    finally:
        store.close()
    [saved] = (tmp_path / "data").glob("results.db.recovered-*")
    assert f"vae-backup --results-db {tmp_path / 'data' / 'results.db'} --restore {saved}" in caplog.text


def test_a_store_file_moved_away_and_back_is_written_again(tmp_path, caplog):
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32)
        (tmp_path / "r.db").rename(tmp_path / "elsewhere.db")
        with pytest.raises(StoreUnavailable):
            _save(store, "b" * 32)
        assert not store.storing
        (tmp_path / "elsewhere.db").rename(tmp_path / "r.db")
        _save(store, "c" * 32)
        assert store.storing
        assert "the file is back; results are stored again" in caplog.text
        assert store.count() == 2 and store.get("b" * 32) is None
    finally:
        store.close()


def test_a_store_file_moved_back_while_no_results_come_is_storing_again_without_waiting_for_one(tmp_path,
                                                                                            monkeypatch):
    monkeypatch.setattr(results, "IDLE_CHECK_INTERVAL_S", 0.05)
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        (tmp_path / "r.db").rename(tmp_path / "elsewhere.db")
        with pytest.raises(StoreUnavailable):
            _save(store, "b" * 32)
        assert not store.storing
        (tmp_path / "elsewhere.db").rename(tmp_path / "r.db")
        deadline = time.monotonic() + 5
        while not store.storing and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.storing  # the alert on it ends once the operator has put the file back
    finally:
        store.close()


def test_a_store_file_replaced_by_another_is_not_written_to(tmp_path):
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32)
        (tmp_path / "other.db").write_bytes((tmp_path / "r.db").read_bytes())
        (tmp_path / "other.db").replace(tmp_path / "r.db")  # a copy moved into its place (mv)
        with pytest.raises(StoreUnavailable):
            _save(store, "b" * 32)
    finally:
        store.close()


def _leave_journals_of_a_removed_store(path) -> None:
    """The journals a store leaves at `path` when its process dies after its file was removed."""
    store = ResultStore(path, max_rows=1000)
    store.open()
    _save(store, *(f"{i:032x}" for i in range(30)))
    stale = {suffix: path.with_name(path.name + suffix).read_bytes() for suffix in ("-wal", "-shm")}
    store.close()
    path.unlink()
    for suffix, content in stale.items():
        path.with_name(path.name + suffix).write_bytes(content)


def test_a_journal_left_by_a_removed_store_is_set_aside_not_applied_to_the_new_one(tmp_path, caplog):
    _leave_journals_of_a_removed_store(tmp_path / "r.db")
    store = ResultStore(tmp_path / "r.db", max_rows=1000)
    store.open()
    try:
        _save(store, "a" * 32)
        assert store.count() == 1  # the new store's own result, not the old journal's 30
    finally:
        store.close()
    assert sorted(p.name.split(".orphaned-")[0] for p in tmp_path.glob("r.db-*.orphaned-*")) == ["r.db-shm",
                                                                                               "r.db-wal"]
    assert "the file was missing but a journal of it was not" in caplog.text


def test_a_database_from_the_first_release_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "r.db"
    old = sqlite3.connect(path)
    old.executescript(results_schema.SCHEMA.split(",\n    source TEXT")[0] + "\n);")  # the first release's table
    columns = {row[1] for row in old.execute("PRAGMA table_info(results)")}
    assert columns.isdisjoint(results_schema.ADDED_COLUMNS["results"])
    old.execute("INSERT INTO results (id, created_at, model_name, model_version, score_method, score, threshold, "
                "threshold_source, target_fpr, p_value, is_anomaly, scores, image, reconstruction, difference, "
                "heatmap_scale) VALUES (?, '2026-01-01', 'm', 1, 'mse', 0.1, 0.2, 'model', 0.01, 0.5, 0, '{}', "
                "?, ?, ?, 0.2)", ("c" * 32, bytes(784), bytes(784), bytes(2 * 784)))
    old.commit()
    old.close()
    store = ResultStore(path, max_rows=10)
    store.open()

    async def main():
        await store.save([dataclasses.replace(_result("d" * 32), source="line-1", ref="SN-9")])

    try:
        asyncio.run(main())
        before = store.get("c" * 32)
        assert before is not None and (before.source, before.ref) == (None, None)
        assert [r.id for r in store.page(anomalous=None, limit=10, before=None, source="line-1")] == ["d" * 32]
        assert [r.id for r in store.page(anomalous=None, limit=10, before=None, ref="SN-9")] == ["d" * 32]
        assert [(t.source, t.count) for t in store.tally()] == [(None, 1), ("line-1", 1)]
        assert before.idempotency_key is None and store.get_by_idempotency_key("k") is None
        assert before.review is None
        review = results.Review("anomalous", "2026-01-02T00:00:00.000000+00:00", "crack", "anna")
        assert asyncio.run(store.review("c" * 32, review)).review == review
        assert store.get("c" * 32).review == review
    finally:
        store.close()


def test_a_database_from_before_key_names_gains_them_and_keeps_its_reviews(tmp_path):
    path = tmp_path / "r.db"
    old = sqlite3.connect(path)
    old.executescript(results_schema.SCHEMA.replace(",\n    review_api_key TEXT", "")
                      .replace(",\n    api_key TEXT", ""))
    assert "review_api_key" not in {row[1] for row in old.execute("PRAGMA table_info(results)")}
    assert "api_key" not in {row[1] for row in old.execute("PRAGMA table_info(reviews)")}
    old.execute("INSERT INTO results (id, created_at, model_name, model_version, score_method, score, threshold, "
                "threshold_source, target_fpr, p_value, is_anomaly, scores, image, reconstruction, difference, "
                "heatmap_scale, review, reviewer, reviewed_at) VALUES (?, '2026-01-01', 'm', 1, 'mse', 0.1, 0.2, "
                "'model', 0.01, 0.5, 1, '{}', ?, ?, ?, 0.2, 'normal', 'anna', '2026-01-02')",
                ("c" * 32, bytes(784), bytes(784), bytes(2 * 784)))
    old.execute("INSERT INTO reviews (result_id, verdict, reviewer, reviewed_at) VALUES (?, 'normal', 'anna', "
                "'2026-01-02')", ("c" * 32,))
    old.commit()
    old.close()
    store = ResultStore(path, max_rows=10)
    store.open()
    try:
        assert store.get("c" * 32).review == results.Review("normal", "2026-01-02", reviewer="anna")
        again = results.Review("anomalous", "2026-01-03T00:00:00.000000+00:00", reviewer="anna", api_key="qa-desk")
        assert asyncio.run(store.review("c" * 32, again)).review == again
        assert store.get("c" * 32).review == again
        assert [(r.verdict, r.api_key) for r in store.review_history("c" * 32)] == [
            ("normal", None), ("anomalous", "qa-desk")]
    finally:
        store.close()


@pytest.fixture
def store(tmp_path):
    opened = ResultStore(tmp_path / "r.db", max_rows=10)
    opened.open()
    yield opened
    opened.close()


def test_a_review_is_written_by_the_writer_and_finds_its_result_in_the_same_commit(store):
    review = results.Review("normal", "2026-01-02T00:00:00.000000+00:00")

    async def main():
        # Queued together, the writer commits both in one transaction: the insert first.
        return await asyncio.gather(store.save([_result("a" * 32)]), store.review("a" * 32, review),
                                    store.review("f" * 32, review))

    saved, reviewed, unknown = asyncio.run(main())
    assert (saved, reviewed.id, reviewed.review, unknown) == (frozenset(), "a" * 32, review, None)
    assert store.get("a" * 32).review == review
    withdrawal = results.Review(None, "2026-01-03T00:00:00.000000+00:00")
    withdrawn = asyncio.run(store.review("a" * 32, withdrawal))
    assert withdrawn.review is None and store.get("a" * 32).review is None
    assert store.review_history("a" * 32) == [review, withdrawal]  # the audit trail keeps both
    assert store.review_history("f" * 32) == []  # nothing is recorded for a result that does not exist


def test_of_two_reviews_given_on_the_same_tag_in_one_commit_only_the_first_is_written(store):
    _save(store, "a" * 32)
    seen = store.get("a" * 32).review_tag
    anna, ben = (results.Review(verdict, "2026-01-02T00:00:00.000000+00:00", reviewer=name)
                 for verdict, name in (("normal", "anna"), ("anomalous", "ben")))

    async def main():
        # Queued together, the writer takes both into one transaction: the second must see the first's write.
        return await asyncio.gather(store.review("a" * 32, anna, frozenset({seen})),
                                    store.review("a" * 32, ben, frozenset({seen})), return_exceptions=True)

    first, second = asyncio.run(main())
    assert first.review == anna and isinstance(second, PreconditionFailed)
    assert second.headers == {"ETag": f'"{results.review_tag("a" * 32, anna)}"'}
    assert store.get("a" * 32).review == anna and store.review_history("a" * 32) == [anna]
    assert store.get("a" * 32).review_tag == results.review_tag("a" * 32, anna) != seen
    assert asyncio.run(store.review("f" * 32, ben, frozenset({seen}))) is None  # no such result


def test_a_review_answers_with_the_result_as_it_left_it_though_another_follows_at_once(store):
    _save(store, "a" * 32)
    anna, ben = (results.Review("normal", f"2026-01-02T00:00:0{n}.000000+00:00", reviewer=name)
                 for n, name in ((1, "anna"), (2, "ben")))

    async def main():
        # Both in one commit: anna's answer is her review and its tag, not what the result holds after ben's.
        return await asyncio.gather(store.review("a" * 32, anna), store.review("a" * 32, ben))

    for_anna, for_ben = asyncio.run(main())
    assert (for_anna.review, for_anna.review_tag) == (anna, results.review_tag("a" * 32, anna))
    assert for_ben.review == ben == store.get("a" * 32).review


def test_a_results_review_history_is_pruned_with_it(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.db", max_rows=2, max_age=dt.timedelta(days=1))
    store.open()
    review = results.Review("normal", "2026-01-02T00:00:00.000000+00:00")
    now = stored_time(dt.datetime.now(dt.UTC))

    async def main():
        await store.save([dataclasses.replace(_result(f"{i:032x}"), created_at=now) for i in range(2)])
        for i in range(2):
            await store.review(f"{i:032x}", review)
        await store.save([dataclasses.replace(_result(f"{2:032x}"), created_at=now)])  # prunes result 0

    try:
        asyncio.run(main())
        assert store.get(f"{0:032x}") is None and store.review_history(f"{0:032x}") == []
        assert store.review_history(f"{1:032x}") == [review]
        # By age as well: result 1 grows old, and its history goes with it.
        monkeypatch.setattr(results, "stored_time", lambda moment: "9999-12-31T00:00:00.000000+00:00")
        store._prune_now(results_schema.connect(tmp_path / "r.db"))
        assert store.get(f"{1:032x}") is None and store.review_history(f"{1:032x}") == []
        assert store._query("SELECT COUNT(*) FROM reviews", ())[0][0] == 0
    finally:
        store.close()


def test_the_work_list_reads_only_the_rows_it_lists(store):
    # Without results_by_review, "flagged and not reviewed" scans every flagged row, image blobs and all.
    for review in ("none", "normal"):
        filters = results_queries.result_filters(True, None, None, None, None, review)
        where, parameters = results_queries.where_clause(*filters)
        plan = store._query(f"EXPLAIN QUERY PLAN SELECT * FROM results {where} ORDER BY seq DESC LIMIT 50",
                            parameters)
        assert [row["detail"] for row in plan] == [
            "SEARCH results USING INDEX results_by_review (review=? AND is_anomaly=?)"], review


def test_the_summary_is_counted_from_its_index_not_from_the_rows(store):
    # Counting from the table reads every row's image blobs to reach `source`: 6x slower at 100,000 rows.
    for filters in ({}, {"source": "line-1"}, {"since": "2026-01-01"}, {"source": "l", "until": "2027"}):
        sql, parameters = results_queries.tally_query(**{"source": None, "since": None, "until": None, **filters})
        plan = store._query(f"EXPLAIN QUERY PLAN {sql}", parameters)
        index = "COVERING INDEX results_for_tally_with_reviews"
        assert [row["detail"] for row in plan] == [f"SCAN results USING {index}" if "source" not in filters
                                                   else f"SEARCH results USING {index} (source=?)"], filters


def test_a_second_result_with_an_idempotency_key_is_skipped_and_the_rest_are_stored(tmp_path):
    store = ResultStore(tmp_path / "r.db", max_rows=10)
    store.open()

    def keyed(result_id: str, key: str | None) -> StoredResult:
        return dataclasses.replace(_result(result_id), idempotency_key=key, request_digest=key and "digest")

    async def main():
        assert await store.save([keyed("a" * 32, "k1")]) == frozenset()
        # Saved concurrently, so that the writer commits them in one transaction.
        return await asyncio.gather(store.save([keyed("b" * 32, "k1"), keyed("c" * 32, None)]),
                                    store.save([keyed("d" * 32, "k2")]))

    try:
        assert asyncio.run(main()) == [frozenset({"b" * 32}), frozenset()]
        assert store.get("b" * 32) is None and store.get("c" * 32) is not None
        assert store.get_by_idempotency_key("k1").id == "a" * 32
        assert store.get_by_idempotency_key("k2").request_digest == "digest"
        with pytest.raises(sqlite3.IntegrityError):  # any other conflict still fails loudly
            asyncio.run(store.save([keyed("d" * 32, "k3")]))
    finally:
        store.close()


def test_results_past_the_age_limit_are_pruned_at_open_with_each_commit_and_while_idle(tmp_path, monkeypatch):
    path, now = tmp_path / "r.db", dt.datetime.now(dt.UTC)

    def aged(result_id: str, days: float) -> StoredResult:
        return dataclasses.replace(_result(result_id), created_at=stored_time(now - dt.timedelta(days=days)))

    def write_behind_the_stores_back(result: StoredResult) -> None:  # as another worker process would
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute(results.INSERT, results._row_values(result))

    unlimited = ResultStore(path, max_rows=100)
    unlimited.open()
    asyncio.run(unlimited.save([aged("a" * 32, 40), aged("b" * 32, 20), aged("c" * 32, 0)]))
    unlimited.close()

    store = ResultStore(path, max_rows=100, max_age=dt.timedelta(days=30))
    store.open()
    try:
        assert store.get("a" * 32) is None and store.get("b" * 32) is not None  # at open
        write_behind_the_stores_back(aged("d" * 32, 31))
        monkeypatch.setattr(results, "IDLE_CHECK_INTERVAL_S", 0.05)  # from the writer's next wait on
        asyncio.run(store.save([aged("e" * 32, 0)]))
        assert store.get("d" * 32) is None and store.get("e" * 32) is not None  # with the commit
        write_behind_the_stores_back(aged("f" * 32, 31))
        deadline = time.monotonic() + 5
        while store.get("f" * 32) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.get("f" * 32) is None  # while no results come
        assert [r.id for r in store.page(anomalous=None, limit=10, before=None)] == ["e" * 32, "c" * 32, "b" * 32]
    finally:
        store.close()


def test_the_log_names_the_store_opened_and_what_it_holds(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="app.results")
    monkeypatch.chdir(tmp_path)
    store = ResultStore(results.Path("data/results.db"), max_rows=100)  # relative, as the default is
    store.open()
    _save(store, "a" * 32, "b" * 32)
    store.close()
    assert f"results store {tmp_path / 'data' / 'results.db'}: 0 results" in caplog.text
    store.open()
    store.close()
    assert f"results store {tmp_path / 'data' / 'results.db'}: 2 results, the oldest from 2026-01-01T00:00:00" \
        in caplog.text
    lowered = ResultStore(results.Path("data/results.db"), max_rows=1)  # every line names it so
    lowered.open()
    lowered.close()
    assert f"results store {tmp_path / 'data' / 'results.db'}: retention removed 1 results at start" in caplog.text


def test_a_disk_too_small_for_the_retention_limit_is_said_at_start(tmp_path, monkeypatch, caplog):
    free = collections.namedtuple("usage", "total used free")(10**9, 10**9 - 50 * 10**6, 50 * 10**6)
    monkeypatch.setattr(results.shutil, "disk_usage", lambda path: free)
    roomy = ResultStore(tmp_path / "r.db", max_rows=10_000)  # 43 MB at most: fits
    roomy.open()
    roomy.close()
    assert "MB free" not in caplog.text
    tight = ResultStore(tmp_path / "r.db", max_rows=100_000)
    tight.open()
    tight.close()
    assert "100000 more results, up to VAE_RESULTS_MAX_ROWS=100000, need about 430 MB, but its disk has 50 MB " \
           "free: once it is full, scoring answers 503" in caplog.text


def test_what_retention_removes_at_start_is_logged_with_its_reason(tmp_path, caplog):
    caplog.set_level("INFO", logger="app.results")
    path, now = tmp_path / "r.db", dt.datetime.now(dt.UTC)
    days_old = [40, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40]
    unlimited = ResultStore(path, max_rows=100)
    unlimited.open()
    asyncio.run(unlimited.save([dataclasses.replace(_result(f"{i:032x}"), created_at=stored_time(
        now - dt.timedelta(days=days))) for i, days in enumerate(days_old)]))
    unlimited.close()
    assert "retention removed" not in caplog.text
    lowered = ResultStore(path, max_rows=4, max_age=dt.timedelta(days=30))  # VAE_RESULTS_MAX_ROWS=4 by mistake
    lowered.open()
    lowered.close()
    assert "retention removed 9 results at start: 8 beyond the newest 4 (VAE_RESULTS_MAX_ROWS) and 1 older " \
           "than 30 days (VAE_RESULTS_MAX_AGE_DAYS)" in caplog.text
    def retention_records():
        return [r for r in caplog.records if "retention removed" in r.getMessage()]

    assert retention_records()[-1].levelname == "WARNING"  # a lowered limit
    aged_out = ResultStore(path, max_rows=4, max_age=dt.timedelta(days=1e-9))  # all aged out while stopped
    aged_out.open()
    aged_out.close()
    assert "retention removed 3 results at start: 3 older than" in retention_records()[-1].getMessage()
    assert retention_records()[-1].levelname == "INFO"


def test_summary_periods_are_utc_hours_and_days(tmp_path):
    def at(result_id: str, created_at: str, anomalous: bool = False) -> StoredResult:
        return dataclasses.replace(_result(result_id), created_at=created_at, is_anomaly=anomalous)

    store = ResultStore(tmp_path / "r.db", max_rows=10)
    store.open()
    try:
        asyncio.run(store.save([at("a" * 32, "2026-11-27T23:59:59.999999+00:00"),
                                at("b" * 32, "2026-11-28T00:00:00.000000+00:00", anomalous=True),
                                at("c" * 32, "2026-11-28T00:59:59.000000+00:00"),
                                at("d" * 32, "2026-11-28T01:00:00.000000+00:00")]))
        assert [(t.period, t.count, t.anomalies) for t in store.tally(every="hour")] == [
            ("2026-11-27T23:00:00+00:00", 1, 0), ("2026-11-28T00:00:00+00:00", 2, 1),
            ("2026-11-28T01:00:00+00:00", 1, 0)]
        assert [(t.period, t.count) for t in store.tally(every="day")] == [
            ("2026-11-27T00:00:00+00:00", 1), ("2026-11-28T00:00:00+00:00", 3)]
        assert len(store.tally(every="hour", max_groups=1)) == 2  # one more than asked: there were more
    finally:
        store.close()


def test_summary_periods_in_a_time_zone_follow_its_clock_changes(tmp_path):
    # Berlin, 25 October 2026: at 01:00 UTC clocks go back from 03:00 (+02:00) to 02:00 (+01:00).
    def at(result_id: str, created_at: str, source: str = "line-1") -> StoredResult:
        return dataclasses.replace(_result(result_id), created_at=created_at, source=source)

    store = ResultStore(tmp_path / "r.db", max_rows=10)
    store.open()
    try:
        asyncio.run(store.save([at("a" * 32, "2026-10-24T21:59:59.999999+00:00"),  # 23:59:59 on the 24th
                                at("b" * 32, "2026-10-24T22:00:00.000000+00:00"),  # midnight, +02:00
                                at("c" * 32, "2026-10-25T00:30:00.000000+00:00"),  # 02:30 +02:00
                                at("d" * 32, "2026-10-25T01:30:00.000000+00:00"),  # 02:30 again, +01:00
                                at("e" * 32, "2026-10-25T01:40:00.000000+00:00", source="line-2"),
                                at("f" * 32, "2026-10-25T22:59:59.999999+00:00"),  # 23:59:59, +01:00
                                at("g" * 32, "2026-10-25T23:00:00.000000+00:00")]))  # midnight, +01:00
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
        days = store.tally(every="day", zone=berlin)
        assert [(t.period, t.source, t.count) for t in days] == [
            ("2026-10-24T00:00:00+02:00", "line-1", 1),
            ("2026-10-25T00:00:00+02:00", "line-1", 4),  # a day of 25 hours, counted across the change
            ("2026-10-25T00:00:00+02:00", "line-2", 1),
            ("2026-10-26T00:00:00+01:00", "line-1", 1)]
        assert (days[1].first_at, days[1].last_at) == ("2026-10-24T22:00:00.000000+00:00",
                                                       "2026-10-25T22:59:59.999999+00:00")
        hours = [(t.period, t.source, t.count) for t in store.tally(every="hour", zone=berlin, source="line-1")]
        assert hours[2:4] == [("2026-10-25T02:00:00+02:00", "line-1", 1), ("2026-10-25T02:00:00+01:00", "line-1", 1)]
        assert [period for period, _, _ in hours] == sorted({period for period, _, _ in hours},
                                                             key=dt.datetime.fromisoformat)
        assert [(t.period, t.count) for t in store.tally(every="day", zone=berlin, since="2026-10-25T23:00:00")] == [
            ("2026-10-26T00:00:00+01:00", 1)]
        assert store.tally(every="day", zone=berlin, source="line-9") == []
        assert len(store.tally(every="hour", zone=berlin, max_groups=2)) == 3
    finally:
        store.close()


def test_a_conditional_review_holds_against_another_workers_writer(tmp_path, monkeypatch):
    """Workers of one service each have a writer on the same file: what one checks must still hold when it
    writes, though the other commits a review in between."""
    path = tmp_path / "r.db"
    first, second = ResultStore(path, max_rows=10), ResultStore(path, max_rows=10)
    first.open()
    second.open()
    try:
        _save(first, "a" * 32)
        seen = first.get("a" * 32).review_tag
        anna, ben = (results.Review(verdict, f"2026-01-02T00:00:0{n}.000000+00:00", reviewer=name)
                     for n, verdict, name in ((1, "normal", "anna"), (2, "anomalous", "ben")))
        outcomes = {}

        def ben_reviews():
            try:
                outcomes["ben"] = asyncio.run(second.review("a" * 32, ben, frozenset({seen})))
            except Exception as error:  # noqa: BLE001 - the outcome is what the test checks
                outcomes["ben"] = error

        ben_thread = threading.Thread(target=ben_reviews)
        tag_of = results.review_tag

        def tag_then_let_ben_try(result_id, review):
            # The first check is anna's: ben's worker tries to review in the instant between it and her write.
            if not ben_thread.is_alive() and "ben" not in outcomes:
                ben_thread.start()
                ben_thread.join(timeout=1.0)  # a worker that must wait for anna's write cannot finish here
            return tag_of(result_id, review)

        monkeypatch.setattr(results, "review_tag", tag_then_let_ben_try)
        for_anna = asyncio.run(first.review("a" * 32, anna, frozenset({seen})))
        ben_thread.join(timeout=30)
        assert for_anna.review == anna
        assert isinstance(outcomes["ben"], PreconditionFailed), outcomes["ben"]
        assert first.get("a" * 32).review == anna and first.review_history("a" * 32) == [anna]
    finally:
        first.close()
        second.close()
