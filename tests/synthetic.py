"""A tiny MNIST-shaped data set that needs no download: class 1 is a vertical bar, others are shapes;
and crafted image files for the decoders."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def _bar(rng) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    x, width = rng.integers(11, 15), rng.integers(2, 4)
    image[4:24, x:x + width] = 255
    return image


def _ring(rng) -> np.ndarray:
    yy, xx = np.mgrid[:28, :28]
    radius = rng.uniform(6, 9)
    distance = np.hypot(yy - 14 + rng.uniform(-1, 1), xx - 14 + rng.uniform(-1, 1))
    return (np.abs(distance - radius) < 1.5).astype(np.uint8) * 255


def _cross(rng) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    centre = rng.integers(12, 16)
    image[centre - 1:centre + 2, 4:24] = 255
    image[4:24, centre - 1:centre + 2] = 255
    return image


def make_images(labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    makers = {1: _bar, 0: _ring}
    return np.stack([makers.get(int(label), _cross)(rng) for label in labels])


def make_mnist_like(n_train: int = 600, n_test: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_train = rng.choice([0, 1, 1, 1, 7], size=n_train).astype(np.uint8)
    y_test = rng.choice([0, 1, 7], size=n_test).astype(np.uint8)
    return {"x_train": make_images(y_train, seed + 1), "y_train": y_train,
            "x_test": make_images(y_test, seed + 2), "y_test": y_test}


def write_mnist_like(path, **kwargs) -> None:
    np.savez_compressed(path, **make_mnist_like(**kwargs))


def tiff_with_strip_offsets_of_type(type_code: int) -> bytes:
    """A TIFF whose StripOffsets tag claims another type: FLOAT (11) makes Pillow seek to a float and
    raise a TypeError, LONG8 (16) read over the white pixels to 2**64 - 1 an OverflowError. Neither is
    one of Pillow's errors for corrupt data (both found by mutation fuzzing of the decoder)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    first_ifd = struct.unpack_from("<I", data, 4)[0]  # Pillow writes little-endian: b"II*\0"
    for entry in range(first_ifd + 2, first_ifd + 2 + 12 * struct.unpack_from("<H", data, first_ifd)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<H", data, entry + 2, type_code)  # its type, instead of LONG (4)
    return bytes(data)
