"""Hours and days of a time zone, across its changes of UTC offset."""

import datetime as dt
import re
import zoneinfo

import pytest

from app.errors import InvalidInput
from app.periods import OffsetSpan, day_start, hour_start, offset_spans, time_zone

UTC = dt.UTC


def _at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def test_spans_are_cut_exactly_where_the_clocks_change():
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert offset_spans(berlin, _at(2026, 1, 1), _at(2027, 1, 1)) == [
        OffsetSpan(_at(2026, 1, 1), _at(2026, 3, 29, 1), dt.timedelta(hours=1)),
        OffsetSpan(_at(2026, 3, 29, 1), _at(2026, 10, 25, 1), dt.timedelta(hours=2)),
        OffsetSpan(_at(2026, 10, 25, 1), _at(2027, 1, 1), dt.timedelta(hours=1))]
    assert offset_spans(time_zone("UTC"), _at(2026, 1, 1), _at(2030, 1, 1)) == [
        OffsetSpan(_at(2026, 1, 1), _at(2030, 1, 1), dt.timedelta(0))]
    # A range shorter than the search step, with a change inside it.
    assert [s.end for s in offset_spans(berlin, _at(2026, 10, 25, 0, 59, 59, 999999), _at(2026, 10, 25, 1, 0, 1))] == [
        _at(2026, 10, 25, 1), _at(2026, 10, 25, 1, 0, 1)]


def test_period_starts():
    # The hour repeated when clocks go back is two hours, one per offset.
    assert hour_start("2026-10-25T02", dt.timedelta(hours=2)).isoformat() == "2026-10-25T02:00:00+02:00"
    assert hour_start("2026-10-25T02", dt.timedelta(hours=1)).isoformat() == "2026-10-25T02:00:00+01:00"
    assert hour_start("2026-11-28T10", dt.timedelta(hours=5, minutes=30)).isoformat() == "2026-11-28T10:00:00+05:30"
    assert day_start("2026-10-25", zoneinfo.ZoneInfo("Europe/Berlin")).isoformat() == "2026-10-25T00:00:00+02:00"
    # Havana moves its clocks at midnight: on 8 March 2026 the day begins at 01:00.
    assert day_start("2026-03-08", zoneinfo.ZoneInfo("America/Havana")).isoformat() == "2026-03-08T01:00:00-04:00"


@pytest.mark.parametrize("name", ["Europe/Berln", "Europe", "../../etc/passwd", "/etc/localtime",
                                  "", "a\x00b", "+01:00", "x" * 300])
def test_unknown_time_zones_are_a_422(name):
    with pytest.raises(InvalidInput, match="is not a time zone; give an IANA name such as Europe/Berlin"):
        time_zone(name)


@pytest.mark.parametrize("name, meant", [
    ("europe/berlin", "did you mean Europe/Berlin? (letters are case-sensitive)"),
    ("AMERICA/CHICAGO", "did you mean America/Chicago?"),
    ("Etc/GMT 1", "did you mean Etc/GMT+1 (in a URL, write + as %2B)?"),  # ?tz=Etc/GMT+1 sent unescaped
])
def test_a_time_zone_in_other_letters_or_without_its_plus_is_named(name, meant):
    with pytest.raises(InvalidInput, match=re.escape(f"query.tz: {name!r} is not a time zone; {meant}")):
        time_zone(name)


def test_known_time_zones():
    assert str(time_zone("America/Chicago")) == "America/Chicago" and str(time_zone("UTC")) == "UTC"
