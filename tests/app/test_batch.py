import pytest

from tests.app.conftest import png_bytes, record_threads
from tests.app.test_score import assert_problem


def _files(*payloads):
    return [("files", (f"img{i}.png", data, "image/png")) for i, data in enumerate(payloads)]


def test_batch_scores_in_order_and_isolates_a_bad_item(client, normal_pixels, anomalous_pixels):
    good, bad = png_bytes(normal_pixels), b"not an image"
    response = client.post("/score/batch", files=_files(good, png_bytes(anomalous_pixels), bad, good))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n_scored"], body["n_failed"]) == (3, 1)
    assert [item["index"] for item in body["items"]] == [0, 1, 2, 3]
    assert [item["filename"] for item in body["items"]] == ["img0.png", "img1.png", "img2.png", "img3.png"]
    failed = body["items"][2]
    assert failed["result"] is None and failed["error"]["status"] == 400
    first, second, last = (body["items"][i]["result"] for i in (0, 1, 3))
    assert first["score"] == pytest.approx(last["score"]) and second["score"] > first["score"]
    single = client.post("/score", files={"file": ("a.png", good, "image/png")}).json()
    assert single["score"] == pytest.approx(first["score"], rel=1e-5)
    assert client.get(first["result_url"]).status_code == 200


def test_batch_applies_threshold_override_to_all(client, normal_pixels):
    body = client.post("/score/batch?threshold=0", files=_files(*[png_bytes(normal_pixels)] * 3)).json()
    assert all(item["result"]["is_anomaly"] for item in body["items"])


def test_batch_applies_invert_to_all(client, normal_pixels):
    single = client.post("/score", files={"file": ("a.png", png_bytes(normal_pixels), "image/png")}).json()
    body = client.post("/score/batch?invert=true", files=_files(*[png_bytes(255 - normal_pixels)] * 2)).json()
    assert [item["result"]["score"] for item in body["items"]] == pytest.approx([single["score"]] * 2, rel=1e-5)


def test_batch_frames_resized_images_as_single_requests_do(client, normal_pixels):
    from tests.app.test_score import _photo_of

    photo = _photo_of(normal_pixels)
    single = client.post("/score?resize=true&invert=true", files={"file": ("p.jpg", photo, "image/jpeg")}).json()
    body = client.post("/score/batch?resize=true&invert=true", files=_files(photo)).json()
    assert body["items"][0]["result"]["score"] == pytest.approx(single["score"], rel=1e-5)
    scan = client.post("/score/batch?resize=true", files=_files(photo)).json()["items"][0]  # not inverted
    assert scan["error"]["status"] == 422 and "background is light" in scan["error"]["detail"]


def test_batch_is_decoded_on_the_decode_pool(client, normal_pixels, monkeypatch):
    from app.api.routes import score
    decoded_on = record_threads(monkeypatch, score, "decode_image")
    assert client.post("/score/batch", files=_files(*[png_bytes(normal_pixels)] * 3)).status_code == 200
    assert len(decoded_on) == 3 and all(name.startswith("vae-decode") for name in decoded_on)


def test_batch_over_the_maximum_is_422(start_client, normal_pixels):
    client = start_client(max_batch=2)
    response = client.post("/score/batch", files=_files(*[png_bytes(normal_pixels)] * 3))
    assert_problem(response, 422, "too many files: 3 sent, at most 2")


def test_batch_needs_multipart_files(client, normal_pixels):
    assert_problem(client.post("/score/batch", json={"pixels": []}), 415,
                   "content type 'application/json' is not accepted; send the images as multipart/form-data")
    assert_problem(client.post("/score/batch"), 415, "content type '(none)' is not accepted")
    response = client.post("/score/batch", files={"file": ("a.png", png_bytes(normal_pixels), "image/png")})
    assert_problem(response, 422, "no parts named 'files' (it has a part named 'file')")


def test_a_batch_with_a_misnamed_part_is_422_not_scored_in_part(client, normal_pixels, anomalous_pixels):
    # Ignored, the part named 'file' would be an image the client believes scored.
    files = [*_files(png_bytes(normal_pixels)), ("file", ("b.png", png_bytes(anomalous_pixels), "image/png"))]
    response = client.post("/score/batch", files=files)
    assert_problem(response, 422, "multipart body has a part named 'file' besides the images; /score/batch takes "
                                  "only parts named 'files'")
    assert client.get("/results").json()["items"] == []


def test_batch_refuses_unknown_query_parameters(client, normal_pixels):
    response = client.post("/score/batch?resize=true&invrt=true", files=_files(png_bytes(normal_pixels)))
    assert_problem(response, 422, "unknown query parameter 'invrt'; /score/batch accepts")


def test_batch_items_carry_the_source_and_their_file_names_as_refs(client, normal_pixels):
    good = png_bytes(normal_pixels)
    body = client.post("/score/batch?source=camera-2", files=_files(good, b"not an image", good)).json()
    scored = [item["result"] for item in body["items"] if item["result"]]
    assert [(r["source"], r["ref"]) for r in scored] == [("camera-2", "img0.png"), ("camera-2", "img2.png")]
    listed = client.get("/results?source=camera-2&ref=img2.png").json()["items"]
    assert [item["id"] for item in listed] == [scored[1]["id"]]


def test_batch_refuses_one_ref_for_many_images(client, normal_pixels):
    response = client.post("/score/batch?ref=SN-1", files=_files(png_bytes(normal_pixels)))
    assert_problem(response, 422, "in /score/batch each image's ref is its file name")
