"""Scheduled reports: when they are due (DST-safe), mailing through a fake Graph sendMail, failures
shown and retried (never dropped), every attempt audited, one runner per schedule slot."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from backend.app.extensions import db
from backend.app.mail import graph as graph_module
from backend.app.models import AuditLog, ReportDefinition, ReportRun
from backend.app.services import reports as svc
from backend.app.services.settings import get_settings
from tests.clock import TEST_NOW
from tests.fakes.fake_graph import FakeGraph

from .conftest import make_customer, make_job, make_run, post_form

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")
DUE = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)   # 1 November 07:00 CET


def _scheduled(**kw) -> ReportDefinition:
    values = dict(name="Monthly for Northwind", all_customers=True, period="last_month",
                  content={k: True for k in svc.CONTENT_KEYS}, schedule="monthly", schedule_day=1,
                  schedule_time="07:00", recipients="it@northwind.example, boss@northwind.example",
                  next_delivery_at=DUE)
    values.update(kw)
    d = ReportDefinition(**values)
    db.session.add(d)
    db.session.commit()
    return d


def _audit(event):
    return db.session.execute(select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)).scalars().all()


def _runs():
    db.session.expire_all()
    return db.session.execute(select(ReportRun).order_by(ReportRun.id)).scalars().all()


@pytest.fixture
def data(app):
    s = get_settings()
    s.ui_timezone, s.company_name = "Europe/Amsterdam", "Contoso IT Services"
    db.session.commit()
    job = make_job(make_customer("Northwind Demo"))
    make_run(job, started_at=datetime(2026, 10, 14, 3, tzinfo=UTC))
    make_run(job, status="Failed", message="disk full", started_at=datetime(2026, 10, 15, 3, tzinfo=UTC))
    return job


def _fake(app, monkeypatch, fake: FakeGraph) -> FakeGraph:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    s = get_settings()
    s.graph_tenant_id, s.graph_client_id, s.graph_client_secret = fake.tenant_id, fake.client_id, fake.client_secret
    s.graph_mailbox = fake.mailbox
    db.session.commit()
    monkeypatch.setitem(app.config, "GRAPH_AUTHORITY_HOST", fake.authority_host)
    monkeypatch.setitem(app.config, "GRAPH_API_BASE", fake.api_base)
    monkeypatch.setitem(app.config, "GRAPH_ENV_OVERRIDES", {})
    monkeypatch.setitem(app.config, "GRAPH_CLIENT_OPTIONS",
                        {"timeout": 5, "max_attempts": 2, "max_retry_wait": 1, "backoff_base": 0.01})
    return fake


@pytest.fixture
def graph(app, monkeypatch):
    graph_module.reset_token_cache()
    with FakeGraph([]) as fake:
        yield _fake(app, monkeypatch, fake)
    graph_module.reset_token_cache()


@pytest.fixture
def graph_without_send(app, monkeypatch):
    graph_module.reset_token_cache()
    with FakeGraph([], permissions=("Mail.ReadWrite",)) as fake:
        yield _fake(app, monkeypatch, fake)
    graph_module.reset_token_cache()


# --- When ------------------------------------------------------------------------------------------

def test_next_delivery_weekly_and_monthly():
    weekly = ReportDefinition(schedule="weekly", schedule_day=0, schedule_time="07:30")   # Mondays
    after = datetime(2026, 11, 26, 12, tzinfo=UTC)                                          # a Thursday
    assert svc.next_delivery(weekly, after, AMS) == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    monthly = ReportDefinition(schedule="monthly", schedule_day=1, schedule_time="07:00")
    assert svc.next_delivery(monthly, DUE - timedelta(seconds=1), AMS) == DUE
    assert svc.next_delivery(monthly, DUE, AMS) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert svc.next_delivery(ReportDefinition(schedule="none"), after, AMS) is None


def test_next_delivery_across_dst_keeps_the_local_time():
    weekly = ReportDefinition(schedule="weekly", schedule_day=6, schedule_time="07:00")    # Sundays
    # Summer time ends on Sunday 25 October 2026: 07:00 local is 06:00 UTC that day, 05:00 the week before.
    assert svc.next_delivery(weekly, datetime(2026, 10, 18, 0, tzinfo=UTC), AMS) == datetime(2026, 10, 18, 5, tzinfo=UTC)
    assert svc.next_delivery(weekly, datetime(2026, 10, 19, 0, tzinfo=UTC), AMS) == datetime(2026, 10, 25, 6, tzinfo=UTC)
    # 02:30 does not exist on 28 March 2027 (spring forward): sent at 03:30 CEST = 01:30 UTC, once.
    night = ReportDefinition(schedule="weekly", schedule_day=6, schedule_time="02:30")
    assert svc.next_delivery(night, datetime(2027, 3, 27, tzinfo=UTC), AMS) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)


# --- Mailing ---------------------------------------------------------------------------------------

def test_a_due_report_is_generated_and_mailed(data, graph):
    defn = _scheduled()
    out = svc.run_loop_step(DUE + timedelta(minutes=1))
    assert out["queued"] and out["generated"] == 1 and out["sent"] == 1

    [mail] = graph.sent_mail
    assert mail.to == ["it@northwind.example", "boss@northwind.example"]
    assert mail.subject == "Monthly for Northwind – October 2026"
    assert "Contoso IT Services" in mail.body and mail.content_type == "html"
    [(name, ctype, content)] = mail.attachments
    assert name == "monthly-for-northwind_2026-10-01_2026-10-31.pdf" and ctype == "application/pdf"
    assert content.startswith(b"%PDF")
    [run] = _runs()
    assert (run.trigger, run.state, run.delivery_state, run.delivery_attempts) == ("scheduled", "done", "sent", 1)
    [entry] = _audit("report.delivered")
    assert entry.username == "system" and "it@northwind.example" in entry.summary
    db.session.refresh(defn)
    assert defn.next_delivery_at == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)

    # The same moment again (a second runner, or a restart): nothing is queued or sent twice.
    assert svc.run_loop_step(DUE + timedelta(minutes=1))["queued"] == []
    assert len(graph.sent_mail) == 1 and len(_runs()) == 1


def test_a_schedule_slot_is_claimed_once(data, graph):
    _scheduled()
    now = DUE + timedelta(minutes=1)
    first = svc.queue_scheduled(now)
    assert len(first) == 1 and svc.queue_scheduled(now) == []


def test_a_failed_delivery_is_shown_audited_and_retried(data, graph_without_send, as_user):
    _scheduled()
    now = DUE + timedelta(minutes=1)
    out = svc.run_loop_step(now)
    assert out["failed"] == 1 and not graph_without_send.sent_mail
    [run] = _runs()
    assert run.state == "done" and run.delivery_state == "failed" and run.delivery_attempts == 1
    assert "Mail.Send" in run.delivery_error
    assert run.next_attempt_at == now + svc.DELIVERY_BACKOFF[0]
    [entry] = _audit("report.delivery_failed")
    assert "attempt 1" in entry.summary and "Mail.Send" in entry.summary

    page = as_user("viewer").get("/reports").get_data(as_text=True)
    assert "could not be mailed" in page and "Mail.Send" in page

    # Not yet due: nothing happens. The admin grants Mail.Send; the next try goes out.
    assert svc.run_loop_step(now + timedelta(minutes=1))["failed"] == 0
    graph_without_send.permissions.add("Mail.Send")
    graph_module.reset_token_cache()
    out = svc.run_loop_step(now + svc.DELIVERY_BACKOFF[0] + timedelta(seconds=1))
    assert out["sent"] == 1 and len(graph_without_send.sent_mail) == 1
    [run] = _runs()
    assert run.delivery_state == "sent" and run.delivery_attempts == 2 and run.delivery_error is None


def test_after_the_last_attempt_it_stays_failed_until_retried_by_hand(data, graph_without_send, as_user, clock):
    _scheduled()
    now = DUE + timedelta(minutes=1)
    svc.run_loop_step(now)
    [run] = _runs()
    run.delivery_attempts, run.next_attempt_at = svc.MAX_DELIVERY_ATTEMPTS - 1, now
    db.session.commit()
    svc.run_loop_step(now + timedelta(minutes=1))
    [run] = _runs()
    assert run.delivery_state == "failed" and run.next_attempt_at is None
    assert "no more retries" in _audit("report.delivery_failed")[-1].summary
    detail = as_user("viewer").get(f"/reports/{run.definition_id}").get_data(as_text=True)
    assert "Gave up after" in detail and "2026-10-01 – 2026-10-31" in detail

    graph_without_send.permissions.add("Mail.Send")
    graph_module.reset_token_cache()
    clock.move_to(now + timedelta(minutes=2))  # the admin retries a little later, before the next slot
    assert post_form(as_user("viewer"), f"/reports/runs/{run.id}/retry-delivery").status_code == 403
    assert post_form(as_user("reporter"), f"/reports/runs/{run.id}/retry-delivery").status_code == 302
    assert _audit("report.delivery_retry")[0].username == "rita"
    assert svc.run_loop_step(now + timedelta(minutes=3))["sent"] == 1
    assert [r.delivery_state for r in _runs()] == ["sent"]


def test_mail_not_configured_is_a_clear_failure(data, app):
    _scheduled()
    svc.run_loop_step(DUE + timedelta(minutes=1))
    [run] = _runs()
    assert run.delivery_state == "failed" and "Settings → Mail" in run.delivery_error
    assert "Mail.Send" in run.delivery_error and run.next_attempt_at is not None


def test_send_now_from_the_page(data, graph, as_user, synchronous_tasks):
    defn = _scheduled(schedule="none", schedule_day=None, schedule_time=None, next_delivery_at=None)
    r = post_form(as_user("reporter"), f"/reports/{defn.id}/generate", {"fmt": "pdf", "send": "1"})
    assert r.status_code == 302
    [run] = _runs()
    assert run.state == "done" and run.delivery_state == "pending" and run.trigger == "manual"
    assert svc.run_loop_step()["sent"] == 1 and len(graph.sent_mail) == 1


def test_a_scheduled_report_that_cannot_be_generated_is_not_dropped(data, graph, monkeypatch):
    _scheduled()

    def boom(*a, **k):
        raise RuntimeError("renderer crashed")
    monkeypatch.setattr("backend.app.services.reports.runs.render_pdf", boom)
    svc.run_loop_step(DUE + timedelta(minutes=1))
    [run] = _runs()
    assert run.state == "failed" and run.delivery_state == "failed" and "renderer crashed" in run.delivery_error
    assert _audit("report.delivery_failed") and not graph.sent_mail


def test_a_scheduled_report_whose_generation_was_cut_off_is_generated_again_and_mailed(data, graph):
    """The process died while generating it (tests/deploy/test_crash_matrix.py kills it there): once the
    generation is stale it is queued again, not marked failed and never sent."""
    _scheduled()
    [run_id] = svc.queue_scheduled(DUE + timedelta(minutes=1))
    db.session.execute(update(ReportRun).where(ReportRun.id == run_id).values(state="running"))
    db.session.commit()
    assert svc.run_loop_step(DUE + timedelta(minutes=2))["sent"] == 0     # still running, maybe elsewhere
    out = svc.run_loop_step(DUE + svc.STALE_RUNNING + timedelta(minutes=2))
    assert out["generated"] == 1 and out["sent"] == 1 and len(graph.sent_mail) == 1
    [run] = _runs()
    assert (run.state, run.delivery_state, run.delivery_attempts) == ("done", "sent", 2)


def test_a_report_that_keeps_killing_its_generation_ends_failed(data, graph):
    _scheduled()
    [run_id] = svc.queue_scheduled(DUE + timedelta(minutes=1))
    db.session.execute(update(ReportRun).where(ReportRun.id == run_id)
                       .values(state="running", delivery_attempts=svc.MAX_DELIVERY_ATTEMPTS - 1))
    db.session.commit()
    svc.run_loop_step(DUE + svc.STALE_RUNNING + timedelta(minutes=2))
    [run] = _runs()
    assert run.state == "failed" and "Interrupted" in run.error and not graph.sent_mail


def test_orphaned_queued_reports_are_picked_up_by_the_loop(data):
    defn = _scheduled(schedule="none", schedule_day=None, schedule_time=None, next_delivery_at=None)
    run = svc.request_report(defn, "csv", None, now=TEST_NOW - timedelta(minutes=5))
    assert svc.run_loop_step()["generated"] == 1
    db.session.expire_all()
    assert db.session.get(ReportRun, run.id).state == "done"


def test_register_adds_the_loop(app):
    from backend.app.services import background
    before = list(background.LOOPS)
    try:
        background.LOOPS[:] = [loop for loop in background.LOOPS if loop.name != "reports"]
        svc.register(app)
        svc.register(app)
        [loop] = [loop for loop in background.LOOPS if loop.name == "reports"]
        assert loop.interval_seconds(app) == svc.LOOP_INTERVAL_SECONDS
    finally:
        background.LOOPS[:] = before
