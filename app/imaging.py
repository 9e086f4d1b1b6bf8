"""Client images in, model-ready pixels out; stored arrays out as PNGs (plain or heatmap)."""

from __future__ import annotations

import io
import math
from contextlib import contextmanager

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.errors import InvalidInput, PayloadTooLarge, UndecodableImage
from app.sniffing import undecodable_reason
from training.preprocessing import NOT_ONE_MODEL_IMAGE, SIDE, PixelRangeError, prepare_image, refuse_unit_range

SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")


# Decoding an image this small takes under 0.2 ms, less than handing it to a thread (0.37 ms here).
INLINE_DECODE_PIXELS = 64 * 64


def open_image(data: bytes, *, resize: bool, max_pixels: int) -> Image.Image:
    """Read only the header of encoded image bytes and check its size against the limits."""
    if not data:
        raise UndecodableImage("the image is empty (0 bytes)")
    with _decoding_errors():
        try:
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
        except UnidentifiedImageError:
            raise UndecodableImage(f"cannot decode the image: {undecodable_reason(data)}") from None
    width, height = image.size
    # Pillow's own guard only warns below twice its limit; turning that warning into an error would
    # need warnings.catch_warnings, which is not thread-safe, and images are decoded on threads too.
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise PayloadTooLarge(f"image rejected as a possible decompression bomb: {width}x{height} = "
                              f"{width * height} pixels, over Pillow's limit of {Image.MAX_IMAGE_PIXELS}")
    if width * height > max_pixels:
        raise PayloadTooLarge(f"image is {width}x{height} = {width * height} pixels; "
                              f"the limit is {max_pixels}")
    if (width, height) != (SIDE, SIDE) and not resize:
        raise InvalidInput(f"image is {width}x{height}; the model takes {SIDE}x{SIDE}. "
                           "Send ?resize=true to have it framed as the model's training images were")
    return image


def to_model_pixels(image: Image.Image, *, invert: bool = False, framing: str = "pad") -> np.ndarray:
    """An opened image -> uint8 [28, 28] grayscale, light strokes on dark, framed as the model's
    training images were (`prepare_image`)."""
    with _decoding_errors():  # decoding happens here, in prepare_image, not in open_image
        return prepare_image(image, invert=invert, framing=framing)


def decode_image(data: bytes, *, resize: bool, max_pixels: int, invert: bool = False,
                 framing: str = "pad") -> np.ndarray:
    """Encoded image bytes -> uint8 [28, 28]: `open_image`, then `to_model_pixels`."""
    return to_model_pixels(open_image(data, resize=resize, max_pixels=max_pixels), invert=invert, framing=framing)


@contextmanager
def _decoding_errors():
    """Pillow's errors, as the client errors they are."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:  # warning: if made an error
        raise PayloadTooLarge(f"image rejected as a possible decompression bomb: {error}") from error
    except NOT_ONE_MODEL_IMAGE as error:
        raise InvalidInput(str(error)) from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or corrupt data
        raise UndecodableImage(f"cannot decode the image: {error}") from error


def pixels_from_json(pixels: object) -> np.ndarray:
    """A 28x28 nested list of numbers 0-255 -> uint8 [28, 28]; anything else is a 422 that says why."""
    _refuse_other_array_shapes(pixels)
    if not isinstance(pixels, list) or len(pixels) != SIDE:
        count = len(pixels) if isinstance(pixels, list) else type(pixels).__name__
        raise InvalidInput(f"pixels must be a list of {SIDE} rows, got {count}")
    for index, row in enumerate(pixels):
        if not isinstance(row, list) or len(row) != SIDE:
            length = len(row) if isinstance(row, list) else type(row).__name__
            raise InvalidInput(f"pixels row {index} must have {SIDE} values, got {length}")
        for column, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(f"pixels[{index}][{column}] is not a number: {value!r}")
            if not math.isfinite(value) or not 0 <= value <= 255:
                raise InvalidInput(f"pixels[{index}][{column}] = {value} is outside 0-255")
    values = np.asarray(pixels, dtype=np.float64)
    try:
        refuse_unit_range(float(values.max()), "the pixels")
    except PixelRangeError as error:
        raise InvalidInput(str(error)) from None
    return np.rint(values).astype(np.uint8)


def _refuse_other_array_shapes(pixels: object) -> None:
    """The shapes a NumPy or Keras user sends by mistake (x.tolist() of a flat, batched or channelled
    image) get a 422 that names the shape and the fix, rather than one about its first row or value."""
    shape = leading_shape(pixels)
    if shape == (SIDE, SIDE) or len(shape) < 1:
        return
    shown = "x".join(map(str, shape))
    if shape == (SIDE * SIDE,):
        raise InvalidInput(f"pixels is a flat list of {SIDE * SIDE} numbers; send it as {SIDE} rows of {SIDE} "
                           f"(in NumPy, x.reshape({SIDE}, {SIDE}).tolist())")
    if len(shape) > 2 and tuple(n for n in shape if n != 1) == (SIDE, SIDE):
        raise InvalidInput(f"pixels has the shape {shown}; send one image of {SIDE}x{SIDE}, without the axes of "
                           "length 1 (in NumPy, x.squeeze().tolist()); several images go to /score/batch")
    if shape[:2] == (SIDE, SIDE) and len(shape) == 3:
        raise InvalidInput(f"pixels has the shape {shown}: {shape[2]} values per pixel, where one (grayscale) is "
                           "read; send the image as a PNG file to have its colour converted")
    if len(shape) > 2 and shape[0] > 1 and shape[1:] in ((SIDE, SIDE), (SIDE, SIDE, 1)):
        raise InvalidInput(f"pixels has the shape {shown}: {shape[0]} images, where one is read; send them to "
                           '/score/batch, as {"pixels": [image, ...]}')
    if len(shape) == 2 and all(isinstance(row, list) and len(row) == shape[1] for row in pixels):
        # Every row as long as the first: an image of another size, not a row cut short
        raise InvalidInput(f"pixels is an image of {shown}; JSON pixels must be {SIDE}x{SIDE}. Send an image of "
                           "another size as a file (PNG), with ?resize=true to have it framed as the model's "
                           "training images were")


def leading_shape(value: object, most: int = 5) -> tuple[int, ...]:
    """The shape of a nested list, read along its first elements (the rest is checked value by value)."""
    shape = []
    while isinstance(value, list) and len(shape) < most:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _png(array_rgb_or_gray: np.ndarray, scale: int) -> bytes:
    image = Image.fromarray(array_rgb_or_gray)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grayscale_png(pixels: np.ndarray, scale: int = 1) -> bytes:
    return _png(np.asarray(pixels, dtype=np.uint8).reshape(SIDE, SIDE), scale)


def heatmap_png(difference: np.ndarray, heatmap_scale: float, scale: int = 1) -> bytes:
    return _png(heatmap_rgb(difference, heatmap_scale), scale)


def heatmap_rgb(difference: np.ndarray, heatmap_scale: float) -> np.ndarray:
    """Signed difference (input - reconstruction) as colour, uint8 [28, 28, 3], on a fixed scale set by the
    model.

    Red = ink the model did not expect, blue = expected ink that is missing. |difference| equal to the
    model's pixel-level threshold (`heatmap_scale`) is pure red/blue; twice it saturates to
    yellow/cyan. The scale never adapts to the image, so a colour means the same on every image.
    """
    value = np.clip(np.asarray(difference, np.float32).reshape(SIDE, SIDE) / heatmap_scale, -2, 2) / 2
    strength = np.abs(value)
    primary, secondary = np.minimum(1.0, 2 * strength), np.maximum(0.0, 2 * strength - 1)
    extra, missing = value > 0, value < 0
    rgb = np.zeros((SIDE, SIDE, 3), np.float32)
    rgb[..., 0] = np.where(extra, primary, 0)
    rgb[..., 1] = np.where(extra | missing, secondary, 0)
    rgb[..., 2] = np.where(missing, primary, 0)
    return (rgb * 255).round().astype(np.uint8)
