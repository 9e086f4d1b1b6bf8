"""POST /score and POST /score/batch."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api import uploads
from app.api.deps import (ApiKeyNameDep, DecodePoolDep, IdempotencyKeyDep, ScoreQuery, ScoreQueryDep, ScorerDep,
                          SettingsDep, query_parameters_openapi, url_root)
from app.api.presenters import score_result
from app.errors import InvalidInput, ServiceError
from app.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER, IdempotentRequest, batch_digest, request_digest
from app.results import ref_from_filename
from app.schemas import RESULT_LINKS, SCORING_PROBLEMS, BatchResponse, PixelsBatchRequest, PixelsRequest, ScoreResult

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
        "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": PixelsBatchRequest.model_json_schema()}}}}


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
             description="Multipart with one part per image, each named `files`, or JSON "
                         "`{\"pixels\": [image, ...], \"refs\": [...]}` (each image 28x28 values 0-255; refs "
                         "optional); at most VAE_MAX_BATCH images. An image that cannot be scored gets its own "
                         "error item; the rest are scored.")
async def score_batch(request: Request, scorer: ScorerDep, settings: SettingsDep, decode_pool: DecodePoolDep,
                      query: ScoreQueryDep, idempotency_key: IdempotencyKeyDep,
                      api_key: ApiKeyNameDep) -> JSONResponse:
    if query.ref is not None:
        raise InvalidInput("?ref= names one image; in /score/batch each image's ref is its file name, or with JSON "
                           'pixels its entry in "refs"')
    batch = await uploads.batch_images(request, settings, decode_pool, query.resize, query.invert, scorer.framing)
    good = [i for i, item in enumerate(batch) if isinstance(item.pixels, np.ndarray)]
    refs = [batch[i].ref for i in good]
    scored, replayed = [], False
    if good:
        images = np.stack([batch[i].pixels for i in good])
        if idempotency_key is None:
            scored = await scorer.score(images, query.override, source=query.source, refs=refs)
        else:
            digest = batch_digest(query.model_dump(), [(item.ref, item.content) for item in batch])
            scored, replayed = await scorer.score_batch_once(images, good, query.override, query.source, refs,
                                                             IdempotentRequest(idempotency_key, digest, api_key))
    results, root = iter(scored), url_root(request)
    items = []
    for index, item in enumerate(batch):
        answer = {"index": index, "filename": item.filename, "result": None, "error": None}
        if isinstance(item.pixels, ServiceError):
            answer["error"] = {"type": "about:blank", "title": item.pixels.title, "status": item.pixels.status,
                               "detail": item.pixels.detail}
        else:
            answer["result"] = score_result(next(results), root)
        items.append(answer)
    return JSONResponse({"items": items, "n_scored": len(good), "n_failed": len(batch) - len(good)},
                        headers={REPLAYED_HEADER: "true"} if replayed else None)
