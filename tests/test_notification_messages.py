"""What people read in an alert: the Teams card, Slack and Discord texts and the webhook body show
the run's facts with its start in the UI timezone, the error, and a link to the job in Run Checks;
and a receiver that is down gets one request per pass, not one per queued message."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.clock import TEST_NOW
from tests.fakes.receiver import Receiver
from tests.helpers import make_customer, make_job, make_run

T0 = TEST_NOW + timedelta(seconds=30)
STARTED = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)  # 03:00 in Amsterdam (winter time)


def _setup(kind, url, base_url="https://backupchecks.msp.example/"):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel
    from backend.app.services.notifications import enqueue_run_events
    from backend.app.services.settings import get_settings

    settings = get_settings()
    settings.ui_timezone = "Europe/Amsterdam"
    settings.autotask_base_url = base_url
    db.session.add(NotificationChannel(name=kind, kind=kind, target_url=url))
    job = make_job(make_customer("Northwind Testing"), "Daily VM Backup")
    run = make_run(job, "Failed", STARTED, message="Failed to create VM snapshot: the datastore is full")
    enqueue_run_events([run])
    db.session.commit()
    return job


def _send():
    from backend.app.services.notifications import send_due

    return send_due(T0)


def test_the_teams_card_has_the_facts_the_error_and_a_button_to_the_job(app):
    with Receiver() as rx:
        job = _setup("teams", rx.url("/workflows/abc"))
        assert _send()["sent"] == 1
    card = json.loads(rx.requests[0].body)["attachments"][0]["content"]
    title, factset, error = card["body"]
    assert title["text"] == "Backup failed: Northwind Testing / Daily VM Backup" and title["weight"] == "Bolder"
    assert {f["title"]: f["value"] for f in factset["facts"]} == {
        "Customer": "Northwind Testing", "Job": "Daily VM Backup", "Status": "Failed",
        "Started": "Fri 4 Dec 2026 03:00 CET"}
    assert error["text"] == "Failed to create VM snapshot: the datastore is full"
    (action,) = card["actions"]
    assert action == {"type": "Action.OpenUrl", "title": "Open in Backupchecks",
                      "url": f"https://backupchecks.msp.example/run-checks?job={job.id}"}


@pytest.mark.parametrize("kind,field", [("slack", "text"), ("discord", "content")])
def test_chat_texts_show_the_title_once_the_local_start_and_the_link(app, kind, field):
    with Receiver() as rx:
        job = _setup(kind, rx.url())
        _send()
    text = json.loads(rx.requests[0].body)[field]
    assert text.count("Backup failed: Northwind Testing / Daily VM Backup") == 1
    assert "Started: Fri 4 Dec 2026 03:00 CET" in text
    assert "the datastore is full" in text
    assert f"https://backupchecks.msp.example/run-checks?job={job.id}" in text


def test_the_webhook_body_keeps_utc_times_and_adds_the_link(app):
    with Receiver() as rx:
        job = _setup("webhook", rx.url())
        _send()
    body = json.loads(rx.requests[0].body)
    assert body["started_at"].startswith("2026-12-04T02:00:00")
    assert body["url"] == f"https://backupchecks.msp.example/run-checks?job={job.id}"


def test_without_the_apps_address_there_is_no_link(app):
    with Receiver() as rx:
        _setup("teams", rx.url(), base_url="")
        _send()
    card = json.loads(rx.requests[0].body)["attachments"][0]["content"]
    assert "actions" not in card


def test_a_receiver_that_is_down_gets_one_request_per_pass(app):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel, NotificationOutbox
    from backend.app.services.notifications import enqueue, send_due

    with Receiver(default=503) as rx:
        db.session.add(NotificationChannel(name="hook", kind="webhook", target_url=rx.url()))
        db.session.flush()
        for i in range(5):
            enqueue(f"k:{i}", "failed", {"event": "failed", "job": f"Job {i}", "customer": "C"})
        db.session.commit()
        assert send_due(T0)["retry"] == 5
        assert len(rx.requests) == 1  # the first refusal rests the channel for this pass
        db.session.expire_all()
        rows = db.session.query(NotificationOutbox).all()
        assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 1]  # only the real try counts
        assert len({r.next_attempt_at for r in rows}) == 1  # all wait for the same time
        rx.default = 200
        assert send_due(rows[0].next_attempt_at)["sent"] == 5
    assert len(rx.requests) == 6
