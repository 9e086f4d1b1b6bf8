"""Hours and days of a time zone, for GET /results/summary?every=...&tz=...

A line's day runs from local midnight to local midnight, not from UTC midnight. Results are stored in
UTC, so counting per local period means shifting each time by the zone's UTC offset, and the offset
changes (daylight saving time, or a change of law). So the stored range is cut into spans of constant
offset, each is counted with its own shift, and the counts of a local day that spans a change are
added up.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

from app.errors import InvalidInput

MAX_ZONE_NAME_LENGTH = 64
_STEP = dt.timedelta(days=1)  # offsets change at most twice a year in practice, never twice within a day


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name` (Europe/Berlin, America/Chicago, UTC), or a 422 that says what is accepted."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):  # not a zone, a folder, a path, a NUL
        shown = name if len(name) <= MAX_ZONE_NAME_LENGTH else name[:MAX_ZONE_NAME_LENGTH] + "..."
        meant = _zone_meant(name)
        raise InvalidInput(f"query.tz: {shown!r} is not a time zone; "
                           + (f"did you mean {meant}{' (in a URL, write + as %2B)' if '+' in meant else ''}?"
                              if meant else "give an IANA name such as Europe/Berlin, America/Chicago or UTC")
                           + " (letters are case-sensitive)") from None


def _zone_meant(name: str) -> str | None:
    """The zone a client most likely meant: the name in other letter case (europe/berlin), or with the '+' that
    a query string reads as a space (Etc/GMT+1, sent unescaped)."""
    zones = _zones_by_folded_name()
    return zones.get(name.casefold()) or zones.get(name.replace(" ", "+").casefold())


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    return {zone.casefold(): zone for zone in zoneinfo.available_timezones()}  # reads ~600 files: once


@dataclass(frozen=True)
class OffsetSpan:
    """[start, end) in UTC, throughout which the zone's UTC offset is `offset`."""
    start: dt.datetime
    end: dt.datetime
    offset: dt.timedelta


def offset_spans(zone: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> list[OffsetSpan]:
    """[start, end) (aware) cut where the zone's UTC offset changes."""
    spans, span_start = [], start
    offset = _offset_at(zone, start)
    probe = start
    while probe < end:
        ahead = min(probe + _STEP, end)
        if _offset_at(zone, ahead) == offset:
            probe = ahead
            continue
        # The change lies in (probe, ahead]: halve down to a microsecond, the stored times' resolution.
        before, after = probe, ahead
        while after - before > dt.timedelta(microseconds=1):
            middle = before + (after - before) / 2
            before, after = (middle, after) if _offset_at(zone, middle) == offset else (before, middle)
        spans.append(OffsetSpan(span_start, after, offset))
        span_start, probe, offset = after, after, _offset_at(zone, after)
    spans.append(OffsetSpan(span_start, end, offset))
    return spans


def _offset_at(zone: dt.tzinfo, moment: dt.datetime) -> dt.timedelta:
    return moment.astimezone(zone).utcoffset()


def hour_start(local_hour: str, offset: dt.timedelta) -> dt.datetime:
    """The start of the local hour "YYYY-MM-DDTHH" at the given offset: the hour repeated when clocks go back
    is two periods, one per offset."""
    return dt.datetime.fromisoformat(f"{local_hour}:00:00").replace(tzinfo=dt.timezone(offset))


def day_start(local_day: str, zone: dt.tzinfo) -> dt.datetime:
    """The first moment of the local day "YYYY-MM-DD": midnight, or the hour that follows midnight where
    clocks skip it."""
    midnight = dt.datetime.fromisoformat(local_day).replace(tzinfo=zone)
    return midnight.astimezone(dt.UTC).astimezone(zone)
