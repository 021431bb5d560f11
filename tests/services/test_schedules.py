"""Schedules: learning from start times, manual schedules, DST-safe slots, storing on the job."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, Job
from backend.app.services import schedules as sch
from backend.app.services.schedules import (
    clear_manual_schedule,
    describe_schedule,
    effective_schedule,
    infer_schedule,
    local_to_utc,
    next_expected_run,
    recompute_all_schedules,
    recompute_job_schedule,
    set_manual_schedule,
    slot_window,
    validate_manual_schedule,
)
from backend.app.services.timezones import local_day

from ..helpers import make_customer, make_job, make_run, make_user, queries

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def L(y, m, d, hh=0, mm=0) -> datetime:
    """A local Amsterdam wall time as a UTC instant."""
    return local_to_utc(date(y, m, d), time(hh, mm), AMS)


def U(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def days(start: date, end: date):
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def starts_on(day_filter, hh, mm, start=date(2026, 8, 1), end=date(2026, 9, 30), jitter=6, seed=1):
    rnd = random.Random(seed)
    return [local_to_utc(d, time(hh, mm), AMS) + timedelta(minutes=rnd.randint(0, jitter))
            for d in days(start, end) if day_filter(d)]


NOW = U(2026, 10, 1, 6)


# --- Learning ---------------------------------------------------------------------------------------

def test_a_job_that_runs_every_evening_is_daily_at_its_usual_time():
    s = infer_schedule(starts_on(lambda d: True, 22, 0), AMS, NOW)
    assert s["kind"] == "daily" and s["weekdays"] == list(range(7))
    assert "22:00" <= s["time"] <= "22:06"
    assert s["grace_minutes"] == sch.DEFAULT_GRACE_MINUTES
    assert describe_schedule(s) == f"Daily at {s['time']}"


def test_a_job_that_runs_only_on_working_days_is_weekly_mon_to_fri():
    s = infer_schedule(starts_on(lambda d: d.weekday() < 5, 21, 0), AMS, NOW)
    assert s["kind"] == "weekly" and s["weekdays"] == [0, 1, 2, 3, 4]
    assert describe_schedule(s).startswith("Mon–Fri at 21:0")


def test_a_saturday_job_and_a_tuesday_thursday_job_are_weekly():
    sat = infer_schedule(starts_on(lambda d: d.weekday() == 5, 23, 30), AMS, NOW)
    assert sat["kind"] == "weekly" and sat["weekdays"] == [5]
    tt = infer_schedule(starts_on(lambda d: d.weekday() in (1, 3), 3, 0), AMS, NOW)
    assert tt["kind"] == "weekly" and tt["weekdays"] == [1, 3]


def test_a_job_on_the_first_and_fifteenth_is_monthly():
    s = infer_schedule(starts_on(lambda d: d.day in (1, 15), 4, 0, start=date(2026, 6, 1)), AMS, NOW)
    assert s["kind"] == "monthly" and s["monthdays"] == [1, 15]
    assert describe_schedule(s).startswith("Monthly on day 1, 15 at 04:0")


def test_runs_at_random_days_and_times_are_irregular():
    rnd = random.Random(7)
    starts = [L(2026, 8, 1) + timedelta(minutes=rnd.randint(0, 60 * 24 * 60)) for _ in range(25)]
    assert infer_schedule(starts, AMS, NOW)["kind"] == "irregular"


def test_three_runs_are_too_few_to_learn_anything():
    s = infer_schedule([L(2026, 9, 28, 22), L(2026, 9, 29, 22), L(2026, 9, 30, 22)], AMS, NOW)
    assert s["kind"] == "unknown" and "at least 4" in s["reason"]
    assert infer_schedule([], AMS, NOW)["kind"] == "unknown"


def test_a_young_daily_job_is_learned_after_a_few_days_and_a_young_weekday_job_stays_unknown():
    assert infer_schedule(starts_on(lambda d: True, 22, 0, start=date(2026, 9, 25)), AMS, NOW)["kind"] == "daily"
    young = infer_schedule(starts_on(lambda d: d.weekday() < 5, 22, 0, start=date(2026, 9, 21)), AMS, NOW)
    assert young["kind"] == "unknown" and "Still learning" in young["reason"]


def test_an_odd_missing_run_does_not_flip_the_schedule():
    starts = starts_on(lambda d: d not in (date(2026, 9, 9), date(2026, 9, 23)), 22, 0)
    assert infer_schedule(starts, AMS, NOW)["kind"] == "daily"
    wd = starts_on(lambda d: d.weekday() < 5 and d != date(2026, 9, 16), 21, 0)
    assert infer_schedule(wd, AMS, NOW)["weekdays"] == [0, 1, 2, 3, 4]
    sat = starts_on(lambda d: d.weekday() == 5 and d != date(2026, 9, 12), 23, 30)
    assert infer_schedule(sat, AMS, NOW)["weekdays"] == [5]


def test_an_odd_extra_run_does_not_flip_the_schedule():
    wd = starts_on(lambda d: d.weekday() < 5, 21, 0) + [L(2026, 9, 12, 14, 0)]  # a Saturday rerun
    s = infer_schedule(wd, AMS, NOW)
    assert s["kind"] == "weekly" and s["weekdays"] == [0, 1, 2, 3, 4] and "1 extra" in s["reason"]
    # A second run on the same evening (a retry) changes nothing either.
    daily = starts_on(lambda d: True, 22, 0) + [L(2026, 9, 20, 23, 30)]
    assert infer_schedule(daily, AMS, NOW)["kind"] == "daily"


def test_a_run_started_2350_and_mailed_0010_belongs_to_the_day_it_started():
    # Mon-Fri at 23:50; the mails arrive Tue-Sat at 00:10, but the start times decide.
    starts = starts_on(lambda d: d.weekday() < 5, 23, 50, jitter=5)
    s = infer_schedule(starts, AMS, NOW)
    assert s["kind"] == "weekly" and s["weekdays"] == [0, 1, 2, 3, 4]
    assert "23:50" <= s["time"] <= "23:55"
    friday_run = L(2026, 9, 25, 23, 50)          # 21:50 UTC
    assert local_day(friday_run, AMS) == date(2026, 9, 25)
    assert local_day(friday_run + timedelta(minutes=20), AMS) == date(2026, 9, 26)  # the mail's day


def test_a_daily_job_near_midnight_gets_a_sensible_time():
    # Starts wander between 23:40 and 23:59: the median does not jump to the middle of the day.
    starts = starts_on(lambda d: True, 23, 40, jitter=19)
    s = infer_schedule(starts, AMS, NOW)
    assert s["kind"] == "daily" and "23:40" <= s["time"] <= "23:59"


def test_a_local_2200_job_keeps_its_time_across_the_october_change():
    starts = starts_on(lambda d: True, 22, 0, start=date(2026, 10, 1), end=date(2026, 11, 10), jitter=0)
    s = infer_schedule(starts, AMS, U(2026, 11, 11))
    assert s["kind"] == "daily" and s["time"] == "22:00"


def test_a_job_that_stops_reporting_keeps_its_schedule():
    starts = starts_on(lambda d: True, 22, 0, end=date(2026, 9, 1))
    s = infer_schedule(starts, AMS, U(2026, 11, 1))  # two months of silence
    assert s["kind"] == "daily" and s["observed_to"] == "2026-09-01"


def test_future_start_times_are_ignored():
    starts = starts_on(lambda d: True, 22, 0, start=date(2026, 9, 28), end=date(2026, 10, 30))
    assert infer_schedule(starts, AMS, L(2026, 9, 30, 23))["kind"] == "unknown"


def test_a_wandering_start_time_widens_the_grace():
    rnd = random.Random(3)
    starts = [L(d.year, d.month, d.day, 19, 0) + timedelta(minutes=rnd.choice([0, 0, 0, 5, 10, 150, 200]))
              for d in days(date(2026, 8, 15), date(2026, 9, 30))]
    s = infer_schedule(starts, AMS, NOW)
    assert s["kind"] == "daily" and s["grace_minutes"] > sch.DEFAULT_GRACE_MINUTES
    assert s["grace_minutes"] <= sch.MAX_LEARNED_GRACE_MINUTES


# --- Slots and DST --------------------------------------------------------------------------------

def test_wall_times_in_the_dst_gap_shift_forward_and_ambiguous_ones_take_the_first():
    assert L(2026, 3, 29, 2, 30) == U(2026, 3, 29, 1, 30)    # 03:30 CEST: 02:30 does not exist
    assert L(2026, 10, 25, 2, 30) == U(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    assert L(2026, 10, 25, 3, 30) == U(2026, 10, 25, 2, 30)  # after the change: CET


DAILY_0230 = {"kind": "daily", "time": "02:30", "grace_minutes": 120}
DAILY_2200 = {"kind": "daily", "time": "22:00", "grace_minutes": 120}


def _slots(schedule, after, n):
    out = []
    for _ in range(n):
        slot, deadline = next_expected_run(schedule, after, AMS)
        out.append(slot)
        after = slot
    return out


def test_a_daily_0230_job_across_the_spring_change():
    assert _slots(DAILY_0230, U(2026, 3, 27, 12), 4) == [
        U(2026, 3, 28, 1, 30),   # 02:30 CET
        U(2026, 3, 29, 1, 30),   # 02:30 does not exist: 03:30 CEST
        U(2026, 3, 30, 0, 30),   # 02:30 CEST
        U(2026, 3, 31, 0, 30)]


def test_a_daily_0230_job_across_the_autumn_change():
    assert _slots(DAILY_0230, U(2026, 10, 23, 12), 4) == [
        U(2026, 10, 24, 0, 30),  # CEST
        U(2026, 10, 25, 0, 30),  # the first 02:30 (still CEST)
        U(2026, 10, 26, 1, 30),  # CET
        U(2026, 10, 27, 1, 30)]


def test_a_daily_2200_job_across_both_changes_keeps_local_2200():
    assert _slots(DAILY_2200, U(2026, 3, 27, 12), 3) == [U(2026, 3, 27, 21), U(2026, 3, 28, 21), U(2026, 3, 29, 20)]
    assert _slots(DAILY_2200, U(2026, 10, 24, 12), 3) == [U(2026, 10, 24, 20), U(2026, 10, 25, 21),
                                                          U(2026, 10, 26, 21)]
    slot, deadline = next_expected_run(DAILY_2200, U(2026, 10, 25, 12), AMS)
    assert deadline - slot == timedelta(hours=2) and deadline == U(2026, 10, 25, 23)


def test_next_expected_run_is_strictly_after_and_crosses_midnight():
    sched = {"kind": "daily", "time": "00:15", "grace_minutes": 30}
    assert next_expected_run(sched, L(2026, 9, 30, 23, 59), AMS)[0] == L(2026, 10, 1, 0, 15)
    assert next_expected_run(sched, L(2026, 10, 1, 0, 15), AMS)[0] == L(2026, 10, 2, 0, 15)
    assert next_expected_run({"kind": "irregular"}, NOW, AMS) is None
    assert next_expected_run(None, NOW, AMS) is None


def test_weekly_monthly_and_every_n_days_slots():
    sat = {"kind": "weekly", "weekdays": [5], "time": "23:30", "grace_minutes": 120}
    assert next_expected_run(sat, L(2026, 10, 24, 23, 31), AMS)[0] == L(2026, 10, 31, 23, 30)
    monthly = {"kind": "monthly", "monthdays": [31], "time": "04:00", "grace_minutes": 120}
    # Day 31 means the last day in shorter months.
    assert _slots(monthly, L(2026, 8, 31, 5), 3) == [L(2026, 9, 30, 4), L(2026, 10, 31, 4), L(2026, 11, 30, 4)]
    feb = {"kind": "monthly", "monthdays": [30, 31], "time": "04:00", "grace_minutes": 120}
    assert _slots(feb, L(2027, 2, 1), 2) == [L(2027, 2, 28, 4), L(2027, 3, 30, 4)]
    every3 = {"kind": "every_n_days", "every_n_days": 3, "anchor_date": "2026-10-20", "time": "01:00",
              "grace_minutes": 60}
    assert _slots(every3, L(2026, 10, 19), 4) == [L(2026, 10, 20, 1), L(2026, 10, 23, 1), L(2026, 10, 26, 1),
                                                  L(2026, 10, 29, 1)]
    # Dates before the anchor follow the same rhythm.
    assert next_expected_run(every3, L(2026, 10, 10), AMS)[0] == L(2026, 10, 11, 1)


def test_a_slot_window_splits_halfway_to_the_neighbours_and_reaches_the_deadline():
    lo, hi = slot_window(DAILY_2200, L(2026, 10, 10, 22), AMS)
    assert lo == L(2026, 10, 10, 10) and hi == L(2026, 10, 11, 10)
    sat = {"kind": "weekly", "weekdays": [5], "time": "23:30", "grace_minutes": 120}
    lo, hi = slot_window(sat, L(2026, 10, 17, 23, 30), AMS)
    assert lo == L(2026, 10, 17, 11, 30) and hi == L(2026, 10, 18, 23, 30)  # 12 h early, 24 h late at most
    wide = {**DAILY_2200, "grace_minutes": 900}
    assert slot_window(wide, L(2026, 10, 10, 22), AMS)[1] == L(2026, 10, 11, 13)


# --- Manual schedules ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({}, "Choose how the job is scheduled"),
    ({"kind": "hourly", "time": "22:00"}, "Choose how the job is scheduled"),
    ({"kind": "weekdays", "weekdays": [7], "time": "22:00"}, "'7' is not a valid weekday (0 to 6)"),
    ({"kind": "weekdays", "weekdays": "mon,funday", "time": "22:00"}, "'funday' is not a valid weekday"),
    ({"kind": "weekdays", "weekdays": [], "time": "22:00"}, "Choose at least one of the weekdays"),
    ({"kind": "monthdays", "monthdays": [0], "time": "22:00"}, "not a valid days of the month"[:14]),
    ({"kind": "monthdays", "monthdays": "32", "time": "22:00"}, "(1 to 31)"),
    ({"kind": "weekdays", "weekdays": [1], "time": "25:00"}, "is not a time of day"),
    ({"kind": "weekdays", "weekdays": [1], "time": "10pm"}, "not in the form HH:MM"),
    ({"kind": "weekdays", "weekdays": [1], "time": ""}, "not in the form HH:MM"),
    ({"kind": "every_n_days", "every_n_days": 0, "anchor_date": "2026-10-01", "time": "01:00"},
     "between 1 and 366"),
    ({"kind": "every_n_days", "every_n_days": "two", "anchor_date": "2026-10-01", "time": "01:00"},
     "must be a whole number"),
    ({"kind": "every_n_days", "every_n_days": 2, "anchor_date": "01-10-2026", "time": "01:00"},
     "is not a date (YYYY-MM-DD)"),
    ({"kind": "weekdays", "weekdays": [1], "time": "01:00", "grace_minutes": -5}, "between 0 and 1440"),
    ({"kind": "weekdays", "weekdays": [1], "time": "01:00", "grace_minutes": "2h"}, "must be a whole number"),
])
def test_bad_manual_schedules_are_refused_with_a_clear_message(data, message):
    with pytest.raises(ValueError) as exc:
        validate_manual_schedule(data, today=date(2026, 10, 1))
    assert message in str(exc.value)


def test_manual_schedules_accept_form_input():
    clean = validate_manual_schedule({"kind": "weekdays", "weekdays": "Mon, tue,4", "time": "7:05",
                                      "grace_minutes": "45"})
    assert clean == {"kind": "weekdays", "weekdays": [0, 1, 4], "time": "07:05", "grace_minutes": 45}
    clean = validate_manual_schedule({"kind": "every_n_days", "every_n_days": "2", "time": "01:00"},
                                     today=date(2026, 10, 1))
    assert clean["anchor_date"] == "2026-10-01" and clean["grace_minutes"] == 120


def _learn_daily(job, hh=22, end=date(2026, 9, 30)):
    for t in starts_on(lambda d: True, hh, 0, start=end - timedelta(days=20), end=end, jitter=0):
        make_run(job, started_at=t)


def test_a_manual_schedule_wins_over_the_learned_one_and_is_audited(app):
    admin = make_user("alice", roles=("admin",))
    job = make_job()
    _learn_daily(job)
    recompute_job_schedule(job, NOW, AMS)
    db.session.commit()
    assert job.schedule_kind == "daily" and job.next_expected_slot == L(2026, 10, 1, 22)

    set_manual_schedule(job, {"kind": "weekdays", "weekdays": ["sat"], "time": "23:30", "grace_minutes": 60},
                        admin, now=NOW, zone=AMS)
    db.session.commit()
    eff = effective_schedule(job)
    assert eff["kind"] == "weekly" and eff["weekdays"] == [5] and eff["source"] == "manual"
    assert job.schedule_kind == "weekly"
    assert job.next_expected_slot == L(2026, 10, 3, 23, 30)
    assert job.next_expected_at == L(2026, 10, 4, 0, 30)
    # Relearning keeps the manual schedule in charge.
    recompute_job_schedule(job, NOW + timedelta(hours=1), AMS)
    assert job.schedule_kind == "weekly" and job.learned_schedule["kind"] == "daily"
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "job.schedule.set")).scalar_one()
    assert entry.username == "alice" and entry.target_id == str(job.id)
    assert entry.after["manual_schedule"]["weekdays"] == [5]

    clear_manual_schedule(job, admin, now=NOW, zone=AMS)
    db.session.commit()
    assert job.manual_schedule is None and job.schedule_kind == "daily"
    assert job.next_expected_slot == L(2026, 10, 1, 22)
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "job.schedule.clear")).scalar_one()


def test_a_bad_manual_schedule_changes_nothing(app):
    admin = make_user("alice", roles=("admin",))
    job = make_job()
    with pytest.raises(ValueError):
        set_manual_schedule(job, {"kind": "weekdays", "weekdays": [9], "time": "22:00"}, admin, now=NOW, zone=AMS)
    db.session.commit()
    db.session.refresh(job)
    assert job.manual_schedule is None
    assert db.session.execute(select(AuditLog)).first() is None


# --- Storing on the job -----------------------------------------------------------------------------

def test_recompute_stores_the_schedule_and_the_next_deadline(app):
    job = make_job()
    _learn_daily(job)
    make_run(job, status="Missed", started_at=L(2026, 9, 15, 3), missed=True, missed_slot=L(2026, 9, 15, 3))
    learned = recompute_job_schedule(job, NOW, AMS)
    db.session.commit()
    job = db.session.get(Job, job.id)
    assert learned["kind"] == "daily" and learned["time"] == "22:00"   # the missed run taught nothing
    assert job.schedule_kind == "daily" and job.learned_at == NOW
    assert job.next_expected_slot == L(2026, 10, 1, 22) and job.next_expected_at == L(2026, 10, 2, 0)


def test_recompute_keeps_a_due_slot_the_missed_run_loop_has_not_checked_yet(app):
    job = make_job()
    _learn_daily(job)
    recompute_job_schedule(job, NOW, AMS)
    db.session.commit()
    later = L(2026, 10, 2, 1)  # past the deadline of 1 Oct 22:00, before the loop ran
    recompute_job_schedule(job, later, AMS)
    assert job.next_expected_slot == L(2026, 10, 1, 22)


def test_a_schedule_set_mid_day_never_expects_a_slot_from_before_it_existed(app):
    admin = make_user("alice", roles=("admin",))
    job = make_job()
    # Set at 14:00 for 13:00 with two hours of grace: today's 13:00 is still "open", but the
    # schedule did not exist then, so the first slot it expects is tomorrow's.
    set_manual_schedule(job, {"kind": "weekdays", "weekdays": list(range(7)), "time": "13:00",
                              "grace_minutes": 120}, admin, now=L(2026, 10, 5, 14), zone=AMS)
    assert job.next_expected_slot == L(2026, 10, 6, 13)
    # A slot exactly at the moment it was saved counts.
    set_manual_schedule(job, {"kind": "weekdays", "weekdays": list(range(7)), "time": "15:00"},
                        admin, now=L(2026, 10, 5, 15), zone=AMS)
    assert job.next_expected_slot == L(2026, 10, 5, 15)


def test_relearning_never_moves_the_check_back_to_an_earlier_day(app):
    admin = make_user("alice", roles=("admin",))
    job = make_job()
    set_manual_schedule(job, {"kind": "weekdays", "weekdays": list(range(7)), "time": "13:00",
                              "grace_minutes": 120}, admin, now=L(2026, 10, 5, 14), zone=AMS)
    recompute_job_schedule(job, L(2026, 10, 5, 14, 30), AMS)  # the loop relearns half an hour later
    assert job.next_expected_slot == L(2026, 10, 6, 13)


def test_a_first_learned_schedule_counts_from_the_moment_it_was_learned(app):
    job = make_job()
    _learn_daily(job, hh=10)  # daily at 10:00 until 30 September
    recompute_job_schedule(job, L(2026, 10, 1, 11), AMS)  # learned at 11:00, 10:00's grace still runs
    assert job.next_expected_slot == L(2026, 10, 2, 10)


def test_an_irregular_job_has_no_next_expected_time(app):
    job = make_job()
    rnd = random.Random(7)
    for _ in range(25):
        make_run(job, started_at=L(2026, 8, 1) + timedelta(minutes=rnd.randint(0, 60 * 24 * 60)))
    recompute_job_schedule(job, NOW, AMS)
    assert job.schedule_kind == "irregular" and job.next_expected_at is None


def test_recompute_all_uses_a_constant_number_of_queries(app):
    customer = make_customer()
    jobs = [make_job(customer, job_name=f"Job {i}") for i in range(6)]
    for i, job in enumerate(jobs):
        for t in starts_on(lambda d: True, 20 + i % 3, 0, start=date(2026, 9, 10), end=date(2026, 9, 30)):
            make_run(job, started_at=t)
    archived = make_job(customer, job_name="Old", archived=True)
    with queries() as seen:
        assert recompute_all_schedules(NOW, AMS) == 6
    assert len(seen) == 2, seen
    db.session.commit()
    kinds = db.session.execute(select(Job.job_name, Job.schedule_kind).order_by(Job.id)).all()
    assert [k for _, k in kinds] == ["daily"] * 6 + ["unknown"]
    assert db.session.get(Job, archived.id).learned_at is None
    # Only stale ones with stale_after.
    assert recompute_all_schedules(NOW + timedelta(hours=1), AMS, stale_after=timedelta(hours=6)) == 0
