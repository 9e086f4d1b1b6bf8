"""Reading images from requests: multipart file, raw image body, or JSON pixels."""

from __future__ import annotations

import json

import numpy as np
from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from app.config import Settings
from app.errors import BadRequest, InvalidInput, UndecodableImage, UnsupportedMediaType
from app.imaging import decode_image, pixels_from_json

ACCEPTED = "multipart/form-data (field 'file'), an image/* body, or application/json {\"pixels\": [...]}"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def single_image(request: Request, settings: Settings, resize: bool) -> np.ndarray:
    """uint8 [1, 28, 28] from whichever of the three accepted forms the client used."""
    media_type = _media_type(request)
    if media_type == "multipart/form-data":
        form = await _parse_form(request, max_files=1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart body has no file field named 'file'")
        data = await upload.read()
    elif media_type.startswith("image/"):
        data = await request.body()
    elif media_type == "application/json":
        return pixels_from_json(_pixels_field(await request.body()))[None]
    else:
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not accepted; send {ACCEPTED}")
    return decode_image(data, resize=resize, max_pixels=settings.max_image_pixels)[None]


async def _parse_form(request: Request, max_files: int) -> FormData:
    """Starlette reports every multipart problem as a bare 400; give each a specific problem."""
    try:
        return await request.form(max_files=max_files, max_fields=8)
    except HTTPException as error:
        if "Too many files" in str(error.detail):
            raise InvalidInput(f"too many files: at most {max_files} per request") from error
        raise BadRequest(f"malformed multipart body: {error.detail}") from error


def _pixels_field(body: bytes) -> object:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise UndecodableImage(f"the JSON body does not parse: {error}") from error
    if not isinstance(document, dict) or "pixels" not in document:
        raise InvalidInput('the JSON body must be an object with a "pixels" field')
    return document["pixels"]


async def batch_files(request: Request, settings: Settings) -> list[UploadFile]:
    if _media_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("send the images as multipart/form-data, one part per image, "
                                   "all named 'files'")
    form = await _parse_form(request, max_files=settings.max_batch)
    files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
    if not files:
        raise InvalidInput("multipart body has no file fields named 'files'")
    return files
