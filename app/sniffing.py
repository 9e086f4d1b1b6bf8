"""What a body's first bytes say it is: the image format, or, for bytes no image decoder reads, the
mistake that most likely made them (base64 text, a text-mode transfer, an iPhone's HEIC, an error page),
so that the refusal says what to send instead of only "cannot decode"."""

from __future__ import annotations

import base64
import binascii
import re

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCEPTED_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"

# The formats the service decodes, by the MIME type a client should label them with.
_IMAGE_SIGNATURES = (
    (PNG_SIGNATURE, "PNG", "image/png"),
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
    (b"GIF87a", "GIF", "image/gif"),
    (b"GIF89a", "GIF", "image/gif"),
    (b"II*\x00", "TIFF", "image/tiff"),
    (b"MM\x00*", "TIFF", "image/tiff"),
    (b"BM", "BMP", "image/bmp"),
)

# ISO base media files name their kind in the 'ftyp' box, at bytes 8-12.
_HEIF_BRANDS = {b"heic": "HEIC (an iPhone's default for photos)", b"heix": "HEIC", b"hevc": "HEIC",
                b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF",
                b"avif": "AVIF", b"avis": "AVIF"}

# Files that are not images the service reads, and that clients send in their place: (signature, what it
# is, what to send instead).
_SEND_AN_IMAGE = f"send {ACCEPTED_FORMATS}"
_OTHER_SIGNATURES = (
    (b"%PDF-", "a PDF document", _SEND_AN_IMAGE),
    (b"\x93NUMPY", "a NumPy .npy file", 'send its pixels as JSON, {"pixels": array.tolist()}, or save it as PNG'),
    (b"PK\x03\x04", "a ZIP archive", "send each image as its own file (several at once: /score/batch)"),
    (b"\x1f\x8b", "gzip-compressed data", "send the image itself, uncompressed"),
    (b"\x00\x00\x01\x00", "an ICO icon", _SEND_AN_IMAGE),
    (b"8BPS", "a Photoshop document", _SEND_AN_IMAGE),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000", _SEND_AN_IMAGE),
    (b"\xff\x4f\xff\x51", "JPEG 2000", _SEND_AN_IMAGE),
    (b"\xff\x0a", "JPEG XL", _SEND_AN_IMAGE),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL", _SEND_AN_IMAGE),
)

_DATA_URL = re.compile(rb"\s*data:([\w.+/-]*)[^,]{0,100},", re.IGNORECASE)
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")


def image_format(data: bytes) -> tuple[str, str] | None:
    """(format name, MIME type) of an image the service decodes, by its signature; None if it is not one."""
    for signature, name, media_type in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return name, media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP", "image/webp"
    return None


def undecodable_reason(data: bytes) -> str:
    """Why bytes that no decoder of the service identifies are not an image, and what to send instead."""
    head = data[:512]
    if head.startswith(PNG_SIGNATURE[:4]) and not head.startswith(PNG_SIGNATURE):
        # The signature holds \r\n and \n precisely so that a text-mode transfer shows itself here.
        return ("its PNG signature is damaged as a text-mode transfer damages it, with line breaks removed or "
                "changed (curl's -d does that): send the file's bytes unchanged, e.g. curl --data-binary @file")
    if (encoded := _base64_image(data)) is not None:
        return (f"it is base64 text of a {encoded} image; send the image's bytes themselves, as the body "
                "(Content-Type: image/...) or as a multipart part 'file', not encoded as text")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return f"it is {_HEIF_BRANDS[data[8:12]]}, which is not accepted; convert it to {ACCEPTED_FORMATS}"
    for signature, what, instead in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return f"it is {what}, not an image the service reads: {instead}"
    text = head.lstrip().lower()
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in text:
        return f"it is an SVG drawing, which is not accepted: render it as {ACCEPTED_FORMATS}"
    if text.startswith((b"<!doctype html", b"<html")):
        return ("it is an HTML page, not an image: was it an error page, fetched in place of the image? "
                f"Send {ACCEPTED_FORMATS}")
    if text.startswith((b"{", b"[")):
        return ("it is JSON text, not an image: send JSON pixels with Content-Type: application/json, "
                'as {"pixels": [...]}')
    return f"its first bytes are not those of any accepted format ({ACCEPTED_FORMATS})"


def _base64_image(data: bytes) -> str | None:
    """The format of the image that `data` is the base64 (or data: URL) text of, if it is one."""
    data_url = _DATA_URL.match(data[:200])
    text = data[data_url.end():] if data_url else data
    head = re.sub(rb"\s", b"", text[:400])[:64]  # 64 characters decode to 48 bytes, plenty for a signature
    if len(head) < 16 or not _BASE64_TEXT.fullmatch(head):
        return None
    try:
        decoded = base64.b64decode(head[:len(head) // 4 * 4], altchars=b"-_" if b"-" in head or b"_" in head
                                   else None)
    except (binascii.Error, ValueError):
        return None
    found = image_format(decoded)
    return found[0] if found else None
