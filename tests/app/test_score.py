"""POST /score in every input form, threshold overrides, and every client error."""

import base64
import gzip
import io
import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.app.conftest import png_bytes, record_threads

PROBLEM = "application/problem+json"


def _score_file(client, data: bytes, query: str = "", filename="x.png", content_type="image/png"):
    return client.post(f"/score{query}", files={"file": (filename, data, content_type)})


def assert_problem(response, status: int, detail_part: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and detail_part in body["detail"], body


def test_multipart_png_gets_a_full_verdict(client, normal_pixels, tiny_model):
    response = _score_file(client, png_bytes(normal_pixels))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "tiny", "version": 1}
    assert body["threshold"] == pytest.approx(tiny_model.metadata["threshold"])
    assert body["threshold_source"] == "model" and body["target_fpr"] == 0.05
    assert body["is_anomaly"] == (body["score"] > body["threshold"])
    assert set(body["scores"]) == {"l1", "mse", "dssim", "neg_elbo", "unregularized", "kl", "latent_knn",
                                   "dssim_knn"}
    assert body["score"] == pytest.approx(body["scores"][body["score_method"]])
    assert 0 < body["p_value"] <= 1
    assert body["reconstruction_url"] == f"/reconstruction/{body['id']}"
    assert body["difference_url"] == f"/difference/{body['id']}"
    assert body["image_url"] == f"/image/{body['id']}"


def test_normal_and_anomalous_images_get_different_verdicts(client, normal_pixels, anomalous_pixels):
    normal = _score_file(client, png_bytes(normal_pixels)).json()
    anomalous = _score_file(client, png_bytes(anomalous_pixels)).json()
    assert anomalous["score"] > normal["score"]
    assert anomalous["p_value"] < normal["p_value"]
    assert anomalous["is_anomaly"] and not normal["is_anomaly"]


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGB"), ("JPEG", "L"), ("BMP", "RGB"), ("GIF", "P"),
                                       ("TIFF", "L"), ("WEBP", "RGB")])
def test_every_supported_format_is_accepted(client, normal_pixels, fmt, mode):
    reference = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    response = client.post("/score", content=png_bytes(normal_pixels, mode, fmt),
                           headers={"content-type": f"image/{fmt.lower()}"})
    assert response.status_code == 200, response.text
    tolerance = 0.5 if fmt in ("JPEG", "WEBP") else 1e-6  # lossy formats change pixels
    assert response.json()["score"] == pytest.approx(reference, rel=tolerance, abs=1e-4)


def test_a_sixteen_bit_image_scores_like_its_eight_bit_original(client, normal_pixels):
    reference = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    buffer = io.BytesIO()
    Image.fromarray(normal_pixels.astype(np.uint16) * 257).save(buffer, format="PNG")
    response = _score_file(client, buffer.getvalue())
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize("value, detail", [(1000.0, "must lie in 0-255, found 0 to 1000"),
                                           (np.nan, "NaN or infinite")])
def test_float_images_outside_0_255_are_422(client, normal_pixels, value, detail):
    pixels = normal_pixels.astype(np.float32)
    pixels[0, 0] = value
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="TIFF")
    assert_problem(_score_file(client, buffer.getvalue(), content_type="image/tiff"), 422, detail)


def test_images_scaled_to_0_1_are_422_not_scored_as_black(client, normal_pixels):
    # Read on 0-255, a "1" scaled to 0-1 for a network was black, and flagged (score 4.67 on the default model).
    scaled = normal_pixels / 255
    detail = "lie in 0-1 (the highest is 1); they are read on a scale of 0-255, where they are all but black"
    assert_problem(client.post("/score", json={"pixels": scaled.round(4).tolist()}), 422, "the pixels " + detail)
    for array in (scaled.astype(np.float32), (normal_pixels > 127).astype(np.int32)):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="TIFF")
        assert_problem(_score_file(client, buffer.getvalue(), content_type="image/tiff"), 422, detail)
    dark = np.zeros_like(normal_pixels)
    dark[14, 14] = 2  # as dark, but on 0-255: scored, as sent
    assert client.post("/score", json={"pixels": dark.tolist()}).status_code == 200
    assert client.post("/score", json={"pixels": np.zeros_like(normal_pixels).tolist()}).status_code == 200


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied(client, normal_pixels, fmt):
    upright = Image.fromarray(normal_pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as cameras held upright write it
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, format=fmt, exif=exif, quality=100)
    reference = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    rotated = _score_file(client, buffer.getvalue()).json()["score"]
    tolerance = 1e-5 if fmt == "PNG" else 0.5  # JPEG is lossy
    assert rotated == pytest.approx(reference, rel=tolerance, abs=1e-4)


@pytest.mark.parametrize(("fmt", "content_type"), [("TIFF", "image/tiff"), ("GIF", "image/gif"),
                                                  ("WEBP", "image/webp")])
def test_a_file_of_several_images_is_422_not_its_first_image_scored(client, normal_pixels, anomalous_pixels,
                                                                    fmt, content_type):
    # A scan's pages, or a GIF's frames: Pillow reads the first, a normal "1", and the anomaly after it went unseen
    buffer = io.BytesIO()
    Image.fromarray(normal_pixels).save(buffer, format=fmt, save_all=True,
                                        append_images=[Image.fromarray(anomalous_pixels)], lossless=True)
    response = _score_file(client, buffer.getvalue(), content_type=content_type)
    assert_problem(response, 422, f"the {fmt} file holds 2 images (pages or animation frames), and which one "
                                  "to read would be a guess: save each as its own file")


def test_a_phone_photo_with_a_preview_is_one_image(client, normal_pixels):
    # A JPEG with a second, smaller image in it (MPO, as phones write): its first image is the photo
    photo = Image.fromarray(normal_pixels).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format="MPO", save_all=True, append_images=[photo.resize((14, 14))], quality=100)
    reference = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    response = _score_file(client, buffer.getvalue(), filename="photo.jpg", content_type="image/jpeg")
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(reference, rel=0.5, abs=1e-4)  # JPEG is lossy


def test_transparent_pixels_count_as_background(client):
    transparent_white = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    buffer = io.BytesIO()
    transparent_white.save(buffer, format="PNG")
    black = _score_file(client, png_bytes(np.zeros((28, 28)))).json()["score"]
    assert _score_file(client, buffer.getvalue()).json()["score"] == pytest.approx(black)


def test_json_pixels_score_like_the_same_png(client, normal_pixels):
    from_png = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    response = client.post("/score", json={"pixels": normal_pixels.tolist()})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(from_png)


def test_wrong_size_needs_resize(client, normal_pixels):
    large = np.kron(normal_pixels, np.ones((2, 2)))  # 56x56
    assert_problem(_score_file(client, png_bytes(large)), 422, "image is 56x56; the model takes 28x28")
    response = _score_file(client, png_bytes(large), "?resize=true")
    assert response.status_code == 200, response.text
    original = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    assert response.json()["score"] == pytest.approx(original, rel=0.5)


def test_invert_scores_a_dark_on_light_image_like_the_original(client, normal_pixels):
    original = _score_file(client, png_bytes(normal_pixels)).json()
    dark_on_light = png_bytes(255 - normal_pixels)
    inverted = _score_file(client, dark_on_light, "?invert=true").json()
    assert inverted["score"] == pytest.approx(original["score"], rel=1e-5)
    as_sent = _score_file(client, dark_on_light).json()
    assert as_sent["score"] > original["score"] and as_sent["is_anomaly"]
    from_json = client.post("/score?invert=true", json={"pixels": (255 - normal_pixels).tolist()}).json()
    assert from_json["score"] == pytest.approx(original["score"], rel=1e-5)


def test_invert_keeps_transparent_pixels_as_background(client, normal_pixels):
    # Black ink on a transparent canvas: the ink is in the alpha channel, the colour is black throughout.
    ink = np.zeros((28, 28, 4), np.uint8)
    ink[..., 3] = normal_pixels
    buffer = io.BytesIO()
    Image.fromarray(ink, "RGBA").save(buffer, format="PNG")
    original = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    inverted = _score_file(client, buffer.getvalue(), "?invert=true").json()["score"]
    assert inverted == pytest.approx(original, rel=1e-3)


def _transparent_canvas_png(ink_level: int, alpha: np.ndarray) -> bytes:
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., :3] = ink_level
    rgba[..., 3] = alpha
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def test_black_ink_on_a_transparent_canvas_is_read_as_a_drawing_not_a_blank_image(client, normal_pixels):
    # An HTML canvas or drawing app saves a black "1" as black pixels whose alpha is the stroke. Made black,
    # its transparent canvas hid the ink: a blank image, flagged with nothing to see.
    drawing = _transparent_canvas_png(0, normal_pixels)
    scored = _score_file(client, drawing).json()
    seen = np.asarray(Image.open(io.BytesIO(client.get(scored["image_url"]).content)), np.int16)
    assert np.abs(seen - (255 - normal_pixels.astype(np.int16))).max() <= 1  # as a browser shows it
    enlarged = _transparent_canvas_png(0, np.kron(normal_pixels, np.ones((8, 8), np.uint8)))
    assert_problem(_score_file(client, enlarged, "?resize=true"), 422, "?invert=true")
    original = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    assert _score_file(client, drawing, "?invert=true").json()["score"] == pytest.approx(original, rel=1e-3)


def test_invert_pads_a_resized_image_with_background(client, normal_pixels):
    tall = np.kron(normal_pixels, np.ones((2, 1)))  # 56x28: resizing pads it left and right
    light_on_dark = _score_file(client, png_bytes(tall), "?resize=true").json()["score"]
    dark_on_light = _score_file(client, png_bytes(255 - tall), "?resize=true&invert=true").json()["score"]
    assert dark_on_light == pytest.approx(light_on_dark, rel=1e-5)


def _photo_of(pixels: np.ndarray) -> bytes:
    """`pixels` enlarged off-centre onto a 400x300 page of grey paper, dark on light: a JPEG photo."""
    page = np.full((300, 400), 225.0)
    page[40:180, 230:370] -= np.kron(pixels, np.ones((5, 5))) * (185 / 255)  # ink at level 40
    return png_bytes(page.clip(0, 255), mode="RGB", fmt="JPEG")


def test_resize_frames_an_upload_as_the_models_training_images(client, normal_pixels):
    from training.framing import frame

    response = _score_file(client, _photo_of(normal_pixels), "?resize=true&invert=true",
                           filename="photo.jpg", content_type="image/jpeg")
    assert response.status_code == 200, response.text
    seen = np.asarray(Image.open(io.BytesIO(client.get(response.json()["image_url"]).content)))
    # The tiny model was trained on MNIST-shaped images: the page is framed as MNIST (framing "mnist").
    assert client.get("/model").json()["input"]["framing"] == "mnist"
    assert seen[0].max() == 0 and seen.max() == 255  # grey paper to black, ink to white
    rows = np.flatnonzero(seen.max(axis=1) > 64)
    assert rows[-1] - rows[0] + 1 == 20  # the ink fills MNIST's 20-pixel box
    page = ImageOps.invert(Image.open(io.BytesIO(_photo_of(normal_pixels))).convert("L"))
    assert not np.array_equal(seen, frame(page, "pad", 28))  # not merely padded


def test_resized_dark_on_light_without_invert_is_a_422_that_says_what_to_do(client, normal_pixels):
    response = _score_file(client, _photo_of(normal_pixels), "?resize=true", filename="photo.jpg",
                           content_type="image/jpeg")
    assert_problem(response, 422, "the image's background is light (median pixel 225 of 255)")
    assert "?invert=true" in response.json()["detail"]


def test_threshold_overrides(client, normal_pixels, tiny_model):
    png = png_bytes(normal_pixels)
    low = _score_file(client, png, "?threshold=0").json()
    assert low["threshold"] == 0 and low["threshold_source"] == "threshold" and low["is_anomaly"]
    assert low["target_fpr"] is None
    high = _score_file(client, png, "?threshold=1e9").json()
    assert not high["is_anomaly"]
    by_fpr = _score_file(client, png, "?fpr=0.5").json()
    calibration = np.array(tiny_model.metadata["calibration_scores"])
    expected = calibration[math.ceil((len(calibration) + 1) * 0.5) - 1]
    assert by_fpr["threshold_source"] == "fpr" and by_fpr["target_fpr"] == 0.5
    assert by_fpr["threshold"] == pytest.approx(expected)


@pytest.mark.parametrize("query, detail", [
    ("?threshold=1&fpr=0.1", "either ?threshold= or ?fpr="),
    ("?fpr=1.5", "query.fpr"),
    ("?fpr=0.000001", "cannot support a target FPR"),
    ("?fpr=5e-324", "too small for any number of calibration scores"),  # was a 500: 1 / fpr overflowed
    ("?threshold=nan", "query.threshold"),
    ("?threshold=abc", "query.threshold"),
    ("?resize=maybe", "query.resize"),
    ("?invert=2", "query.invert"),
    ("?fpr=nan", "query.fpr: Input should be a finite number"),
    ("?inverted=true", "unknown query parameter 'inverted'; /score accepts threshold, fpr, resize, invert"),
    ("?treshold=4&FPR=0.1", "unknown query parameters 'FPR', 'treshold'"),
    # Only the last would count: the image would be scored without the resizing the client asked for.
    ("?resize=true&resize=false", "query parameter 'resize' is given 2 times ('true', 'false'); it takes one value"),
    ("?fpr=0.05&fpr=0.05", "query parameter 'fpr' is given 2 times"),
    ("?ref=%20%20", "query.ref: Value error, must not be blank"),
    # A rate written as a percentage, or with a decimal comma, is told how to write it.
    ("?fpr=5", "query.fpr: the rate is a fraction between 0 and 1, not a percentage: for 5 % write 0.05"),
    ("?fpr=0.5%25", "query.fpr: the rate is a fraction, not a percentage: for 0.5% write 0.005"),
    ("?fpr=0,05", "query.fpr: '0,05' has a decimal comma; write 0.05"),
    ("?threshold=3,5", "query.threshold: '3,5' has a decimal comma; write 3.5"),
    ("?fpr=250", "query.fpr: Input should be less than 1"),
])
def test_bad_query_values_are_422(client, normal_pixels, query, detail):
    assert_problem(_score_file(client, png_bytes(normal_pixels), query), 422, detail)


@pytest.mark.parametrize("pixels, detail", [
    ([[0] * 28] * 27, "pixels is an image of 27x28; JSON pixels must be 28x28"),
    ([[0] * 28] * 27 + [[0] * 5], "row 27 must have 28 values, got 5"),
    ([[0] * 28] * 28 + [[0] * 5], "list of 28 rows, got 29"),  # rows of other lengths: not an image of a size
    ([[0] * 28] * 27 + [[0] * 27 + [300]], "pixels[27][27] = 300 is outside 0-255"),
    ([[0] * 28] * 27 + [[0] * 27 + [-1]], "outside 0-255"),
    ([[0] * 28] * 27 + [[0] * 27 + ["a"]], "is not a number"),
    ([[0] * 28] * 27 + [[0] * 27 + [True]], "is not a number"),
    ("not a list", "list of 28 rows, got str"),
])
def test_malformed_json_pixels_are_422(client, pixels, detail):
    assert_problem(client.post("/score", json={"pixels": pixels}), 422, detail)


@pytest.mark.parametrize("shape, detail", [
    ((784,), "pixels is a flat list of 784 numbers; send it as 28 rows of 28 (in NumPy, x.reshape(28, 28).tolist())"),
    ((1, 28, 28), ("pixels has the shape 1x28x28; send one image of 28x28, without the axes of length 1 (in NumPy, "
                   "x.squeeze().tolist())")),
    ((1, 28, 28, 1), "pixels has the shape 1x28x28x1; send one image of 28x28, without the axes of length 1"),
    ((28, 28, 1), "pixels has the shape 28x28x1; send one image of 28x28, without the axes of length 1"),
    ((28, 28, 3), ("pixels has the shape 28x28x3: 3 values per pixel, where one (grayscale) is read; send the "
                   "image as a PNG file")),
    ((4, 28, 28), ("pixels has the shape 4x28x28: 4 images, where one is read; send them to /score/batch, as "
                   '{"pixels": [image, ...]}')),
    ((27, 28), ("pixels is an image of 27x28; JSON pixels must be 28x28. Send an image of another size as a file "
                "(PNG), with ?resize=true")),
    ((64, 64), "pixels is an image of 64x64; JSON pixels must be 28x28"),
])
def test_json_pixels_of_a_numpy_users_usual_shapes_are_422_naming_the_shape(client, normal_pixels, shape, detail):
    # x.tolist() of an MNIST array as Keras holds it: flat, batched, or with a channel axis
    pixels = np.resize(normal_pixels, shape).astype(int).tolist()
    assert_problem(client.post("/score", json={"pixels": pixels}), 422, detail)


def test_nan_and_infinity_in_json_are_422(client):
    row = ", ".join(["0"] * 27)
    for token in ("NaN", "Infinity"):
        body = '{"pixels": [' + ", ".join([f"[{row}, 0]"] * 27 + [f"[{row}, {token}]"]) + "]}"
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
        assert_problem(response, 422, "outside 0-255")


def test_json_without_pixels_and_broken_json(client):
    assert_problem(client.post("/score", json={"image": []}), 422, '"pixels" field')
    response = client.post("/score", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 400, "does not parse")
    assert response.json()["title"] == "Bad request"


def test_a_json_field_beside_the_pixels_is_422_not_ignored(client, normal_pixels):
    response = client.post("/score", json={"pixels": normal_pixels.tolist(), "source": "line-3", "invert": True})
    assert_problem(response, 422, """the JSON body has 'source', 'invert' besides "pixels", which is all it takes""")


def test_json_that_gives_pixels_twice_is_422(client, normal_pixels, anomalous_pixels):
    body = f'{{"pixels": {normal_pixels.tolist()}, "pixels": {anomalous_pixels.tolist()}}}'
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, "the JSON body gives 'pixels' more than once")


def test_deeply_nested_json_is_400_not_a_crash(client):
    body = b"[" * 100_000 + b"]" * 100_000  # within the 256 KiB limit, far beyond Python's recursion limit
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 400, "nested too deeply")


def test_undecodable_and_truncated_images_are_400(client, normal_pixels):
    assert_problem(_score_file(client, b"this is text, not an image"), 400, "cannot decode")
    assert_problem(_score_file(client, png_bytes(normal_pixels)[:60]), 400, "cannot decode")
    assert_problem(_score_file(client, b""), 400, "empty")


def test_an_undecodable_body_is_400_saying_what_it_is_instead(client, normal_pixels):
    png = png_bytes(normal_pixels)
    assert_problem(_score_file(client, base64.b64encode(png)), 400,
                   "cannot decode the image: it is base64 text of a PNG image; send the image's bytes themselves")
    as_curl_d_sends_it = png.replace(b"\r\n", b"").replace(b"\n", b"")
    response = client.post("/score", content=as_curl_d_sends_it, headers={"content-type": "image/png"})
    assert_problem(response, 400, "its PNG signature is damaged as a text-mode transfer damages it")
    items = client.post("/score/batch", files=[("files", ("a.heic", b"\x00\x00\x00\x18ftypheic" + bytes(16)))])
    assert "it is HEIC (an iPhone's default for photos)" in items.json()["items"][0]["error"]["detail"]


def test_an_image_body_without_a_type_of_its_own_is_scored(client, normal_pixels):
    # Python's requests.post(url, data=open(path, "rb")) labels nothing; other clients octet-stream.
    expected = _score_file(client, png_bytes(normal_pixels)).json()["score"]
    for headers in ({}, {"content-type": "application/octet-stream"}):
        response = client.post("/score", content=png_bytes(normal_pixels), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["score"] == pytest.approx(expected)
    assert_problem(client.post("/score", content=b'{"pixels": [[0]]}'), 400,
                   "it is JSON text, not an image: send JSON pixels with Content-Type: application/json")
    assert_problem(client.post("/score"), 400, "the request has no body; send multipart/form-data (field 'file')")


def test_unsupported_content_types_are_415(client, normal_pixels):
    assert_problem(client.post("/score", content=b"hello", headers={"content-type": "text/plain"}), 415,
                   "'text/plain' is not accepted")
    # curl --data-binary @digit.png, without -H: an image, labelled as a form
    response = client.post("/score", content=png_bytes(normal_pixels),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415, "The body is a PNG image: label it Content-Type: image/png")


def test_multipart_without_the_file_field_is_422(client, normal_pixels):
    response = client.post("/score", files={"image": ("x.png", png_bytes(normal_pixels), "image/png")})
    assert_problem(response, 422, "no part named 'file' (it has a part named 'image')")


def test_a_form_field_beside_the_image_is_422_not_ignored(client, normal_pixels):
    # Ignored, source=line-3 sent as a form field would leave the result without the source the client set.
    response = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")},
                           data={"source": "line-3"})
    assert_problem(response, 422, "multipart body has a part named 'source' besides the image; /score takes one "
                                  "part, named 'file'. Options such as ?source= go in the query")
    assert client.get("/results").json()["items"] == []


def test_oversized_bodies_are_413(start_client, normal_pixels):
    client = start_client(max_upload_bytes=2048)
    big = b"\0" * 5000
    assert_problem(client.post("/score", content=big, headers={"content-type": "image/png"}), 413,
                   "limit is 2048")

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(5):
            yield b"\0" * 1000
    assert_problem(client.post("/score", content=chunks(), headers={"content-type": "image/png"}), 413,
                   "exceeds the limit of 2048")
    assert _score_file(client, png_bytes(normal_pixels)).status_code == 200


@pytest.mark.parametrize("path", ["/score", "/score/batch", "/results/" + "0" * 32 + "/review"])
def test_compressed_bodies_are_415_not_read_as_if_plain(client, normal_pixels, path):
    # Read as plain, a gzipped PNG was "cannot decode the image", and gzipped JSON "does not parse".
    body = gzip.compress(png_bytes(normal_pixels))
    response = client.request("PUT" if path.endswith("review") else "POST", path, content=body,
                              headers={"content-type": "image/png", "content-encoding": "gzip"})
    assert_problem(response, 415, "Content-Encoding 'gzip' is not accepted; send the body uncompressed")
    assert response.headers["accept-encoding"] == "identity"  # as RFC 7694 asks
    plain = client.post("/score", content=png_bytes(normal_pixels),
                        headers={"content-type": "image/png", "content-encoding": "identity"})
    assert plain.status_code == 200


@pytest.mark.parametrize("side, detail", [
    (7_000, "pixels; the limit is 40000000"),      # over VAE_MAX_IMAGE_PIXELS, under Pillow's own guard
    (10_000, "possible decompression bomb"),        # Pillow's guard stays on
])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns as it opens it
def test_decompression_bombs_are_refused_without_decoding(client, side, detail):
    bomb = io.BytesIO()
    Image.new("1", (side, side)).save(bomb, format="PNG")  # tens of millions of pixels in a few KB
    assert len(bomb.getvalue()) < 100_000
    assert_problem(_score_file(client, bomb.getvalue(), "?resize=true"), 413, detail)


def test_only_large_images_are_decoded_off_the_event_loop(client, normal_pixels, monkeypatch):
    from app.api import uploads
    decoded_on = record_threads(monkeypatch, uploads, "to_model_pixels")
    small = _score_file(client, png_bytes(normal_pixels))
    assert small.status_code == 200 and not decoded_on[0].startswith("vae-decode")
    large = _score_file(client, png_bytes(np.kron(normal_pixels, np.ones((8, 8)))), "?resize=true")
    assert large.status_code == 200, large.text
    assert decoded_on[1].startswith("vae-decode")  # the decode pool's own threads, not the model's
    assert large.json()["score"] == pytest.approx(small.json()["score"], rel=0.5)


def test_an_oversized_json_body_is_413_before_it_is_parsed(client):
    body = b'{"pixels": [' + b" " * 300_000 + b"]}"
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413, "the JSON body is 300014 bytes")


def test_not_ready_is_503(start_client, store):
    client = start_client(ready=False, model_name="absent")
    assert_problem(client.get("/readyz"), 503, "absent does not exist or is not a folder")
    response = client.post("/score", json={"pixels": [[0] * 28] * 28})
    assert_problem(response, 503, "absent does not exist")
    assert response.headers["Retry-After"] == "5"  # as retrying clients (urllib3's Retry) read it
    assert client.get("/healthz").json() == {"status": "ok"}
    documented = client.get("/openapi.json").json()["paths"]["/score"]["post"]["responses"]["503"]
    assert documented["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}


def test_multipart_without_boundary_or_with_a_broken_body(client):
    response = client.post("/score", content=b"abc", headers={"content-type": "multipart/form-data"})
    assert_problem(response, 400, "without a boundary")
    broken = b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxx\r\n--b"  # never closed
    response = client.post("/score", content=broken, headers={"content-type": "multipart/form-data; boundary=b"})
    assert_problem(response, 400, "ends before the closing boundary '--b--'")
    response = client.post("/score", content=b"", headers={"content-type": "multipart/form-data; boundary=b"})
    assert_problem(response, 400, "the multipart body is empty")


def test_a_multipart_body_cut_short_is_400_not_a_truncated_image(client, normal_pixels):
    request = client.build_request("POST", "/score", files={"file": ("a.png", png_bytes(normal_pixels), "image/png")})
    body = request.read()
    for cut in (len(body) - 8, len(body) // 2):  # inside the closing boundary, inside the image
        response = client.post("/score", content=body[:cut], headers={"content-type": request.headers["content-type"]})
        assert_problem(response, 400, "was the upload cut short?")


def test_several_file_parts_are_422_pointing_to_the_batch_endpoint(client, normal_pixels):
    image = png_bytes(normal_pixels)
    response = client.post("/score", files=[("file", ("a.png", image, "image/png")), ("file", ("b.png", image, "image/png"))])
    assert_problem(response, 422, "2 parts named 'file'; /score takes one image. Send several to /score/batch")


def test_query_parameters_are_documented_from_the_parser(client):
    parameters = client.get("/openapi.json").json()["paths"]["/score"]["post"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert set(by_name) == {"threshold", "fpr", "resize", "invert", "source", "ref", "Idempotency-Key"}
    assert by_name["fpr"]["description"] and by_name["resize"]["in"] == "query"
    assert by_name["Idempotency-Key"]["in"] == "header" and "Idempotent-Replayed" in by_name["Idempotency-Key"]["description"]
    batch = {p["name"]: p for p in client.get("/openapi.json").json()["paths"]["/score/batch"]["post"]["parameters"]}
    assert set(batch) == set(by_name) and "new for each batch" in batch["Idempotency-Key"]["description"]


def _with_line_3_calibration(calibration_scores: list[float]):
    def tamper(directory, metadata):
        metadata["source_calibrations"] = {"line-3": {
            "threshold": calibration_scores[-2], "target_fpr": 0.2, "calibration_scores": calibration_scores,
            "calibration": {"source": "folder /normals/line-3"}}}
    return tamper


def test_a_sources_own_calibration_applies_to_its_images_only(client, store, normal_pixels, tiny_model):
    from tests.app.conftest import publish_copy, wait_until_ready

    line_3 = [-1e6, -1e5, 1e5, 1e6]  # below and above any real score, so verdict and p-value are known
    publish_copy(store, 2, _with_line_3_calibration(line_3))
    wait_until_ready(client, version=2)
    png = png_bytes(normal_pixels)

    own = _score_file(client, png, "?source=line-3").json()
    assert (own["threshold"], own["threshold_source"], own["target_fpr"]) == (1e5, "source", 0.2)
    assert own["p_value"] == pytest.approx(3 / 5) and not own["is_anomaly"]
    by_fpr = _score_file(client, png, "?source=line-3&fpr=0.4").json()  # ?fpr= reads line-3's normals too
    assert (by_fpr["threshold"], by_fpr["threshold_source"]) == (1e5, "fpr")
    assert_problem(_score_file(client, png, "?source=line-3&fpr=0.1"), 422,
                   "fpr=0.1 with the calibration of source line-3: 4 calibration scores cannot support a target "
                   "FPR of 0.1; at least 9 are needed (they support 0.2 and up)")
    explicit = _score_file(client, png, "?source=line-3&threshold=-1e7").json()
    assert explicit["threshold_source"] == "threshold" and explicit["is_anomaly"]
    for query in ("?source=line-4", ""):
        other = _score_file(client, png, query).json()
        assert other["threshold"] == pytest.approx(tiny_model.metadata["threshold"]), query
        assert other["threshold_source"] == "model" and other["target_fpr"] == 0.05

    stored = client.get(f"/results/{own['id']}").json()
    assert (stored["threshold"], stored["threshold_source"], stored["p_value"]) == (1e5, "source", own["p_value"])
    batch = client.post("/score/batch?source=line-3", files=[("files", ("a.png", png, "image/png"))]).json()
    assert batch["items"][0]["result"]["threshold_source"] == "source"
    model = client.get("/model").json()
    assert model["source_calibrations"]["line-3"] == {"threshold": 1e5, "target_fpr": 0.2, "n_calibration_scores": 4,
                                                      "calibration": {"source": "folder /normals/line-3"}}


def test_behind_a_proxy_path_prefix_every_link_carries_it(make_settings, normal_pixels):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.app.conftest import wait_until_ready

    links = ("result_url", "reconstruction_url", "difference_url", "image_url", "panel_url")
    # What uvicorn passes on with VAE_ROOT_PATH=/inspection; the proxy strips the prefix from what it forwards.
    with TestClient(create_app(make_settings()), root_path="/inspection") as client:
        wait_until_ready(client)
        png = png_bytes(normal_pixels)
        scored = _score_file(client, png).json()
        assert scored["result_url"] == f"/inspection/results/{scored['id']}"
        assert all(scored[link].startswith("/inspection/") for link in links)
        assert client.get(scored["panel_url"].removeprefix("/inspection")).status_code == 200
        batch = client.post("/score/batch", files=[("files", ("a.png", png, "image/png"))]).json()
        stored = client.get(scored["result_url"].removeprefix("/inspection")).json()
        listed = client.get("/results").json()["items"]
        reviewed = client.put(f"/results/{scored['id']}/review", json={"verdict": "normal"}).json()
        for result in (batch["items"][0]["result"], stored, *listed, reviewed):
            assert all(result[link].startswith("/inspection/") for link in links), result
        assert client.get("/", follow_redirects=False).headers["location"] == "/inspection/docs"
        docs = client.get("/docs").text  # the API docs load their own assets and schema through the proxy
        assert "url: '/inspection/openapi.json'" in docs and 'src="/inspection/static-offline-docs/' in docs
