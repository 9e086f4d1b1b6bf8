"""Framing images of any size as the model's training images were: `pad`, and `mnist` as MNIST's digits."""

import numpy as np
import pytest
from PIL import Image

import training.framing
from training.framing import PolarityError, frame

SIDE = 28


def mnist_like_digit() -> np.ndarray:
    """A "7" framed as MNIST frames its digits: ink in a 20-pixel-high box, centre of mass at (14, 14)."""
    digit = np.zeros((SIDE, SIDE), np.uint8)
    digit[4:7, 8:21] = 255  # the top bar
    for row in range(7, 24):  # the stem
        column = 19 - (row - 7) // 3
        digit[row, column - 1:column + 2] = 255
    row, column = centre_of_mass(digit)
    return np.roll(digit, (round(14 - row), round(14 - column)), axis=(0, 1))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(image.shape)
    mass = image.astype(np.float64).sum()
    return (rows * image).sum() / mass, (columns * image).sum() / mass


def on_page(digit: np.ndarray, size=(600, 800), offset=(0, 0), scale=10, paper=0, ink=255,
            noise=0.0, lighting=None) -> Image.Image:
    """`digit` enlarged `scale` times onto a page (light on dark unless paper > ink); `lighting(rows,
    columns)`, on a 0-1 grid, adds to the paper where there is no ink (a shadow, inverted)."""
    big = np.asarray(Image.fromarray(digit).resize((SIDE * scale, SIDE * scale), Image.BICUBIC), np.float32) / 255
    coverage = np.zeros((size[1], size[0]), np.float32)
    top, left = (size[1] - big.shape[0]) // 2 + offset[0], (size[0] - big.shape[1]) // 2 + offset[1]
    coverage[top:top + big.shape[0], left:left + big.shape[1]] = big
    if lighting is not None:
        rows, columns = np.indices(coverage.shape) / np.array(coverage.shape)[:, None, None]
        paper = paper + lighting(rows, columns)
    levels = paper + (ink - paper) * coverage + np.random.default_rng(0).normal(0, noise, coverage.shape)
    return Image.fromarray(levels.clip(0, 255).astype(np.uint8))


def cropped_to_the_ink(page: Image.Image) -> Image.Image:
    pixels = np.asarray(page)
    rows, columns = np.flatnonzero((pixels > 150).any(axis=1)), np.flatnonzero((pixels > 150).any(axis=0))
    return Image.fromarray(pixels[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])


@pytest.mark.parametrize("framing", ["pad", "mnist"])
def test_an_image_of_the_model_size_is_taken_as_it_is(framing):
    digit = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE)).astype(np.uint8)
    assert np.array_equal(frame(Image.fromarray(digit), framing, SIDE), digit)


def test_an_unknown_framing_is_refused():
    with pytest.raises(ValueError, match="unknown framing 'crop'; known: pad, mnist"):
        frame(Image.new("L", (40, 40)), "crop", SIDE)


def test_pad_keeps_the_aspect_ratio_and_pads_with_black():
    wide = np.full((20, 40), 200, np.uint8)
    framed = frame(Image.fromarray(wide), "pad", SIDE)
    assert framed.shape == (SIDE, SIDE)
    assert framed[:7].max() == 0 and framed[-7:].max() == 0  # 40x20 -> 28x14, centred: 7 rows each side
    assert framed[7:21].min() == 200


def test_mnist_framing_gives_back_an_mnist_digit_from_a_large_off_centre_image():
    digit = mnist_like_digit()
    framed = frame(on_page(digit, offset=(-150, 120)), "mnist", SIDE)
    # The same digit, resampled; centring by mass rounds to whole pixels, so allow a 1-pixel shift.
    best = max(np.corrcoef(np.roll(framed, shift, axis=(0, 1)).ravel(), digit.ravel())[0, 1]
               for shift in [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)])
    assert best > 0.9
    rows = np.flatnonzero(framed.max(axis=1) > 64)
    assert rows[-1] - rows[0] + 1 == 20  # the ink's longer side fills MNIST's 20-pixel box
    assert np.allclose(centre_of_mass(framed), (14, 14), atol=0.5)


def test_mnist_framing_sets_the_levels_of_grey_paper_and_grey_ink():
    digit = mnist_like_digit()
    clean = frame(on_page(digit), "mnist", SIDE)
    # Paper at 60 and ink at 180 (a photo, already inverted), with sensor noise.
    framed = frame(on_page(digit, paper=60, ink=180, noise=4), "mnist", SIDE)
    assert framed[0].max() == 0 and framed[:, 0].max() == 0  # the paper is black again
    assert framed.max() == 255
    assert np.abs(framed.astype(int) - clean.astype(int)).mean() < 3


@pytest.mark.parametrize("lighting", [
    lambda rows, columns: 110 * columns,  # a shadow across the page (inverted: the paper brightens)
    lambda rows, columns: 55 * ((2 * rows - 1) ** 2 + (2 * columns - 1) ** 2),  # a vignette: dark corners
], ids=["shadow", "vignette"])
def test_uneven_lighting_is_evened_out(lighting, monkeypatch):
    digit = mnist_like_digit()
    clean = frame(on_page(digit, paper=20, ink=220, noise=4), "mnist", SIDE)
    page = on_page(digit, paper=20, ink=220, noise=4, lighting=lighting)
    assert np.abs(frame(page, "mnist", SIDE).astype(int) - clean.astype(int)).mean() < 4
    monkeypatch.setattr(training.framing, "MIN_SHADOW", np.inf)  # without the correction
    assert np.abs(frame(page, "mnist", SIDE).astype(int) - clean.astype(int)).mean() > 15


@pytest.mark.parametrize("page", [
    on_page(mnist_like_digit(), paper=60, ink=180, noise=4),  # even lighting
    cropped_to_the_ink(on_page(mnist_like_digit(), paper=60, ink=180, noise=4)),  # ink touches the border
], ids=["even", "ink at the border"])
def test_even_lighting_and_ink_at_the_border_are_left_as_they_are(page, monkeypatch):
    framed = frame(page, "mnist", SIDE)
    monkeypatch.setattr(training.framing, "MIN_SHADOW", np.inf)
    assert np.array_equal(framed, frame(page, "mnist", SIDE))


def test_a_few_hot_pixels_do_not_dim_the_digit():
    page = np.asarray(on_page(mnist_like_digit(), ink=150)).copy()
    page[:5, :5] = 255  # 25 hot pixels, brighter than any ink
    framed = frame(Image.fromarray(page), "mnist", SIDE)
    assert framed.max() == 255  # the ink, not the hot pixels, sets the brightest level
    assert np.array_equal(framed, frame(on_page(mnist_like_digit(), ink=150), "mnist", SIDE))  # nor the box


def test_a_blank_page_frames_as_an_empty_image():
    page = Image.fromarray(np.random.default_rng(0).normal(40, 3, (300, 300)).clip(0, 255).astype(np.uint8))
    assert not frame(page, "mnist", SIDE).any()


def test_a_dark_on_light_image_is_refused_with_what_to_do():
    page = on_page(mnist_like_digit(), paper=240, ink=20)  # a scan, not inverted
    with pytest.raises(PolarityError, match=r"background is light \(median pixel 240 of 255\).*\?invert=true"):
        frame(page, "mnist", SIDE)
    assert frame(page, "pad", SIDE).shape == (SIDE, SIDE)  # pad makes no assumption about the polarity


def test_any_image_frames_to_the_model_size_or_is_refused_for_its_polarity():
    # Odd sizes and contents (noise, one dot, a line, flat grey with hot pixels): no crash, no NaN.
    rng = np.random.default_rng(0)
    for _ in range(500):
        height, width = rng.integers(1, 80, size=2)
        pixels = np.zeros((height, width))
        kind = rng.integers(4)
        if kind == 0:
            pixels = rng.integers(0, 256, (height, width))
        elif kind == 1:
            pixels[rng.integers(height), rng.integers(width)] = rng.integers(256)
        elif kind == 2:
            pixels[:, rng.integers(width)] = rng.integers(256)
        else:
            pixels[:] = rng.integers(256)
            pixels[rng.random((height, width)) < 0.01] = 255
        try:
            framed = frame(Image.fromarray(pixels.astype(np.uint8)), "mnist", SIDE)
        except PolarityError:
            continue
        assert framed.shape == (SIDE, SIDE) and framed.dtype == np.uint8
