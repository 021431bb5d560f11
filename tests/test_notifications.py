"""Notifications: queuing run events, the sender (signatures, payload shapes, retries, one sender
across processes) and the `notify --test` command. Receivers are real HTTP servers on loopback."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest

from tests.clock import TEST_NOW
from tests.fakes.receiver import Receiver
from tests.helpers import make_job, make_override, make_run

# The clock ticks on from TEST_NOW: rows queued now are due a moment later.
T0 = TEST_NOW + timedelta(seconds=30)


def _channel(url, kind="webhook", **kw):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel

    ch = NotificationChannel(name=kw.pop("name", f"{kind} channel"), kind=kind, target_url=url, **kw)
    db.session.add(ch)
    db.session.flush()
    return ch


def _queue(payload=None, key="test:1", kind="failed"):
    from backend.app.extensions import db
    from backend.app.services.notifications import enqueue

    n = enqueue(key, kind, payload or {"event": kind, "job": "Daily VM Backup", "customer": "Northwind"})
    db.session.commit()
    return n


def _rows():
    from backend.app.extensions import db
    from backend.app.models import NotificationOutbox

    db.session.expire_all()
    return db.session.query(NotificationOutbox).order_by(NotificationOutbox.id).all()


def _send(now=T0, **kw):
    from backend.app.services.notifications import send_due

    return send_due(now, **kw)


def test_webhook_body_is_signed_with_the_channel_secret(app):
    with Receiver() as rx:
        _channel(rx.url(), secret="s3cret")
        assert _queue() == 1
        assert _send()["sent"] == 1
    (req,) = rx.requests
    expected = "sha256=" + hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Backupchecks-Signature"] == expected
    assert json.loads(req.body)["event"] == "failed"
    (row,) = _rows()
    assert row.state == "sent" and row.attempts == 1 and row.sent_at is not None


@pytest.mark.parametrize("kind", ["slack", "teams", "discord"])
def test_chat_payload_shapes(app, kind):
    with Receiver() as rx:
        _channel(rx.url(), kind=kind)
        _queue()
        assert _send()["sent"] == 1
    body = json.loads(rx.requests[0].body)
    if kind == "slack":
        assert set(body) == {"text"} and "Northwind / Daily VM Backup" in body["text"]
    elif kind == "discord":
        assert set(body) == {"content"} and "failed" in body["content"]
    else:
        assert body["type"] == "message"
        (att,) = body["attachments"]
        assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = att["content"]
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
        assert "Northwind / Daily VM Backup" in card["body"][0]["text"]


def test_a_receiver_that_fails_twice_gets_the_message_once(app):
    with Receiver(answers=[500, 503]) as rx:
        _channel(rx.url())
        _queue()
        assert _send(T0)["retry"] == 1
        assert _send(T0)["retry"] == 0 and len(rx.requests) == 1  # not due yet: backoff
        (row,) = _rows()
        assert row.state == "pending" and row.attempts == 1 and "HTTP 500" in row.last_error
        assert timedelta(minutes=1) <= row.next_attempt_at - T0 <= timedelta(minutes=1.3)
        assert _send(T0 + timedelta(minutes=2))["retry"] == 1
        assert _send(T0 + timedelta(minutes=10))["sent"] == 1
        assert _send(T0 + timedelta(hours=10)) == {"sent": 0, "retry": 0, "failed": 0, "given_up": 0, "held": 0, "dropped": 0}
    assert len(rx.requests) == 3
    (row,) = _rows()
    assert row.state == "sent" and row.attempts == 3


def test_a_client_error_fails_at_once_without_retry(app):
    with Receiver(default=404) as rx:
        _channel(rx.url())
        _queue()
        assert _send()["failed"] == 1
        assert _send(T0 + timedelta(days=1))["failed"] == 0
    assert len(rx.requests) == 1
    (row,) = _rows()
    assert row.state == "failed" and "HTTP 404" in row.last_error


def test_too_many_requests_is_retried_and_given_up_after_the_limit(app):
    from backend.app.services.notifications.sender import MAX_ATTEMPTS

    with Receiver(default=429) as rx:
        _channel(rx.url())
        _queue()
        now = T0
        for _ in range(MAX_ATTEMPTS):
            _send(now)
            now += timedelta(days=1)
    assert len(rx.requests) == MAX_ATTEMPTS
    (row,) = _rows()
    assert row.state == "given_up" and row.attempts == MAX_ATTEMPTS and "429" in row.last_error


def test_retry_puts_a_failed_row_back(app):
    from backend.app.extensions import db
    from backend.app.services.notifications.sender import retry

    with Receiver(answers=[400]) as rx:
        _channel(rx.url())
        _queue()
        _send()
        (row,) = _rows()
        assert retry(row.id, T0) is True
        db.session.commit()
        assert _send()["sent"] == 1


def test_two_senders_at_once_never_send_a_row_twice(app):
    with Receiver(delay=0.05) as rx:
        _channel(rx.url())
        for i in range(12):
            _queue(key=f"test:{i}")
        barrier = threading.Barrier(2)
        results = []

        def sender():
            with app.app_context():
                from backend.app.extensions import db
                barrier.wait()
                results.append(_send(limit=12))
                db.session.remove()

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sum(r["sent"] for r in results) == 12
    keys = [json.loads(r.body)["event"] for r in rx.requests]
    assert len(keys) == 12
    assert all(r.state == "sent" and r.attempts == 1 for r in _rows())


# --- Events ------------------------------------------------------------------------------------

def _new_run(job, status, started, **kw):
    from backend.app.extensions import db
    from backend.app.services.ingest import after_run_created

    run = make_run(job, status=status, started_at=started, **kw)
    after_run_created(run)
    db.session.commit()
    return run


def _events():
    return sorted((r.channel_id, r.event_key) for r in _rows())


def test_failed_missed_and_recovery_queue_once_per_channel(app):
    from backend.app.extensions import db
    from backend.app.services.notifications import enqueue_run_events

    a = _channel("http://127.0.0.1:9/a", name="a")
    b = _channel("http://127.0.0.1:9/b", name="b", on_recovery=False)
    _channel("http://127.0.0.1:9/c", name="off", enabled=False)
    job = make_job()
    _new_run(job, "Success", T0 - timedelta(days=9))  # nothing: no failure before it
    failed = _new_run(job, "Failed", T0 - timedelta(days=8))
    recovered = _new_run(job, "Success", T0 - timedelta(days=7))
    _new_run(job, "Success", T0 - timedelta(days=6))  # nothing: the run before it was fine
    _new_run(job, "Warning", T0 - timedelta(days=5))  # warnings are off by default
    missed = make_run(job, status="Missed", started_at=T0 - timedelta(days=4), missed=True,
                      missed_slot=T0 - timedelta(days=4))
    enqueue_run_events([missed])
    enqueue_run_events([missed])  # queued once, however often it is asked
    db.session.commit()
    back = _new_run(job, "Success", T0 - timedelta(days=2))
    assert _events() == sorted([
        (a.id, f"run:{failed.id}:failed"), (b.id, f"run:{failed.id}:failed"),
        (a.id, f"run:{recovered.id}:recovery"),
        (a.id, f"run:{missed.id}:missed"), (b.id, f"run:{missed.id}:missed"),
        (a.id, f"run:{back.id}:recovery")])
    payload = next(r.payload for r in _rows() if r.event_key == f"run:{failed.id}:failed")
    assert payload["job"] == job.job_name and payload["status"] == "Failed" and payload["event"] == "failed"


def test_a_run_an_override_makes_successful_queues_nothing(app):
    _channel("http://127.0.0.1:9/a")
    job = make_job()
    make_override(job, match_status="Failed", treat_as_success=True, active=True)
    _new_run(job, "Failed", T0 - timedelta(hours=1))
    assert _events() == []


def test_the_missed_run_check_queues_missed_events(app):
    from backend.app.extensions import db
    from backend.app.models import JobRun
    from backend.app.services.missed_runs import detect_missed_runs
    from tests.services.test_missed_runs import AMS, L, manual_daily

    ch = _channel("http://127.0.0.1:9/a")
    db.session.commit()
    manual_daily(make_job(), "22:00", grace=120)
    assert detect_missed_runs(L(2026, 10, 11, 0, 0), AMS) == 1
    (run,) = db.session.query(JobRun).filter(JobRun.missed.is_(True)).all()
    assert _events() == [(ch.id, f"run:{run.id}:missed")]


# --- notify --test --------------------------------------------------------------------------------

def test_notify_test_delivers_to_an_apprise_json_url(app):
    with Receiver() as rx:
        r = app.test_cli_runner().invoke(args=["notify", "--test", f"json://127.0.0.1:{rx.port}/path"])
    assert r.exit_code == 0, r.output
    assert "Delivered" in r.output
    (req,) = rx.requests
    assert req.path == "/path" and b"test message" in req.body


def test_notify_test_to_an_http_url_posts_a_json_webhook(app):
    with Receiver() as rx:
        r = app.test_cli_runner().invoke(args=["notify", "--test", rx.url("/in")])
    assert r.exit_code == 0, r.output
    assert json.loads(rx.requests[0].body)["event"] == "test"


@pytest.mark.parametrize("answer", [403, 500])
def test_notify_test_exits_1_when_the_receiver_refuses(app, answer):
    with Receiver(default=answer) as rx:
        r = app.test_cli_runner().invoke(args=["notify", "--test", f"json://127.0.0.1:{rx.port}/path"])
        r2 = app.test_cli_runner().invoke(args=["notify", "--test", rx.url()])
    assert r.exit_code == 1 and "Not delivered" in r.output
    assert r2.exit_code == 1 and f"HTTP {answer}" in r2.output


def test_notify_test_refuses_an_unknown_scheme(app):
    r = app.test_cli_runner().invoke(args=["notify", "--test", "nosuchservice://x"])
    assert r.exit_code == 1 and "does not know the scheme" in r.output


# --- Settings → Notifications -------------------------------------------------------------------

from tests.conftest import post_form  # noqa: E402


def _audit(event):
    from backend.app.extensions import db
    from backend.app.models import AuditLog

    db.session.expire_all()
    return db.session.query(AuditLog).filter(AuditLog.event == event).order_by(AuditLog.id).all()


@pytest.mark.parametrize("role", ["operator", "reporter", "viewer"])
def test_only_admins_see_the_notifications_page(app, as_user, role):
    c = as_user(role)
    assert c.get("/settings/notifications").status_code == 403
    r = c.post("/settings/notifications", data={"name": "x", "kind": "webhook", "target_url": "https://a.test/"})
    assert r.status_code in (400, 403)
    from backend.app.models import NotificationChannel
    assert NotificationChannel.query.count() == 0


def test_admin_adds_edits_tests_and_deletes_a_channel_with_audit_entries(app, as_user):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel

    c = as_user("admin")
    with Receiver() as rx:
        r = post_form(c, "/settings/notifications", {"name": "Ops hook", "kind": "webhook", "target_url": rx.url("/t0ken"),
                                                     "secret": "shh", "enabled": "on", "on_failed": "on"},
                      token_from="/settings/notifications")
        assert r.status_code == 302, r.get_data(as_text=True)[:2000]
        ch = NotificationChannel.query.one()
        assert ch.secret == "shh" and ch.on_failed and not ch.on_missed and ch.enabled
        (entry,) = _audit("notification_channel.create")
        assert entry.after["target_url"] == "••••••" and entry.after["secret"] == "••••••"
        page = c.get("/settings/notifications").get_data(as_text=True)
        assert "Ops hook" in page and "t0ken" not in page and "shh" not in page

        r = post_form(c, f"/settings/notifications/{ch.id}/test", {}, token_from="/settings/notifications",
                      follow_redirects=True)
        assert "Test message delivered to Ops hook" in r.get_data(as_text=True)
        assert json.loads(rx.requests[0].body)["event"] == "test"
        assert rx.requests[0].headers["X-Backupchecks-Signature"].startswith("sha256=")

    # Editing with the URL and secret left empty keeps them.
    r = post_form(c, f"/settings/notifications/{ch.id}/edit", {"name": "Ops", "kind": "webhook", "target_url": "",
                                                               "enabled": "on", "on_missed": "on"})
    assert r.status_code == 302
    db.session.expire_all()
    ch = db.session.get(NotificationChannel, ch.id)
    assert ch.name == "Ops" and ch.secret == "shh" and "t0ken" in ch.target_url and ch.on_missed and not ch.on_failed
    (entry,) = _audit("notification_channel.update")
    assert entry.before == {"name": "Ops hook", "on_failed": True, "on_missed": False}

    r = post_form(c, f"/settings/notifications/{ch.id}/test", {}, follow_redirects=True)
    assert "not delivered" in r.get_data(as_text=True)  # the receiver is gone
    assert len(_audit("notification_channel.test")) == 2

    assert post_form(c, f"/settings/notifications/{ch.id}/delete", {}).status_code == 302
    assert NotificationChannel.query.count() == 0
    assert len(_audit("notification_channel.delete")) == 1


@pytest.mark.parametrize("data, message", [
    ({"name": "", "kind": "webhook", "target_url": "https://a.test/"}, "Give the channel a name."),
    ({"name": "x", "kind": "webhook", "target_url": "not a url"}, "must start with https://"),
    ({"name": "x", "kind": "slack", "target_url": "ftp://a.test/"}, "must start with https://"),
    ({"name": "x", "kind": "apprise", "target_url": "nosuchservice://abc"}, "does not know the scheme"),
    ({"name": "x", "kind": "apprise", "target_url": "plain"}, "An Apprise URL looks like"),
    ({"name": "x", "kind": "pager", "target_url": "https://a.test/"}, "Choose the kind"),
    ({"name": "x", "kind": "webhook", "target_url": ""}, "Enter the channel"),
])
def test_bad_channel_input_is_refused_with_a_clear_message(app, as_user, data, message):
    from backend.app.models import NotificationChannel

    c = as_user("admin")
    r = post_form(c, "/settings/notifications", data)
    assert r.status_code == 400
    assert message in r.get_data(as_text=True)
    assert NotificationChannel.query.count() == 0


def test_retry_button_queues_a_given_up_row_again(app, as_user):
    with Receiver(default=400) as rx:
        _channel(rx.url())
        _queue()
        _send()
        (row,) = _rows()
        assert row.state == "failed"
        c = as_user("admin")
        page = c.get("/settings/notifications").get_data(as_text=True)
        assert "HTTP 400" in page and f"/settings/notifications/log/{row.id}/retry" in page
        assert post_form(c, f"/settings/notifications/log/{row.id}/retry", {}).status_code == 302
        (row,) = _rows()
        assert row.state == "pending" and row.attempts == 0
        assert len(_audit("notification.retry")) == 1


def test_the_pages_run_no_inline_code(app, as_user):
    import re

    ch = _channel("https://hooks.example.test/t0ken", secret="shh")
    _queue()
    c = as_user("admin")
    for path in ("/settings/notifications", f"/settings/notifications/{ch.id}"):
        r = c.get(path)
        html = r.get_data(as_text=True)
        assert r.status_code == 200
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)|\son[a-z]+=|\sstyle=", html)
        assert "t0ken" not in html and "shh" not in html


def test_a_failed_report_approved_from_the_inbox_and_its_next_report_are_delivered(app, as_user):
    """End to end: mails → runs → outbox → the sender → a receiver; one statement queues a batch."""
    from backend.app.extensions import db
    from backend.app.models import JobRun
    from tests.test_inbox import sample, upload, variant

    with Receiver() as rx:
        _channel(rx.url(), kind="slack")
        db.session.commit()
        c = as_user("operator")
        raw = sample("v03_vbr_backup_failed.eml")
        upload(c, [("1.eml", raw), ("2.eml", variant(raw, 2))])
        first = db.session.query(JobRun).count()
        assert first == 0 and _rows() == []
        from backend.app.models import MailMessage
        ids = [m.id for m in db.session.query(MailMessage).order_by(MailMessage.id)][:1]
        r = post_form(c, "/inbox/approve", {"ids": ids, "customer": "Fabrikam"}, follow_redirects=True)
        assert r.status_code == 200
        runs = db.session.query(JobRun).order_by(JobRun.id).all()
        assert len(runs) == 2 and all(run.effective_status == "Failed" for run in runs)
        assert sorted(r.event_key for r in _rows()) == sorted(f"run:{run.id}:failed" for run in runs)
        upload(c, [("3.eml", variant(raw, 3))])  # the import path
        assert len(_rows()) == 3
        assert _send(T0 + timedelta(minutes=1))["sent"] == 3
    assert len(rx.requests) == 3
    assert all("failed" in json.loads(q.body)["text"] for q in rx.requests)


def test_channel_secrets_are_encrypted_at_rest_and_rotated(app, monkeypatch):
    from sqlalchemy import text

    from backend.app.extensions import db

    ch = _channel("https://hooks.example.test/t0ken", secret="shh")
    db.session.commit()
    row = db.session.execute(text("SELECT target_url, secret FROM notification_channels WHERE id = :i"),
                             {"i": ch.id}).one()
    assert row.target_url.startswith("fernet:") and row.secret.startswith("fernet:") and "t0ken" not in row.target_url
    r = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert r.exit_code == 0, r.output
    assert f"notification channel {ch.id} target_url" in r.output and f"notification channel {ch.id} secret" in r.output
    db.session.expire_all()
    assert db.session.get(type(ch), ch.id).target_url == "https://hooks.example.test/t0ken"


def test_the_background_runner_sends_due_messages(app):
    from backend.app.services import background

    loop = next(lp for lp in background.LOOPS if lp.name == "notifications")
    assert loop.interval_seconds(app) == 30
    with Receiver() as rx:
        _channel(rx.url())
        _queue()
        loop.step(app)
    assert len(rx.requests) == 1 and _rows()[0].state == "sent"


_SENDER_PROCESS = """
import json, sys
from datetime import datetime
from backend.app import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False, "SERVER_NAME": None})
with app.app_context():
    from backend.app.services.notifications import send_due
    print(json.dumps(send_due(datetime.fromisoformat(sys.argv[3]), limit=20)))
"""


def test_two_sender_processes_never_send_a_message_twice(app, database_url):
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "containers" / "backupchecks" / "src"
    env = dict(os.environ, PYTHONPATH=str(src))
    with Receiver(delay=0.05) as rx:
        _channel(rx.url())
        for i in range(16):
            _queue(key=f"test:{i}")
        args = [sys.executable, "-c", _SENDER_PROCESS, database_url, app.config["SECRET_KEY"], T0.isoformat()]
        procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sum(r["sent"] for r in results) == 16
    assert len(rx.requests) == 16
    assert all(r.state == "sent" and r.attempts == 1 for r in _rows())


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(app):
    with Receiver(answers=[200], delay=1.5) as rx:
        _channel(rx.url())
        _queue()
        assert _send(timeout=0.5)["retry"] == 1
    (row,) = _rows()
    assert row.state == "pending" and row.attempts == 1 and "no answer within" in row.last_error


def test_a_refused_connection_is_tried_again(app):
    with Receiver() as rx:
        url = rx.url()
    _channel(url)  # the receiver is gone: nothing listens on its port
    _queue()
    assert _send()["retry"] == 1
    assert "connection failed" in _rows()[0].last_error
