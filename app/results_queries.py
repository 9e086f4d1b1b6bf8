"""The SQL that the listing, the export and the summary build from their filters."""

from __future__ import annotations

from app.periods import OffsetSpan
from app.results_schema import stored_time

# Periods cut from the stored time, which is always UTC ("2026-11-28T10:17:03.123456+00:00").
PERIODS = {"hour": "substr(created_at, 1, 13) || ':00:00+00:00'",
           "day": "substr(created_at, 1, 10) || 'T00:00:00+00:00'"}


LOCAL_PERIODS = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}


def tally_query(source: str | None, since: str | None, until: str | None,
                every: str | None = None) -> tuple[str, tuple]:
    """The SQL of ResultStore.tally and its parameters (tests check that it runs on its covering index)."""
    where, parameters = where_clause(*tally_filters(source, since, until))
    return tally_sql(PERIODS[every] if every else None, where), parameters


def local_tally_query(source: str | None, since: str | None, until: str | None, every: str,
                      span: OffsetSpan) -> tuple[str, tuple]:
    """The SQL that counts one span of constant UTC offset per local hour or day ("YYYY-MM-DDTHH" or
    "YYYY-MM-DD" of local time)."""
    within_span = [("created_at >= ?", stored_time(span.start)), ("created_at < ?", stored_time(span.end))]
    where, parameters = where_clause(*tally_filters(source, since, until), *within_span)
    # Cut to whole seconds first: SQLite rounds fractions to milliseconds, and would move 23:59:59.9999 into
    # the next day.
    period = f"strftime('{LOCAL_PERIODS[every]}', substr(created_at, 1, 19), ?)"
    return tally_sql(period, where), (f"{span.offset.total_seconds():+.0f} seconds", *parameters)


def tally_sql(period: str | None, where: str) -> str:
    """Counts per source and model version, and per `period` (an SQL expression) unless it is None."""
    groups = "source, model_name, model_version" if period is None else "period, source, model_name, model_version"
    return (f"SELECT {period or 'NULL'} AS period, source, model_name, model_version, COUNT(*), SUM(is_anomaly), "
            # IS, not =: an unreviewed row (review NULL) counts 0, where = would make the whole SUM NULL.
            "MIN(created_at), MAX(created_at), COUNT(review), SUM(is_anomaly = 1 AND review IS 'normal'), "
            "SUM(is_anomaly = 0 AND review IS 'anomalous'), SUM(is_anomaly = 1 AND review IS NULL) "
            f"FROM results {where} GROUP BY {groups} ORDER BY {groups}")


def result_filters(anomalous: bool | None, source: str | None, ref: str | None, since: str | None,
                    until: str | None, review: str | None = None) -> list[tuple[str, object]]:
    """The listing's and the export's filters, as conditions for `where_clause`. `review`: a verdict, "none" (not
    reviewed) or "any" (reviewed)."""
    return [("is_anomaly = ?", None if anomalous is None else int(anomalous)), ("ref = ?", ref),
            *tally_filters(source, since, until), review_filter(review)]


def review_filter(review: str | None) -> tuple[str, object]:
    if review == "none":
        return ("review IS NULL", NO_PARAMETER)
    if review == "any":
        return ("review IS NOT NULL", NO_PARAMETER)
    return ("review = ?", review)


def tally_filters(source: str | None, since: str | None, until: str | None) -> list[tuple[str, object]]:
    """The summary's filters, which the listing and the export share."""
    return [("source = ?", source), ("created_at >= ?", since), ("created_at < ?", until)]


NO_PARAMETER = object()  # a condition of `where_clause` that applies without a parameter ("review IS NULL")


def where_clause(*conditions: tuple[str, object]) -> tuple[str, tuple]:
    """A WHERE clause of the conditions whose value is not None, and its parameters."""
    chosen = [(condition, value) for condition, value in conditions if value is not None]
    where = f"WHERE {' AND '.join(condition for condition, _ in chosen)}" if chosen else ""
    return where, tuple(value for _, value in chosen if value is not NO_PARAMETER)
