"""Quiet hours without a database: ``notifications.quiet.is_quiet`` says whether a moment is in a
channel's quiet period and when it ends, across midnight and on the nights the clocks change."""
from __future__ import annotations

from datetime import datetime, time, timezone

import pytest
from zoneinfo import ZoneInfo

from backend.app.services.notifications.quiet import is_quiet, wall_to_utc

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def U(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def L(y, m, d, hh, mm=0, fold=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=AMS, fold=fold).astimezone(UTC)


NIGHT = (time(22, 0), time(7, 0))


@pytest.mark.parametrize("local, ends", [
    (L(2026, 6, 10, 23, 0), L(2026, 6, 11, 7, 0)),   # before midnight: ends tomorrow morning
    (L(2026, 6, 11, 3, 0), L(2026, 6, 11, 7, 0)),    # after midnight: ends this morning
    (L(2026, 6, 10, 22, 0), L(2026, 6, 11, 7, 0)),   # the start counts
    (L(2026, 6, 11, 6, 59), L(2026, 6, 11, 7, 0)),
])
def test_a_window_crossing_midnight_holds_until_the_morning(local, ends):
    assert is_quiet(local, *NIGHT, AMS) == ends


@pytest.mark.parametrize("local", [L(2026, 6, 11, 7, 0), L(2026, 6, 11, 12, 0), L(2026, 6, 10, 21, 59)])
def test_outside_the_window_is_not_quiet(local):
    assert is_quiet(local, *NIGHT, AMS) is None


def test_a_window_within_one_day():
    lunch = (time(12, 0), time(13, 30))
    assert is_quiet(L(2026, 6, 10, 12, 15), *lunch, AMS) == L(2026, 6, 10, 13, 30)
    assert is_quiet(L(2026, 6, 10, 13, 30), *lunch, AMS) is None
    assert is_quiet(L(2026, 6, 10, 11, 59), *lunch, AMS) is None


def test_equal_start_and_end_is_no_window():
    assert is_quiet(L(2026, 6, 10, 22, 0), time(22, 0), time(22, 0), AMS) is None


def test_the_local_times_follow_the_zone_not_utc():
    # 23:00 in Amsterdam in summer is 21:00 UTC; in winter 22:00 UTC.
    assert is_quiet(U(2026, 6, 10, 21, 0), *NIGHT, AMS) == U(2026, 6, 11, 5, 0)
    assert is_quiet(U(2026, 1, 14, 22, 0), *NIGHT, AMS) == U(2026, 1, 15, 6, 0)
    assert is_quiet(U(2026, 6, 11, 5, 30), *NIGHT, AMS) is None  # 05:30 UTC is 07:30 local: over


def test_an_end_in_the_spring_gap_is_the_first_instant_after_the_gap():
    # 29 March 2026: the clocks jump from 02:00 to 03:00; 02:30 never happens.
    gap_end = U(2026, 3, 29, 1, 0)  # = 03:00 CEST
    assert wall_to_utc(datetime(2026, 3, 29).date(), time(2, 30), AMS) == gap_end
    assert is_quiet(L(2026, 3, 29, 1, 45), time(22, 0), time(2, 30), AMS) == gap_end
    assert is_quiet(L(2026, 3, 28, 23, 0), time(22, 0), time(2, 30), AMS) == gap_end
    assert is_quiet(gap_end, time(22, 0), time(2, 30), AMS) is None


def test_a_night_window_is_an_hour_shorter_in_spring_and_longer_in_autumn():
    assert is_quiet(L(2026, 3, 28, 23, 0), *NIGHT, AMS) - L(2026, 3, 28, 23, 0) == L(2026, 3, 29, 7) - L(2026, 3, 28, 23)
    assert (L(2026, 3, 29, 7) - L(2026, 3, 28, 22)).total_seconds() == 8 * 3600
    assert (L(2026, 10, 25, 7) - L(2026, 10, 24, 22)).total_seconds() == 10 * 3600
    assert is_quiet(U(2026, 10, 25, 1, 30), *NIGHT, AMS) == U(2026, 10, 25, 6, 0)  # 02:30 CET, the second time


def test_an_end_in_the_autumn_fold_is_the_first_time_the_clock_shows_it():
    # 25 October 2026: 02:00–03:00 happens twice (CEST, then CET).
    first = L(2026, 10, 25, 2, 30, fold=0)
    assert first == U(2026, 10, 25, 0, 30)
    assert is_quiet(U(2026, 10, 25, 0, 0), time(22, 0), time(2, 30), AMS) == first
    assert is_quiet(U(2026, 10, 25, 1, 0), time(22, 0), time(2, 30), AMS) is None  # 02:00 CET: already over
    # A window that starts in the fold starts the first time too.
    assert is_quiet(U(2026, 10, 25, 0, 45), time(2, 30), time(6, 0), AMS) == L(2026, 10, 25, 6, 0)


def test_a_start_in_the_spring_gap_starts_when_the_gap_ends():
    assert is_quiet(U(2026, 3, 29, 0, 59), time(2, 30), time(6, 0), AMS) is None  # 01:59 CET
    assert is_quiet(U(2026, 3, 29, 1, 0), time(2, 30), time(6, 0), AMS) == L(2026, 3, 29, 6, 0)


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError):
        is_quiet(datetime(2026, 6, 10, 23, 0), *NIGHT, AMS)
