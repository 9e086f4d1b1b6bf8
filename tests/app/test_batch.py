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
    from app.api import uploads
    decoded_on = record_threads(monkeypatch, uploads, "decode_image")
    assert client.post("/score/batch", files=_files(*[png_bytes(normal_pixels)] * 3)).status_code == 200
    assert len(decoded_on) == 3 and all(name.startswith("vae-decode") for name in decoded_on)
    # JSON pixels too: up to 256 images of 784 values, parsed and checked value by value
    read_on = record_threads(monkeypatch, uploads, "pixels_from_json")
    assert client.post("/score/batch", json={"pixels": [normal_pixels.tolist()] * 3}).status_code == 200
    assert len(read_on) == 3 and all(name.startswith("vae-decode") for name in read_on)


def test_batch_over_the_maximum_is_422(start_client, normal_pixels):
    client = start_client(max_batch=2)
    response = client.post("/score/batch", files=_files(*[png_bytes(normal_pixels)] * 3))
    assert_problem(response, 422, "too many images: 3 sent, at most 2 per request (VAE_MAX_BATCH)")
    response = client.post("/score/batch", json={"pixels": [normal_pixels.tolist()] * 3})
    assert_problem(response, 422, "too many images: 3 sent, at most 2 per request (VAE_MAX_BATCH)")


def test_batch_needs_multipart_files_or_json_pixels(client, normal_pixels):
    assert_problem(client.post("/score/batch", content=b"x", headers={"content-type": "image/png"}), 415,
                   "content type 'image/png' is not accepted; send multipart/form-data, one part per image, all "
                   """named 'files', or application/json {"pixels": [image, ...]}""")
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
    assert_problem(response, 422, "in /score/batch each image's ref is its file name, or with JSON pixels its "
                                  'entry in "refs"')


def test_json_pixels_of_many_images_score_as_the_same_images_sent_as_files(client, normal_pixels, anomalous_pixels):
    # A pipeline's NumPy batch, x.tolist() of an N x 28 x 28 array, with its serial numbers
    images = [normal_pixels, anomalous_pixels, normal_pixels]
    as_json = client.post("/score/batch?source=line-3", json={"pixels": [image.tolist() for image in images],
                                                              "refs": ["SN-1", "SN-2", None]})
    assert as_json.status_code == 200, as_json.text
    as_files = client.post("/score/batch", files=_files(*[png_bytes(image) for image in images])).json()
    body = as_json.json()
    assert (body["n_scored"], body["n_failed"]) == (3, 0)
    scores = [item["result"]["score"] for item in body["items"]]
    assert scores == pytest.approx([item["result"]["score"] for item in as_files["items"]], rel=1e-5)
    assert [item["result"]["ref"] for item in body["items"]] == ["SN-1", "SN-2", None]
    assert {item["result"]["source"] for item in body["items"]} == {"line-3"}
    assert [item["filename"] for item in body["items"]] == [None, None, None]
    assert client.get("/results?ref=SN-2").json()["items"][0]["id"] == body["items"][1]["result"]["id"]
    inverted = client.post("/score/batch?invert=true", json={"pixels": [(255 - normal_pixels).tolist()]}).json()
    assert inverted["items"][0]["result"]["score"] == pytest.approx(scores[0], rel=1e-5)


def test_a_malformed_image_in_a_json_batch_is_its_own_error_and_the_rest_are_scored(client, normal_pixels):
    short_row = normal_pixels.tolist()
    short_row[3] = short_row[3][:27]
    body = client.post("/score/batch", json={"pixels": [normal_pixels.tolist(), short_row, [[300] * 28] * 28]}).json()
    assert (body["n_scored"], body["n_failed"]) == (1, 2)
    assert body["items"][1]["error"]["detail"] == "pixels row 3 must have 28 values, got 27"
    assert "outside 0-255" in body["items"][2]["error"]["detail"]


@pytest.mark.parametrize("document, detail", [
    ({"pixels": [[0] * 28] * 28}, ('"pixels" is one image (28x28); /score/batch takes a list of images, '
                                   '{"pixels": [image, ...]}')),
    ({"pixels": [[[[0]] * 28] * 28] * 2}, ('"pixels" has the shape 2x28x28x1; send 2 images of 28x28, without '
                                          "the channel axis (in NumPy, x.squeeze(-1).tolist())")),
    ({"pixels": []}, '"pixels" must be a list of images, each 28 rows of 28 values; got an empty list'),
    ({"pixels": "iVBORw0KGgo"}, '"pixels" must be a list of images, each 28 rows of 28 values; got str'),
    ({"images": []}, 'the JSON body must be an object with a "pixels" field: a list of images'),
    ({"pixels": [[[0] * 28] * 28], "source": "line-3"}, "the JSON body has 'source' besides \"pixels\" and \"refs\""),
    ({"pixels": [[[0] * 28] * 28] * 2, "refs": ["a"]}, '"refs" must be a list of one ref per image (2), or null'),
    ({"pixels": [[[0] * 28] * 28], "refs": ["line\nbreak"]}, "refs[0]: Value error, must be printable text"),
    ({"pixels": [[[0] * 28] * 28], "refs": [""]}, "refs[0]: String should have at least 1 character"),
])
def test_what_is_wrong_with_a_whole_json_batch_is_422(client, document, detail):
    assert_problem(client.post("/score/batch", json=document), 422, detail)
