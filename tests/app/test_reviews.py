"""PUT/DELETE /results/{id}/review: a person's verdict, stored with the result, listed, exported and counted."""

import datetime as dt
import hashlib
import json

import pytest

from app.errors import StoreUnavailable
from app.results import ResultStore
from tests.app.conftest import png_bytes
from tests.app.test_results import _export, _score
from tests.app.test_score import assert_problem


def _review(client, result_id: str, **body):
    response = client.put(f"/results/{result_id}/review", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_review_is_stored_with_the_result_and_says_whether_it_agrees(client, normal_pixels, anomalous_pixels):
    flagged = _score(client, anomalous_pixels, "?source=line-3")
    assert flagged["is_anomaly"] and flagged["review"] is None
    before = dt.datetime.now(dt.UTC)
    reviewed = _review(client, flagged["id"], verdict="normal", note="glare on the lens;\nthe part is fine",
                       reviewer="anna.k")
    review = reviewed["review"]
    assert review["verdict"] == "normal" and review["agrees"] is False  # a false alarm
    assert review["note"] == "glare on the lens;\nthe part is fine" and review["reviewer"] == "anna.k"
    assert before <= dt.datetime.fromisoformat(review["reviewed_at"]) <= dt.datetime.now(dt.UTC)
    changes = {"review", "etag"}  # a review changes the review, and so the tag; nothing else of the result
    assert {k: v for k, v in reviewed.items() if k not in changes} == {k: v for k, v in flagged.items()
                                                                          if k not in changes}
    assert reviewed["etag"] != flagged["etag"]
    assert client.get(f"/results/{flagged['id']}").json() == reviewed

    # A second review replaces the first; the fields it leaves out are cleared, not kept.
    again = _review(client, flagged["id"], verdict="anomalous")["review"]
    assert (again["verdict"], again["agrees"], again["note"], again["reviewer"]) == ("anomalous", True, None, None)

    normal = _score(client, normal_pixels)
    assert _review(client, normal["id"], verdict="anomalous")["review"]["agrees"] is False  # a missed defect
    assert _review(client, normal["id"], verdict="normal")["review"]["agrees"] is True


def test_a_review_can_be_withdrawn(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    _review(client, scored["id"], verdict="normal")
    response = client.delete(f"/results/{scored['id']}/review")
    assert response.status_code == 200, response.text
    assert response.json() == scored
    assert client.get(f"/results/{scored['id']}").json()["review"] is None


def test_every_review_and_withdrawal_stays_in_the_results_history(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    assert client.get(f"/results/{scored['id']}/reviews").json() == {"items": []}
    first = _review(client, scored["id"], verdict="normal", note="looked fine", reviewer="anna.k")["review"]
    second = _review(client, scored["id"], verdict="anomalous", note="hairline crack", reviewer="ben")["review"]
    client.delete(f"/results/{scored['id']}/review")
    history = client.get(f"/results/{scored['id']}/reviews").json()["items"]
    assert [(h["verdict"], h["note"], h["reviewer"]) for h in history] == [
        ("normal", "looked fine", "anna.k"), ("anomalous", "hairline crack", "ben"), (None, None, None)]
    assert [h["reviewed_at"] for h in history[:2]] == [first["reviewed_at"], second["reviewed_at"]]
    assert history[1]["reviewed_at"] <= history[2]["reviewed_at"]
    assert_problem(client.get("/results/" + "0" * 32 + "/reviews"), 404, "no result with id")


def test_the_work_list_and_the_false_alarms_are_filters_of_the_log(client, normal_pixels, anomalous_pixels):
    flagged = [_score(client, anomalous_pixels)["id"] for _ in range(3)]
    passed = _score(client, normal_pixels)["id"]
    _review(client, flagged[0], verdict="normal")
    _review(client, flagged[1], verdict="anomalous")

    def listed(query: str) -> list[str]:
        return [item["id"] for item in client.get(f"/results?{query}").json()["items"]]

    assert listed("anomalous=true&review=none") == [flagged[2]]  # nobody has looked at it yet
    assert listed("anomalous=true&review=normal") == [flagged[0]]  # the false alarms
    assert listed("review=anomalous") == [flagged[1]]
    assert listed("review=any") == [flagged[1], flagged[0]]
    assert listed("review=none") == [passed, flagged[2]]
    assert listed("anomalous=true&review=none&limit=1") == [flagged[2]]


def test_the_export_carries_the_reviews(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    _score(client, anomalous_pixels)
    review = _review(client, scored["id"], verdict="normal", note="=cmd|' /C calc'!A0", reviewer="@anna")["review"]
    rows = _export(client)
    assert {k: rows[0][k] for k in ("review", "reviewer", "reviewed_at", "review_note")} == {
        "review": "normal", "reviewer": "'@anna", "reviewed_at": review["reviewed_at"],
        "review_note": "'=cmd|' /C calc'!A0"}  # kept from running as a spreadsheet formula
    assert (rows[1]["review"], rows[1]["review_note"]) == ("", "")
    assert [row["id"] for row in _export(client, "?review=normal")] == [scored["id"]]


def test_the_summary_counts_reviews_false_alarms_missed_anomalies_and_flags_to_review(client, normal_pixels,
                                                                                       anomalous_pixels):
    flagged = [_score(client, anomalous_pixels, "?source=line-3")["id"] for _ in range(3)]
    passed = [_score(client, normal_pixels, "?source=line-3")["id"] for _ in range(2)]
    _score(client, anomalous_pixels, "?source=line-4")
    _review(client, flagged[0], verdict="normal")
    _review(client, flagged[1], verdict="normal")
    _review(client, flagged[2], verdict="anomalous")
    _review(client, passed[0], verdict="anomalous")
    _review(client, passed[1], verdict="normal")

    def counts(body: dict) -> tuple:
        return (body["count"], body["anomalies"], body["reviewed"], body["false_alarms"], body["missed_anomalies"],
                body["unreviewed_flags"])

    summary = client.get("/results/summary").json()
    assert counts(summary) == (6, 4, 5, 2, 1, 1)
    assert [counts(g) for g in summary["groups"]] == [(5, 3, 5, 2, 1, 0), (1, 1, 0, 0, 0, 1)]
    daily = client.get("/results/summary?every=day&tz=Europe/Berlin").json()
    assert counts(daily) == (6, 4, 5, 2, 1, 1)
    # A withdrawn review puts its flag back among those to review.
    assert client.delete(f"/results/{flagged[0]}/review").status_code == 200
    assert counts(client.get("/results/summary?source=line-3").json()) == (5, 3, 4, 1, 1, 1)


def test_reviews_are_counted_in_the_metrics(client, normal_pixels, anomalous_pixels):
    _review(client, _score(client, anomalous_pixels)["id"], verdict="normal")
    _review(client, _score(client, normal_pixels)["id"], verdict="normal")
    metrics = client.get("/metrics").text
    assert 'vae_reviews_total{agreement="disagrees",verdict="normal"} 1.0' in metrics
    assert 'vae_reviews_total{agreement="agrees",verdict="normal"} 1.0' in metrics


def test_the_backlog_of_unreviewed_flags_is_a_metric(client, normal_pixels, anomalous_pixels, monkeypatch):
    flagged = [_score(client, anomalous_pixels)["id"] for _ in range(2)]
    _score(client, normal_pixels)
    assert "vae_unreviewed_flags 2.0" in client.get("/metrics").text
    _review(client, flagged[0], verdict="normal")
    assert "vae_unreviewed_flags 1.0" in client.get("/metrics").text

    def unreadable(self):
        raise StoreUnavailable("the results store failed")

    monkeypatch.setattr(ResultStore, "unreviewed_flags", unreadable)
    response = client.get("/metrics")  # the other metrics still reach Prometheus
    assert response.status_code == 200 and "vae_unreviewed_flags NaN" in response.text
    assert "vae_reviews_total" in response.text


def test_reviews_of_unknown_or_malformed_ids(client):
    assert_problem(client.put("/results/" + "0" * 32 + "/review", json={"verdict": "normal"}), 404,
                   "no result with id")
    assert_problem(client.delete("/results/" + "0" * 32 + "/review"), 404, "no result with id")
    assert_problem(client.put("/results/nope/review", json={"verdict": "normal"}), 422, "is not a result id")


@pytest.mark.parametrize(("body", "headers", "status", "detail"), [
    ({"verdict": "fine"}, None, 422, "body.verdict: Input should be 'normal' or 'anomalous'"),
    ({}, None, 422, "body.verdict: Field required"),
    ({"verdict": "normal", "verdit": "x"}, None, 422, "body.verdit: Extra inputs are not permitted"),
    ({"verdict": "normal", "note": "x" * 1001}, None, 422, "body.note: String should have at most 1000"),
    ({"verdict": "normal", "note": ""}, None, 422, "body.note: String should have at least 1"),
    ({"verdict": "normal", "note": "bell\x07"}, None, 422, "body.note: Value error, must be printable text"),
    ({"verdict": "normal", "reviewer": "anna\nk"}, None, 422, "body.reviewer: Value error, must be printable"),
    ({"verdict": "normal", "reviewer": 7}, None, 422, "body.reviewer: Input should be a valid string"),
    (["normal"], None, 422, "the JSON body must be an object"),
    ("{verdict: normal", {"Content-Type": "application/json"}, 400, "the JSON body does not parse"),
    ("verdict=normal", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "content type 'application/x-www-form-urlencoded' is not accepted"),
    ("[" * 10_000, {"Content-Type": "application/json"}, 400, "nested too deeply"),
    # json.loads keeps the last of two values: the review would be stored as whichever came last.
    ('{"verdict": "normal", "verdict": "anomalous"}', {"Content-Type": "application/json"}, 422,
     "the JSON body gives 'verdict' more than once; give each field once"),
    ({"verdict": "normal", "reviewer": "   "}, None, 422, "body.reviewer: Value error, must not be blank"),
    ({"verdict": "normal", "note": " \n\t"}, None, 422, "body.note: Value error, must not be blank"),
    (json.dumps({"verdict": "normal", "note": "x" * 20_000}), {"Content-Type": "application/json"}, 413,
     "the JSON body is 20033 bytes"),
])
def test_bad_reviews_are_4xx_and_change_nothing(client, anomalous_pixels, body, headers, status, detail):
    scored = _score(client, anomalous_pixels)
    sent = {"content": body} if isinstance(body, str) else {"json": body}
    response = client.put(f"/results/{scored['id']}/review", headers=headers, **sent)
    assert_problem(response, status, detail)
    if detail.startswith("body."):  # field by field too, as for any request FastAPI validates
        assert response.json()["errors"][0]["loc"] == detail.split(":")[0].split(".")
    assert client.get(f"/results/{scored['id']}").json()["review"] is None


def test_unknown_review_filters_and_parameters_are_422(client, anomalous_pixels):
    assert_problem(client.get("/results?review=maybe"), 422, "query.review: Input should be 'normal', 'anomalous'")
    scored = _score(client, anomalous_pixels)
    assert_problem(client.put(f"/results/{scored['id']}/review?verdict=normal", json={"verdict": "normal"}), 422,
                   "unknown query parameter 'verdict'")


def test_a_retry_after_a_review_replays_the_result_as_stored_now(client, anomalous_pixels):
    def send():
        return client.post("/score", files={"file": ("x.png", png_bytes(anomalous_pixels), "image/png")},
                           headers={"Idempotency-Key": "reviewed-retry-1"})

    first = send().json()
    reviewed = _review(client, first["id"], verdict="normal")
    retry = send()
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json() == reviewed


def test_with_api_keys_a_review_records_the_name_of_the_key_it_was_sent_with(start_client, anomalous_pixels):
    anna, desk = "anna-key-0123456789abcdef", "desk-key-0123456789abcdef"
    client = start_client(api_keys=f"anna.k {anna},{desk}")
    image = {"file": ("x.png", png_bytes(anomalous_pixels), "image/png")}
    scored = client.post("/score", files=image, headers={"Authorization": f"Bearer {desk}"}).json()
    url = f"/results/{scored['id']}/review"

    # The reviewer's name is what the client says; the key's name is what the service vouches for.
    review = client.put(url, json={"verdict": "normal", "reviewer": "ben"},
                        headers={"Authorization": f"Bearer {anna}"}).json()["review"]
    assert (review["reviewer"], review["api_key"]) == ("ben", "anna.k")
    client.delete(url, headers={"Authorization": f"Bearer {desk}"})
    history = client.get(f"{url}s", headers={"Authorization": f"Bearer {anna}"}).json()["items"]
    unnamed = "key-" + hashlib.sha256(desk.encode()).hexdigest()[:8]
    assert [(h["verdict"], h["api_key"]) for h in history] == [("normal", "anna.k"), (None, unnamed)]
    client.put(url, json={"verdict": "anomalous"}, headers={"Authorization": f"Bearer {desk}"})
    rows = _export(client, "", headers={"Authorization": f"Bearer {anna}"})
    assert (rows[0]["review"], rows[0]["review_api_key"]) == ("anomalous", unnamed)


def test_without_api_keys_a_review_has_no_key_name(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    assert _review(client, scored["id"], verdict="normal")["review"]["api_key"] is None


def test_a_review_sent_with_if_match_is_written_only_over_the_review_its_sender_saw(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    seen = client.get(path).headers["etag"]
    first = client.put(f"{path}/review", json={"verdict": "normal", "reviewer": "anna.k"}, headers={"If-Match": seen})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] != seen and first.headers["etag"] == client.get(path).headers["etag"]

    # Ben looked at the same flag before Anna's review: his write would replace hers unseen.
    late = client.put(f"{path}/review", json={"verdict": "anomalous", "reviewer": "ben"}, headers={"If-Match": seen})
    assert_problem(late, 412, "has been reviewed or its review withdrawn since you read it")
    assert late.headers["etag"] == first.headers["etag"]  # what to read again, and send next time
    assert client.get(path).json()["review"]["reviewer"] == "anna.k"
    assert len(client.get(f"{path}/reviews").json()["items"]) == 1  # nothing written, not even to the history
    assert_problem(client.delete(f"{path}/review", headers={"If-Match": seen}), 412, "nothing was written")
    assert client.get(path).json()["review"]["reviewer"] == "anna.k"

    # With the new tag, or a list holding it, or *, the write goes through.
    withdrawn = client.delete(f"{path}/review", headers={"If-Match": f'"0", {first.headers["etag"]}'})
    assert withdrawn.status_code == 200 and withdrawn.json()["review"] is None
    assert client.put(f"{path}/review", json={"verdict": "anomalous"}, headers={"If-Match": "*"}).status_code == 200
    assert client.put(f"{path}/review", json={"verdict": "normal"}).status_code == 200  # no If-Match: unconditional


def test_the_etag_follows_the_review_and_not_the_way_there(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    unreviewed = client.get(path).headers["etag"]
    assert unreviewed.startswith('"') and unreviewed.endswith('"')
    reviewed = client.put(f"{path}/review", json={"verdict": "normal"}).headers["etag"]
    assert client.get(path).headers["etag"] == reviewed != unreviewed
    assert client.delete(f"{path}/review").headers["etag"] == unreviewed  # unreviewed again: as it was
    again = client.put(f"{path}/review", json={"verdict": "normal"}).headers["etag"]
    assert again != reviewed  # the same verdict given again is another review (another time)


def test_every_answer_that_carries_a_result_carries_its_etag_for_a_review_without_reading_it_again(
        client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    assert scored["etag"] == client.get(path).headers["etag"]
    [listed] = client.get("/results", params={"anomalous": "true", "review": "none"}).json()["items"]
    assert listed["etag"] == scored["etag"]

    # The tag of the list is the tag of a conditional review: the reviewer of the work list needs no second read.
    first = client.put(f"{path}/review", json={"verdict": "normal"}, headers={"If-Match": listed["etag"]})
    assert first.status_code == 200, first.text
    assert first.json()["etag"] == first.headers["etag"] != listed["etag"]
    [relisted] = client.get("/results").json()["items"]
    assert relisted["etag"] == first.headers["etag"]
    late = client.put(f"{path}/review", json={"verdict": "anomalous"}, headers={"If-Match": listed["etag"]})
    assert_problem(late, 412, "nothing was written")
    withdrawn = client.delete(f"{path}/review", headers={"If-Match": relisted["etag"]})
    assert withdrawn.json()["etag"] == withdrawn.headers["etag"] == scored["etag"]  # unreviewed again


def test_a_tag_never_matches_another_result_though_neither_is_reviewed(client, anomalous_pixels):
    one, other = (_score(client, anomalous_pixels) for _ in range(2))
    assert one["etag"] != other["etag"]
    # A client that mixed up two cards of its list sends one's tag with the other's review.
    mixed_up = client.put(f"/results/{other['id']}/review", json={"verdict": "normal"},
                          headers={"If-Match": one["etag"]})
    assert_problem(mixed_up, 412, "nothing was written")
    assert client.get(f"/results/{other['id']}").json()["review"] is None


def test_a_weak_tag_passes_if_match_as_a_compressing_proxy_hands_it_on(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    tag = client.get(path).headers["etag"]
    # nginx's gzip passes the tag on as W/"...", and the client sends it back so
    first = client.put(f"{path}/review", json={"verdict": "normal"}, headers={"If-Match": f"W/{tag}"})
    assert first.status_code == 200, first.text
    late = client.put(f"{path}/review", json={"verdict": "anomalous"}, headers={"If-Match": f"W/{tag}"})
    assert_problem(late, 412, "nothing was written")  # weak or not, a stale tag is stale
    assert client.get(path).json()["review"]["verdict"] == "normal"


@pytest.mark.parametrize("value, detail", [
    ("abc123", "If-Match lists entity tags in double quotes, as the ETag header gives them"),
    ('"abc", def', "'def' is not one"),
    ("*, \"abc\"", "or is * alone"),
    ('"a b"', "is not one"),
    (" , ", "If-Match is empty"),
])
def test_a_malformed_if_match_is_a_400_and_changes_nothing(client, anomalous_pixels, value, detail):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    assert_problem(client.put(f"{path}/review", json={"verdict": "normal"}, headers={"If-Match": value}), 400, detail)
    assert_problem(client.delete(f"{path}/review", headers={"If-Match": value}), 400, detail)
    assert client.get(f"{path}/reviews").json() == {"items": []}


def test_if_match_on_an_unknown_result_is_a_404(client):
    response = client.put("/results/" + "0" * 32 + "/review", json={"verdict": "normal"}, headers={"If-Match": '"x"'})
    assert_problem(response, 404, "no result with id")


def test_if_none_match_answers_not_modified_until_the_review_changes(client, anomalous_pixels):
    scored = _score(client, anomalous_pixels)
    path = f"/results/{scored['id']}"
    first = client.get(path)
    assert first.headers["cache-control"] == "no-cache"
    tag = first.headers["etag"]
    same = client.get(path, headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    assert client.get(path, headers={"If-None-Match": f"W/{tag}"}).status_code == 304  # weak comparison
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    client.put(f"{path}/review", json={"verdict": "normal"})
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()["review"]["verdict"] == "normal"
    assert_problem(client.get(path, headers={"If-None-Match": "abc"}), 400, "If-None-Match lists entity tags")
