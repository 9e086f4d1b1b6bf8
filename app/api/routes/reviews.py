"""PUT and DELETE /results/{id}/review: a person's verdict on a result, for the work list and the audit trail
(GET /results/{id}/reviews)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.deps import (
    ApiKeyNameDep,
    MetricsDep,
    ResultIdDep,
    StoreDep,
    UrlRootDep,
    reject_unknown_or_repeated_query_parameters,
)
from app.api.json_body import json_object
from app.api.preconditions import IfMatchDep
from app.api.presenters import review_entry, score_result
from app.errors import NotFound, UnsupportedMediaType
from app.results import ResultStore, Review, StoredResult
from app.results_schema import stored_time
from app.schemas import (
    RESULT_ETAG,
    STORED_RESULT_PROBLEMS,
    ReviewHistory,
    ReviewRequest,
    ScoreResult,
    problem_responses,
)

# Two routers, because writing a review and reading the audit trail need different API key roles.
router = APIRouter(prefix="/results", tags=["reviews"],
                   dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])
history = APIRouter(prefix="/results", tags=["reviews"],
                    dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])

MAX_REVIEW_BYTES = 16 * 1024  # a verdict, a note of 1,000 characters and a name, with room for escapes

_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ReviewRequest.model_json_schema()}}}}


async def _review_request(request: Request) -> ReviewRequest:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not accepted; send "
                                   'application/json such as {"verdict": "normal"}')
    document = json_object(await request.body(), MAX_REVIEW_BYTES,
                           what='a review, {"verdict": "normal" or "anomalous", "note": ..., "reviewer": ...}')
    try:
        return ReviewRequest.model_validate(document)
    except ValidationError as error:  # answered like any request FastAPI validates: a 422 with `errors`
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]) from None


ReviewRequestDep = Annotated[ReviewRequest, Depends(_review_request)]
_WITH_ETAG = {200: {"headers": RESULT_ETAG}}


@router.put("/{result_id}/review", response_model=ScoreResult, openapi_extra=_BODY,
            responses={**STORED_RESULT_PROBLEMS, **problem_responses(400, 412, 413, 415), **_WITH_ETAG},
            summary="Record a person's verdict on a result",
            description="After someone has looked at the image (`panel_url`): `normal` for a false alarm or a "
                        "confirmed normal part, `anomalous` for a confirmed or a missed defect. A second review "
                        "replaces the first. Returns the result with its `review`; `GET /results?review=none"
                        "&anomalous=true` lists the flagged results nobody has reviewed yet. Send `If-Match` with "
                        "the result's ETag so as not to overwrite a review someone gave since you looked.")
async def review_result(result_id: ResultIdDep, store: StoreDep, metrics: MetricsDep, api_key: ApiKeyNameDep,
                        root: UrlRootDep, body: ReviewRequestDep, if_match: IfMatchDep) -> JSONResponse:
    review = Review(body.verdict, stored_time(dt.datetime.now(dt.UTC)), body.note, body.reviewer, api_key)
    result = await _set_review(store, result_id, review, if_match)
    metrics.reviews.labels(body.verdict, "agrees" if (body.verdict == "anomalous") == result.is_anomaly
                           else "disagrees").inc()
    return _answer(result, root)


@router.delete("/{result_id}/review", response_model=ScoreResult,
               responses={**STORED_RESULT_PROBLEMS, **problem_responses(400, 412), **_WITH_ETAG},
               summary="Withdraw the review of a result",
               description="Back to unreviewed, as after scoring (for a review given to the wrong result). With "
                           "`If-Match`, only while the review is still the one its ETag stands for.")
async def withdraw_review(result_id: ResultIdDep, store: StoreDep, api_key: ApiKeyNameDep,
                          root: UrlRootDep, if_match: IfMatchDep) -> JSONResponse:
    withdrawal = Review(None, stored_time(dt.datetime.now(dt.UTC)), api_key=api_key)
    return _answer(await _set_review(store, result_id, withdrawal, if_match), root)


@history.get("/{result_id}/reviews", response_model=ReviewHistory,
            responses=STORED_RESULT_PROBLEMS, summary="Every review of a result, oldest first",
            description="Each review given and each withdrawal (`verdict` null), as the audit trail: a later "
                        "review replaces the result's `review`, but not its entry here.")
async def review_history(result_id: ResultIdDep, store: StoreDep) -> JSONResponse:
    if await asyncio.to_thread(store.get, result_id) is None:
        raise NotFound(f"no result with id {result_id} (it may have been pruned by retention)")
    history = await asyncio.to_thread(store.review_history, result_id)
    return JSONResponse({"items": [review_entry(review) for review in history]})


def _answer(result: StoredResult, root: str) -> JSONResponse:
    body = score_result(result, root)
    return JSONResponse(body, headers={"ETag": body["etag"]})


async def _set_review(store: ResultStore, result_id: str, review: Review,
                      if_match: frozenset[str] | None) -> StoredResult:
    result = await store.review(result_id, review, if_match)
    if result is None:
        raise NotFound(f"no result with id {result_id} (it may have been pruned by retention)")
    return result
