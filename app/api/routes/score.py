"""POST /score and POST /score/batch."""

from __future__ import annotations

import functools

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api import uploads
from app.api.deps import (ApiKeyNameDep, DecodePoolDep, IdempotencyKeyDep, ScoreQuery, ScoreQueryDep, ScorerDep,
                          SettingsDep, query_parameters_openapi, url_root)
from app.api.presenters import score_result
from app.config import Settings
from app.errors import InvalidInput, ServiceError
from app.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER, IdempotentRequest, batch_digest, request_digest
from app.imaging import decode_image
from app.results import ref_from_filename
from app.schemas import RESULT_LINKS, SCORING_PROBLEMS, BatchResponse, PixelsRequest, ScoreResult

router = APIRouter(tags=["scoring"])

_QUERY = query_parameters_openapi(ScoreQuery)


def _idempotency_key_parameter(per: str) -> dict:
    return {"name": HEADER, "in": "header", "required": False, "schema": {
        "type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}, "description": (
        f"a key of your own, new for each {per} (a UUID, say). A retry with the same key and the same request "
        "gets the first answer again, with `Idempotent-Replayed: true`, instead of scoring and storing the "
        "images twice; the same key with other images or other parameters is a 422")}


_SINGLE_BODY = {"parameters": [*_QUERY, _idempotency_key_parameter("image")], "requestBody": {
    "required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "additionalProperties": False,
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": PixelsRequest.model_json_schema()},
    }}}
_BATCH_BODY = {"parameters": [*_QUERY, _idempotency_key_parameter("batch")], "requestBody": {
    "required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["files"], "additionalProperties": False,
        "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}


@router.post("/score", response_model=ScoreResult, responses={**SCORING_PROBLEMS, **RESULT_LINKS},
             openapi_extra=_SINGLE_BODY,
             summary="Score one image",
             description="Send the image as a multipart field `file`, as a raw `image/*` body (or one labelled "
                         "`application/octet-stream`, or not at all), or as JSON "
                         "`{\"pixels\": 28x28 values 0-255}`. PNG, JPEG, BMP, GIF, TIFF and WebP are "
                         "accepted; colour and alpha become grayscale. The model expects light strokes on "
                         "a dark background: send `?invert=true` for dark-on-light images. For a photo or "
                         "scan of any size, add `?resize=true`.")
async def score(request: Request, scorer: ScorerDep, settings: SettingsDep, decode_pool: DecodePoolDep,
                query: ScoreQueryDep, idempotency_key: IdempotencyKeyDep, api_key: ApiKeyNameDep) -> JSONResponse:
    upload = await uploads.single_image(request, settings, decode_pool, query.resize, query.invert, scorer.framing)
    ref = query.ref or ref_from_filename(upload.filename)
    if idempotency_key is None:
        (result,) = await scorer.score(upload.images, query.override, source=query.source, refs=[ref])
        return JSONResponse(score_result(result, url_root(request)))
    parameters = {**query.model_dump(), "ref": ref}
    result, replayed = await scorer.score_once(upload.images, query.override, query.source, ref, IdempotentRequest(
        idempotency_key, request_digest(parameters, upload.content), scope=api_key))
    return JSONResponse(score_result(result, url_root(request)),
                        headers={REPLAYED_HEADER: "true"} if replayed else None)


@router.post("/score/batch", response_model=BatchResponse, responses=SCORING_PROBLEMS,
             openapi_extra=_BATCH_BODY, summary="Score many images in one request",
             description="Multipart with one part per image, each named `files` (at most VAE_MAX_BATCH). "
                         "An image that cannot be scored gets its own error item; the rest are scored.")
async def score_batch(request: Request, scorer: ScorerDep, settings: SettingsDep, decode_pool: DecodePoolDep,
                      query: ScoreQueryDep, idempotency_key: IdempotencyKeyDep,
                      api_key: ApiKeyNameDep) -> JSONResponse:
    if query.ref is not None:
        raise InvalidInput("?ref= names one image; in /score/batch each image's ref is its file name")
    files = await uploads.batch_files(request, settings)
    payloads = [upload.data for upload in files]
    # Decoding hundreds of images would stall the event loop; Pillow releases the GIL while decoding.
    decode = functools.partial(_decode_or_error, query=query, settings=settings, framing=scorer.framing)
    decoded = await decode_pool.map_in_slices(decode, payloads)
    good = [i for i, outcome in enumerate(decoded) if isinstance(outcome, np.ndarray)]
    refs = [ref_from_filename(files[i].filename) for i in good]
    scored, replayed = [], False
    if good:
        images = np.stack([decoded[i] for i in good])
        if idempotency_key is None:
            scored = await scorer.score(images, query.override, source=query.source, refs=refs)
        else:
            digest = batch_digest(query.model_dump(), [(upload.filename, upload.data) for upload in files])
            scored, replayed = await scorer.score_batch_once(images, good, query.override, query.source, refs,
                                                             IdempotentRequest(idempotency_key, digest, api_key))
    results, root = iter(scored), url_root(request)
    items = []
    for index, (upload, outcome) in enumerate(zip(files, decoded, strict=True)):
        item = {"index": index, "filename": upload.filename, "result": None, "error": None}
        if isinstance(outcome, ServiceError):
            item["error"] = {"type": "about:blank", "title": outcome.title, "status": outcome.status,
                             "detail": outcome.detail}
        else:
            item["result"] = score_result(next(results), root)
        items.append(item)
    return JSONResponse({"items": items, "n_scored": len(good), "n_failed": len(files) - len(good)},
                        headers={REPLAYED_HEADER: "true"} if replayed else None)


def _decode_or_error(data: bytes, query: ScoreQuery, settings: Settings, framing: str) -> np.ndarray | ServiceError:
    """One batch item: its pixels, or the client error that is its own item's answer."""
    try:
        return decode_image(data, resize=query.resize, invert=query.invert, framing=framing,
                            max_pixels=settings.max_image_pixels)
    except ServiceError as error:
        return error
