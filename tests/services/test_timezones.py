"""Days in the UI timezone across DST: local_day, day_bounds_utc and parse_day."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.services import timezones as tz

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def test_a_run_belongs_to_the_local_day_it_started():
    # 23:50 Amsterdam (22:50 UTC in winter) is that day, even when the mail arrives after midnight.
    assert tz.local_day(datetime(2026, 1, 14, 22, 50, tzinfo=UTC), AMS) == date(2026, 1, 14)
    assert tz.local_day(datetime(2026, 1, 14, 23, 10, tzinfo=UTC), AMS) == date(2026, 1, 15)
    # Summer: UTC+2.
    assert tz.local_day(datetime(2026, 7, 1, 22, 30, tzinfo=UTC), "Europe/Amsterdam") == date(2026, 7, 2)
    with pytest.raises(ValueError, match="timezone-aware"):
        tz.local_day(datetime(2026, 1, 14, 22, 50), AMS)


def test_day_bounds_on_an_ordinary_day():
    start, end = tz.day_bounds_utc(date(2026, 1, 14), AMS)
    assert start == datetime(2026, 1, 13, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 1, 14, 23, 0, tzinfo=UTC)


def test_day_bounds_on_the_spring_dst_day_is_23_hours():
    start, end = tz.day_bounds_utc(date(2026, 3, 29), AMS)
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=23)
    # 02:30 local does not exist that night; 03:30 CEST (01:30 UTC) belongs to the day.
    assert tz.local_day(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), AMS) == date(2026, 3, 29)


def test_day_bounds_on_the_autumn_dst_day_is_25_hours():
    start, end = tz.day_bounds_utc(date(2026, 10, 25), AMS)
    assert start == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert end == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=25)
    # Both 02:30s (00:30 and 01:30 UTC) are on the 25th; the bounds meet the next day exactly.
    for utc_hour in (0, 1):
        assert tz.local_day(datetime(2026, 10, 25, utc_hour, 30, tzinfo=UTC), AMS) == date(2026, 10, 25)
    assert tz.day_bounds_utc(date(2026, 10, 26), AMS)[0] == end


def test_every_moment_falls_in_exactly_its_own_day_across_both_changes():
    for day in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 25)):
        start, end = tz.day_bounds_utc(day, AMS)
        t = start
        while t < end:
            assert tz.local_day(t, AMS) == day
            t += timedelta(minutes=30)
        assert tz.local_day(end, AMS) == day + timedelta(days=1)
        assert tz.local_day(start - timedelta(seconds=1), AMS) == day - timedelta(days=1)


def test_parse_day_gives_a_clear_message_for_a_wrong_format():
    assert tz.parse_day("2026-03-29", AMS) == date(2026, 3, 29)
    assert tz.parse_day("", AMS, today=date(2026, 1, 1)) == date(2026, 1, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        tz.parse_day("29-03-2026", AMS)
