"""GET /results/{id}, GET /results, GET /results/export and GET /results/summary (the inspection log)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from app.api.deps import ResultIdDep, StoreDep, UrlRootDep, is_result_id, reject_unknown_or_repeated_query_parameters
from app.api.preconditions import IfNoneMatchDep, matches, quoted_tag
from app.api.presenters import CSV_COLUMNS, csv_rows, result_summary, score_result
from app.errors import InvalidInput, NotFound, quoted
from app.periods import MAX_ZONE_NAME_LENGTH, time_zone
from app.results import MAX_REF_LENGTH
from app.results_schema import stored_time
from app.schemas import (
    RESULT_ETAG,
    STORED_RESULT_PROBLEMS,
    ResultPage,
    ResultSummary,
    ScoreResult,
    SourceName,
    problem_responses,
)

router = APIRouter(prefix="/results", tags=["results"],
                   dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])


MAX_SUMMARY_GROUPS = 10_000  # about 2 MB of JSON: a month of hours for 13 lines

EXPORT_PAGE_ROWS = 500  # rows per read: larger pages (2,000) held up other requests for up to 0.26 s


_EXAMPLE_TIMES = "2026-11-28T08:00:00Z or 2026-11-28T09:00:00+01:00"
# In a query string '+' stands for a space, so an unescaped offset, ?since=2026-11-28T09:00:00+01:00, arrives
# as "...09:00:00 01:00". A space can mean nothing else there, so the '+' is put back.
_OFFSET_READ_AS_SPACE = re.compile(r"(\d{4}-\d\d-\d\d[T ][\d:.,]+) (\d\d(?::?\d\d)?)")


def _iso_time_text(value: object) -> object:
    """A time as ISO 8601 with a time zone, each other way of writing it refused with the way to fix it.
    Pydantic alone would read a number as a Unix time, so that a compact date such as 20261128 silently became
    1970-08-23 and filtered out nothing; and it explains a missing zone or a lost '+' no further than "Input
    should have timezone info" and "unexpected extra characters"."""
    if not isinstance(value, str):
        return value
    if match := _OFFSET_READ_AS_SPACE.fullmatch(value):
        value = f"{match[1]}+{match[2]}"
    try:
        float(value)
    except ValueError:
        pass
    else:
        raise PydanticCustomError("iso_time", f"give the time in ISO 8601 with a time zone, such as {_EXAMPLE_TIMES}, "
                                              "not a number")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("iso_time", f"{quoted([value])} is not a time in ISO 8601; give one with a time "
                                              f"zone, such as {_EXAMPLE_TIMES}") from None
    if moment.tzinfo is None:
        whole = value if "T" in value or " " in value else f"{value}T00:00:00"
        raise PydanticCustomError("iso_time", f"{quoted([value])} has no time zone, so which moment it is depends "
                                              f"on where it is read; add one, such as {whole}Z for UTC (in a URL, "
                                              "write an offset's + as %2B)")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_time_text)]


def _cursor_text(value: object) -> object:
    """?before= is the previous page's next_cursor; a client that sends a result's id or a time there meant
    something else, and "Input should be a valid integer" does not say what."""
    if isinstance(value, str) and not value.strip().isdigit():
        if is_result_id(value):
            hint = " (a result's id is not one)"
        elif re.search(r"\d[-:]\d", value):
            hint = "; to list the results scored before a time, use ?until="
        else:
            hint = ""
        raise PydanticCustomError("cursor", f"{quoted([value])} is not a cursor: pass the next_cursor of the "
                                            f"previous page{hint}")
    return value


Cursor = Annotated[int, BeforeValidator(_cursor_text)]

# Filters shared by the listing, the export and the summary.
AnomalousFilter = Annotated[bool | None, Query(description="only anomalous (true) or only normal (false)")]
RefFilter = Annotated[str | None, Query(max_length=MAX_REF_LENGTH,
                                        description="only results with this ref (e.g. a serial number)")]
SourceFilter = Annotated[SourceName | None, Query(description="only results scored with this ?source=")]
SinceFilter = Annotated[IsoTime | None, Query(description="only results scored at or after this time "
                                                           "(ISO 8601 with a time zone)")]
ReviewFilter = Annotated[Literal["normal", "anomalous", "none", "any"] | None, Query(
    description="only results reviewed as normal or anomalous (PUT /results/{id}/review), not reviewed (none) or "
                "reviewed at all (any). `?anomalous=true&review=none` is the list of flags nobody has looked at "
                "yet; `?anomalous=true&review=normal` the false alarms")]
UntilFilter = Annotated[IsoTime | None, Query(description="only results scored before this time "
                                                           "(ISO 8601 with a time zone)")]


async def _result_filters(anomalous: AnomalousFilter = None, source: SourceFilter = None, ref: RefFilter = None,
                          since: SinceFilter = None, until: UntilFilter = None,
                          review: ReviewFilter = None) -> dict[str, object]:
    """The filters of the listing and the export, as the store's `page` and `oldest_first` take them."""
    since_stored, until_stored = _time_window(since, until)
    return {"anomalous": anomalous, "source": source, "ref": ref, "since": since_stored, "until": until_stored,
            "review": review}


ResultFiltersDep = Annotated[dict[str, object], Depends(_result_filters)]


# Declared before /{result_id}, which would otherwise take "summary" for an id.
@router.get("/summary", response_model=ResultSummary, responses=problem_responses(422, 503),
            summary="How many results, and how many anomalous, per source and model version",
            description="Counts the stored results (those retention has kept: `first_at` shows how far back "
                        "they go), in total and per source and model version. `anomaly_rate` is the share "
                        "flagged; on normal images it is about the model's target FPR.")
async def summarise_results(
    store: StoreDep, source: SourceFilter = None, since: SinceFilter = None, until: UntilFilter = None,
    every: Annotated[Literal["hour", "day"] | None, Query(description="also count per hour or day (of UTC, or "
                                                                      "of ?tz=), e.g. for a chart of each line's "
                                                                      "rate")] = None,
    tz: Annotated[str | None, Query(max_length=MAX_ZONE_NAME_LENGTH, description=(
        "with ?every=: the time zone whose hours or days to count in, as an IANA name (Europe/Berlin); "
        "days then run from local midnight, also across changes of daylight saving time. Default UTC"))] = None,
) -> JSONResponse:
    if tz is not None and every is None:
        raise InvalidInput("query.tz: sets the time zone of ?every= periods; add every=hour or every=day")
    zone = None if tz is None else time_zone(tz)
    since_stored, until_stored = _time_window(since, until)
    tallies = await asyncio.to_thread(store.tally, source=source, since=since_stored, until=until_stored,
                                      every=every, zone=zone, max_groups=MAX_SUMMARY_GROUPS)
    if len(tallies) > MAX_SUMMARY_GROUPS:
        raise InvalidInput(f"the summary would have more than {MAX_SUMMARY_GROUPS:,} groups; narrow it with "
                           f"?since=, ?until= or ?source={', or count per day' if every == 'hour' else ''}")
    return JSONResponse(result_summary(tallies))


@router.get("/export", response_class=StreamingResponse, responses={
    200: {"content": {"text/csv": {}}, "description": "one line per result, oldest first, after a header line"},
    **problem_responses(422, 503)},
            summary="Stored results as CSV, for a spreadsheet or an audit",
            description="Every stored result that matches the filters, oldest first, up to the newest one when "
                        "the export started; the same filters as the listing. Columns: "
                        + ", ".join(CSV_COLUMNS) + ". A `source` or `ref` that a spreadsheet would run as a "
                        "formula (starting with =, +, -, @) gets a leading apostrophe.")
async def export_results(store: StoreDep, filters: ResultFiltersDep) -> StreamingResponse:
    through = await asyncio.to_thread(store.newest_seq)

    def page(after: int) -> tuple[str, int | None]:
        """The CSV of the next rows, and the cursor after them (None after the last page). Reading and
        formatting both run in a worker thread, not on the event loop."""
        rows = store.oldest_first(after=after, through=through, limit=EXPORT_PAGE_ROWS, **filters)
        return csv_rows(rows, header=after == 0), rows[-1].seq if len(rows) == EXPORT_PAGE_ROWS else None

    # The first page is read before the answer starts, so that a failing store is still a 503.
    first = await asyncio.to_thread(page, 0)

    async def lines():
        text, cursor = first
        yield text
        while cursor is not None:  # other reads of the store go on between pages
            text, cursor = await asyncio.to_thread(page, cursor)
            yield text

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="results.csv"'})


@router.get("/{result_id}", response_model=ScoreResult,
            responses={**STORED_RESULT_PROBLEMS, **problem_responses(400),
                       200: {"headers": RESULT_ETAG}, 304: {"description": "If-None-Match: still the same"}},
            summary="One stored result")
async def get_result(result_id: ResultIdDep, store: StoreDep, root: UrlRootDep,
                     if_none_match: IfNoneMatchDep) -> Response:
    result = await asyncio.to_thread(store.get, result_id)
    if result is None:
        raise NotFound(f"no result with id {result_id} (it may have been pruned by retention)")
    tag = result.review_tag
    # no-cache: a browser may keep the answer, but asks (with If-None-Match) before using it, as a review can
    # change it at any time.
    headers = {"ETag": quoted_tag(tag), "Cache-Control": "no-cache"}
    if if_none_match is not None and matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(score_result(result, root), headers=headers)


@router.get("", response_model=ResultPage, responses=problem_responses(422, 503),
            summary="Stored results, newest first")
async def list_results(
    store: StoreDep,
    filters: ResultFiltersDep,
    root: UrlRootDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[Cursor | None, Query(ge=1, le=2**63 - 1,  # SQLite's largest integer
                                        description="cursor: `next_cursor` of the previous page")] = None,
) -> JSONResponse:
    def page() -> JSONResponse:
        """Reading and formatting both run in a worker thread, not on the event loop: 500 results take some 6 ms
        to format, their ETags included."""
        rows = store.page(limit=limit, before=before, **filters)
        next_cursor = str(rows[-1].seq) if len(rows) == limit else None
        return JSONResponse({"items": [score_result(r, root) for r in rows], "next_cursor": next_cursor})

    return await asyncio.to_thread(page)


def _time_window(since: dt.datetime | None, until: dt.datetime | None) -> tuple[str | None, str | None]:
    """?since= and ?until= as stored times. A window that ends before it starts holds nothing: answering
    with an empty list would pass off two swapped times as a quiet line."""
    if since is not None and until is not None and since >= until:
        raise InvalidInput(f"query.since: {since.isoformat()} is not before ?until= ({until.isoformat()}), so no "
                           "result could match; did you swap them?")
    return _stored_time(since, "since"), _stored_time(until, "until")


def _stored_time(moment: dt.datetime | None, name: str) -> str | None:
    if moment is None:
        return None
    try:
        return stored_time(moment)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in the year 0 in UTC
        raise InvalidInput(f"query.{name}: {moment.isoformat()} is outside the years 1-9999 in UTC") from None
