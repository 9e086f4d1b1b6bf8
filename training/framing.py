"""Framing: how an image of any size becomes the model's square input, the way its training images were made.

A model is only as good as the match between what it was trained on and what it is sent. MNIST digits
were made in a particular way (LeCun et al.): the ink cropped, fitted into a 20x20 box, anti-aliased,
and centred by its centre of mass in a 28x28 field, on a background of exactly 0. A photo of a digit
resized by padding alone keeps its margins and its grey paper, and the MNIST model flags nearly every
such photo (docs/quality.md, "Photos and scans of digits: framing"). So each model version records its framing, and the
service and the training job frame images with it:

- `pad`: keep the aspect ratio, fit the square, pad with black. For models trained on folders of
  images, which are framed the same way.
- `mnist`: what MNIST did, plus the levels it assumes: uneven lighting is evened out, the background
  (the median) becomes 0 and the brightest ink 255. For models trained on MNIST.

Both take 8-bit grayscale, light on dark, and leave an image that is already side x side as it is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

FRAMINGS = {
    "pad": "aspect kept, fitted to the square, padded with black",
    "mnist": "as MNIST: background to 0, brightest ink to 255, ink cropped and fitted to a 20x20 box, "
             "centred by its centre of mass in 28x28",
}
MNIST_BOX = 20 / 28  # the share of the side the ink's longer side fills
WORKING_SIDE = 224  # larger images are first reduced to this: it averages out sensor noise and is fast
MIN_CONTRAST = 16  # ink this close to the background (of 255) is no ink: the image is framed as blank
LIGHTEST_BACKGROUND = 127  # a median above mid-grey: the image is most likely dark on light
INK_LEVEL = 0.25  # after levels: what counts as ink when cropping
BRIGHTEST_INK_PERCENTILE = 99.9  # not the maximum: a few hot pixels must not dim the digit
# Uneven lighting (a shadow across the page, a vignette): the background is modelled as a smooth
# surface fitted to the image's border and subtracted, but only when it is clearly uneven and the
# surface explains the border well. Otherwise the image is left exactly as it is: a border that the
# surface misses is ink or clutter, not lighting. The limits were set on training digits' pages
# (docs/quality.md).
SHADOW_STRIPS = 8  # each side of the border is sampled as this many strips, by their medians
SHADOW_STRIP_DEPTH = 2  # pixels, at WORKING_SIDE
MIN_SHADOW = 24.0  # levels (of 255) the fitted background must vary by across the image
MAX_SHADOW_FIT_ERROR = 3.0  # levels: the median miss of the border strips the fit keeps
SHADOW_INK_MARGIN = 6.0  # levels: a strip this far above the fitted paper holds ink (at the least)


class PolarityError(ValueError):
    """A dark-on-light image sent to a model that reads light ink on a dark background."""


def frame(gray: Image.Image, framing: str, side: int) -> np.ndarray:
    """8-bit grayscale image (mode L), light on dark -> uint8 [side, side]."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; known: {', '.join(FRAMINGS)}")
    if gray.size == (side, side):
        return np.asarray(gray, dtype=np.uint8)
    if framing == "pad":
        return np.asarray(pad_to_square(gray, side), dtype=np.uint8)
    return frame_like_mnist(gray, side)


def pad_to_square(image: Image.Image, side: int) -> Image.Image:
    """Resize a grayscale image to side x side, keeping its aspect ratio and padding with black."""
    width, height = image.size
    scale = side / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(resized, ((side - resized.width) // 2, (side - resized.height) // 2))
    return canvas


def frame_like_mnist(gray: Image.Image, side: int) -> np.ndarray:
    if max(gray.size) > WORKING_SIDE:
        gray = gray.copy()
        gray.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.LANCZOS)
    ink = _levels(_without_uneven_lighting(np.asarray(gray, dtype=np.float32)))
    if ink is None:
        return np.zeros((side, side), np.uint8)
    top, bottom, left, right = _ink_box(ink)
    ink = ink[top:bottom, left:right]
    box = MNIST_BOX * side
    scale = box / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    boxed = np.clip(np.asarray(Image.fromarray(ink).resize(size, Image.LANCZOS)), 0, 1)
    return np.rint(_centre_by_mass(boxed, side) * 255).astype(np.uint8)


def _without_uneven_lighting(pixels: np.ndarray) -> np.ndarray:
    """Subtract a quadratic background fitted to the border, if the lighting is clearly uneven.

    Levels assume one background level. A shadow that brightens the (inverted) background by over ~80
    levels across the page otherwise turns part of the paper into ink and every upload is flagged
    (docs/quality.md). The fit uses the border only, because the digit sits inside, and strips that
    hold ink are dropped from it, so a stroke that touches the border does not bend it.
    """
    height, width = pixels.shape
    if min(height, width) < 2 * SHADOW_STRIPS * SHADOW_STRIP_DEPTH:
        return pixels
    rows, columns, levels = _border_strips(pixels)
    terms = _quadratic_terms(rows / height, columns / width)
    kept = np.ones(len(levels), bool)
    for _ in range(10):
        coefficients = np.linalg.lstsq(terms[kept], levels[kept], rcond=None)[0]
        above = levels - terms @ coefficients
        # Ink is brighter than the paper around it: strips well above the surface hold ink, so they
        # are dropped and the surface refitted, until it rests on the paper alone.
        now_kept = above <= SHADOW_INK_MARGIN
        if np.array_equal(now_kept, kept) or now_kept.sum() < len(levels) // 2:
            break
        kept = now_kept
    grid = np.linspace(0, 1, 17)  # the surface's range, on a grid fine enough for a quadratic
    coarse = _quadratic_terms(*np.meshgrid(grid, grid, indexing="ij")) @ coefficients
    if coarse.max() - coarse.min() < MIN_SHADOW or np.median(np.abs(above[kept])) > MAX_SHADOW_FIT_ERROR:
        return pixels
    all_rows, all_columns = np.indices(pixels.shape, dtype=np.float32)
    surface = _quadratic_terms(all_rows / height, all_columns / width) @ coefficients.astype(np.float32)
    return (pixels - surface + np.median(surface)).astype(np.float32)


def _border_strips(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre row, centre column and median level of SHADOW_STRIPS strips along each side."""
    height, width = pixels.shape
    depth, samples = SHADOW_STRIP_DEPTH, []
    for k in range(SHADOW_STRIPS):
        top, bottom = k * height // SHADOW_STRIPS, (k + 1) * height // SHADOW_STRIPS
        left, right = k * width // SHADOW_STRIPS, (k + 1) * width // SHADOW_STRIPS
        middle_row, middle_column = (top + bottom - 1) / 2, (left + right - 1) / 2
        samples += [(middle_row, (depth - 1) / 2, np.median(pixels[top:bottom, :depth])),
                    (middle_row, width - (depth + 1) / 2, np.median(pixels[top:bottom, -depth:])),
                    ((depth - 1) / 2, middle_column, np.median(pixels[:depth, left:right])),
                    (height - (depth + 1) / 2, middle_column, np.median(pixels[-depth:, left:right]))]
    return tuple(np.array(column, np.float64) for column in zip(*samples, strict=True))


def _quadratic_terms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    y, x = y - 0.5, x - 0.5
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def _levels(pixels: np.ndarray) -> np.ndarray | None:
    """Background (the median: ink covers less than half an image) -> 0, brightest ink -> 1; None if blank.

    Levels would turn a dark-on-light image's paper black too, and its ink into noise, so such an
    image is refused rather than silently mis-scored.
    """
    background = float(np.median(pixels))
    if background > LIGHTEST_BACKGROUND:
        raise PolarityError(f"the image's background is light (median pixel {background:.0f} of 255), but "
                            "the model reads light ink on a dark background: invert dark-on-light images "
                            "(?invert=true when scoring, --invert for a folder). If the image is already "
                            "light on dark, its ink covers most of it: leave a margin of background around "
                            "the digit")
    brightest = float(np.percentile(pixels, BRIGHTEST_INK_PERCENTILE))
    if brightest - background < MIN_CONTRAST:
        return None
    return np.clip((pixels - background) / (brightest - background), 0, 1)


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns (top, bottom, left, right; end-exclusive) that hold the ink.

    Specks of dust or hot pixels (up to 2x2 pixels once the image is reduced to WORKING_SIDE) must not
    widen the box and shrink the digit. So the box is first found on a 3x3 median of the image, which
    removes them; then, within that box grown by the filter's 1-pixel reach, it is fitted to the ink
    itself, so the filter costs no stroke ends. The zero border lets the filter remove specks at the
    edge too (Pillow would repeat the edge pixels).
    """
    padded = Image.fromarray(np.pad(ink, 1))
    despeckled = np.asarray(padded.filter(ImageFilter.MedianFilter(3)))[1:-1, 1:-1]
    if not (despeckled > INK_LEVEL).any():  # strokes thinner than the filter: use the image as it is
        despeckled = ink
    top, bottom = _span(despeckled.max(axis=1) > INK_LEVEL, reach=1)
    left, right = _span(despeckled.max(axis=0) > INK_LEVEL, reach=1)
    window = ink[top:bottom, left:right] > INK_LEVEL
    (top_in, bottom_in), (left_in, right_in) = _span(window.any(axis=1)), _span(window.any(axis=0))
    return top + top_in, top + bottom_in, left + left_in, left + right_in


def _span(has_ink: np.ndarray, reach: int = 0) -> tuple[int, int]:
    """First and last-plus-one index where `has_ink`, widened by `reach` within the array."""
    where = np.flatnonzero(has_ink)
    return max(where[0] - reach, 0), min(where[-1] + 1 + reach, len(has_ink))


def _centre_by_mass(boxed: np.ndarray, side: int) -> np.ndarray:
    """Place `boxed` in a side x side field with its centre of mass at the field's centre pixel (14, 14),
    where MNIST's digits have theirs (mean 14.0 and 14.0 over the training set, sd 0.3)."""
    rows, columns = np.indices(boxed.shape)
    mass = boxed.sum()
    top = round(side / 2 - (rows * boxed).sum() / mass)
    left = round(side / 2 - (columns * boxed).sum() / mass)
    # A lopsided digit could be pushed past the edge: keep it whole inside the field instead.
    top = min(max(top, 0), side - boxed.shape[0])
    left = min(max(left, 0), side - boxed.shape[1])
    field = np.zeros((side, side), np.float32)
    field[top:top + boxed.shape[0], left:left + boxed.shape[1]] = boxed
    return field
