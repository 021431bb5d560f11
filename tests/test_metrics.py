"""GET /metrics: Prometheus metrics behind a bearer token (METRICS_TOKEN), read from the database.

The app under test here is a second app on the suite's database, with METRICS_TOKEN set (the
suite's app has none: /metrics is a 404 there). Data built with the builders is committed before
that app is asked, since it reads with its own session."""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.app import create_app
from backend.app.extensions import db
from backend.app.mail.base import MailSource, MailSourceError, RemoteMessage
from backend.app.models import NotificationChannel, NotificationOutbox, utcnow
from backend.app.services import background, metrics

from .helpers import make_job, make_mail, make_run, make_user

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def metrics_app(database_url):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x" * 32,
                       "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False, "METRICS_TOKEN": TOKEN})


@pytest.fixture
def scrape(app, metrics_app):
    """Commit what the test built, scrape the metrics app with the token, return {sample name:
    {labels as a sorted tuple: value}}."""
    client = metrics_app.test_client()

    def _scrape() -> dict:
        db.session.commit()
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.status_code
        assert r.content_type.startswith("text/plain; version=")
        samples: dict = {}
        for family in text_string_to_metric_families(r.get_data(as_text=True)):
            for s in family.samples:
                samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        return samples

    return _scrape


def labels(**kw) -> tuple:
    return tuple(sorted(kw.items()))


# --- access -----------------------------------------------------------------------------------

def test_metrics_do_not_exist_without_a_token_configured(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x",
                                    TOKEN])
def test_metrics_refuse_a_missing_or_wrong_token(app, metrics_app, header):
    headers = {"Authorization": header} if header is not None else {}
    r = metrics_app.test_client().get("/metrics", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer ")
    assert TOKEN not in r.get_data(as_text=True)
    assert "Set-Cookie" not in r.headers


def test_metrics_need_no_login_session_or_users(app, metrics_app):
    # No user exists yet (every other page leads to the setup form): the token is enough.
    r = metrics_app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    assert "backupchecks_database_up 1.0" in r.get_data(as_text=True)


def test_the_token_check():
    assert metrics.authorize(None, f"Bearer {TOKEN}") is metrics.Access.OFF
    assert metrics.authorize("", f"Bearer {TOKEN}") is metrics.Access.OFF
    assert metrics.authorize(TOKEN, f"Bearer {TOKEN}") is metrics.Access.ALLOWED
    assert metrics.authorize(TOKEN, f"bearer  {TOKEN} ") is metrics.Access.ALLOWED
    assert metrics.authorize(TOKEN, None) is metrics.Access.DENIED
    assert metrics.authorize(TOKEN, f"Bearer {TOKEN[:-1]}") is metrics.Access.DENIED
    assert metrics.authorize(TOKEN, "Bearer ") is metrics.Access.DENIED


# --- what the database says ---------------------------------------------------------------------

def test_runs_mails_and_the_outbox_are_counted_from_the_database(app, scrape):
    job = make_job()
    for _ in range(3):
        make_run(job, status="Failed")
    make_run(job, status="Success", reviewed_at=utcnow())
    make_run(job, status="Success", reviewed_at=utcnow())
    make_run(job, status="Missed", missed=True, missed_slot=utcnow() - timedelta(days=1), reviewed_at=utcnow())
    make_mail(state="processed")
    make_mail(state="inbox", internet_message_id="<a@example.test>")
    make_mail(state="inbox", internet_message_id="<b@example.test>")
    channel = NotificationChannel(name="ops", kind="webhook", target_url="https://hooks.example.test/x")
    db.session.add(channel)
    db.session.flush()
    db.session.add_all([NotificationOutbox(channel_id=channel.id, event_key=f"run:{i}:failed", event="failed",
                                           payload={}, state=state)
                        for i, state in enumerate(("sent", "failed"))])
    m = scrape()
    runs = m["backupchecks_job_runs"]
    assert runs[labels(status="Failed")] == 3 and runs[labels(status="Success")] == 2
    assert runs[labels(status="Missed")] == 1 and runs[labels(status="Warning")] == 0
    unreviewed = m["backupchecks_job_runs_unreviewed"]
    assert unreviewed[labels(status="Failed")] == 3 and unreviewed[labels(status="Success")] == 0
    assert sum(unreviewed.values()) == 3
    assert m["backupchecks_job_runs_missed"][()] == 1
    mails = m["backupchecks_mail_messages"]
    assert mails[labels(state="inbox")] == 2 and mails[labels(state="processed")] == 1
    assert mails[labels(state="error")] == 0
    outbox = m["backupchecks_notification_outbox"]
    assert outbox == {labels(state="sent"): 1, labels(state="failed"): 1, labels(state="pending"): 0,
                      labels(state="given_up"): 0}
    assert m["backupchecks_database_up"][()] == 1


class ListSource(MailSource):
    """A mailbox in memory: ``mails`` by source id; a ``None`` mail cannot be fetched."""
    name = "graph"

    def __init__(self, mails: dict[str, Optional[bytes]]):
        self.mails = mails

    def list_messages(self, limit=None):
        return [RemoteMessage(source_id=sid, internet_message_id="", received_at=None) for sid in self.mails]

    def fetch_raw(self, source_id):
        raw = self.mails[source_id]
        if raw is None:
            raise MailSourceError("The message could not be downloaded.", code="unavailable")
        return raw

    def mark_processed(self, source_id):
        return None


def _mail(n: int) -> bytes:
    return (f"From: someone@example.test\r\nTo: backups@example.test\r\nSubject: Hello {n}\r\n"
            f"Message-ID: <hello-{n}@example.test>\r\nDate: Tue, 09 Jun 2026 10:00:00 +0000\r\n\r\n"
            f"Not a backup report.\r\n").encode()


def test_an_import_cycle_adds_itself_to_the_import_metrics(app, scrape, clock):
    from backend.app.services.importer import run_import_cycle

    before = scrape()
    assert "backupchecks_import_cycle_duration_seconds_count" not in before  # no cycle yet
    cycle = run_import_cycle(ListSource({"a": _mail(1), "b": _mail(2), "c": None}), trigger="manual")
    assert cycle.state == "done" and (cycle.new, cycle.failed) == (2, 1)
    run_import_cycle(ListSource({"a": _mail(1)}), trigger="auto")  # already stored: a duplicate
    m = scrape()
    manual, auto = labels(trigger="manual", state="done"), labels(trigger="auto", state="done")
    assert m["backupchecks_import_cycle_duration_seconds_count"] == {manual: 1, auto: 1}
    duration = (cycle.finished_at - cycle.started_at).total_seconds()
    assert m["backupchecks_import_cycle_duration_seconds_sum"][manual] == pytest.approx(duration)
    assert m["backupchecks_import_cycle_last_finished_timestamp_seconds"][manual] == pytest.approx(
        cycle.finished_at.timestamp())
    assert m["backupchecks_import_mails_total"] == {labels(outcome="inbox"): 2, labels(outcome="processed"): 0,
                                                    labels(outcome="duplicate"): 1, labels(outcome="failed"): 1}


def test_each_background_loop_step_is_recorded_with_its_last_success(app, scrape, clock, monkeypatch):
    calls = []

    def fine(app):
        calls.append("fine")

    def broken(app):
        calls.append("broken")
        raise RuntimeError("boom")

    monkeypatch.setattr(background, "LOOPS", [background.Loop("fine-loop", lambda a: 60, fine),
                                              background.Loop("broken-loop", lambda a: 60, broken)])
    first = utcnow()
    assert background.run_due_loops(app, now=0) == ["fine-loop", "broken-loop"]
    clock.shift(timedelta(minutes=5))
    for loop in background.LOOPS:
        loop.next_run = 0
    background.run_due_loops(app, now=1)
    assert calls == ["fine", "broken"] * 2
    m = scrape()
    steps = m["backupchecks_background_loop_step_duration_seconds_count"]
    assert steps == {labels(loop="fine-loop"): 2, labels(loop="broken-loop"): 2}
    failures = m["backupchecks_background_loop_failures_total"]
    assert failures == {labels(loop="fine-loop"): 0, labels(loop="broken-loop"): 2}
    last = m["backupchecks_background_loop_last_success_timestamp_seconds"]
    assert list(last) == [labels(loop="fine-loop")]  # the broken loop never succeeded
    assert last[labels(loop="fine-loop")] == pytest.approx((first + timedelta(minutes=5)).timestamp(), abs=5)


def test_a_request_shows_up_in_the_request_duration_histogram_by_endpoint(app, metrics_app, scrape):
    client = metrics_app.test_client()
    name = "backupchecks_http_request_duration_seconds"

    def count(m, endpoint, status):
        return m.get(name + "_count", {}).get(labels(endpoint=endpoint, method="GET", status=status), 0)

    make_user("alice", roles=("admin",))  # a user exists: an unknown page is a 404, not the setup form
    before = scrape()
    assert client.get("/health").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405  # any word as a method: one series
    assert client.open("/health", method="FROBNICATE").status_code == 405
    after = scrape()
    assert count(after, "main.health", "2xx") == count(before, "main.health", "2xx") + 2
    assert count(after, "unmatched", "4xx") == count(before, "unmatched", "4xx") + 1
    buckets = after[name + "_bucket"]
    health_inf = buckets[tuple(sorted({"endpoint": "main.health", "method": "GET", "status": "2xx",
                                       "le": "+Inf"}.items()))]
    assert health_inf == count(after, "main.health", "2xx")
    assert not any("/health" in dict(k).get("endpoint", "") for k in after[name + "_count"])  # never a path
    other = [dict(k) for k in after[name + "_count"] if dict(k)["method"] not in ("GET", "POST")]
    assert other == [{"endpoint": "unmatched", "method": "other", "status": "4xx"}]  # 405: no route matched
    assert after[name + "_count"][labels(endpoint="unmatched", method="other", status="4xx")] == 2


def test_with_the_database_down_a_scrape_still_answers_and_says_so():
    app = create_app({"TESTING": True, "RUN_MIGRATIONS": False, "BACKGROUND_JOBS": False, "METRICS_TOKEN": TOKEN,
                      "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
                      "SECRET_KEY": "x" * 32})
    r = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.get_data(as_text=True))}
    assert families["backupchecks_database_up"].samples[0].value == 0
    assert "backupchecks_job_runs" not in families and "backupchecks_build_info" in families
