"""Reading images from requests: multipart file, raw image body, or JSON pixels."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np
from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from app.api.json_body import json_object
from app.api.multipart import Part, parse_multipart
from app.config import Settings
from app.decode_pool import DecodePool
from app.errors import BadRequest, InvalidInput, ServiceError, UnsupportedMediaType, quoted
from app.imaging import (INLINE_DECODE_PIXELS, decode_image, leading_shape, open_image, pixels_from_json,
                         to_model_pixels)
from app.results import ref_from_filename
from app.schemas import Ref
from app.sniffing import image_format
from training.preprocessing import SIDE

ACCEPTED = "multipart/form-data (field 'file'), an image/* body, or application/json {\"pixels\": [...]}"
# Bytes sent without a type of their own (RFC 9110, 8.3, lets the recipient examine them): what many HTTP
# clients send when given a file's bytes, as Python's requests does with data=open(path, "rb").
UNLABELLED = ("", "application/octet-stream")
BATCH_ACCEPTED = ("multipart/form-data, one part per image, all named 'files', or application/json "
                  '{"pixels": [image, ...]}')
MAX_EXTRA_PARTS = 8  # parts read besides the images, so that the refusal of a stray one can name it
MAX_JSON_BYTES = 256 * 1024  # 28x28 numbers take ~20 KB even pretty-printed with long decimals
_REF = TypeAdapter(Ref | None)


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
        if not data and not media_type:  # `curl -X POST .../score`: the image was left out, not empty
            raise BadRequest(f"the request has no body; send {ACCEPTED}")
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


@dataclass(frozen=True)
class BatchItem:
    filename: str | None                # the part's file name (multipart); None for JSON pixels
    ref: str | None                     # stored with the result: the file name, or the JSON's refs[i]
    pixels: np.ndarray | ServiceError   # uint8 [28, 28] ready for the model, or why this image cannot be scored
    content: bytes                      # the image as sent, for the Idempotency-Key digest


async def batch_images(request: Request, settings: Settings, decode_pool: DecodePool, resize: bool, invert: bool,
                       framing: str) -> list[BatchItem]:
    """The images of a batch, each decoded or with the client error that is its own item's answer."""
    media_type = _media_type(request)
    if media_type == "application/json":
        return await _json_batch(await request.body(), settings.max_batch, decode_pool, invert)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not accepted; send {BATCH_ACCEPTED}")
    parts = parse_multipart(await request.body(), request.headers["content-type"],
                            settings.max_batch + MAX_EXTRA_PARTS)
    files = [part for part in parts if part.name == "files"]
    if not files:
        raise InvalidInput(f"multipart body has no parts named 'files'{_parts_it_has(parts)}")
    _refuse_other_parts(parts, "files", "besides the images; /score/batch takes only parts named 'files'")
    _refuse_too_many(len(files), settings.max_batch)
    # Decoding hundreds of images would stall the event loop; Pillow releases the GIL while decoding.
    decode = functools.partial(_decoded_or_error, resize=resize, invert=invert, framing=framing,
                               max_pixels=settings.max_image_pixels)
    decoded = await decode_pool.map_in_slices(decode, [part.data for part in files])
    return [BatchItem(part.filename, ref_from_filename(part.filename), pixels, part.data)
            for part, pixels in zip(files, decoded, strict=True)]


def _decoded_or_error(data: bytes, **options) -> np.ndarray | ServiceError:
    try:
        return decode_image(data, **options)
    except ServiceError as error:
        return error


def _refuse_too_many(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise InvalidInput(f"too many images: {count} sent, at most {max_batch} per request (VAE_MAX_BATCH)")


async def _json_batch(body: bytes, max_batch: int, decode_pool: DecodePool, invert: bool) -> list[BatchItem]:
    # Up to 256 images of 784 values: parsing and checking them takes ~0.1 s, off the event loop.
    images, refs = await decode_pool.run(_json_batch_fields, body, max_batch)
    read = await decode_pool.map_in_slices(_json_image, images)
    return [BatchItem(None, ref, 255 - pixels if invert and isinstance(pixels, np.ndarray) else pixels, content)
            for ref, (pixels, content) in zip(refs, read, strict=True)]


def _json_image(image: object) -> tuple[np.ndarray | ServiceError, bytes]:
    """One image of a JSON batch: its pixels or its error, and its canonical text for the digest."""
    content = json.dumps(image, separators=(",", ":")).encode()
    try:
        return pixels_from_json(image), content
    except ServiceError as error:
        return error, content


def _json_batch_fields(body: bytes, max_batch: int) -> tuple[list, list[str | None]]:
    """The images and refs of a JSON batch, {"pixels": [image, ...], "refs": [ref, ...]}, where what is wrong
    with the whole request is a 422 and what is wrong with one image is left to that image's item."""
    document = json_object(body, MAX_JSON_BYTES * max_batch,
                           what=f'{{"pixels": [image, ...]}}, each image {SIDE} rows of {SIDE} values')
    if "pixels" not in document:
        raise InvalidInput('the JSON body must be an object with a "pixels" field: a list of images')
    others = [name for name in document if name not in ("pixels", "refs")]
    if others:
        raise InvalidInput(f'the JSON body has {quoted(others)} besides "pixels" and "refs", which is all it takes. '
                           "Options such as ?source= go in the query")
    images = document["pixels"]
    shape = leading_shape(images)
    if not isinstance(images, list) or not images:
        raise InvalidInput(f'"pixels" must be a list of images, each {SIDE} rows of {SIDE} values; got '
                           + (type(images).__name__ if not isinstance(images, list) else "an empty list"))
    if len(shape) == 2:  # a list of numbers' lists: one image, not a list of them
        raise InvalidInput(f'"pixels" is one image ({"x".join(map(str, shape))}); /score/batch takes a list of '
                           f'images, {{"pixels": [image, ...]}} (in NumPy, of an array N x {SIDE} x {SIDE}, '
                           "x.tolist()); send one image to /score")
    if len(shape) > 3 and shape[1:] == (SIDE, SIDE, 1):
        raise InvalidInput(f'"pixels" has the shape {"x".join(map(str, shape))}; send {shape[0]} images of {SIDE}x'
                           f"{SIDE}, without the channel axis (in NumPy, x.squeeze(-1).tolist())")
    _refuse_too_many(len(images), max_batch)
    refs = document.get("refs")
    if refs is None:
        return images, [None] * len(images)
    if not isinstance(refs, list) or len(refs) != len(images):
        count = len(refs) if isinstance(refs, list) else type(refs).__name__
        raise InvalidInput(f'"refs" must be a list of one ref per image ({len(images)}), or null for none; got '
                           f"{count}")
    for index, ref in enumerate(refs):
        try:
            _REF.validate_python(ref)
        except ValidationError as error:
            raise InvalidInput(f"refs[{index}]: {error.errors()[0]['msg']}") from None
    return images, refs


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
