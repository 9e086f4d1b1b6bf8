"""GET /image/{id}, /reconstruction/{id}, /difference/{id} and /panel/{id}: PNGs of a stored result."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.api.deps import ResultIdDep, StoreDep, reject_unknown_or_repeated_query_parameters
from app.errors import NotFound
from app.imaging import grayscale_png, heatmap_png
from app.panel import panel_png
from app.results import ResultStore, StoredResult
from app.schemas import STORED_RESULT_PROBLEMS

router = APIRouter(tags=["images"], dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])
ScaleDep = Annotated[int, Query(ge=1, le=16, description="upscale factor (nearest neighbour) for viewing")]
PNG_RESPONSE = {200: {"content": {"image/png": {}}, "description": "a PNG, 28x28 pixels times `scale`"},
                **STORED_RESULT_PROBLEMS}


async def _stored(store: ResultStore, result_id: str) -> StoredResult:
    result = await asyncio.to_thread(store.get, result_id)
    if result is None:
        raise NotFound(f"no result with id {result_id} (it may have been pruned by retention)")
    return result


def _png(data: bytes) -> Response:
    # A result never changes, so a browser may keep its images; but only the browser that asked
    # ("private"): a shared cache would otherwise hand images that needed an API key to anyone.
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/reconstruction/{result_id}", response_class=Response, responses=PNG_RESPONSE,
            summary="The model's reconstruction of a scored image")
async def reconstruction(result_id: ResultIdDep, store: StoreDep, scale: ScaleDep = 1) -> Response:
    return _png(grayscale_png((await _stored(store, result_id)).reconstruction, scale))


@router.get("/difference/{result_id}", response_class=Response, responses=PNG_RESPONSE,
            summary="Where the image differs from normal, as a heatmap",
            description="Red: ink the model did not expect; blue: expected ink that is missing. Pure "
                        "red/blue marks the model's pixel-level threshold; yellow/cyan twice that. The "
                        "scale is fixed per model version, never normalised per image.")
async def difference(result_id: ResultIdDep, store: StoreDep, scale: ScaleDep = 1) -> Response:
    result = await _stored(store, result_id)
    return _png(heatmap_png(result.difference, result.heatmap_scale, scale))


@router.get("/image/{result_id}", response_class=Response, responses=PNG_RESPONSE,
            summary="The scored input image, as the model saw it (28x28 grayscale)")
async def original(result_id: ResultIdDep, store: StoreDep, scale: ScaleDep = 1) -> Response:
    return _png(grayscale_png((await _stored(store, result_id)).image, scale))


@router.get("/panel/{result_id}", response_class=Response, responses={
    200: {"content": {"image/png": {}}, "description": "a PNG: three pictures of 28 x `scale` pixels and their "
                                                       "labels, under the verdict"}, **STORED_RESULT_PROBLEMS},
            summary="The input, reconstruction and difference side by side, under the verdict",
            description="One image with the evidence of a result, for an operator's screen or a defect report. "
                        "The verdict's line is red for an anomaly and green for a normal image.")
async def panel(result_id: ResultIdDep, store: StoreDep,
                scale: Annotated[int, Query(ge=4, le=16, description="size of each picture: 28 x scale pixels "
                                                                     "square")] = 8) -> Response:
    result = await _stored(store, result_id)
    relation = ">" if result.is_anomaly else "<="
    headline = (f"{'anomalous' if result.is_anomaly else 'normal'}: score {result.score:.4g} {relation} threshold "
                f"{result.threshold:.4g}, p = {result.p_value:.2g}")
    # Drawing text and encoding a PNG of up to 1,472 x 598 pixels takes milliseconds: not on the event loop.
    return _png(await asyncio.to_thread(panel_png, result.image, result.reconstruction, result.difference,
                                        result.heatmap_scale, headline, result.is_anomaly, scale))
