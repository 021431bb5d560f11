"""``daily_jobs.row_status``: the status of one Daily Jobs row from the schedule, the day's slot and
runs and the moment, without a database (the page tests in tests/test_daily_jobs.py cover the queries)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.services.daily_jobs import DayRun, row_status, slot_on
from backend.app.services.schedules import local_to_utc
from backend.app.services.timezones import day_bounds_utc

AMS = ZoneInfo("Europe/Amsterdam")
DAY = date(2026, 6, 10)  # a Wednesday
DAILY_22 = {"kind": "daily", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 120, "source": "manual"}


def L(d: date, hh: int, mm: int = 0) -> datetime:
    return local_to_utc(d, time(hh, mm), AMS)


def run(hh: int, status: str = "Success", *, day: date = DAY, mm: int = 0, override: bool = False,
        run_id: int = 1, effective: str | None = None) -> DayRun:
    return DayRun(id=run_id, job_id=7, status=status, effective_status=effective or status,
                  override_id=3 if override else None, started_at=L(day, hh, mm), missed=status == "Missed",
                  reviewed=False)


def status_of(runs=(), *, now: datetime, schedule=DAILY_22, day: date = DAY, rule: str = "worst",
              created_at=None, next_expected_slot="slot", nearby=()):
    """row_status for ``day``; by default the job's check has not yet passed the day's slot."""
    start, end = day_bounds_utc(day, AMS)
    slot = slot_on(schedule, start, end, AMS)
    if next_expected_slot == "slot":
        next_expected_slot = slot
    return row_status(schedule, slot, list(runs), now, zone=AMS, rule=rule, created_at=created_at,
                      next_expected_slot=next_expected_slot, nearby=list(nearby))


@pytest.mark.parametrize("status", ["Success", "Failed", "Warning"])
def test_a_run_on_the_day_gives_its_status(status):
    r = run(22, status)
    shown = status_of([r], now=L(DAY, 23))
    assert (shown.status, shown.status_run, shown.expected) == (status, r, True)
    assert shown.slot == L(DAY, 22) and shown.deadline == L(DAY + timedelta(days=1), 0)
    assert shown.note is None


def test_an_overridden_success_shows_as_override():
    shown = status_of([run(22, "Failed", effective="Success", override=True)], now=L(DAY, 23))
    assert shown.status == "Success (override)"


def test_before_the_slot_the_job_is_expected():
    shown = status_of(now=L(DAY, 12))
    assert (shown.status, shown.status_run) == ("Expected", None)
    assert shown.note == "expected at 22:00"


def test_after_the_slot_within_grace_the_job_is_still_expected():
    shown = status_of(now=L(DAY, 23, 30))
    assert shown.status == "Expected"
    assert shown.note == "expected at 22:00, late but within grace until 00:00"


def test_after_the_deadline_without_a_run_the_job_is_missed():
    shown = status_of(now=L(DAY + timedelta(days=1), 0, 1))
    assert shown.status == "Missed"
    assert shown.note.startswith("no run arrived; due by 00:00")


def test_a_slot_the_loop_already_decided_shows_only_through_its_stored_missed_run():
    settled = L(DAY + timedelta(days=1), 22)
    assert status_of(now=L(DAY + timedelta(days=2), 9), next_expected_slot=settled) is None
    missed = run(22, "Missed")
    shown = status_of([missed], now=L(DAY + timedelta(days=2), 9), next_expected_slot=settled)
    assert (shown.status, shown.status_run) == ("Missed", missed)


def test_a_run_just_across_midnight_counts_for_the_slot():
    late = run(0, "Warning", day=DAY + timedelta(days=1), mm=30)
    shown = status_of(now=L(DAY + timedelta(days=1), 9), nearby=[late])
    assert (shown.status, shown.status_run) == ("Warning", late)
    assert shown.note == "ran 2026-06-11 00:30 (across midnight), counted for this day's slot"


def test_a_run_of_the_next_slot_does_not_count_for_this_one():
    next_day = run(21, day=DAY + timedelta(days=1))
    assert status_of(now=L(DAY + timedelta(days=1), 23), nearby=[next_day]).status == "Missed"


def test_without_a_schedule_only_days_with_runs_are_listed():
    assert status_of(schedule=None, now=L(DAY, 23)) is None
    shown = status_of([run(3, "Failed")], schedule=None, now=L(DAY, 23))
    assert (shown.status, shown.expected, shown.slot, shown.deadline) == ("Failed", False, None, None)


def test_a_day_without_a_slot_lists_only_runs():
    weekends = {**DAILY_22, "kind": "weekly", "weekdays": [5, 6]}
    assert status_of(schedule=weekends, now=L(DAY, 23)) is None
    assert status_of([run(9)], schedule=weekends, now=L(DAY, 23)).expected is False


def test_a_slot_before_the_job_existed_is_not_expected():
    assert status_of(now=L(DAY + timedelta(days=1), 9), created_at=L(DAY, 22, 30)) is None


@pytest.mark.parametrize("rule, expected", [("worst", "Failed"), ("last", "Success"), ("best", "Success")])
def test_the_daily_rule_picks_the_run_that_stands_for_the_day(rule, expected):
    runs = [run(1, "Failed", run_id=1), run(5, "Warning", run_id=2), run(22, "Success", run_id=3)]
    assert status_of(runs, now=L(DAY, 23), rule=rule).status == expected


def test_the_rule_last_takes_the_run_that_started_last_even_when_better():
    runs = [run(1, "Success", run_id=1), run(5, "Warning", run_id=2)]
    assert status_of(runs, now=L(DAY, 23), rule="last").status == "Warning"
    assert status_of(runs, now=L(DAY, 23), rule="best").status == "Success"


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError):
        status_of([run(1)], now=L(DAY, 23), rule="median")


def test_on_the_spring_forward_day_a_slot_in_the_gap_moves_an_hour_on():
    dst_day = date(2026, 3, 29)
    at_0230 = {**DAILY_22, "time": "02:30"}
    shown = status_of(schedule=at_0230, day=dst_day, now=datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc))
    assert shown.slot == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)   # 03:30 summer time
    assert shown.note == "expected at 03:30"
    assert status_of(schedule=at_0230, day=dst_day,
                     now=datetime(2026, 3, 29, 3, 31, tzinfo=timezone.utc)).status == "Missed"
