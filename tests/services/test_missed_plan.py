"""The missed-run loop's decisions without a database: ``missed_runs.plan_job`` (which slots of a due
job are decided and where the job moves on to) and ``slots_to_create`` (which of them get a Missed
run). The claims, the unique constraint and the queries are tested in test_missed_runs.py."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from backend.app.services.missed_runs import CATCH_UP_LIMIT, plan_job, slots_to_create
from backend.app.services.schedules import local_to_utc

AMS = ZoneInfo("Europe/Amsterdam")
DAILY_22 = {"kind": "daily", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 120, "source": "manual"}


def L(y, m, d, hh=0, mm=0) -> datetime:
    return local_to_utc(date(y, m, d), time(hh, mm), AMS)


def real(at: datetime):
    return SimpleNamespace(started_at=at, missed=False)


def test_one_slot_past_its_deadline_is_due_and_the_job_moves_to_the_next():
    plan = plan_job(7, DAILY_22, L(2026, 10, 10, 22), L(2026, 10, 11, 1), AMS)
    assert [d.slot for d in plan.due] == [L(2026, 10, 10, 22)]
    assert plan.old_slot == L(2026, 10, 10, 22)
    assert (plan.new_slot, plan.new_deadline) == (L(2026, 10, 11, 22), L(2026, 10, 12, 0))
    lo, hi = plan.due[0].lo, plan.due[0].hi
    assert lo == L(2026, 10, 10, 10) and hi == L(2026, 10, 11, 10)  # half-way to the neighbours


def test_a_slot_still_in_its_grace_is_not_due():
    plan = plan_job(7, DAILY_22, L(2026, 10, 10, 22), L(2026, 10, 10, 23, 59), AMS)
    assert plan.due == () and plan.new_slot == L(2026, 10, 10, 22)


def test_after_downtime_every_slot_since_is_due():
    plan = plan_job(7, DAILY_22, L(2026, 10, 7, 22), L(2026, 10, 11, 1), AMS)
    assert [d.slot for d in plan.due] == [L(2026, 10, d, 22) for d in (7, 8, 9, 10)]


def test_catch_up_stops_a_week_back():
    now = L(2026, 10, 20, 12)
    plan = plan_job(7, DAILY_22, L(2026, 10, 1, 22), now, AMS)
    assert plan.due[0].slot == L(2026, 10, 13, 22) and plan.due[0].slot >= now - CATCH_UP_LIMIT
    assert plan.due[-1].slot == L(2026, 10, 19, 22)
    assert plan.old_slot == L(2026, 10, 1, 22), "the claim still compares with the stored slot"


def test_a_job_without_a_usable_schedule_is_claimed_with_nothing_due():
    for schedule in (None, {"kind": "irregular"}, {"kind": "unknown", "reason": "No runs yet."}):
        plan = plan_job(7, schedule, L(2026, 10, 10, 22), L(2026, 10, 11, 1), AMS)
        assert (plan.due, plan.new_slot, plan.new_deadline) == ((), None, None)
        assert slots_to_create(plan, [], [], L(2026, 10, 11, 1), AMS) == []


def test_a_slot_without_a_run_gets_a_missed_run():
    now = L(2026, 10, 11, 1)
    plan = plan_job(7, DAILY_22, L(2026, 10, 10, 22), now, AMS)
    assert slots_to_create(plan, [], [], now, AMS) == [L(2026, 10, 10, 22)]


def test_a_real_run_of_the_slot_even_across_midnight_means_no_missed_run():
    now = L(2026, 10, 11, 9)
    plan = plan_job(7, DAILY_22, L(2026, 10, 10, 22), now, AMS)
    assert slots_to_create(plan, [real(L(2026, 10, 11, 0, 45))], [], now, AMS) == []
    assert slots_to_create(plan, [real(L(2026, 10, 10, 21, 30))], [], now, AMS) == [], "a little early counts"


def test_a_run_outside_the_slot_window_does_not_count():
    now = L(2026, 10, 11, 9)
    plan = plan_job(7, DAILY_22, L(2026, 10, 10, 22), now, AMS)
    assert slots_to_create(plan, [real(L(2026, 10, 10, 9))], [], now, AMS) == [L(2026, 10, 10, 22)]
    missed = SimpleNamespace(started_at=L(2026, 10, 10, 22), missed=True)
    assert slots_to_create(plan, [missed], [], now, AMS) == [L(2026, 10, 10, 22)], "missed runs never count"


def test_a_stored_missed_run_in_the_window_is_not_made_again():
    now = L(2026, 10, 11, 1)
    moved = {**DAILY_22, "time": "22:10"}  # relearned ten minutes later
    plan = plan_job(7, moved, L(2026, 10, 10, 22, 10), now, AMS)
    assert slots_to_create(plan, [], [L(2026, 10, 10, 22)], now, AMS) == []


def test_only_the_slots_without_a_run_after_downtime():
    now = L(2026, 10, 11, 1)
    plan = plan_job(7, DAILY_22, L(2026, 10, 8, 22), now, AMS)
    runs = [real(L(2026, 10, 9, 22, 5))]
    assert slots_to_create(plan, runs, [L(2026, 10, 8, 22)], now, AMS) == [L(2026, 10, 10, 22)]


def test_on_the_spring_forward_night_the_slot_in_the_gap_is_an_hour_later():
    at_0230 = {**DAILY_22, "time": "02:30"}
    now = datetime(2026, 3, 29, 4, 0, tzinfo=timezone.utc)
    plan = plan_job(7, at_0230, L(2026, 3, 28, 2, 30), now, AMS)
    assert [d.slot for d in plan.due] == [datetime(2026, 3, 28, 1, 30, tzinfo=timezone.utc),
                                          datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)]
    assert plan.new_slot == datetime(2026, 3, 30, 0, 30, tzinfo=timezone.utc)  # 02:30 summer time
    assert plan.new_deadline == plan.new_slot + timedelta(minutes=120)
