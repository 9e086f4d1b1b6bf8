"""A retry of POST /score or /score/batch with the same Idempotency-Key gets the first results, not stored again."""

import sqlite3
import threading

import pytest

from app.errors import InvalidInput
from app.idempotency import (
    batch_digest,
    item_index,
    item_key,
    parse_key,
    request_digest,
)
from tests.app.conftest import png_bytes
from tests.app.test_score import assert_problem


def _post(client, pixels, key: str | None, query: str = "", filename: str = "part.png"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/score{query}", files={"file": (filename, png_bytes(pixels), "image/png")}, headers=headers)


def _stored_count(client) -> int:
    return client.get("/results/summary").json()["count"]


def test_a_retry_gets_the_first_answer_and_stores_nothing_new(client, normal_pixels):
    first = _post(client, normal_pixels, "7f9c2ba4-e88f-4f1e-a0f6-0d1c1e2a3b4c", "?source=line-3")
    # httpx draws a new multipart boundary for every request: the retry's body differs byte for byte.
    retry = _post(client, normal_pixels, "7f9c2ba4-e88f-4f1e-a0f6-0d1c1e2a3b4c", "?source=line-3")
    _assert_replayed(client, first, retry, stored=1)


def _assert_replayed(client, first, retry, stored: int) -> None:
    """The retry got the first answer again, marked as replayed, and nothing more was stored or counted."""
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert _stored_count(client) == stored
    metrics = client.get("/metrics").text
    assert f"vae_images_scored_total {stored}.0" in metrics  # nor counted as other scored images
    assert "vae_idempotent_replays_total 1.0" in metrics


def test_without_a_key_every_request_is_scored_and_stored(client, normal_pixels):
    ids = {_post(client, normal_pixels, None).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and _stored_count(client) == 2


def test_the_quoted_form_of_the_draft_is_the_same_key(client, normal_pixels):
    first = _post(client, normal_pixels, "SN-0042-try")
    assert _post(client, normal_pixels, '"SN-0042-try"').json()["id"] == first.json()["id"]


@pytest.mark.parametrize("change", ["image", "query", "filename"])
def test_the_same_key_for_another_request_is_a_422(client, normal_pixels, anomalous_pixels, change):
    first = _post(client, normal_pixels, "key-1")
    assert first.status_code == 200
    pixels, query, filename = normal_pixels, "", "part.png"
    if change == "image":
        pixels = anomalous_pixels
    elif change == "query":
        query = "?fpr=0.5"
    else:
        filename = "other-part.png"  # another ref
    response = _post(client, pixels, "key-1", query, filename)
    assert_problem(response, 422, "Idempotency-Key 'key-1' was already used, at "
                                  f"{first.json()['created_at']}, for a request with another image")
    assert _stored_count(client) == 1


def _at_once(count: int, send) -> list:
    """The responses of `count` calls of `send`, released together from as many threads."""
    responses, start = [], threading.Barrier(count)

    def run():
        start.wait()
        responses.append(send())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [200] * count
    return responses


def test_concurrent_requests_with_one_key_store_one_result(client, normal_pixels):
    # Retries sent before the first answer arrives: each may pass the lookup, but only one row is stored.
    responses = _at_once(8, lambda: _post(client, normal_pixels, "burst"))
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert _stored_count(client) == 1


def test_json_pixels_are_idempotent_too(client, normal_pixels):
    body = {"pixels": normal_pixels.tolist()}
    first = client.post("/score", json=body, headers={"Idempotency-Key": "json-1"}).json()
    retry = client.post("/score", json=body, headers={"Idempotency-Key": "json-1"})
    assert retry.json()["id"] == first["id"] and retry.headers["Idempotent-Replayed"] == "true"


def _post_batch(client, parts: list[tuple[str, bytes]], key: str | None, query: str = ""):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/score/batch{query}", files=[("files", (name, data, "image/png")) for name, data in parts],
                       headers=headers)


def _ids(response) -> list[str | None]:
    return [item["result"] and item["result"]["id"] for item in response.json()["items"]]


@pytest.fixture
def batch_parts(normal_pixels, anomalous_pixels) -> list[tuple[str, bytes]]:
    # The middle file is not an image: it is answered with its own error, on the retry as the first time.
    return [("a.png", png_bytes(normal_pixels)), ("b.png", b"not an image"), ("c.png", png_bytes(anomalous_pixels))]


def test_a_retried_batch_gets_the_first_answer_and_stores_nothing_new(client, batch_parts):
    first = _post_batch(client, batch_parts, "batch-1", "?source=line-3")
    assert first.json()["n_scored"] == 2 and first.json()["items"][1]["error"]["status"] == 400
    retry = _post_batch(client, batch_parts, "batch-1", "?source=line-3")
    _assert_replayed(client, first, retry, stored=2)


@pytest.mark.parametrize("change", ["image", "order", "filename", "query", "one more file"])
def test_the_same_key_for_another_batch_is_a_422_and_stores_nothing(client, batch_parts, normal_pixels, change):
    first = _post_batch(client, batch_parts, "batch-2")
    parts, query = list(batch_parts), ""
    if change == "image":
        parts[0] = ("a.png", parts[2][1])
    elif change == "order":
        parts = parts[::-1]
    elif change == "filename":
        parts[2] = ("d.png", parts[2][1])
    elif change == "query":
        query = "?fpr=0.5"
    else:
        parts.append(("e.png", png_bytes(normal_pixels)))
    response = _post_batch(client, parts, "batch-2", query)
    assert_problem(response, 422, "Idempotency-Key 'batch-2' was already used, at "
                                  f"{first.json()['items'][0]['result']['created_at']}, for a request with another")
    assert _stored_count(client) == 2


def test_a_json_batch_is_idempotent_and_its_refs_are_part_of_the_request(client, normal_pixels, anomalous_pixels):
    body = {"pixels": [normal_pixels.tolist(), [[0] * 27] * 28, anomalous_pixels.tolist()], "refs": ["a", "b", "c"]}
    first = client.post("/score/batch", json=body, headers={"Idempotency-Key": "json-batch"})
    assert first.json()["n_scored"] == 2
    retry = client.post("/score/batch", json=body, headers={"Idempotency-Key": "json-batch"})
    _assert_replayed(client, first, retry, stored=2)
    renamed = client.post("/score/batch", json={**body, "refs": ["a", "b", "d"]},
                          headers={"Idempotency-Key": "json-batch"})
    assert_problem(renamed, 422, "Idempotency-Key 'json-batch' was already used")


def test_a_retry_of_a_batch_stored_in_part_stores_the_rest(client, make_settings, batch_parts):
    first = _post_batch(client, batch_parts, "batch-3").json()
    lost = first["items"][2]["result"]["id"]
    # As if the rows of the first answer had been committed in two transactions, and the second failed.
    with sqlite3.connect(make_settings().results_db) as database:
        database.execute("DELETE FROM results WHERE id = ?", (lost,))
    retry = _post_batch(client, batch_parts, "batch-3")
    assert retry.headers["Idempotent-Replayed"] == "true"
    ids = _ids(retry)
    assert ids[0] == first["items"][0]["result"]["id"] and ids[1] is None and ids[2] not in (None, lost)
    assert retry.json()["items"][2]["result"]["is_anomaly"] == first["items"][2]["result"]["is_anomaly"]
    assert _stored_count(client) == 2
    assert _ids(_post_batch(client, batch_parts, "batch-3")) == ids


def test_concurrent_batches_with_one_key_store_each_image_once(client, batch_parts):
    responses = _at_once(4, lambda: _post_batch(client, batch_parts, "batch-burst"))
    assert len({tuple(_ids(r)) for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert _stored_count(client) == 2


def test_keys_of_score_and_of_batches_are_separate(client, normal_pixels, batch_parts):
    single = _post(client, normal_pixels, "shared-key", filename="a.png")
    batch = _post_batch(client, batch_parts, "shared-key")
    assert single.status_code == batch.status_code == 200
    assert "Idempotent-Replayed" not in batch.headers and _stored_count(client) == 3


@pytest.mark.parametrize(("key", "detail"), [
    ("", "it has 0"),
    ('""', "it has 0"),
    ("k" * 256, "it has 256"),
    ("caf\u00e9", "it has others"),
])
def test_malformed_keys_are_422(client, normal_pixels, key, detail):
    response = client.post("/score", files={"file": ("a.png", png_bytes(normal_pixels), "image/png")},
                           headers={"Idempotency-Key": key.encode("latin-1")})
    assert_problem(response, 422, detail)
    assert _stored_count(client) == 0


def test_parse_key_and_request_digest():
    assert parse_key("k" * 255) == "k" * 255
    assert parse_key('"a b"') == "a b"
    with pytest.raises(InvalidInput):
        parse_key("a\tb")
    base = request_digest({"fpr": None, "ref": "a.png"}, b"image")
    assert base == request_digest({"ref": "a.png", "fpr": None}, b"image")  # order of parameters does not matter
    assert base != request_digest({"fpr": None, "ref": "b.png"}, b"image")
    assert base != request_digest({"fpr": None, "ref": "a.png"}, b"imagf")



def test_batch_digest_and_item_keys():
    base = batch_digest({"fpr": None}, [("a.png", b"ab"), ("b.png", b"c")])
    assert base == batch_digest({"fpr": None}, [("a.png", b"ab"), ("b.png", b"c")])
    assert base != batch_digest({"fpr": None}, [("a.png", b"a"), ("b.png", b"bc")])  # bytes moved between files
    assert base != batch_digest({"fpr": None}, [("b.png", b"ab"), ("a.png", b"c")])
    assert base != batch_digest({"fpr": 0.5}, [("a.png", b"ab"), ("b.png", b"c")])
    assert item_index(item_key("a\n1", 12)) == 12  # only a stored key holds the separator, never a sent one
    with pytest.raises(InvalidInput):
        parse_key(item_key("k", 0))


def test_with_api_keys_each_key_name_has_idempotency_keys_of_its_own(start_client, normal_pixels, anomalous_pixels,
                                                                     batch_parts):
    line_3, line_4, line_3_new = ("line-3-key-0123456789abcdef", "line-4-key-0123456789abcdef",
                                  "line-3-new-0123456789abcdef")
    client = start_client(api_keys=f"line-3 {line_3},line-4 {line_4},line-3 {line_3_new}")
    as_3, as_4, as_3_rotated = ({"Authorization": f"Bearer {key}"} for key in (line_3, line_4, line_3_new))

    def post(pixels, headers):
        return client.post("/score", files={"file": ("part.png", png_bytes(pixels), "image/png")},
                           headers={**headers, "Idempotency-Key": "order-42"})

    first = post(normal_pixels, as_3)
    # Line 4 happens to use the same key for another part: its own request, not line 3's result, nor a 422.
    other = post(anomalous_pixels, as_4)
    assert other.status_code == 200 and "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    # Line 3's retry, with its new key while rotating (the same name), gets its first answer again.
    retry = post(normal_pixels, as_3_rotated)
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    # Batches too; and a client's key reused for another request is still refused, naming the key as sent.
    files = [("files", (name, data, "image/png")) for name, data in batch_parts]
    batches = [client.post("/score/batch", files=files, headers={**h, "Idempotency-Key": "batch-7"})
               for h in (as_3, as_4, as_3)]
    assert _ids(batches[0]) != _ids(batches[1]) and _ids(batches[2]) == _ids(batches[0])
    assert_problem(post(anomalous_pixels, as_3), 422, "Idempotency-Key 'order-42' was already used")
    assert client.get("/results/summary", headers=as_3).json()["count"] == 6  # 2 single images, 2 x 2 in batches
