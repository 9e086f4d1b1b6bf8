import io

import numpy as np
import pytest
from PIL import Image

from app.imaging import heatmap_png
from tests.app.conftest import png_bytes
from tests.app.test_score import assert_problem


@pytest.fixture
def scored(client, anomalous_pixels):
    return client.post("/score", files={"file": ("x.png", png_bytes(anomalous_pixels), "image/png")}).json()


def _image(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_reconstruction_is_a_28x28_grayscale_png(client, scored):
    image = _image(client.get(scored["reconstruction_url"]))
    assert image.size == (28, 28) and image.mode == "L"


@pytest.mark.parametrize("scale", [1, 4, 16])
def test_scale_upscales_with_nearest_neighbour(client, scored, scale):
    plain = np.asarray(_image(client.get(scored["difference_url"])))
    scaled = _image(client.get(f"{scored['difference_url']}?scale={scale}"))
    assert scaled.size == (28 * scale, 28 * scale)
    assert np.array_equal(np.asarray(scaled)[::scale, ::scale], plain)


def test_bad_scale_is_422(client, scored):
    assert_problem(client.get(f"{scored['reconstruction_url']}?scale=17"), 422, "query.scale")
    assert_problem(client.get(f"{scored['difference_url']}?scale=0"), 422, "query.scale")


def test_difference_heatmap_shows_where_the_image_differs(client, scored, anomalous_pixels):
    heat = np.asarray(_image(client.get(scored["difference_url"])).convert("RGB")).astype(int)
    assert heat.shape == (28, 28, 3)
    ink = anomalous_pixels > 128
    assert heat[ink, 0].mean() > heat[~ink, 0].mean()  # red where there is unexpected ink


def test_heatmap_colour_is_fixed_by_the_model_not_the_image():
    weak = np.zeros((28, 28), np.float32)
    weak[5, 5] = 0.1
    strong = weak.copy()
    strong[20, 20] = 0.9  # a per-image normalisation would dim the weak pixel here
    weak_rgb = np.asarray(Image.open(io.BytesIO(heatmap_png(weak, heatmap_scale=0.2))))
    strong_rgb = np.asarray(Image.open(io.BytesIO(heatmap_png(strong, heatmap_scale=0.2))))
    assert np.array_equal(weak_rgb[5, 5], strong_rgb[5, 5])
    assert tuple(weak_rgb[5, 5]) == (128, 0, 0)  # half the pixel threshold: half red
    missing = np.asarray(Image.open(io.BytesIO(heatmap_png(-strong, heatmap_scale=0.2))))
    assert tuple(missing[20, 20]) == (0, 255, 255)  # missing ink beyond 2x threshold: cyan


def test_original_image_is_served_too(client, scored, anomalous_pixels):
    assert np.array_equal(np.asarray(_image(client.get(f"/image/{scored['id']}"))), anomalous_pixels)


def test_unknown_query_parameters_are_422(client, scored):
    response = client.get(f"/difference/{scored['id']}?sacle=8")
    assert_problem(response, 422, f"unknown query parameter 'sacle'; /difference/{scored['id']} accepts scale")
    assert_problem(client.get(f"/results/{scored['id']}?scale=8"), 422, "takes no query parameters")
