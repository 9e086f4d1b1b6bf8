"""What the first bytes of a body that no decoder reads say about the client's mistake."""

import base64
import io

import pytest
from PIL import Image

from app.sniffing import image_format, undecodable_reason


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("L", (28, 28)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt, name, media_type", [
    ("PNG", "PNG", "image/png"), ("JPEG", "JPEG", "image/jpeg"), ("GIF", "GIF", "image/gif"),
    ("TIFF", "TIFF", "image/tiff"), ("BMP", "BMP", "image/bmp"), ("WEBP", "WebP", "image/webp")])
def test_every_accepted_format_is_recognised_by_its_signature(fmt, name, media_type):
    assert image_format(_encoded(fmt)) == (name, media_type)


def test_bytes_of_no_accepted_format_have_none():
    assert image_format(b"hello") is None and image_format(b"") is None


PNG = _encoded("PNG")


@pytest.mark.parametrize("data, reason", [
    (base64.b64encode(PNG), "base64 text of a PNG image"),
    (base64.encodebytes(_encoded("JPEG")), "base64 text of a JPEG image"),  # with line breaks every 76
    (base64.urlsafe_b64encode(_encoded("GIF")), "base64 text of a GIF image"),
    (b"data:image/png;base64," + base64.b64encode(PNG), "base64 text of a PNG image"),  # canvas.toDataURL()
    (PNG.replace(b"\r\n", b"").replace(b"\n", b""), "PNG signature is damaged"),  # curl -d
    (PNG.replace(b"\r\n", b"\n"), "PNG signature is damaged"),  # written in text mode
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC (an iPhone's default for photos)"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF, which is not accepted"),
    (b"%PDF-1.7\n", "a PDF document"),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '|u1'", 'send its pixels as JSON, {"pixels": array.tolist()}'),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">', "an SVG drawing"),
    (b"\n<!DOCTYPE html><html><body>502 Bad Gateway", "an HTML page, not an image"),
    (b'{"pixels": [[0]]}', "Content-Type: application/json"),
    (b"this is text, not an image", "not those of any accepted format (PNG, JPEG, BMP, GIF, TIFF or WebP)"),
    (b"QUFBQUFBQUFBQUFBQUFBQUFBQUFB", "not those of any accepted format"),  # base64, but not of an image
    (b"", "not those of any accepted format"),
])
def test_an_undecodable_body_is_explained_by_what_it_is(data, reason):
    assert reason in undecodable_reason(data)
