"""POST /score and POST /score/batch."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request

from app.api import uploads
from app.api.deps import ResizeDep, ScorerDep, SettingsDep, ThresholdDep
from app.api.presenters import score_result
from app.errors import ServiceError
from app.imaging import decode_image
from app.schemas import PROBLEM_RESPONSES, BatchItem, BatchResponse, PixelsRequest, ProblemDetail, ScoreResult

router = APIRouter(tags=["scoring"])

_SINGLE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": PixelsRequest.model_json_schema()},
}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}


@router.post("/score", response_model=ScoreResult, responses=PROBLEM_RESPONSES, openapi_extra=_SINGLE_BODY,
             summary="Score one image",
             description="Send the image as a multipart field `file`, as a raw `image/*` body, or as JSON "
                         "`{\"pixels\": 28x28 values 0-255}`. PNG, JPEG, BMP, GIF, TIFF and WebP are "
                         "accepted; colour and alpha become grayscale.")
async def score(request: Request, scorer: ScorerDep, settings: SettingsDep, override: ThresholdDep,
                resize: ResizeDep = False) -> ScoreResult:
    images = await uploads.single_image(request, settings, resize)
    (result,) = await scorer.score(images, override)
    return score_result(result)


@router.post("/score/batch", response_model=BatchResponse, responses=PROBLEM_RESPONSES,
             openapi_extra=_BATCH_BODY, summary="Score many images in one request",
             description="Multipart with one part per image, each named `files` (at most VAE_MAX_BATCH). "
                         "An image that cannot be scored gets its own error item; the rest are scored.")
async def score_batch(request: Request, scorer: ScorerDep, settings: SettingsDep, override: ThresholdDep,
                      resize: ResizeDep = False) -> BatchResponse:
    files = await uploads.batch_files(request, settings)
    items: list[BatchItem] = []
    decoded: list[tuple[int, np.ndarray]] = []
    for index, upload in enumerate(files):
        try:
            pixels = decode_image(await upload.read(), resize=resize, max_pixels=settings.max_image_pixels)
            decoded.append((index, pixels))
        except ServiceError as error:
            items.append(BatchItem(index=index, filename=upload.filename, error=ProblemDetail(
                title=error.title, status=error.status, detail=error.detail)))
    if decoded:
        results = await scorer.score(np.stack([pixels for _, pixels in decoded]), override)
        items += [BatchItem(index=index, filename=files[index].filename, result=score_result(result))
                  for (index, _), result in zip(decoded, results)]
    items.sort(key=lambda item: item.index)
    return BatchResponse(items=items, n_scored=len(decoded), n_failed=len(files) - len(decoded))
