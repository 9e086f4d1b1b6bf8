import io

import numpy as np
import pytest
from PIL import Image

from app.imaging import heatmap_png
from app.panel import layout
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
    assert_problem(client.get(f"/panel/{scored['id']}?scale=4&scale=16"), 422,
                   "query parameter 'scale' is given 2 times ('4', '16')")


@pytest.mark.parametrize("scale", [4, 8, 16])
def test_the_panel_shows_input_reconstruction_and_difference_under_the_verdict(client, scored, scale):
    panel = np.asarray(_image(client.get(f"{scored['panel_url']}?scale={scale}")).convert("RGB"))
    shape = layout(scale)
    assert panel.shape == (shape.height, shape.width, 3)
    pictures = [np.asarray(_image(client.get(scored[url])).convert("RGB"))
                for url in ("image_url", "reconstruction_url", "difference_url")]
    for picture, (left, top) in zip(pictures, shape.corners):
        tile = panel[top:top + shape.side, left:left + shape.side]
        assert np.array_equal(tile[::scale, ::scale], picture)  # the same pixels as the separate PNGs
    # The verdict's line, above the pictures, is drawn in the anomaly's red.
    assert _verdict_colour(panel, shape) == "red"


def _verdict_colour(panel: np.ndarray, shape) -> str:
    headline = panel[:shape.corners[0][1]].reshape(-1, 3).astype(int)
    red, green = (headline[:, 0] - headline[:, 1] > 80).sum(), (headline[:, 1] - headline[:, 0] > 80).sum()
    assert max(red, green) > 20 and min(red, green) == 0, (red, green)  # drawn, and in one colour
    return "red" if red else "green"


def test_a_normal_result_has_a_green_verdict(client, normal_pixels):
    result = client.post("/score?threshold=1e9", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
    panel = np.asarray(_image(client.get(result.json()["panel_url"])).convert("RGB"))
    assert _verdict_colour(panel, layout(8)) == "green"  # at the default scale, 8


def test_bad_panel_requests_are_4xx(client, scored):
    assert_problem(client.get(f"{scored['panel_url']}?scale=3"), 422, "query.scale")
    assert_problem(client.get("/panel/" + "0" * 32), 404, "no result with id")
