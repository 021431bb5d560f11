"""Notification rules (Settings → Notifications → Rules): which customers a channel is for, "after N
consecutive failures" (per channel, overridden per job) and quiet hours. Deliveries go to real HTTP
receivers on loopback; the pure quiet-hours arithmetic is tested in tests/services/test_quiet_hours.py."""
from __future__ import annotations

import json
from datetime import timedelta

from tests.conftest import post_form
from tests.fakes.receiver import Receiver
from tests.helpers import make_customer, make_job, make_run
from tests.test_notifications import T0, _audit, _channel, _new_run, _rows, _send


def _missed(job, started):
    from backend.app.extensions import db
    from backend.app.services.notifications import enqueue_run_events

    # Reviewed, so the next real run is added after it instead of taking its place (a late run).
    run = make_run(job, status="Missed", started_at=started, missed=True, missed_slot=started, reviewed_at=started)
    enqueue_run_events([run])
    db.session.commit()
    return run


def _keys():
    return [r.event_key for r in _rows()]


def _received(rx):
    return [(json.loads(q.body)["customer"], json.loads(q.body)["event"]) for q in rx.requests]


# --- Customers -----------------------------------------------------------------------------------

def test_a_channel_for_one_customer_gets_only_that_customers_failures(app):
    a, b = make_customer("Alpha"), make_customer("Bravo")
    with Receiver() as rx_a, Receiver() as rx_all:
        _channel(rx_a.url(), name="alpha only", all_customers=False, customers=[a])
        _channel(rx_all.url(), name="everyone")
        _new_run(make_job(a, job_name="A nightly"), "Failed", T0 - timedelta(hours=3))
        _new_run(make_job(b, job_name="B nightly"), "Failed", T0 - timedelta(hours=2))
        assert _send()["sent"] == 3
    assert _received(rx_a) == [("Alpha", "failed")]
    assert sorted(_received(rx_all)) == [("Alpha", "failed"), ("Bravo", "failed")]


# --- N consecutive failures -----------------------------------------------------------------------

def test_after_three_failures_in_a_row_the_third_is_sent_once_and_the_recovery_follows(app):
    with Receiver() as rx:
        ch = _channel(rx.url(), min_failures=3)
        job = make_job()
        day = lambda n: T0 - timedelta(days=10 - n)  # noqa: E731
        _new_run(job, "Success", day(0))
        _new_run(job, "Failed", day(1))
        _missed(job, day(2))
        assert _keys() == []  # failures 1 and 2: nothing yet
        third = _new_run(job, "Failed", day(3))
        assert _keys() == [f"run:{third.id}:failed"]
        _missed(job, day(4))
        _new_run(job, "Failed", day(5))
        assert _keys() == [f"run:{third.id}:failed"]  # 4th and 5th: already told
        back = _new_run(job, "Success", day(6))
        _new_run(job, "Success", day(7))
        assert _keys() == [f"run:{third.id}:failed", f"run:{back.id}:recovery"]
        assert _send()["sent"] == 2
    assert [json.loads(q.body)["event"] for q in rx.requests] == ["failed", "recovery"]
    assert all(r.channel_id == ch.id for r in _rows())


def test_a_success_after_a_shorter_streak_sends_no_recovery(app):
    _channel("http://127.0.0.1:9/a", min_failures=3)
    job = make_job()
    _new_run(job, "Failed", T0 - timedelta(days=3))
    _new_run(job, "Failed", T0 - timedelta(days=2))
    _new_run(job, "Success", T0 - timedelta(days=1))
    assert _keys() == []


def test_a_warning_breaks_the_streak(app):
    _channel("http://127.0.0.1:9/a", min_failures=2)
    job = make_job()
    _new_run(job, "Failed", T0 - timedelta(days=3))
    _new_run(job, "Warning", T0 - timedelta(days=2))
    _new_run(job, "Failed", T0 - timedelta(days=1))
    assert _keys() == []


def test_the_jobs_own_number_beats_the_channels(app):
    every = _channel("http://127.0.0.1:9/a", name="every failure")
    third = _channel("http://127.0.0.1:9/b", name="after three", min_failures=3)
    job = make_job(alert_after_failures=2)
    other = make_job(job.customer, job_name="Other job")
    first = _new_run(job, "Failed", T0 - timedelta(days=3))
    second = _new_run(job, "Failed", T0 - timedelta(days=2))
    _new_run(job, "Failed", T0 - timedelta(days=1))
    o = _new_run(other, "Failed", T0 - timedelta(days=1))
    keys = sorted((r.channel_id, r.event_key) for r in _rows())
    assert keys == sorted([(every.id, f"run:{second.id}:failed"), (third.id, f"run:{second.id}:failed"),
                           (every.id, f"run:{o.id}:failed")])
    assert f"run:{first.id}:failed" not in _keys()


# --- The channel form ------------------------------------------------------------------------------

BASE = {"name": "Ops", "kind": "webhook", "target_url": "https://hooks.example.test/x", "enabled": "on",
        "on_failed": "on"}


def test_the_form_saves_the_rules_and_the_audit_entry_lists_them(app, as_user):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel

    a, b = make_customer("Alpha"), make_customer("Bravo")
    gone = make_customer("Gone")
    gone_id = gone.id
    db.session.delete(gone)
    db.session.commit()
    c = as_user("admin")
    assert post_form(c, "/settings/notifications", BASE, token_from="/settings/notifications").status_code == 302
    ch = NotificationChannel.query.one()
    assert ch.all_customers and ch.min_failures == 1 and ch.quiet_start is None

    r = post_form(c, f"/settings/notifications/{ch.id}/edit",
                  {**BASE, "target_url": "", "scope": "chosen", "customers": [str(b.id), str(a.id), str(gone_id)],
                   "min_failures": "3", "quiet_start": "22:00", "quiet_end": "07:00", "quiet_mode": "drop"})
    assert r.status_code == 302, r.get_data(as_text=True)[:3000]
    db.session.expire_all()
    ch = db.session.get(NotificationChannel, ch.id)
    assert [cu.name for cu in ch.customers] == ["Alpha", "Bravo"] and not ch.all_customers
    (entry,) = _audit("notification_channel.update")
    assert entry.before == {"all_customers": True, "customers": [], "min_failures": 1, "quiet_start": None,
                            "quiet_end": None, "quiet_mode": "hold"}
    assert entry.after == {"all_customers": False, "customers": ["Alpha", "Bravo"], "min_failures": 3,
                           "quiet_start": "22:00", "quiet_end": "07:00", "quiet_mode": "drop"}
    page = c.get("/settings/notifications").get_data(as_text=True)
    assert "Alpha, Bravo · after 3 failures in a row · quiet 22:00–07:00 (dropped)" in page
    edit = c.get(f"/settings/notifications/{ch.id}").get_data(as_text=True)
    assert f'<option value="{a.id}" selected>Alpha</option>' in edit and 'value="22:00"' in edit


import pytest  # noqa: E402


@pytest.mark.parametrize("extra, message", [
    ({"min_failures": "0"}, "must be a whole number from 1 to 30"),
    ({"min_failures": "31"}, "must be a whole number from 1 to 30"),
    ({"min_failures": "two"}, "must be a whole number from 1 to 30"),
    ({"quiet_start": "22:00", "quiet_end": "22:00"}, "start and end are the same"),
    ({"quiet_start": "22:00"}, "Give both the start and the end"),
    ({"quiet_start": "25:00", "quiet_end": "07:00"}, "is not a time of day"),
    ({"scope": "chosen"}, "Choose at least one customer"),
])
def test_bad_rules_are_refused_with_a_message_and_nothing_is_saved(app, as_user, extra, message):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel

    c = as_user("admin")
    r = post_form(c, "/settings/notifications", {**BASE, **extra})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert NotificationChannel.query.count() == 0
    ch = _channel("https://hooks.example.test/y", name="Kept", min_failures=2)
    db.session.commit()
    r = post_form(c, f"/settings/notifications/{ch.id}/edit", {**BASE, "name": "Changed", **extra})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    db.session.expire_all()
    ch = db.session.get(NotificationChannel, ch.id)
    assert ch.name == "Kept" and ch.min_failures == 2 and ch.quiet_start is None
    assert _audit("notification_channel.update") == []


# --- The job's own number ---------------------------------------------------------------------------

def test_an_operator_sets_the_jobs_own_number_on_the_job_page_audited(app, as_user):
    from backend.app.extensions import db
    from backend.app.models import Job

    job = make_job()
    db.session.commit()
    c = as_user("operator")
    page = c.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Each channel's own “after N failures in a row” counts." in page
    r = post_form(c, f"/jobs/{job.id}/notifications", {"alert_after_failures": "4"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "a failure is sent after 4 in a row" in html and "<strong>4</strong> failed or missed runs in a row" in html
    db.session.expire_all()
    assert db.session.get(Job, job.id).alert_after_failures == 4
    (entry,) = _audit("job.notifications")
    assert entry.before == {"alert_after_failures": None} and entry.after == {"alert_after_failures": 4}

    r = post_form(c, f"/jobs/{job.id}/notifications", {"alert_after_failures": "40"}, follow_redirects=True)
    assert "must be a whole number from 1 to 30" in r.get_data(as_text=True)
    r = post_form(c, f"/jobs/{job.id}/notifications", {"alert_after_failures": ""}, follow_redirects=True)
    assert "each channel&#39;s own number counts" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Job, job.id).alert_after_failures is None
    assert len(_audit("job.notifications")) == 2


def test_a_viewer_cannot_change_the_jobs_number(app, as_user):
    from backend.app.extensions import db

    job = make_job()
    db.session.commit()
    c = as_user("viewer")
    assert 'id="job-notifications-form"' not in c.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert post_form(c, f"/jobs/{job.id}/notifications", {"alert_after_failures": "2"}).status_code == 403


# --- Quiet hours ------------------------------------------------------------------------------------

def _local(day_offset, hh, mm=0):
    """hh:mm local (UI timezone) on TEST_NOW's local day + ``day_offset``, as UTC."""
    from datetime import datetime, time, timezone

    from backend.app.services.settings import ui_zone
    from tests.clock import TEST_NOW

    zone = ui_zone()
    day = TEST_NOW.astimezone(zone).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hh, mm), tzinfo=zone).astimezone(timezone.utc)


def _night_failure(clock, rx, mode):
    from datetime import time

    ch = _channel(rx.url(), quiet_start=time(22, 0), quiet_end=time(7, 0), quiet_mode=mode)
    clock.move_to(_local(0, 23, 0))
    run = _new_run(make_job(), "Failed", _local(0, 22, 40))
    return ch, run


def test_a_failure_in_quiet_hours_is_held_and_delivered_when_they_end(app, as_user, clock):
    with Receiver() as rx:
        ch, run = _night_failure(clock, rx, "hold")
        assert _send(_local(0, 23, 1))["held"] == 1
        (row,) = _rows()
        assert row.state == "pending" and row.attempts == 0 and row.next_attempt_at == _local(1, 7, 0)
        c = as_user("admin")
        log = c.get("/settings/notifications").get_data(as_text=True)
        assert "held until 07:00 (quiet hours)" in log
        # Send test ignores quiet hours.
        r = post_form(c, f"/settings/notifications/{ch.id}/test", {}, follow_redirects=True)
        assert "Test message delivered" in r.get_data(as_text=True)
        assert [json.loads(q.body)["event"] for q in rx.requests] == ["test"]
        assert _send(_local(1, 3, 0))["held"] == 0 and _send(_local(1, 6, 59))["sent"] == 0
        assert len(rx.requests) == 1
        assert _send(_local(1, 7, 0))["sent"] == 1
    assert [json.loads(q.body)["event"] for q in rx.requests] == ["test", "failed"]
    assert json.loads(rx.requests[1].body)["run_id"] == run.id
    (row,) = _rows()
    assert row.state == "sent" and row.attempts == 1 and row.sent_at == _local(1, 7, 0)
    assert "held until" not in as_user("admin").get("/settings/notifications").get_data(as_text=True)


def test_drop_mode_marks_a_quiet_hours_failure_dropped_and_sends_nothing(app, as_user, clock):
    with Receiver() as rx:
        _night_failure(clock, rx, "drop")
        assert _send(_local(0, 23, 1))["dropped"] == 1
        assert _send(_local(1, 8, 0)) == {"sent": 0, "retry": 0, "failed": 0, "given_up": 0, "held": 0, "dropped": 0}
    assert rx.requests == []
    (row,) = _rows()
    assert row.state == "dropped" and row.attempts == 0 and row.last_error == "quiet hours"
    log = as_user("admin").get("/settings/notifications").get_data(as_text=True)
    assert ">dropped</span>" in log and "quiet hours" in log
    assert f"/settings/notifications/log/{row.id}/retry" not in log


def test_a_failure_outside_quiet_hours_is_sent_at_once(app, clock):
    with Receiver() as rx:
        _night_failure(clock, rx, "hold")
        assert _send(_local(1, 9, 0))["sent"] == 1
    assert len(rx.requests) == 1


def test_removing_the_quiet_hours_releases_held_messages(app, as_user, clock):
    from backend.app.models import utcnow

    with Receiver() as rx:
        ch, _ = _night_failure(clock, rx, "hold")
        assert _send(_local(0, 23, 1))["held"] == 1
        c = as_user("admin")
        r = post_form(c, f"/settings/notifications/{ch.id}/edit",
                      {**BASE, "name": ch.name, "target_url": "", "quiet_start": "", "quiet_end": ""})
        assert r.status_code == 302
        assert _send(utcnow() + timedelta(seconds=1))["sent"] == 1
    assert [json.loads(q.body)["event"] for q in rx.requests] == ["failed"]
    (entry,) = _audit("notification_channel.update")
    assert (entry.before["quiet_start"], entry.before["quiet_end"]) == ("22:00", "07:00")
    assert (entry.after["quiet_start"], entry.after["quiet_end"]) == (None, None)


def test_a_deleted_customer_leaves_the_channels_list(app, as_user):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel
    from backend.app.services.customers import delete_customer

    a, b = make_customer("Alpha"), make_customer("Bravo")
    ch = _channel("http://127.0.0.1:9/a", all_customers=False, customers=[a, b])
    db.session.commit()
    delete_customer(a, None)
    db.session.commit()
    db.session.expire_all()
    assert [cu.name for cu in db.session.get(NotificationChannel, ch.id).customers] == ["Bravo"]
    _new_run(make_job(b), "Failed", T0 - timedelta(hours=1))
    assert len(_rows()) == 1
    assert 'channel-rules">Bravo</div>' in as_user("admin").get("/settings/notifications").get_data(as_text=True)
