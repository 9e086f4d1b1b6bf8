"""Decoding client bytes: however they are corrupted, the outcome is a client error or an image."""

import io
import random

import numpy as np
import pytest
from PIL import Image

from app.errors import ServiceError
from app.imaging import decode_image


# Pillow warns about the corrupt tags it skips, and about huge sizes a corrupt header claims: expected.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_corrupted_images_and_metadata_never_escape_as_server_errors(fmt):
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "camera"  # orientation, make: a metadata block to corrupt
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, exif=exif)
    original = buffer.getvalue()
    # Aim at the EXIF block where the format holds it as-is: Pillow parses it apart from the pixels.
    block = exif.tobytes()
    at = original.find(block[8:20])
    start, end = (max(0, at - 8), min(len(original), at + len(block) + 8)) if at >= 0 else (0, len(original))
    rng = random.Random(0)
    outcomes = {"decoded": 0, "client error": 0}
    for _ in range(1500):
        corrupted = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            corrupted[rng.randrange(start, end)] = rng.randrange(256)
        try:
            assert decode_image(bytes(corrupted), resize=True, max_pixels=10**8).shape == (28, 28)
            outcomes["decoded"] += 1
        except ServiceError as error:
            assert 400 <= error.status < 500
            outcomes["client error"] += 1
    assert outcomes["decoded"] and outcomes["client error"], outcomes  # both paths were exercised
