"""Snoozes and maintenance windows with the database: held alerts (nothing reaches a receiver),
customer snoozes, expiry and lifting, no missed run inside a window (a weekly one across the DST
change too), Daily Jobs' Maintenance, refused input that saves nothing, the audit log, roles."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, MaintenanceWindow, NotificationChannel, NotificationOutbox, Snooze
from backend.app.services import quiet
from backend.app.services.daily_jobs import build_day
from backend.app.services.missed_runs import detect_missed_runs
from backend.app.services.schedules import local_to_utc, recompute_job_schedule

from .clock import TEST_NOW
from .conftest import post_form
from .fakes.receiver import Receiver
from .helpers import make_customer, make_job, make_run, make_user

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
T0 = TEST_NOW + timedelta(seconds=30)

pytestmark = pytest.mark.usefixtures("app")


def L(y, m, d, hh=0, mm=0) -> datetime:
    return local_to_utc(date(y, m, d), time(hh, mm), AMS)


def _channel(url):
    ch = NotificationChannel(name="hook", kind="webhook", target_url=url)
    db.session.add(ch)
    db.session.flush()
    return ch


def _failure(job, started=None):
    from backend.app.services.ingest import after_run_created

    run = make_run(job, status="Failed", started_at=started or TEST_NOW - timedelta(hours=1))
    after_run_created(run)
    db.session.commit()
    return run


def _outbox(run):
    db.session.expire_all()
    return db.session.execute(select(NotificationOutbox).where(
        NotificationOutbox.event_key == f"run:{run.id}:failed")).scalars().all()


def _snooze(user, *, job=None, customer=None, until=None, reason="migrating NAS", now=TEST_NOW):
    row, _ = quiet.snooze(job=job, customer=customer, until=until or now + timedelta(days=1), reason=reason,
                          user=user, now=now, zone=AMS)
    db.session.commit()
    return row


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


# --- Held alerts -------------------------------------------------------------------------------------

def test_a_snoozed_jobs_failure_is_held_and_nothing_is_sent():
    from backend.app.services.notifications import send_due

    user = make_user("sam", roles=("operator",))
    with Receiver() as rx:
        _channel(rx.url())
        job = make_job()
        until = TEST_NOW + timedelta(days=1)
        _snooze(user, job=job, until=until)
        run = _failure(job)
        (row,) = _outbox(run)
        assert row.state == "held"
        assert row.last_error == f"snoozed until {until.astimezone(AMS):%Y-%m-%d %H:%M}: migrating NAS"
        assert send_due(T0 + timedelta(minutes=5))["sent"] == 0
        assert rx.requests == []


def test_a_held_message_can_be_sent_anyway():
    from backend.app.services.notifications import send_due
    from backend.app.services.notifications.sender import retry

    user = make_user("sam", roles=("operator",))
    with Receiver() as rx:
        _channel(rx.url())
        job = make_job()
        _snooze(user, job=job)
        (row,) = _outbox(_failure(job))
        assert retry(row.id, T0)
        db.session.commit()
        assert send_due(T0 + timedelta(seconds=1))["sent"] == 1
        assert len(rx.requests) == 1


def test_a_customer_snooze_covers_all_its_jobs_and_no_other():
    user = make_user("sam", roles=("operator",))
    _channel("http://127.0.0.1:9/hook")
    acme, other = make_customer("Acme Testing"), make_customer("Other Testing")
    a1 = make_job(acme, "Acme One", sender="a1@example.test")
    a2 = make_job(acme, "Acme Two", sender="a2@example.test")
    o1 = make_job(other, "Other One", sender="o1@example.test")
    _snooze(user, customer=acme, reason="office move")
    states = {j.job_name: _outbox(_failure(j))[0].state for j in (a1, a2, o1)}
    assert states == {"Acme One": "held", "Acme Two": "held", "Other One": "pending"}


def test_an_expired_or_lifted_snooze_no_longer_holds():
    user = make_user("sam", roles=("operator",))
    _channel("http://127.0.0.1:9/hook")
    old = make_job(make_customer("Old Snooze"), "Expired", sender="e@example.test")
    lifted = make_job(make_customer("Lifted Snooze"), "Lifted", sender="l@example.test")
    _snooze(user, job=old, now=TEST_NOW - timedelta(days=3), until=TEST_NOW - timedelta(days=1))
    s = _snooze(user, job=lifted)
    assert quiet.lift(s, user, TEST_NOW)
    db.session.commit()
    assert _outbox(_failure(old))[0].state == "pending"
    assert _outbox(_failure(lifted))[0].state == "pending"


def test_a_run_that_started_in_a_maintenance_window_has_its_alert_held():
    admin = make_user("ada", roles=("admin",))
    _channel("http://127.0.0.1:9/hook")
    job = make_job()
    start = TEST_NOW - timedelta(hours=2)
    quiet.create_window(quiet.Window(kind="once", reason="firmware update", zone="Europe/Amsterdam",
                                     starts_at=start, ends_at=start + timedelta(hours=3)), job=job, user=admin)
    db.session.commit()
    inside = _failure(job, TEST_NOW - timedelta(hours=1))
    before = _failure(job, start - timedelta(hours=1))
    assert [(r.state, r.last_error) for r in _outbox(inside)] == [("held", "maintenance window: firmware update")]
    assert _outbox(before)[0].state == "pending"


# --- Missed runs and Daily Jobs ----------------------------------------------------------------------

def _daily(job, hhmm, since):
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": hhmm, "grace_minutes": 120}
    recompute_job_schedule(job, since, AMS)
    db.session.commit()
    return job


def _missed_slots(job):
    db.session.expire_all()
    return db.session.execute(select(JobRun.missed_slot).where(JobRun.job_id == job.id, JobRun.missed.is_(True))
                              .order_by(JobRun.missed_slot)).scalars().all()


def test_maintenance_suppresses_the_missed_run_and_daily_jobs_shows_maintenance(clock):
    admin = make_user("ada", roles=("admin",))
    acme = make_customer("Acme Testing")
    job = _daily(make_job(acme, created_at=L(2026, 10, 1)), "22:00", L(2026, 10, 9, 12))
    quiet.create_window(quiet.Window(kind="once", reason="SAN swap", zone="Europe/Amsterdam",
                                     starts_at=L(2026, 10, 10, 20), ends_at=L(2026, 10, 11, 6)), customer=acme,
                        user=admin)
    db.session.commit()
    assert detect_missed_runs(L(2026, 10, 12, 1), AMS) == 2
    assert _missed_slots(job) == [L(2026, 10, 9, 22), L(2026, 10, 11, 22)]  # not the 10th: maintenance
    view = build_day(date(2026, 10, 10), AMS, L(2026, 10, 12, 1))
    (row,) = [r for g in view.groups for r in g.rows]
    assert row.status == "Maintenance" and "SAN swap" in row.note
    assert build_day(date(2026, 10, 10), AMS, L(2026, 10, 12, 1), status_filter="maintenance").total == 1
    other_day = [r for g in build_day(date(2026, 10, 11), AMS, L(2026, 10, 12, 1)).groups for r in g.rows]
    assert [r.status for r in other_day] == ["Missed"]


def test_an_unchecked_slot_in_maintenance_shows_maintenance_not_missed():
    admin = make_user("ada", roles=("admin",))
    job = _daily(make_job(created_at=L(2026, 10, 1)), "22:00", L(2026, 10, 10, 12))
    quiet.create_window(quiet.Window(kind="weekly", reason="weekend patching", zone="Europe/Amsterdam",
                                     weekdays=(5,), local_start=time(21), local_end=time(23)), job=job, user=admin)
    db.session.commit()
    # 10 October 2026 is a Saturday: the loop has not run, the deadline passed
    (row,) = [r for g in build_day(date(2026, 10, 10), AMS, L(2026, 10, 11, 3)).groups for r in g.rows]
    assert row.status == "Maintenance"


def test_a_weekly_window_across_the_autumn_dst_change_keeps_its_wall_clock_time():
    admin = make_user("ada", roles=("admin",))
    job = _daily(make_job(created_at=L(2026, 10, 1)), "03:30", L(2026, 10, 23, 12))
    # Sundays 01:00-04:00 local; 25 October 2026 the clocks go back at 03:00
    quiet.create_window(quiet.Window(kind="weekly", reason="Sunday backups of the SAN", zone="Europe/Amsterdam",
                                     weekdays=(6,), local_start=time(1), local_end=time(4)), job=job, user=admin)
    db.session.commit()
    assert detect_missed_runs(L(2026, 10, 26, 12), AMS) == 2  # 24, 25 (in the window), 26 October
    assert detect_missed_runs(L(2026, 11, 2, 12), AMS) == 6   # 27 October … 2 November, not Sunday 1 November
    slots = _missed_slots(job)
    assert L(2026, 10, 25, 3, 30) not in slots and L(2026, 11, 1, 3, 30) not in slots
    assert L(2026, 10, 24, 3, 30) in slots and L(2026, 10, 26, 3, 30) in slots and len(slots) == 8
    assert L(2026, 10, 25, 3, 30) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # after the change: UTC+1


# --- Pages, refusals, audit, roles ----------------------------------------------------------------------

def test_operator_snoozes_from_the_job_page_and_sees_it_everywhere(as_user):
    c = as_user("operator")
    job = make_job()
    make_run(job, status="Failed", started_at=TEST_NOW - timedelta(hours=2))
    db.session.commit()
    r = post_form(c, "/snoozes", {"job_id": job.id, "scope": "job", "choice": "3d", "reason": "migrating NAS",
                                  "next": f"/jobs/{job.id}"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "snoozed: alerts are held until" in html
    assert "Snoozed until" in html and "migrating NAS" in html and ">Lift<" in html
    rc = c.get(f"/run-checks?job={job.id}").get_data(as_text=True)
    assert "Snoozed until" in rc and "migrating NAS" in rc and ">Lift<" in rc
    (s,) = db.session.execute(select(Snooze)).scalars().all()
    assert timedelta(days=3) - timedelta(minutes=5) < s.until - TEST_NOW <= timedelta(days=3, minutes=5)
    # again: the snooze is changed, not doubled
    post_form(c, "/snoozes", {"job_id": job.id, "scope": "job", "choice": "custom",
                              "until": (TEST_NOW + timedelta(days=10)).astimezone(AMS).strftime("%Y-%m-%dT%H:%M"),
                              "reason": "still migrating"})
    assert _count(Snooze) == 1
    events = db.session.execute(select(AuditLog.event).order_by(AuditLog.id)).scalars().all()
    assert events[-2:] == ["snooze.create", "snooze.change"]


def test_snooze_the_customer_from_the_job_page(as_user):
    c = as_user("operator")
    job = make_job()
    db.session.commit()
    post_form(c, "/snoozes", {"job_id": job.id, "scope": "customer", "choice": "1w", "reason": "office move"})
    (s,) = db.session.execute(select(Snooze)).scalars().all()
    assert (s.job_id, s.customer_id) == (None, job.customer_id)
    html = c.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Snoozed until" in html and "office move" in html and f"(all jobs of {job.customer.name})" in html


@pytest.mark.parametrize("data,message", [
    ({"choice": "custom", "until": "2020-01-01T08:00", "reason": "late"}, "has already passed"),
    ({"choice": "1d", "reason": "   "}, "Give a reason"),
    ({"choice": "custom", "until": "", "reason": "x"}, "Choose a date and time"),
])
def test_bad_snooze_input_says_why_and_saves_nothing(as_user, data, message):
    c = as_user("operator")
    job = make_job()
    db.session.commit()
    r = post_form(c, "/snoozes", {"job_id": job.id, **data}, follow_redirects=True)
    assert message in r.get_data(as_text=True)
    assert _count(Snooze) == 0


@pytest.mark.parametrize("data,message", [
    ({"kind": "once", "starts": "2026-12-05T10:00", "ends": "2026-12-05T08:00"}, "ends before it starts"),
    ({"kind": "once", "starts": "2026-12-05T10:00", "ends": "2026-12-05T10:00"}, "ends before it starts"),
    ({"kind": "weekly", "local_start": "22:00", "duration_minutes": "60"}, "at least one day"),
    ({"kind": "weekly", "weekdays": ["5"], "local_start": "22:00", "duration_minutes": "0"}, "no length"),
    ({"kind": "once", "starts": "2026-12-05T10:00", "ends": "2026-12-05T12:00", "reason": ""}, "Give a reason"),
])
def test_bad_window_input_says_why_and_saves_nothing(as_user, data, message):
    c = as_user("admin")
    customer = make_customer()
    db.session.commit()
    r = post_form(c, "/settings/maintenance-windows", {"customer_id": customer.id, "reason": "patching", **data})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert _count(MaintenanceWindow) == 0


def test_admin_adds_and_deletes_a_weekly_window_audited(as_user):
    c = as_user("admin")
    job = make_job()
    db.session.commit()
    r = post_form(c, "/settings/maintenance-windows",
                  {"job_id": job.id, "kind": "weekly", "weekdays": ["5", "6"], "local_start": "22:00",
                   "local_end": "02:00", "reason": "weekend patching"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Maintenance window saved" in html and "Maintenance windows…" in html
    (w,) = db.session.execute(select(MaintenanceWindow)).scalars().all()
    assert (w.job_id, w.weekdays, w.local_start, w.local_end, w.zone) == (job.id, "5,6", time(22), time(2),
                                                                            "Europe/Amsterdam")
    listing = c.get("/settings/maintenance-windows").get_data(as_text=True)
    assert "every Sat, Sun from 22:00 until 02:00 (next day)" in listing
    post_form(c, f"/settings/maintenance-windows/{w.id}/delete")
    assert _count(MaintenanceWindow) == 0
    events = db.session.execute(select(AuditLog.event).order_by(AuditLog.id)).scalars().all()
    assert events[-2:] == ["maintenance.create", "maintenance.delete"]


def test_roles(as_user, personas):
    job = make_job()
    db.session.commit()
    data = {"job_id": job.id, "choice": "1d", "reason": "x"}
    assert post_form(as_user("viewer"), "/snoozes", data).status_code == 403
    assert post_form(as_user("reporter"), "/snoozes", data).status_code == 403
    assert post_form(as_user("operator"), "/settings/maintenance-windows",
                     {"customer_id": job.customer_id}).status_code == 403
    assert as_user("operator").get("/settings/maintenance-windows").status_code == 403
    assert _count(Snooze) == 0
    # an operator lifts their own snooze, not an admin's; an admin lifts any
    by_admin = _snooze(personas["admin"], job=job)
    assert post_form(as_user("operator"), f"/snoozes/{by_admin.id}/lift").status_code == 403
    assert "Lift" not in as_user("operator").get(f"/jobs/{job.id}").get_data(as_text=True).split("snooze-banner")[1][:800]
    assert post_form(as_user("admin"), f"/snoozes/{by_admin.id}/lift").status_code == 302
    db.session.expire_all()
    assert db.session.get(Snooze, by_admin.id).lifted_at is not None
    by_operator = _snooze(personas["operator"], job=job)
    assert post_form(as_user("operator"), f"/snoozes/{by_operator.id}/lift").status_code == 302
    events = db.session.execute(select(AuditLog.event).where(AuditLog.event.like("snooze.%"))
                                .order_by(AuditLog.id)).scalars().all()
    assert events == ["snooze.create", "snooze.lift", "snooze.create", "snooze.lift"]


def test_the_delivery_log_labels_held_rows(as_user):
    admin = make_user("ada2", roles=("admin",))
    _channel("http://127.0.0.1:9/hook")
    job = make_job()
    _snooze(admin, job=job)
    _failure(job)
    html = as_user("admin").get("/settings/notifications").get_data(as_text=True)
    assert "held (snooze/maintenance)" in html and "Send anyway" in html and "snoozed until" in html
