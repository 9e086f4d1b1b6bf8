"""Stored results -> response bodies.

Handlers return ready `JSONResponse`s built from plain dicts: FastAPI would otherwise validate every
response against its pydantic model a second time. The pydantic models in `app.schemas` document the
same shape (tests validate real responses against them).
"""

from __future__ import annotations

import csv
import io
import math

from app.api.preconditions import quoted_tag
from app.results import COUNTS, ResultTally, Review, StoredResult

# Review columns come last, so that a spreadsheet built on the earlier columns keeps working.
CSV_COLUMNS = ("id", "created_at", "source", "ref", "is_anomaly", "score", "threshold", "p_value", "score_method",
               "threshold_source", "target_fpr", "model_name", "model_version", "review", "reviewer", "reviewed_at",
               "review_note", "review_api_key")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); refs are the
# clients' text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def score_result(result: StoredResult, root: str = "") -> dict:
    """`root`: the path prefix a reverse proxy serves the API under (VAE_ROOT_PATH), for the links."""
    return {
        "id": result.id, "created_at": result.created_at, "score": result.score,
        "threshold": result.threshold, "threshold_source": result.threshold_source,
        "target_fpr": result.target_fpr, "p_value": result.p_value, "is_anomaly": result.is_anomaly,
        "score_method": result.score_method, "scores": result.scores,
        "model": {"name": result.model_name, "version": result.model_version},
        "source": result.source, "ref": result.ref,
        "result_url": f"{root}/results/{result.id}", "reconstruction_url": f"{root}/reconstruction/{result.id}",
        "difference_url": f"{root}/difference/{result.id}", "image_url": f"{root}/image/{result.id}",
        "panel_url": f"{root}/panel/{result.id}",
        "review": review_body(result.review, result.is_anomaly),
        # In the body too, so that a client that listed results can review one of them on condition (If-Match)
        # without reading it again; and a proxy's gzip cannot weaken it, as it does the header (W/).
        "etag": quoted_tag(result.review_tag),
    }


def review_entry(review: Review) -> dict:
    """One entry of a review history (verdict None: a withdrawal)."""
    return {"verdict": review.verdict, "note": review.note, "reviewer": review.reviewer,
            "api_key": review.api_key, "reviewed_at": review.reviewed_at}


def review_body(review: Review | None, is_anomaly: bool) -> dict | None:
    """A result's current review, with whether it agrees with the model's verdict."""
    if review is None:
        return None
    return {**review_entry(review), "agrees": (review.verdict == "anomalous") == is_anomaly}


def result_summary(tallies: list[ResultTally]) -> dict:
    groups = [{"period": t.period, "source": t.source, "model": {"name": t.model_name, "version": t.model_version},
               **_counts({name: getattr(t, name) for name in COUNTS}, t.first_at, t.last_at)} for t in tallies]
    total = _counts({name: sum(getattr(t, name) for t in tallies) for name in COUNTS},
                    min((t.first_at for t in tallies), default=None), max((t.last_at for t in tallies), default=None))
    return {**total, "groups": groups}


def _counts(counts: dict[str, int], first_at: str | None, last_at: str | None) -> dict:
    count, anomalies = counts["count"], counts["anomalies"]
    return {"count": count, "anomalies": anomalies, "anomaly_rate": anomalies / count if count else None,
            "anomaly_rate_interval": wilson_interval(anomalies, count), "first_at": first_at, "last_at": last_at,
            "reviewed": counts["reviewed"], "false_alarms": counts["false_alarms"],
            "missed_anomalies": counts["missed_anomalies"], "unreviewed_flags": counts["unreviewed_flags"]}


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> list[float] | None:
    """95 % Wilson score interval of a rate: unlike the normal approximation, it stays within [0, 1] and
    is not [0, 0] for 0 of 12, which is what a line with few images and no anomaly yet shows."""
    if trials == 0:
        return None
    rate, z2 = successes / trials, z * z
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def csv_rows(results: list[StoredResult], header: bool = False) -> str:
    """Results as CSV lines (RFC 4180: CRLF line ends, quotes where needed), with the header line first if
    asked."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_COLUMNS)
    for r in results:
        writer.writerow((r.id, r.created_at, _cell(r.source), _cell(r.ref), "true" if r.is_anomaly else "false",
                         repr(r.score), repr(r.threshold), repr(r.p_value), r.score_method, r.threshold_source,
                         "" if r.target_fpr is None else repr(r.target_fpr), r.model_name, r.model_version,
                         *_review_cells(r.review)))
    return buffer.getvalue()


def _review_cells(review: Review | None) -> tuple[str, ...]:
    if review is None:
        return ("", "", "", "", "")
    return (review.verdict, _cell(review.reviewer), review.reviewed_at, _cell(review.note), review.api_key or "")


def _cell(text: str | None) -> str:
    """Client text, kept from being run as a formula by a leading apostrophe (which spreadsheets hide)."""
    if text is None:
        return ""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text
