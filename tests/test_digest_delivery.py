"""The scheduled morning digest: sent once per local day at the configured time (DST gap and fold
included) to every subscriber and the extra recipients, exactly once per (day, address) even with two
senders at once, all-clear days only to who asked, retries with the reason shown; Settings → Digest
and the profile's subscription (validation, audit). Mails go to a real SMTP server on loopback."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from flask import g
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, DigestDelivery
from backend.app.services import digest_delivery as svc
from backend.app.services.settings import get_settings
from tests.fakes.smtp import FakeSMTP

from .conftest import post_form
from .helpers import make_customer, make_job, make_run, make_user

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def local(y, mo, d, h, mi=0, fold=0):
    return datetime(y, mo, d, h, mi, tzinfo=AMS, fold=fold).astimezone(UTC)


MORNING = local(2026, 12, 4, 8)


@pytest.fixture
def smtp(app, monkeypatch, clock):
    clock.move_to(MORNING - timedelta(hours=1))
    with FakeSMTP(user="mailer", password="pw") as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.ca_bundle)
        monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
        s = get_settings()
        s.ui_timezone = "Europe/Amsterdam"
        s.smtp_host, s.smtp_port, s.smtp_security = fake.host, fake.port, "starttls"
        s.smtp_username, s.smtp_password, s.smtp_from = "mailer", "pw", "digest@msp.example"
        s.digest_enabled, s.digest_time, s.digest_transport = True, "08:00", "smtp"
        s.digest_recipients = "noc@msp.example"
        db.session.commit()
        g.pop("ui_zone", None)
        yield fake


def subscriber(name, email, all_clear=False):
    u = make_user(name)
    u.email, u.digest_subscribed, u.digest_all_clear = email, True, all_clear
    db.session.commit()
    return u


def a_failure(day=date(2026, 12, 3)):
    job = make_job(make_customer("Zulu Failures"), "Nightly SQL")
    make_run(job, status="Failed", message="disk full", started_at=datetime.combine(day, datetime.min.time(), AMS) + timedelta(hours=2))
    db.session.commit()


def rows():
    db.session.expire_all()
    return db.session.execute(select(DigestDelivery).order_by(DigestDelivery.recipient)).scalars().all()


def test_nothing_before_the_configured_time_then_one_mail_per_recipient(smtp):
    a_failure()
    subscriber("ann", "ann@msp.example")
    subscriber("bob", "Bob@msp.example", all_clear=True)
    subscriber("carl", "carl@msp.example").is_active_user = False
    db.session.commit()
    assert svc.send_due(MORNING - timedelta(minutes=1)) == {"sent": 0, "skipped": 0, "retry": 0, "failed": 0, "given_up": 0}
    assert smtp.messages == [] and rows() == []
    out = svc.send_due(MORNING)
    assert out["sent"] == 3
    assert sorted(m.rcpt_tos[0].lower() for m in smtp.messages) == ["ann@msp.example", "bob@msp.example", "noc@msp.example"]
    msg = smtp.messages[0].message
    assert msg["Subject"] == "Backups 2026-12-03: 1 failed"
    assert "Nightly SQL" in msg.get_body(("plain",)).get_content()
    assert "Zulu Failures" in msg.get_body(("html",)).get_content()
    assert [r.state for r in rows()] == ["sent"] * 3
    # later passes the same day send nothing more
    assert svc.send_due(MORNING + timedelta(hours=3))["sent"] == 0
    assert len(smtp.messages) == 3


def test_the_next_day_sends_again(smtp):
    get_settings().digest_recipients = None
    subscriber("bob", "bob@msp.example", all_clear=True)
    svc.send_due(MORNING)
    svc.send_due(MORNING + timedelta(days=1))
    assert [r.day for r in rows()] == [date(2026, 12, 4), date(2026, 12, 5)]
    assert len(smtp.messages) == 2


def test_an_all_clear_day_goes_only_to_who_asked(smtp):
    subscriber("ann", "ann@msp.example")
    subscriber("bob", "bob@msp.example", all_clear=True)
    out = svc.send_due(MORNING)
    assert out == {"sent": 1, "skipped": 2, "retry": 0, "failed": 0, "given_up": 0}
    (got,) = smtp.messages
    assert got.rcpt_tos == ["bob@msp.example"]
    assert got.message["Subject"] == "Backups 2026-12-03: all clear"
    assert {r.recipient: r.state for r in rows()} == {"ann@msp.example": "skipped", "bob@msp.example": "sent",
                                                       "noc@msp.example": "skipped"}


def test_two_senders_at_once_send_each_digest_once(smtp, app):
    a_failure()
    for i in range(6):
        subscriber(f"user{i}", f"user{i}@msp.example")
    barrier = threading.Barrier(2)
    results = []

    def sender():
        with app.app_context():
            barrier.wait()
            results.append(svc.send_due(MORNING + timedelta(seconds=5)))
            db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r["sent"] for r in results) == 7
    assert len(smtp.messages) == 7
    assert len({m.rcpt_tos[0] for m in smtp.messages}) == 7
    assert all(r.state == "sent" and r.attempts == 1 for r in rows())


def test_a_temporary_failure_is_retried_with_backoff_and_sent_once(smtp):
    a_failure()
    get_settings().digest_recipients = None
    subscriber("ann", "ann@msp.example")
    smtp.fail_data(2)
    assert svc.send_due(MORNING)["retry"] == 1
    (row,) = rows()
    assert row.state == "pending" and "451" in row.last_error
    assert svc.send_due(MORNING + timedelta(seconds=30))["retry"] == 0  # backing off
    assert svc.send_due(row.next_attempt_at)["retry"] == 1
    assert svc.send_due(rows()[0].next_attempt_at)["sent"] == 1
    (row,) = rows()
    assert row.state == "sent" and row.attempts == 3 and len(smtp.messages) == 1


def test_a_permanent_failure_is_shown_with_the_reason_and_can_be_retried(smtp, as_user):
    a_failure()
    get_settings().digest_recipients = None
    subscriber("ann", "ann@msp.example")
    smtp.refuse_recipient("ann@msp.example")
    assert svc.send_due(MORNING)["failed"] == 1
    (row,) = rows()
    assert row.state == "failed" and "550" in row.last_error
    client = as_user("admin")
    page = client.get("/settings/digest").get_data(as_text=True)
    assert "ann@msp.example" in page and "550" in page and "failed" in page
    r = post_form(client, f"/settings/digest/log/{row.id}/retry", {}, token_from="/settings/digest")
    assert r.status_code == 302
    assert rows()[0].state == "pending"
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "digest.retry")).scalar_one()


def test_the_digest_can_go_through_the_microsoft_365_mailbox(smtp, app, monkeypatch):
    from backend.app.mail import graph as graph_module
    from tests.fakes.fake_graph import FakeGraph

    a_failure()
    get_settings().digest_recipients = None
    subscriber("ann", "ann@msp.example")
    graph_module.reset_token_cache()
    with FakeGraph([]) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        s = get_settings()
        s.graph_tenant_id, s.graph_client_id, s.graph_client_secret = fake.tenant_id, fake.client_id, fake.client_secret
        s.graph_mailbox, s.digest_transport = fake.mailbox, "graph"
        db.session.commit()
        monkeypatch.setitem(app.config, "GRAPH_AUTHORITY_HOST", fake.authority_host)
        monkeypatch.setitem(app.config, "GRAPH_API_BASE", fake.api_base)
        monkeypatch.setitem(app.config, "GRAPH_ENV_OVERRIDES", {})
        assert svc.send_due(MORNING)["sent"] == 1
        (mail,) = fake.sent_mail
    graph_module.reset_token_cache()
    assert mail.to == ["ann@msp.example"] and mail.subject == "Backups 2026-12-03: 1 failed"
    assert mail.content_type == "html" and "Nightly SQL" in mail.body
    assert smtp.messages == []


def test_switched_off_sends_nothing(smtp):
    get_settings().digest_enabled = False
    db.session.commit()
    a_failure()
    assert svc.send_due(MORNING)["sent"] == 0 and rows() == []


# --- DST --------------------------------------------------------------------------------------

def test_a_time_in_the_spring_gap_is_sent_when_the_gap_ends_and_once(smtp, clock):
    get_settings().digest_time = "02:30"
    db.session.commit()
    subscriber("bob", "bob@msp.example", all_clear=True)
    gap_end = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST; 02:00–03:00 never happens that day
    assert svc.due_at(date(2026, 3, 29), svc.parse_time("02:30"), AMS) == gap_end
    clock.move_to(gap_end - timedelta(hours=1))
    assert svc.send_due(gap_end - timedelta(minutes=1))["sent"] == 0
    assert svc.send_due(gap_end)["sent"] == 1
    assert svc.send_due(gap_end + timedelta(minutes=30))["sent"] == 0
    assert len(smtp.messages) == 1 and rows()[0].day == date(2026, 3, 29)


def test_a_time_in_the_autumn_fold_is_sent_at_its_first_occurrence_once(smtp, clock):
    get_settings().digest_time = "02:30"
    db.session.commit()
    subscriber("bob", "bob@msp.example", all_clear=True)
    first = local(2026, 10, 25, 2, 30, fold=0)   # 00:30 UTC, CEST
    second = local(2026, 10, 25, 2, 30, fold=1)  # 01:30 UTC, CET
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC) and second - first == timedelta(hours=1)
    clock.move_to(first - timedelta(hours=1))
    assert svc.send_due(first - timedelta(minutes=1))["sent"] == 0
    assert svc.send_due(first)["sent"] == 1
    assert svc.send_due(second)["sent"] == 0
    assert len(smtp.messages) == 1


# --- Settings → Digest and the profile ------------------------------------------------------------

def test_settings_are_saved_and_audited(as_user):
    client = as_user("admin")
    r = post_form(client, "/settings/digest", {"digest_enabled": "on", "digest_time": "07:15",
                                               "digest_recipients": "noc@msp.example; boss@msp.example",
                                               "digest_transport": "smtp"}, token_from="/settings/digest")
    assert r.status_code == 302
    db.session.expire_all()
    s = get_settings()
    assert (s.digest_enabled, s.digest_time, s.digest_recipients, s.digest_transport) == (
        True, "07:15", "noc@msp.example, boss@msp.example", "smtp")
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.digest")).scalar_one()
    assert entry.after["digest_time"] == "07:15"
    page = client.get("/settings/digest").get_data(as_text=True)
    assert "Next digest:" in page


@pytest.mark.parametrize("field,value,message", [
    ("digest_time", "25:00", "is not a time of day"),
    ("digest_time", "7.30", "is not a time of day"),
    ("digest_recipients", "noc@msp", "is not a mail address"),
    ("digest_transport", "pigeon", "Choose how the digest is sent"),
])
def test_bad_settings_show_a_message_and_save_nothing(as_user, field, value, message):
    client = as_user("admin")
    form = {"digest_enabled": "on", "digest_time": "07:15", "digest_recipients": "", "digest_transport": "graph",
            field: value}
    r = post_form(client, "/settings/digest", form, token_from="/settings/digest")
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    db.session.expire_all()
    s = get_settings()
    assert (s.digest_enabled, s.digest_time) == (False, "08:00")
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "settings.digest")).first() is None


def test_digest_settings_are_for_admins_only(as_user):
    assert as_user("operator").get("/settings/digest").status_code == 403
    r = post_form(as_user("viewer"), "/settings/digest", {"digest_time": "07:00"}, token_from="/")
    assert r.status_code == 403


def test_a_user_subscribes_in_the_profile_audited(as_user, personas):
    client = as_user("viewer")
    r = post_form(client, "/auth/profile", {"section": "digest", "email": "victor@msp.example",
                                            "digest_subscribed": "on", "digest_all_clear": "on"})
    assert r.status_code == 302
    db.session.expire_all()
    victor = personas["viewer"]
    db.session.refresh(victor)
    assert (victor.email, victor.digest_subscribed, victor.digest_all_clear) == ("victor@msp.example", True, True)
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "user.digest_subscription")).scalar_one()
    assert entry.after == {"email": "victor@msp.example", "digest_subscribed": True, "digest_all_clear": True}
    assert svc.recipients() == {"victor@msp.example": True}
    # unsubscribing is audited too
    post_form(client, "/auth/profile", {"section": "digest", "email": "victor@msp.example"})
    db.session.refresh(victor)
    assert victor.digest_subscribed is False
    assert len(db.session.execute(select(AuditLog).where(AuditLog.event == "user.digest_subscription")).all()) == 2


def test_subscribing_needs_a_valid_address(as_user, personas):
    client = as_user("viewer")
    r = post_form(client, "/auth/profile", {"section": "digest", "email": "victor@", "digest_subscribed": "on"})
    assert r.status_code == 400 and "is not a mail address" in r.get_data(as_text=True)
    r = post_form(client, "/auth/profile", {"section": "digest", "email": "", "digest_subscribed": "on"})
    assert r.status_code == 400 and "Enter your e-mail address" in r.get_data(as_text=True)
    db.session.refresh(personas["viewer"])
    assert personas["viewer"].digest_subscribed is False


def test_the_loop_is_registered(app):
    from backend.app.services.background import LOOPS

    assert "digest" in [loop.name for loop in LOOPS]


_SENDER_PROCESS = """
import json, sys
from datetime import datetime
from backend.app import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False, "SERVER_NAME": None,
                  "SMTP_ENV_OVERRIDES": {}})
with app.app_context():
    from backend.app.services.digest_delivery import send_due
    print(json.dumps(send_due(datetime.fromisoformat(sys.argv[3]))))
"""


def test_two_sender_processes_send_each_digest_once(app, database_url, monkeypatch, clock):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    clock.move_to(MORNING - timedelta(hours=1))
    with FakeSMTP() as fake:  # STARTTLS, no login: no stored secret for the other processes to read
        s = get_settings()
        s.ui_timezone = "Europe/Amsterdam"
        s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_from = fake.host, fake.port, "starttls", "digest@msp.example"
        s.digest_enabled, s.digest_time, s.digest_transport, s.digest_recipients = True, "08:00", "smtp", None
        db.session.commit()
        a_failure()
        for i in range(8):
            subscriber(f"user{i}", f"user{i}@msp.example")
        src = Path(__file__).resolve().parents[1] / "containers" / "backupchecks" / "src"
        env = dict(os.environ, PYTHONPATH=str(src), SSL_CERT_FILE=fake.ca_bundle)
        for var in [k for k in env if k.startswith("SMTP_")]:
            env.pop(var)
        args = [sys.executable, "-c", _SENDER_PROCESS, database_url, app.config["SECRET_KEY"],
                (MORNING + timedelta(seconds=10)).isoformat()]
        procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sum(r["sent"] for r in results) == 8
    assert sorted(m.rcpt_tos[0] for m in fake.messages) == sorted(f"user{i}@msp.example" for i in range(8))
    assert all(r.state == "sent" and r.attempts == 1 for r in rows())
