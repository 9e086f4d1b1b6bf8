"""Reading images from requests: multipart file, raw image body, or JSON pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fastapi import Request

from app.api.json_body import json_object
from app.api.multipart import Part, parse_multipart
from app.config import Settings
from app.decode_pool import DecodePool
from app.errors import InvalidInput, UnsupportedMediaType, quoted
from app.imaging import INLINE_DECODE_PIXELS, open_image, pixels_from_json, to_model_pixels
from app.sniffing import image_format
from training.preprocessing import SIDE

ACCEPTED = "multipart/form-data (field 'file'), an image/* body, or application/json {\"pixels\": [...]}"
# Bytes sent without a type of their own (RFC 9110, 8.3, lets the recipient examine them): what many HTTP
# clients send when given a file's bytes, as Python's requests does with data=open(path, "rb").
UNLABELLED = ("", "application/octet-stream")
MAX_EXTRA_PARTS = 8  # parts read besides the images, so that the refusal of a stray one can name it
MAX_JSON_BYTES = 256 * 1024  # 28x28 numbers take ~20 KB even pretty-printed with long decimals


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class SingleUpload:
    images: np.ndarray    # uint8 [1, 28, 28], ready for the model
    filename: str | None  # the uploaded file's name (multipart only)
    content: bytes        # the image as sent: the file's bytes, or the JSON pixels as uint8


async def single_image(request: Request, settings: Settings, decode_pool: DecodePool,
                       resize: bool, invert: bool, framing: str) -> SingleUpload:
    """The image, from whichever of the three accepted forms the client used."""
    filename = None
    media_type = _media_type(request)
    if media_type == "multipart/form-data":
        parts = parse_multipart(await request.body(), request.headers["content-type"], 1 + MAX_EXTRA_PARTS)
        files = [part for part in parts if part.name == "file"]
        if not files:
            raise InvalidInput(f"multipart body has no part named 'file'{_parts_it_has(parts)}")
        _refuse_other_parts(parts, "file", "besides the image; /score takes one part, named 'file'")
        if len(files) > 1:  # scoring only the first would silently drop the others
            raise InvalidInput(f"multipart body has {len(files)} parts named 'file'; /score takes one image. "
                               "Send several to /score/batch, as parts named 'files'")
        data, filename = files[0].data, files[0].filename
    elif media_type.startswith("image/") or media_type in UNLABELLED:
        data = await request.body()  # decoded by its content, whatever image/* type it is labelled with
    elif media_type == "application/json":
        pixels = pixels_from_json(_pixels_field(await request.body()))
        return SingleUpload((255 - pixels if invert else pixels)[None], None, pixels.tobytes())
    else:
        raise UnsupportedMediaType(f"content type {media_type!r} is not accepted; send {ACCEPTED}"
                                   f"{_label_hint(await request.body())}")
    image = open_image(data, resize=resize, max_pixels=settings.max_image_pixels)
    if image.width * image.height <= INLINE_DECODE_PIXELS:
        return SingleUpload(to_model_pixels(image, invert=invert, framing=framing)[None], filename, data)
    # Decoding and resizing a large image takes up to a second: on the event loop it would stall
    # every other request. Pillow releases the GIL while it decodes.
    pixels = await decode_pool.run(to_model_pixels, image, invert=invert, framing=framing)
    return SingleUpload(pixels[None], filename, data)


def _label_hint(body: bytes) -> str:
    found = image_format(body)
    if found is None:
        return ""
    name, media_type = found
    return (f". The body is a {name} image: label it Content-Type: {media_type} (curl labels --data-binary "
            f"application/x-www-form-urlencoded unless given -H 'Content-Type: {media_type}')")


def _pixels_field(body: bytes) -> object:
    document = json_object(body, MAX_JSON_BYTES, what=f'one {SIDE}x{SIDE} image, {{"pixels": [...]}} (send larger '
                                                     'images as files)')
    if "pixels" not in document:
        raise InvalidInput('the JSON body must be an object with a "pixels" field')
    others = [name for name in document if name != "pixels"]
    if others:  # ignored, {"source": "line-3"} would be an option the client believes it set
        raise InvalidInput(f'the JSON body has {quoted(others)} besides "pixels", which is all it takes. Options '
                           "such as ?source= go in the query")
    return document["pixels"]


async def batch_files(request: Request, settings: Settings) -> list[Part]:
    media_type = _media_type(request)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not accepted; send the images "
                                   "as multipart/form-data, one part per image, all named 'files'")
    parts = parse_multipart(await request.body(), request.headers["content-type"],
                            settings.max_batch + MAX_EXTRA_PARTS)
    files = [part for part in parts if part.name == "files"]
    if not files:
        raise InvalidInput(f"multipart body has no parts named 'files'{_parts_it_has(parts)}")
    _refuse_other_parts(parts, "files", "besides the images; /score/batch takes only parts named 'files'")
    if len(files) > settings.max_batch:
        raise InvalidInput(f"too many files: {len(files)} sent, at most {settings.max_batch} per request "
                           "(VAE_MAX_BATCH)")
    return files


def _refuse_other_parts(parts: list[Part], expected: str, takes: str) -> None:
    # Ignored, a part named 'file' in a batch would be an image left unscored, and a form field such as
    # source=line-3 an option the client believes it set.
    others = _names(part.name for part in parts if part.name != expected)
    if others:
        raise InvalidInput(f"multipart body has {others} {takes}. Options such as ?source= go in the query")


def _parts_it_has(parts: list[Part]) -> str:
    names = _names(part.name for part in parts)
    return f" (it has {names})" if names else ""


def _names(names) -> str:
    distinct = list(dict.fromkeys(names))
    if not distinct:
        return ""
    return f"{'a part' if len(distinct) == 1 else 'parts'} named {quoted(distinct)}"
