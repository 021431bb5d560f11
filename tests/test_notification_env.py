"""Notifications set up by ops and kept tidy: NOTIFY_URLS channels (read-only in Settings), the
sender loop's interval from the environment, the delivery log's retention, and what a revoked
webhook's answer tells the admin."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.clock import TEST_NOW
from tests.conftest import post_form
from tests.fakes.receiver import Receiver
from tests.helpers import make_job, make_run

T0 = TEST_NOW + timedelta(seconds=30)


@pytest.fixture
def notify_urls(app):
    before = app.config.get("NOTIFY_URLS")

    def _set(urls):
        app.config["NOTIFY_URLS"] = list(urls)
    yield _set
    app.config["NOTIFY_URLS"] = before


def _loop_step(app):
    from backend.app.services import background

    next(lp for lp in background.LOOPS if lp.name == "notifications").step(app)


def _channels():
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel

    db.session.expire_all()
    return db.session.query(NotificationChannel).order_by(NotificationChannel.id).all()


def test_config_reads_notify_urls_and_the_loop_interval():
    from backend.app.config import ConfigError, load_config

    cfg = load_config({"NOTIFY_URLS": " json://a.test/x , ,tgram://bot/123 ", "NOTIFY_LOOP_SECONDS": "10",
                       "NOTIFY_LOG_DAYS": "7"}, "/tmp")
    assert cfg["NOTIFY_URLS"] == ["json://a.test/x", "tgram://bot/123"]
    assert cfg["NOTIFY_LOOP_SECONDS"] == 10 and cfg["NOTIFY_LOG_DAYS"] == 7
    assert load_config({}, "/tmp")["NOTIFY_URLS"] == []
    with pytest.raises(ConfigError, match="NOTIFY_LOOP_SECONDS must be a whole number"):
        load_config({"NOTIFY_LOOP_SECONDS": "soon"}, "/tmp")


def test_the_loop_interval_follows_the_setting_but_never_below_five_seconds(app):
    from backend.app.services import background

    loop = next(lp for lp in background.LOOPS if lp.name == "notifications")
    before = app.config.get("NOTIFY_LOOP_SECONDS")
    try:
        app.config["NOTIFY_LOOP_SECONDS"] = 12
        assert loop.interval_seconds(app) == 12
        app.config["NOTIFY_LOOP_SECONDS"] = 1
        assert loop.interval_seconds(app) == 5
    finally:
        app.config["NOTIFY_LOOP_SECONDS"] = before


def test_a_failed_run_reaches_every_notify_urls_target(app, notify_urls):
    from backend.app.extensions import db
    from backend.app.services.notifications import enqueue_run_events

    with Receiver() as rx:
        notify_urls([f"json://127.0.0.1:{rx.port}/ops", f"json://127.0.0.1:{rx.port}/oncall"])
        _loop_step(app)  # the sender's pass creates the environment's channels
        assert [(c.name, c.kind) for c in _channels()] == [("NOTIFY_URLS 1 (json)", "apprise"),
                                                          ("NOTIFY_URLS 2 (json)", "apprise")]
        job = make_job(job_name="Nightly NAS")
        run = make_run(job, status="Failed", started_at=TEST_NOW - timedelta(hours=1))
        enqueue_run_events([run])
        db.session.commit()
        _loop_step(app)
    assert sorted(r.path for r in rx.requests) == ["/oncall", "/ops"]
    assert all(b"Nightly NAS" in r.body for r in rx.requests)


def test_a_url_removed_from_notify_urls_removes_its_channel_and_a_bad_one_is_named(app, notify_urls, as_user):
    notify_urls(["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"])
    _loop_step(app)
    assert len(_channels()) == 2
    notify_urls(["json://127.0.0.1:9/b", "nosuchscheme://x/y"])
    _loop_step(app)
    (ch,) = _channels()
    assert ch.name == "NOTIFY_URLS 1 (json)" and ch.target_url == "json://127.0.0.1:9/b"

    page = as_user("admin").get("/settings/notifications").get_data(as_text=True)
    assert "NOTIFY_URLS" in page and "every alert also goes to" in page
    assert "json://127.0.0.1/…" in page and "nosuchscheme://x/…" in page
    assert "not used: Apprise does not know the scheme" in page
    assert "/b" not in page.split('id="notify-urls"')[1].split("</div>")[0]  # the path (tokens) is never shown


def test_an_environment_channel_cannot_be_edited_or_deleted_in_the_page(app, notify_urls, as_user):
    notify_urls(["json://127.0.0.1:9/a"])
    _loop_step(app)
    (ch,) = _channels()
    c = as_user("admin")
    page = c.get("/settings/notifications").get_data(as_text=True)
    assert f"/settings/notifications/{ch.id}/delete" not in page and "environment</span>" in page
    r = c.get(f"/settings/notifications/{ch.id}", follow_redirects=True)
    assert "comes from NOTIFY_URLS in the environment" in r.get_data(as_text=True)
    r = post_form(c, f"/settings/notifications/{ch.id}/delete", token_from="/settings/notifications")
    assert r.status_code == 302
    r = post_form(c, f"/settings/notifications/{ch.id}/edit", {"name": "mine", "kind": "webhook",
                                                               "target_url": "https://evil.test/"},
                  token_from="/settings/notifications")
    (still,) = _channels()
    assert still.name == "NOTIFY_URLS 1 (json)" and still.target_url == "json://127.0.0.1:9/a"


def test_the_delivery_log_keeps_pending_messages_and_forgets_old_finished_ones(app):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel, NotificationOutbox
    from backend.app.services.notifications.sender import purge_log

    ch = NotificationChannel(name="hook", kind="webhook", target_url="https://hook.test/")
    db.session.add(ch)
    db.session.flush()
    old = TEST_NOW - timedelta(days=40)
    for key, state, created in [("a", "sent", old), ("b", "failed", old), ("c", "pending", old),
                                ("d", "sent", TEST_NOW - timedelta(days=2))]:
        db.session.add(NotificationOutbox(channel_id=ch.id, event_key=key, event="failed", payload={},
                                          state=state, attempts=1, next_attempt_at=created, created_at=created))
    db.session.commit()
    assert purge_log(TEST_NOW, 30) == 2
    db.session.commit()
    assert sorted(r.event_key for r in db.session.query(NotificationOutbox)) == ["c", "d"]


@pytest.mark.parametrize("status", [404, 410, 403])
def test_a_revoked_webhook_fails_once_with_a_hint_to_replace_the_url(app, status):
    from backend.app.extensions import db
    from backend.app.models import NotificationChannel, NotificationOutbox
    from backend.app.services.notifications import enqueue, send_due

    with Receiver(default=status) as rx:
        db.session.add(NotificationChannel(name="Teams", kind="teams", target_url=rx.url("/workflows/x")))
        db.session.flush()
        enqueue("k:1", "failed", {"event": "failed", "job": "J", "customer": "C"})
        db.session.commit()
        assert send_due(T0)["failed"] == 1
        assert send_due(T0 + timedelta(hours=6))["failed"] == 0  # no retry storm
    assert len(rx.requests) == 1
    row = db.session.query(NotificationOutbox).one()
    assert row.state == "failed" and f"HTTP {status}" in row.last_error
    assert "deleted or revoked" in row.last_error


def test_a_malformed_channel_url_is_refused_with_its_reason(app, as_user):
    from backend.app.models import NotificationChannel

    c = as_user("admin")
    for url, message in [("teams.example/webhook", "must start with https://"),
                         ("https://", "must start with https://"),
                         ("nosuch://x", "")]:
        r = post_form(c, "/settings/notifications", {"name": "x", "kind": "teams", "target_url": url},
                      token_from="/settings/notifications")
        assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert NotificationChannel.query.count() == 0


def test_the_generate_secret_button_is_offered_for_webhooks(app, as_user):
    page = as_user("admin").get("/settings/notifications").get_data(as_text=True)
    assert 'data-generate-secret="secret"' in page
