"""The date-sensitive pages and loops on the days calendars go wrong.

The whole suite runs at tests/clock.py:TEST_NOW (any date through BACKUPCHECKS_TEST_NOW); this test
moves the clock itself to the nights that break naive date code (Europe/Amsterdam, the default
example zone): the spring DST Sunday just after 02:00 vanished, the autumn DST Sunday inside the
hour that happens twice, New Year's Eve late in the evening in UTC (already 1 January locally) and
29 February. At each: a job with a daily schedule at 02:30 local (a wall time that does not exist
on the spring Sunday), runs on the days before except two, then the missed-run loop, the report
loop and the pages, all reading the (frozen) clock themselves.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import JobRun, ReportDefinition, ReportRun
from backend.app.services import reports
from backend.app.services.missed_runs import run_missed_run_check
from backend.app.services.schedules import local_to_utc, recompute_job_schedule
from backend.app.services.settings import get_settings

from .conftest import make_customer, make_job, make_run

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc

NIGHTS = {
    "spring-dst-sunday": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),    # 03:30 CEST, 02:00–03:00 never was
    "autumn-dst-sunday": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),   # 02:30 CEST, the first of two 02:30s
    "new-years-eve": datetime(2026, 12, 31, 23, 30, tzinfo=UTC),      # 00:30 on 1 January 2027 locally
    "leap-day": datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
}


@pytest.mark.parametrize("now", NIGHTS.values(), ids=NIGHTS.keys())
def test_pages_and_loops_on_a_calendar_edge(now, clock, as_user):
    clock.move_to(now)
    settings = get_settings()
    settings.ui_timezone = "Europe/Amsterdam"
    db.session.commit()
    today = now.astimezone(AMS).date()

    job = make_job(make_customer("Edge Testing"), "Nightly Edge", created_at=now - timedelta(days=30))
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": "02:30", "grace_minutes": 60}
    recompute_job_schedule(job, now - timedelta(days=10), AMS)
    db.session.commit()
    skipped, failed = today - timedelta(days=4), today - timedelta(days=3)
    for n in range(9, 1, -1):  # days today-9 … today-2; today-1 has no run either
        day = today - timedelta(days=n)
        if day != skipped:
            make_run(job, "Failed" if day == failed else "Success",
                     local_to_utc(day, time(2, 35), AMS), message="disk full" if day == failed else None)

    # The missed-run loop, on the clock: exactly the days without a run whose slot and grace are over, once.
    run_missed_run_check()
    run_missed_run_check()
    missed = db.session.execute(select(JobRun).where(JobRun.job_id == job.id, JobRun.missed.is_(True))
                                ).scalars().all()
    missed_days = sorted(r.missed_slot.astimezone(AMS).date() for r in missed)
    todays_slot_over = now.astimezone(AMS).time() > time(3, 30)  # 02:30 + 60 minutes' grace
    assert missed_days == [skipped, today - timedelta(days=1)] + ([today] if todays_slot_over else [])

    # The pages, as the morning team opens them.
    c = as_user("admin")
    for path in ("/", "/run-checks", "/jobs", f"/jobs/{job.id}", "/reports", "/audit-log", "/inbox",
                 "/overrides", "/tickets"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.get_data(as_text=True)[:1000])
    page = c.get("/daily-jobs").get_data(as_text=True)
    assert f"{today:%A %d %B %Y} (today)" in page
    page = c.get(f"/daily-jobs?date={skipped.isoformat()}").get_data(as_text=True)
    assert 'data-job="Nightly Edge"' in page and 'data-status="Missed"' in page
    page = c.get(f"/daily-jobs?date={failed.isoformat()}").get_data(as_text=True)
    assert 'data-status="Failed"' in page
    assert "Nightly Edge" in c.get("/run-checks").get_data(as_text=True)

    # The report loop: a monthly report due now is queued for last calendar month and generated.
    defn = ReportDefinition(name="Monthly edge", all_customers=True, period="last_month",
                            content={k: True for k in reports.CONTENT_KEYS}, schedule="monthly", schedule_day=1,
                            schedule_time="07:00", recipients="it@example.test", next_delivery_at=now)
    db.session.add(defn)
    db.session.commit()
    out = reports.run_loop_step()
    assert out["queued"] and out["generated"] == 1
    [run] = db.session.execute(select(ReportRun)).scalars().all()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    assert run.state == "done"
    assert run.period_start == local_to_utc(last_month_end.replace(day=1), time(0), AMS)
    assert run.period_end == local_to_utc(today.replace(day=1), time(0), AMS)  # exclusive
    db.session.refresh(defn)
    assert defn.next_delivery_at > now and defn.next_delivery_at.astimezone(AMS).day == 1
