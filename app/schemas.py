"""Response and request bodies, with examples for the OpenAPI docs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from app.results import MAX_REF_LENGTH
from training.sources import SOURCE_PATTERN, SOURCE_RULE, is_source_name

EXAMPLE_SCORES = {"l1": 0.0087, "mse": 0.0013, "dssim": 0.020, "neg_elbo": 35.4, "unregularized": 28.6, "kl": 6.8,
                  "latent_knn": 0.56, "dssim_knn": -1.25}


class ModelRef(BaseModel):
    name: str = Field(examples=["mnist-vae"])
    version: int = Field(examples=[3])


def _one_line(text: str) -> str:
    _refuse_blank(text)
    if not text.isprintable():
        raise ValueError("must be printable text, without line breaks or other control characters")
    return text


def _lines(text: str) -> str:
    _refuse_blank(text)
    if not text.replace("\r", "").replace("\n", "").replace("\t", "").isprintable():
        raise ValueError("must be printable text; line breaks and tabs are allowed, other control characters are not")
    return text


def _refuse_blank(text: str) -> None:
    # Spaces alone would be stored and shown as if something had been said: a reviewer nobody can name.
    if not text.strip():
        raise ValueError("must not be blank: give some visible text, or leave it out")


def printable_text(max_length: int, lines: bool = False):
    """The type of a client's text (a ref, a reviewer's name; with `lines`, a note) of 1 to `max_length`
    characters: other control characters would garble the log lines and CSV rows it is written into."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length),
                     AfterValidator(_lines if lines else _one_line)]


# A client's reference for an image (?ref=, or an entry of a JSON batch's "refs"), e.g. a serial number.
Ref = printable_text(MAX_REF_LENGTH)


def _source_name(name: str) -> str:
    if not is_source_name(name):
        raise ValueError(f"{name[:80]!r} is not a source name: a source is named by {SOURCE_RULE}")
    return name


# A line's, camera's or client's name (?source=), as the scoring endpoints store it and the results'
# filters look it up: a filter by a name no result can have would answer an empty list, like a quiet line.
# The schema keeps the pattern for clients; the check says it in words.
SourceName = Annotated[str, AfterValidator(_source_name),
                       WithJsonSchema({"type": "string", "pattern": SOURCE_PATTERN})]


MAX_REVIEW_NOTE_LENGTH = 1000
MAX_REVIEWER_LENGTH = 64


class ReviewRequest(BaseModel):
    """PUT /results/{id}/review: a person's verdict on a result."""
    # A misspelt field ("verdit") is refused rather than ignored, as unknown query parameters are.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"verdict": "normal", "note": "glare on the lens, part is fine", "reviewer": "anna.k"}]})

    verdict: Literal["normal", "anomalous"] = Field(description="what the image really shows")
    note: printable_text(MAX_REVIEW_NOTE_LENGTH, lines=True) | None = Field(
        None, description="why, for the audit trail (line breaks allowed)")
    reviewer: printable_text(MAX_REVIEWER_LENGTH) | None = Field(None, description="who reviewed it (a name or an id)")


class ReviewEntry(BaseModel):
    """A review, or a withdrawal, in a result's history."""
    verdict: Literal["normal", "anomalous"] | None = Field(description="the verdict given; null where a review "
                                                                       "was withdrawn")
    note: str | None
    reviewer: str | None = Field(description="who reviewed it, as the client said")
    api_key: str | None = Field(description="the name of the API key it was sent with: unlike `reviewer`, "
                                            "vouched for by the service (null when it has no keys)")
    reviewed_at: str = Field(description="UTC time it was given or withdrawn (ISO 8601)")


class ReviewOut(ReviewEntry):
    """A result's current review."""
    verdict: Literal["normal", "anomalous"] = Field(description="the reviewer's verdict")
    agrees: bool = Field(description="whether it agrees with the model's `is_anomaly`: false for a false alarm "
                                     "(flagged, reviewed normal) or a missed anomaly")


class ReviewHistory(BaseModel):
    items: list[ReviewEntry] = Field(description="oldest first")


class ScoreResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d", "created_at": "2026-11-28T10:00:00.123456+00:00",
        "score": -1.25, "threshold": 3.67, "threshold_source": "model", "target_fpr": 0.01,
        "p_value": 0.89, "is_anomaly": False, "score_method": "dssim_knn", "scores": EXAMPLE_SCORES,
        "model": {"name": "mnist-vae", "version": 4}, "source": "line-3", "ref": "SN-20261128-0042",
        "result_url": "/results/3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d",
        "reconstruction_url": "/reconstruction/3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d",
        "difference_url": "/difference/3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d",
        "image_url": "/image/3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d",
        "panel_url": "/panel/3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d", "review": None,
        "etag": '"3d493466cb67ca28f360"'}]})

    id: str = Field(description="result id; GET /results/{id} returns this result again")
    created_at: str = Field(description="UTC time the image was scored (ISO 8601)")
    score: float = Field(description="anomaly score of the model's primary method; higher = more anomalous")
    threshold: float = Field(description="the threshold used: score > threshold means anomalous")
    threshold_source: Literal["model", "source", "threshold", "fpr"] = Field(
        description="where the threshold came from: the model's calibrated one, the one calibrated for this "
                    "request's ?source= (GET /model: source_calibrations), or this request's ?threshold= or "
                    "?fpr= override (computed from the source's calibration where it has one)")
    target_fpr: float | None = Field(description="false-positive rate the threshold was calibrated for "
                                                 "(None for an explicit ?threshold=)")
    p_value: float = Field(description="conformal p-value: share of the calibration's normal images (held out "
                                       "in training, or the source's own) scoring at least as high. Small = "
                                       "unlike the normal images")
    is_anomaly: bool
    score_method: str = Field(description="which score method `score` is")
    scores: dict[str, float] = Field(description="the score of every method the model computes")
    model: ModelRef
    source: str | None = Field(description="the request's ?source=: the line, camera or client that sent it")
    ref: str | None = Field(description="the request's ?ref=, else the uploaded file's name")
    result_url: str
    reconstruction_url: str = Field(description="PNG of the model's reconstruction")
    difference_url: str = Field(description="PNG heatmap of input - reconstruction")
    image_url: str = Field(description="PNG of the input as the model saw it: after ?invert and ?resize "
                                       "framing, the 28x28 image that was scored")
    panel_url: str = Field(description="PNG of the input, reconstruction and difference side by side, under "
                                       "the verdict")
    review: ReviewOut | None = Field(description="a person's verdict, set with PUT /results/{id}/review; null "
                                                  "until then")
    etag: str = Field(description="the result's entity tag, as the ETag header of GET /results/{id} gives it, "
                                  "quotes included; it changes when the review does. Send it as If-Match with "
                                  "PUT or DELETE /results/{id}/review to review only if nobody has since")


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Invalid input", "status": 422,
        "detail": "image is 64x64; the model takes 28x28. Send ?resize=true to resize it",
        "instance": "/score", "request_id": "5c0f2e9b7a1d4c3e8f6a2b10"}]})
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = Field(None, description="the request's id, as in the X-Request-ID response header "
                                                     "and the service's log")


class BatchItem(BaseModel):
    index: int = Field(description="position of the image in the request")
    filename: str | None = None
    result: ScoreResult | None = Field(None, description="set when the image was scored")
    error: ProblemDetail | None = Field(None, description="set when this image could not be scored")


class BatchResponse(BaseModel):
    items: list[BatchItem] = Field(description="one per image, in request order")
    n_scored: int
    n_failed: int


class ResultPage(BaseModel):
    items: list[ScoreResult] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?before= for the next page; null on the last")


class ResultCounts(BaseModel):
    count: int = Field(description="results scored")
    anomalies: int = Field(description="of them, flagged as anomalous (with the threshold each request used)")
    anomaly_rate: float | None = Field(description="anomalies / count; null without results")
    anomaly_rate_interval: list[float] | None = Field(
        description="95 % confidence interval of the rate (Wilson score interval), [low, high]: how sure the "
                    "rate is. A line whose whole interval lies above the model's target FPR flags more than "
                    "normal images would explain", min_length=2, max_length=2)
    first_at: str | None = Field(description="when the oldest of them was scored (UTC, ISO 8601)")
    last_at: str | None = Field(description="when the newest of them was scored")
    reviewed: int = Field(description="of them, reviewed by a person (PUT /results/{id}/review)")
    false_alarms: int = Field(description="of them, flagged and reviewed as normal")
    missed_anomalies: int = Field(description="of them, not flagged and reviewed as anomalous")
    unreviewed_flags: int = Field(description="of them, flagged and not reviewed yet: what the review queue "
                                              "holds, and what `recalibrate --results` needs reviewed first")


class ResultGroup(ResultCounts):
    period: str | None = Field(description="with ?every=: the start of the hour or day they were scored in "
                                           "(ISO 8601, in UTC or with the offset of ?tz=); null without")
    source: str | None = Field(description="the ?source= they were scored with; null for none")
    model: ModelRef


class ResultSummary(ResultCounts):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "count": 1500, "anomalies": 21, "anomaly_rate": 0.014, "anomaly_rate_interval": [0.0092, 0.0213],
        "first_at": "2026-11-28T06:00:01.402133+00:00",
        "last_at": "2026-11-28T10:00:00.123456+00:00", "reviewed": 21, "false_alarms": 4, "missed_anomalies": 1,
        "unreviewed_flags": 1,
        "groups": [
            {"period": None, "source": "line-3", "model": {"name": "mnist-vae", "version": 4}, "count": 1000,
             "anomalies": 12, "anomaly_rate": 0.012, "anomaly_rate_interval": [0.0069, 0.0209],
             "first_at": "2026-11-28T06:00:01.402133+00:00", "last_at": "2026-11-28T10:00:00.123456+00:00",
             "reviewed": 12, "false_alarms": 3, "missed_anomalies": 0, "unreviewed_flags": 0},
            {"period": None, "source": "line-4", "model": {"name": "mnist-vae", "version": 4}, "count": 500,
             "anomalies": 9, "anomaly_rate": 0.018, "anomaly_rate_interval": [0.0095, 0.0339],
             "first_at": "2026-11-28T08:30:12.000871+00:00", "last_at": "2026-11-28T09:59:58.731002+00:00",
             "reviewed": 9, "false_alarms": 1, "missed_anomalies": 1, "unreviewed_flags": 1}]}]})

    groups: list[ResultGroup] = Field(description="the same counts per source and model version, and per "
                                                  "period with ?every=")


# The JSON body's shape, for the documentation and for clients' generators; requests are checked by
# `pixels_from_json`, whose messages say what is wrong where.
_PixelValue = Annotated[float, Field(ge=0, le=255)]
_PixelRow = Annotated[list[_PixelValue], Field(min_length=28, max_length=28)]


class PixelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # documents that a field beside "pixels" is refused

    pixels: Annotated[list[_PixelRow], Field(min_length=28, max_length=28)] = Field(
        description="28 rows of 28 grayscale values, 0 (black) to 255 (white)", examples=[[[0] * 28] * 28])


_PixelImage = Annotated[list[_PixelRow], Field(min_length=28, max_length=28)]


class PixelsBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pixels: list[_PixelImage] = Field(
        min_length=1, description="the images, each 28 rows of 28 grayscale values 0-255 (in NumPy, x.tolist() of "
                                  "an array N x 28 x 28); at most VAE_MAX_BATCH", examples=[[[[0] * 28] * 28] * 2])
    refs: list[Ref | None] | None = Field(
        None, description="your reference for each image, in order (e.g. serial numbers), stored with its result; "
                          "null for none", examples=[["SN-0042", "SN-0043"]])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    model: ModelRef


class PublishedVersion(BaseModel):
    version: int = Field(examples=[5])
    created_at: str = Field(examples=["2026-11-28T21:40:31+00:00"])
    made_by: str = Field(description="how it was made", examples=["recalibrate version 4 for line-3"])
    score_method: str = Field(examples=["dssim_knn"])
    threshold: float
    target_fpr: float
    source_thresholds: dict[str, float] = Field(description="sources with a threshold of their own")
    test_auroc: float | None = Field(description="on labelled test data, at publishing; null without")
    report_files: list[str] = Field(description="the files of its evaluation report; empty without one",
                                    examples=[["report.md", "metrics.json", "histogram.png", "roc.png", "grid.png",
                                               "misjudged.png"]])
    report_url: str | None = Field(description="where its report's files are listed; null without a report",
                                   examples=["/model/versions/5/report"])


class VersionReport(BaseModel):
    model_name: str = Field(examples=["mnist-vae"])
    version: int = Field(examples=[5])
    files: dict[str, str] = Field(description="each file of the report, and where to get it",
                                  examples=[{"report.md": "/model/versions/5/report/report.md",
                                             "histogram.png": "/model/versions/5/report/histogram.png"}])
    browser_link: str | None = Field(
        description="report.html as a link to open in a browser, whose address bar cannot send an API key. With "
                    "API keys, it carries `?access=`, a token made with the key that asked: it opens this version's "
                    "report files only, until `browser_link_expires_at`, and only while that key is configured. "
                    "Without API keys, the page's URL. null when the report has no page (no report.md)",
        examples=["/model/versions/5/report/report.html?access=1796357000.Xq3v..."])
    browser_link_expires_at: str | None = Field(
        description="UTC time (ISO 8601) when `browser_link` stops opening the report (null: it does not expire, "
                    "as the service has no API keys, or there is no link)", examples=["2026-12-04T05:00:00+00:00"])


class VersionList(BaseModel):
    model_name: str = Field(examples=["mnist-vae"])
    served: int | None = Field(description="the version this service serves (null while none is loaded)")
    pinned: int | None = Field(description="VAE_MODEL_VERSION, if set: then newer versions are not served")
    newest: int | None = Field(description="the newest published version, which an unpinned service serves")
    versions: list[PublishedVersion] = Field(description="newest first")
    not_served: dict[str, str] = Field(description="folders in the store that are not versions, and why")


_PROBLEMS = {
    400: "undecodable image or malformed body", 401: "no API key, or not a valid one",
    403: "the API key's role does not allow this request",
    404: "unknown result id", 412: "If-Match: the result's review has changed since (its ETag is in the answer)",
    413: "body or image too large", 415: "unsupported content type, or a compressed body",
    422: "wrong size, shape or values, or bad, unknown or repeated query parameters",
    503: "no model loaded yet, or the results store failed (e.g. its disk is full)"}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                 "schema": {"type": "integer", "minimum": 1}}}


def problem_responses(*statuses: int) -> dict:
    """OpenAPI `responses` for the problem statuses an endpoint can actually return."""
    responses = {status: {"model": ProblemDetail, "description": _PROBLEMS[status],
                          "content": {"application/problem+json": {}}} for status in statuses}
    if 503 in responses:
        responses[503]["headers"] = _RETRY_AFTER
    return responses


RESULT_ETAG = {"ETag": {"description": "the result's entity tag: it changes when its review does. Send it back in "
                                       "If-Match to review only what you saw, or in If-None-Match to poll",
                        "schema": {"type": "string"}}}

SCORING_PROBLEMS = problem_responses(400, 413, 415, 422, 503)
STORED_RESULT_PROBLEMS = problem_responses(404, 422, 503)

# OpenAPI links: the operations a scored result's `id` goes to next, so that client generators and
# stateful API fuzzers can follow a result from /score to its pictures and reviews. The targets are named
# by path and method (a JSON pointer), not by the operation ids FastAPI makes up from function names.
_OPERATIONS_ON_A_RESULT = {
    "GetResult": ("/results/{result_id}", "get"), "GetReviews": ("/results/{result_id}/reviews", "get"),
    "ReviewResult": ("/results/{result_id}/review", "put"),
    "WithdrawReview": ("/results/{result_id}/review", "delete"),
    "GetImage": ("/image/{result_id}", "get"), "GetReconstruction": ("/reconstruction/{result_id}", "get"),
    "GetDifference": ("/difference/{result_id}", "get"), "GetPanel": ("/panel/{result_id}", "get")}
RESULT_LINKS = {200: {"links": {
    name: {"operationRef": f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}",
           "parameters": {"result_id": "$response.body#/id"}}
    for name, (path, method) in _OPERATIONS_ON_A_RESULT.items()}}}
