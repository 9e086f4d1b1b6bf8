"""Converting any Pillow image to the model's 8-bit grayscale, including wide and float pixels."""

import io
import struct
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from training.preprocessing import PixelRangeError, prepare_image, to_grayscale, transparent_level

LEVELS = np.arange(256, dtype=np.uint8).reshape(16, 16)


@pytest.mark.parametrize("dtype, mode", [("<u2", "I;16"), (">u2", "I;16B")])
def test_sixteen_bit_images_are_scaled_not_clipped(dtype, mode):
    wide = Image.fromarray((LEVELS.astype(np.uint16) * 257).astype(dtype))  # v * 257: v at 16 bits
    assert wide.mode == mode
    gray = to_grayscale(wide)
    assert gray.mode == "L"
    assert np.array_equal(np.asarray(gray), LEVELS)


def test_a_png_opened_as_32_bit_counts_as_sixteen_bit():
    # What older Pillow versions return for a 16-bit grayscale PNG.
    image = Image.fromarray(LEVELS.astype(np.int32) * 257)
    image.format = "PNG"
    assert np.array_equal(np.asarray(to_grayscale(image)), LEVELS)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_integer_and_float_images_within_0_255_keep_their_values(dtype):
    assert np.array_equal(np.asarray(to_grayscale(Image.fromarray(LEVELS.astype(dtype)))), LEVELS)


@pytest.mark.parametrize("values, message", [
    (np.full((4, 4), 1e6, np.float32), "must lie in 0-255, found 1e\\+06 to 1e\\+06"),
    (np.full((4, 4), -1, np.int32), "32-bit integer pixel values must lie in 0-255, found -1"),
    (np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
])
def test_integer_and_float_images_outside_0_255_are_refused(values, message):
    with pytest.raises(PixelRangeError, match=message):
        to_grayscale(Image.fromarray(values))


@pytest.mark.parametrize("blank", [0, 255])
def test_an_image_with_nothing_opaque_takes_the_blank_level(blank):
    transparent = Image.new("RGBA", (4, 4), (128, 128, 128, 0))
    assert set(np.asarray(to_grayscale(transparent, blank=blank)).ravel()) == {blank}


def _drawing(ink_level: int, alpha: np.ndarray) -> Image.Image:
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., :3] = ink_level
    rgba[..., 3] = alpha
    return Image.fromarray(rgba, "RGBA")


STROKE = np.zeros((8, 8), np.uint8)
STROKE[1:7, 3:5] = 255
STROKE[1:7, 2] = 128  # an anti-aliased edge


@pytest.mark.parametrize(("ink", "canvas"), [(0, 255), (30, 255), (255, 0), (220, 0)])
def test_ink_on_a_transparent_canvas_stands_out_against_it(ink, canvas):
    # How drawing apps and HTML canvases save a drawing: the colour is the ink's, the shape is in alpha.
    # Black ink on a canvas made black would be a blank image.
    gray = np.asarray(to_grayscale(_drawing(ink, STROKE)), np.float64)
    assert set(gray[STROKE == 0]) == {canvas}
    assert set(gray[STROKE == 255]) == {ink}
    assert np.abs(gray[STROKE == 128] - (ink + canvas) / 2).max() <= 1


@pytest.mark.parametrize("page", [False, True])
def test_finding_the_transparent_level_of_a_large_image_takes_little_memory(page):
    # Uploads may have 40 megapixels: float copies of the whole image took 24-32 bytes a pixel (a gigabyte).
    rgba = np.zeros((2000, 2000, 4), np.uint8)
    rgba[300:1700, 900:1100, 3] = 255
    if page:
        rgba[..., :3], rgba[:, 100:, 3] = 200, 255
        rgba[300:1700, 900:1100, :3] = 40  # its ink
    image = Image.fromarray(rgba, "RGBA")
    tracemalloc.start()
    try:
        assert transparent_level(image) == (200 if page else 255)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / (2000 * 2000) < 8  # bytes per pixel; the image itself holds 4


@pytest.mark.parametrize(("ink", "canvas"), [(0, 255), (255, 0)])
def test_a_bold_drawing_that_covers_most_of_its_canvas_stands_out_against_it_too(ink, canvas):
    bold = np.full((8, 8), 255, np.uint8)
    bold[3:5, 3:5] = 0  # the ink covers 94 % of the canvas; it is still one colour, not a page
    gray = np.asarray(to_grayscale(_drawing(ink, bold)))
    assert set(gray[bold == 0]) == {canvas}
    assert set(gray[bold == 255]) == {ink}


def test_a_scan_rotated_with_transparent_corners_is_framed_like_one_rotated_onto_paper():
    # An editor that rotates a scan leaves its corners transparent. A digit darkens about 1 % of a page.
    page = np.full((300, 400), 225, np.uint8)
    page[80:220, 196:204] = 40  # a "1": 0.93 % of the page
    with_corners = Image.fromarray(page).convert("RGBA").rotate(8, expand=True)
    assert np.asarray(with_corners)[0, 0, 3] == 0
    onto_paper = Image.fromarray(page).rotate(8, expand=True, fillcolor=225)
    assert np.array_equal(prepare_image(with_corners, invert=True, framing="mnist"),
                          prepare_image(onto_paper, invert=True, framing="mnist"))


@pytest.mark.parametrize("blank", [0, 255])
def test_transparent_margins_of_a_page_take_the_pages_level(blank):
    page = np.full((8, 8, 4), 200, np.uint8)
    page[2:6, 3:5, :3] = 40  # dark ink on light paper
    page[:, :2, 3] = 0  # a transparent margin on the left: 25 % of the image
    gray = np.asarray(to_grayscale(Image.fromarray(page, "RGBA"), blank=blank))
    assert set(gray[:, :2].ravel()) == {200}


def test_the_exif_orientation_is_applied():
    marked = np.zeros((4, 6), np.uint8)
    marked[0, 1] = 255
    image = Image.fromarray(marked)
    image.getexif()[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright = np.asarray(to_grayscale(image))
    assert upright.shape == (6, 4) and np.argwhere(upright).tolist() == [[1, 3]]


def test_a_corrupt_exif_block_costs_the_orientation_not_the_image(monkeypatch):
    image = Image.fromarray(LEVELS)

    def corrupt_exif():
        raise struct.error("required argument is not an integer")  # what Pillow raised on fuzzed JPEGs

    monkeypatch.setattr(image, "getexif", corrupt_exif)
    assert np.array_equal(np.asarray(to_grayscale(image)), LEVELS)


def test_prepare_image_inverts_dark_on_light_before_padding_to_28x28():
    scan = np.full((20, 40), 255, np.uint8)  # white paper, wider than tall
    scan[5:15, 18:22] = 0  # a black stroke
    pixels = prepare_image(Image.fromarray(scan), invert=True)
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert pixels[0].max() == 0 and pixels[-1].max() == 0  # padding is background: black after inverting
    assert pixels[14, 14] > 200  # the stroke is light
    plain = prepare_image(Image.fromarray(scan))
    assert plain[14, 2] == 255 and plain[14, 14] < 50  # not inverted: paper stays white, stroke dark


def test_prepare_image_keeps_a_28x28_image_as_is():
    digit = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    assert np.array_equal(prepare_image(Image.fromarray(digit)), digit)
    assert np.array_equal(prepare_image(Image.fromarray(digit), invert=True), 255 - digit)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_with_the_same_result():
    # A digit drawn on a 2240x2240 photo-sized canvas, as a camera or scanner would send it.
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    digit[4:8, 8:20] = 200
    encoded = io.BytesIO()
    Image.fromarray(digit).resize((2240, 2240), Image.BICUBIC).convert("RGB").save(encoded, "JPEG", quality=90)

    full = Image.open(io.BytesIO(encoded.getvalue()))
    full.load()  # already decoded at full size: nothing left to reduce
    expected = prepare_image(full)

    lazy = Image.open(io.BytesIO(encoded.getvalue()))
    pixels = prepare_image(lazy)
    assert lazy.size == (280, 280)  # decoded at 1/8 scale: still at least 4 x 28 on each side
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 2
    assert pixels[14, 14] > 200 and pixels[14, 2] < 20


def test_a_versions_framing_defaults_to_pad_and_must_be_known():
    from training.preprocessing import framing_of_version

    assert framing_of_version({"input": {"shape": [28, 28, 1]}}) == "pad"  # versions before the field
    assert framing_of_version({"input": {"framing": "mnist"}}) == "mnist"
    with pytest.raises(ValueError, match="input framing 'crop' is unknown"):
        framing_of_version({"input": {"framing": "crop"}})
