"""The inspection log: lookup, listing, pagination, persistence across restarts, retention."""

import csv
import datetime as dt
import io
import zoneinfo
from urllib.parse import quote

import pytest

from app.api.presenters import CSV_COLUMNS, wilson_interval
from tests.app.conftest import (
    limit_database_pages,
    png_bytes,
    publish_copy,
    wait_until_ready,
)
from tests.app.test_score import assert_problem


def _score(client, pixels, query=""):
    response = client.post(f"/score{query}", files={"file": ("x.png", png_bytes(pixels), "image/png")})
    assert response.status_code == 200, response.text
    return response.json()


def test_get_returns_the_stored_result(client, normal_pixels):
    scored = _score(client, normal_pixels, "?fpr=0.5")
    assert client.get(f"/results/{scored['id']}").json() == scored


def test_unknown_and_malformed_ids(client):
    assert_problem(client.get("/results/" + "0" * 32), 404, "no result with id")
    assert_problem(client.get("/results/not-an-id"), 422, "is not a result id")
    assert_problem(client.get("/reconstruction/" + "f" * 32), 404, "no result with id")


def test_listing_is_newest_first_filtered_and_paginated(client, normal_pixels, anomalous_pixels):
    ids = [_score(client, pixels)["id"] for pixels in (normal_pixels, anomalous_pixels) * 3]
    page = client.get("/results?limit=4").json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:4]
    rest = client.get(f"/results?limit=4&before={page['next_cursor']}").json()
    assert [item["id"] for item in rest["items"]] == ids[::-1][4:]
    assert rest["next_cursor"] is None
    anomalous = client.get("/results?anomalous=true").json()["items"]
    assert [item["id"] for item in anomalous] == ids[1::2][::-1]
    assert all(item["is_anomaly"] for item in anomalous)
    normal = client.get("/results?anomalous=false").json()["items"]
    assert [item["id"] for item in normal] == ids[0::2][::-1]


def test_bad_listing_parameters_are_422(client):
    assert_problem(client.get("/results?limit=0"), 422, "query.limit")
    assert_problem(client.get("/results?limit=501"), 422, "query.limit")
    assert_problem(client.get("/results?before=abc"), 422,
                   "query.before: 'abc' is not a cursor: pass the next_cursor of the previous page")
    assert_problem(client.get(f"/results?before={'3f' * 16}"), 422, "previous page (a result's id is not one)")
    assert_problem(client.get("/results?before=2026-12-03T10:00:00Z"), 422,
                   "; to list the results scored before a time, use ?until=")
    assert_problem(client.get(f"/results?before={2**63}"), 422, "query.before")  # was SQLite's OverflowError, a 500
    assert client.get(f"/results?before={2**63 - 1}").status_code == 200
    assert_problem(client.get("/results?anomalous=perhaps"), 422, "query.anomalous")


def test_results_survive_a_restart(start_client, normal_pixels):
    first = start_client()
    scored = _score(first, normal_pixels)
    reconstruction = first.get(scored["reconstruction_url"]).content
    first.__exit__(None, None, None)
    second = start_client()  # a new app instance on the same database
    assert second.get(scored["result_url"]).json() == scored
    assert second.get(scored["reconstruction_url"]).content == reconstruction


def test_retention_keeps_only_the_newest_rows(start_client, normal_pixels):
    client = start_client(results_max_rows=3)
    ids = [_score(client, normal_pixels)["id"] for _ in range(5)]
    assert [item["id"] for item in client.get("/results").json()["items"]] == ids[::-1][:3]
    assert_problem(client.get(f"/results/{ids[0]}"), 404, "pruned by retention")
    assert client.get(f"/results/{ids[4]}").status_code == 200


def test_a_full_disk_answers_503_and_the_stored_results_stay_readable(start_client, normal_pixels, monkeypatch):
    limit_database_pages(monkeypatch, pages=60)
    client = start_client()
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    responses = [client.post("/score", files=image) for _ in range(200)]
    statuses = [response.status_code for response in responses]
    assert 200 in statuses and set(statuses) == {200, 503}, statuses
    failed = responses[statuses.index(503)]
    assert_problem(failed, 503, "database or disk is full")
    assert failed.json()["title"] == "Results store unavailable" and failed.headers["Retry-After"] == "5"
    stored = [response.json()["id"] for response in responses if response.status_code == 200]
    assert client.get(f"/results/{stored[-1]}").status_code == 200
    assert len(client.get("/results?limit=500").json()["items"]) == len(stored)
    assert "vae_results_store_writable 0.0" in client.get("/metrics").text


def test_a_results_file_removed_under_the_service_answers_503_instead_of_storing_into_the_void(
        client, normal_pixels, tmp_path):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    before = client.post("/score", files=image).json()
    assert "vae_results_store_writable 1.0" in client.get("/metrics").text
    (tmp_path / "results.db").unlink()
    after = client.post("/score", files=image)
    assert_problem(after, 503, "the results store's file was removed or replaced while the service ran")
    assert "vae_results_store_writable 0.0" in client.get("/metrics").text  # for an alert (monitoring/)
    assert after.headers["Retry-After"] == "5"
    assert client.get(f"/results/{before['id']}").status_code == 200  # what it holds is still read
    assert len(list(tmp_path.glob("results.db.recovered-*"))) == 1


def test_source_and_ref_are_stored_and_filter_the_log(client, normal_pixels, anomalous_pixels):
    image = png_bytes(normal_pixels)
    tagged = client.post("/score?source=line-3&ref=SN 0042/b", files={"file": ("x.png", image, "image/png")})
    assert tagged.status_code == 200, tagged.text
    assert (tagged.json()["source"], tagged.json()["ref"]) == ("line-3", "SN 0042/b")
    named = client.post("/score?source=line-4", files={"file": ("part-17.png", image, "image/png")}).json()
    assert named["ref"] == "part-17.png"  # without ?ref=, the uploaded file's name
    blank = client.post("/score", files={"file": ("   ", image, "image/png")}).json()
    assert blank["ref"] is None  # as ?ref=%20 is refused, a name of spaces is no ref
    raw = client.post("/score", content=png_bytes(anomalous_pixels), headers={"Content-Type": "image/png"}).json()
    assert (raw["source"], raw["ref"]) == (None, None)
    assert client.get(f"/results/{tagged.json()['id']}").json()["ref"] == "SN 0042/b"

    def listed(query: str) -> list[str]:
        return [item["id"] for item in client.get(f"/results?{query}").json()["items"]]

    assert listed("source=line-3") == [tagged.json()["id"]]
    assert listed("source=line-4&ref=part-17.png") == [named["id"]]
    assert listed("ref=SN%200042%2Fb") == [tagged.json()["id"]]
    assert listed("source=line-9") == []


@pytest.mark.parametrize("path", ["/results", "/results/export", "/results/summary"])
def test_a_filter_by_a_source_no_result_can_have_is_422_not_an_empty_answer(client, path):
    # ?source=line 3 (a space) matched nothing, and an empty list looks like a line that sent nothing
    assert_problem(client.get(f"{path}?source=line%203"), 422,
                   "'line 3' is not a source name: a source is named by letters, digits and ._:/@-, at most 64")


@pytest.mark.parametrize(("query", "detail"), [
    ("source=line%203", ("query.source: Value error, 'line 3' is not a source name: a source is named by "
                         "letters, digits and ._:/@-, at most 64")),
    ("source=" + "x" * 65, "is not a source name"),
    ("ref=a%0Ab", "query.ref: Value error, must be printable text"),
    ("ref=" + "x" * 201, "query.ref: String should have at most 200 characters"),
    ("ref=", "query.ref: String should have at least 1 character"),
])
def test_bad_source_or_ref_is_422(client, normal_pixels, query, detail):
    response = client.post(f"/score?{query}", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
    assert_problem(response, 422, detail)


def test_the_log_can_be_filtered_by_time(client, normal_pixels):
    first, second, third = (_score(client, normal_pixels) for _ in range(3))

    def listed(**query) -> list[str]:
        response = client.get("/results", params=query)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert listed(since=second["created_at"]) == [third["id"], second["id"]]  # since is inclusive
    assert listed(until=second["created_at"]) == [first["id"]]  # until is exclusive
    assert listed(since=first["created_at"], until=third["created_at"]) == [second["id"], first["id"]]
    # The same moment in another time zone selects the same results.
    moment = dt.datetime.fromisoformat(second["created_at"]).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert listed(since=moment.isoformat()) == [third["id"], second["id"]]
    assert listed(since="9999-12-31T23:59:59+00:00") == []


def test_an_offsets_plus_that_a_query_string_reads_as_a_space_is_put_back(client, normal_pixels):
    # curl 'http://…/results?since=2026-11-28T09:00:00+01:00' sends the '+' unescaped, which means a space.
    created = dt.datetime.fromisoformat(_score(client, normal_pixels)["created_at"])
    plus_one = dt.timezone(dt.timedelta(hours=1))
    for offset in ("+01:00", "+0100"):
        for seconds, found in ((-1, 1), (1, 0)):
            local = (created + dt.timedelta(seconds=seconds)).astimezone(plus_one).strftime("%Y-%m-%dT%H:%M:%S")
            assert len(client.get(f"/results?since={local}{offset}").json()["items"]) == found, (offset, seconds)


@pytest.mark.parametrize(("query", "detail"), [
    ("since=2026-11-28T10:00:00", ("query.since: '2026-11-28T10:00:00' has no time zone, so which moment it is "
                                   "depends on where it is read; add one, such as 2026-11-28T10:00:00Z for UTC")),
    ("since=2026-11-28", "add one, such as 2026-11-28T00:00:00Z for UTC (in a URL, write an offset's + as %2B)"),
    ("until=yesterday", ("query.until: 'yesterday' is not a time in ISO 8601; give one with a time zone, such as "
                         "2026-11-28T08:00:00Z or 2026-11-28T09:00:00+01:00")),
    ("until=2026-11-28T10:00:00 1", "is not a time in ISO 8601"),  # only an offset's '+' is put back
    ("since=0001-01-01T00:00:00%2B14:00", "query.since"),
    ("until=9999-12-31T23:00:00-14:00", "query.until"),
    # A number would otherwise be read as a Unix time: 20261128 as 1970-08-23, filtering out nothing.
    ("since=20261128", "query.since: give the time in ISO 8601 with a time zone, such as 2026-11-28T08:00:00Z"),
    ("until=0.5", "query.until: give the time in ISO 8601"),
    # Swapped, the window holds nothing, and an empty list would look like a quiet line.
    ("since=2026-12-04T00:00:00Z&until=2026-12-01T00:00:00Z", ("query.since: 2026-12-04T00:00:00+00:00 is not "
     "before ?until= (2026-12-01T00:00:00+00:00), so no result could match; did you swap them?")),
    ("since=2026-12-01T10:00:00%2B01:00&until=2026-12-01T09:00:00Z", "is not before ?until="),  # the same moment
])
def test_bad_times_are_422(client, query, detail):
    assert_problem(client.get(f"/results?{query}"), 422, detail)


@pytest.mark.parametrize(("query", "detail"), [
    # Ignored, the typo listed every result, the normal ones too.
    ("anomolous=true", ("unknown query parameter 'anomolous'; /results accepts limit, before, anomalous, source, "
                        "ref, since, until, review")),
    ("anomalous=true&Source=line-3&lmit=5", "unknown query parameters 'Source', 'lmit'; /results accepts"),
    ("&".join(f"p{i:03}=1" for i in range(1000)), ("unknown query parameters 'p000', 'p001', 'p002', 'p003', "
                                                   "'p004' and 995 more; /results accepts")),
    ("x" * 10_000 + "=1", f"unknown query parameter '{'x' * 40}...'; /results accepts"),
])
def test_unknown_listing_parameters_are_422_not_ignored(client, normal_pixels, query, detail):
    _score(client, normal_pixels)
    assert_problem(client.get(f"/results?{query}"), 422, detail)


@pytest.mark.parametrize(("path", "query", "detail"), [
    # Only the last would count: one line's results listed as if they were both lines'.
    ("/results", "source=line-3&source=line-4",
     "query parameter 'source' is given 2 times ('line-3', 'line-4'); it takes one value, so give it once"),
    ("/results", "&".join(["limit=5"] * 1000),
     "query parameter 'limit' is given 1000 times ('5', '5', '5', '5', '5' and 995 more)"),
    ("/results/summary", "every=day&every=hour", "query parameter 'every' is given 2 times ('day', 'hour')"),
    ("/results/export", "since=" + "x" * 100 + "&since=y", f"('{'x' * 40}...', 'y')"),
])
def test_repeated_parameters_are_422_not_resolved_silently(client, normal_pixels, path, query, detail):
    _score(client, normal_pixels, "?source=line-3")
    assert_problem(client.get(f"{path}?{query}"), 422, detail)


def test_the_summary_counts_results_per_source_and_model_version(client, normal_pixels, anomalous_pixels):
    empty = client.get("/results/summary").json()
    assert empty == {"count": 0, "anomalies": 0, "anomaly_rate": None, "anomaly_rate_interval": None,
                     "first_at": None, "last_at": None, "reviewed": 0, "false_alarms": 0, "missed_anomalies": 0,
                     "unreviewed_flags": 0, "groups": []}
    first = _score(client, normal_pixels, "?source=line-3")
    _score(client, anomalous_pixels, "?source=line-3")
    _score(client, normal_pixels, "?source=line-3")
    _score(client, anomalous_pixels, "?source=line-4")
    last = _score(client, normal_pixels)

    summary = client.get("/results/summary").json()
    assert (summary["count"], summary["anomalies"], summary["anomaly_rate"]) == (5, 2, 0.4)
    assert summary["anomaly_rate_interval"] == pytest.approx([0.1176, 0.7693], abs=1e-4)  # Wilson, 2 of 5
    assert (summary["first_at"], summary["last_at"]) == (first["created_at"], last["created_at"])
    model = {"name": "tiny", "version": 1}
    assert [(g["source"], g["model"], g["count"], g["anomalies"]) for g in summary["groups"]] == [
        (None, model, 1, 0), ("line-3", model, 3, 1), ("line-4", model, 1, 1)]
    assert summary["groups"][1]["anomaly_rate"] == pytest.approx(1 / 3)
    assert summary["groups"][1]["first_at"] == first["created_at"]

    line_3 = client.get("/results/summary?source=line-3").json()
    assert (line_3["count"], line_3["anomalies"], len(line_3["groups"])) == (3, 1, 1)
    recent = client.get("/results/summary", params={"since": last["created_at"]}).json()
    assert (recent["count"], recent["groups"][0]["source"]) == (1, None)
    older = client.get("/results/summary", params={"until": last["created_at"]}).json()
    assert older["count"] == 4


def test_the_summary_separates_model_versions(client, store, normal_pixels):
    _score(client, normal_pixels, "?source=line-3")
    publish_copy(store, 2)
    wait_until_ready(client, version=2)
    _score(client, normal_pixels, "?source=line-3&threshold=-1e9")  # flagged by this request's threshold
    groups = client.get("/results/summary").json()["groups"]
    assert [(g["model"]["version"], g["count"], g["anomalies"]) for g in groups] == [(1, 1, 0), (2, 1, 1)]


@pytest.mark.parametrize(("query", "detail"), [
    ("since=yesterday", "query.since: 'yesterday' is not a time in ISO 8601"),
    ("until=1764316800", "query.until: give the time in ISO 8601"),
    ("source=" + "x" * 65, f"query.source: Value error, '{'x' * 65}' is not a source name"),
    ("anomalous=true", "unknown query parameter 'anomalous'; /results/summary accepts source, since, until, every, tz"),
    ("every=week", "query.every: Input should be 'hour' or 'day'"),
    ("tz=Europe/Berlin", "query.tz: sets the time zone of ?every= periods; add every=hour or every=day"),
    ("every=day&tz=Europe/Berln", "query.tz: 'Europe/Berln' is not a time zone; give an IANA name"),
    ("every=day&tz=" + "x" * 65, "query.tz: String should have at most 64 characters"),
    ("since=2026-12-04T00:00:00Z&until=2026-12-01T00:00:00Z", "query.since: 2026-12-04T00:00:00+00:00 is not before"),
])
def test_bad_summary_parameters_are_422(client, query, detail):
    assert_problem(client.get(f"/results/summary?{query}"), 422, detail)


@pytest.mark.parametrize(("anomalies", "count", "interval"), [
    (0, 12, [0.0, 0.2425]),       # no anomaly yet, but 12 images cannot rule out a rate of 24 %
    (12, 12, [0.7575, 1.0]),
    (1, 3, [0.0615, 0.7923]),
    (12, 1000, [0.0069, 0.0209]),
])
def test_the_rate_interval_is_wilsons(anomalies, count, interval):
    assert wilson_interval(anomalies, count) == pytest.approx(interval, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_the_summary_counts_per_hour_or_day(client, normal_pixels, anomalous_pixels):
    first = _score(client, normal_pixels, "?source=line-3")
    _score(client, anomalous_pixels, "?source=line-3")
    hour, day = first["created_at"][:13] + ":00:00+00:00", first["created_at"][:10] + "T00:00:00+00:00"
    for every, period in (("hour", hour), ("day", day)):
        summary = client.get(f"/results/summary?every={every}").json()
        # Two results scored within a second can straddle the hour (or day) in rare cases.
        assert sum(g["count"] for g in summary["groups"]) == summary["count"] == 2
        assert summary["groups"][0]["period"] == period and summary["groups"][0]["source"] == "line-3"
    assert client.get("/results/summary").json()["groups"][0]["period"] is None


def test_the_summary_counts_per_local_day(client, normal_pixels):
    scored = _score(client, normal_pixels, "?source=line-3")
    local = dt.datetime.fromisoformat(scored["created_at"]).astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    summary = client.get("/results/summary?every=day&tz=Asia/Kolkata").json()
    assert [(g["period"], g["count"]) for g in summary["groups"]] == [(f"{local.date()}T00:00:00+05:30", 1)]
    hourly = client.get("/results/summary?every=hour&tz=Asia/Kolkata").json()
    assert hourly["groups"][0]["period"] == f"{local.date()}T{local.hour:02d}:00:00+05:30"


def test_a_summary_with_too_many_groups_is_refused(client, normal_pixels, monkeypatch):
    from app.api.routes import results as route
    monkeypatch.setattr(route, "MAX_SUMMARY_GROUPS", 1)
    _score(client, normal_pixels, "?source=line-3")
    assert client.get("/results/summary").status_code == 200
    _score(client, normal_pixels, "?source=line-4")
    assert_problem(client.get("/results/summary?every=hour"), 422,
                   "more than 1 groups; narrow it with ?since=, ?until= or ?source=, or count per day")


def _export(client, query: str = "", headers: dict | None = None) -> list[dict]:
    response = client.get(f"/results/export{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="results.csv"'
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_export_is_csv_of_every_matching_result_oldest_first(client, normal_pixels, anomalous_pixels, monkeypatch):
    from app.api.routes import results as route
    monkeypatch.setattr(route, "EXPORT_PAGE_ROWS", 2)  # so that 5 results take three pages
    scored = [_score(client, pixels, f"?source=line-{i % 2}&ref=SN-{i}")
              for i, pixels in enumerate([normal_pixels, anomalous_pixels] * 2 + [normal_pixels])]
    rows = _export(client)
    assert [row["id"] for row in rows] == [s["id"] for s in scored]
    assert rows[1] == {"id": scored[1]["id"], "created_at": scored[1]["created_at"], "source": "line-1",
                       "ref": "SN-1", "is_anomaly": "true", "score": repr(scored[1]["score"]),
                       "threshold": repr(scored[1]["threshold"]), "p_value": repr(scored[1]["p_value"]),
                       "score_method": scored[1]["score_method"], "threshold_source": "model",
                       "target_fpr": repr(scored[1]["target_fpr"]), "model_name": "tiny", "model_version": "1",
                       "review": "", "reviewer": "", "reviewed_at": "", "review_note": "",
                       "review_api_key": ""}
    assert [row["ref"] for row in _export(client, "?source=line-0")] == ["SN-0", "SN-2", "SN-4"]
    assert [row["ref"] for row in _export(client, "?anomalous=true")] == ["SN-1", "SN-3"]
    assert [row["ref"] for row in _export(client, f"?since={quote(scored[3]['created_at'])}")] == ["SN-3", "SN-4"]
    assert _export(client, "?source=line-9") == []
    assert client.get("/results/export?source=line-9").text == ",".join(CSV_COLUMNS) + "\r\n"


def test_the_export_keeps_a_clients_text_from_running_as_a_spreadsheet_formula(client, normal_pixels):
    _score(client, normal_pixels, "?ref=" + quote('=HYPERLINK("http://evil.example","x")'))
    _score(client, normal_pixels, "?ref=" + quote("a, \"quoted\" ref"))
    _score(client, normal_pixels, "?source=-line&ref=-1")
    assert [(row["source"], row["ref"]) for row in _export(client)] == [
        ("", '\'=HYPERLINK("http://evil.example","x")'), ("", 'a, "quoted" ref'), ("'-line", "'-1")]


@pytest.mark.parametrize(("query", "detail"), [
    ("limit=10", ("unknown query parameter 'limit'; /results/export accepts anomalous, source, ref, since, "
                  "until, review")),
    ("since=yesterday", "query.since: 'yesterday' is not a time in ISO 8601"),
    ("since=1764316800", "query.since: give the time in ISO 8601"),
    ("anomalous=maybe", "query.anomalous: Input should be a valid boolean"),
    ("since=2026-12-04T00:00:00Z&until=2026-12-04T00:00:00Z", "is not before ?until="),
])
def test_bad_export_parameters_are_422(client, query, detail):
    assert_problem(client.get(f"/results/export?{query}"), 422, detail)
