"""Autotask in the app: settings, customer mapping, tickets from Run Checks, the poll.

Everything runs against FakeAutotask (real HTTP on 127.0.0.1, strict about the protocol:
auth headers, required fields, no nulls, no blanked description, lost responses, errors).
"""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Customer, JobRun, RunObject, SystemSettings, Ticket, TicketJobRun
from backend.app.services import autotask as svc
from backend.app.services.autotask import mapping as at_mapping, poll as at_poll
from backend.app.services.tickets import link_open_internal_tickets_to_run, tickets_for_runs
from tests.fakes.fake_autotask import FakeAutotask

from .conftest import make_customer, make_job, make_run, post_form
from tests.clock import TEST_NOW

QUEUE = 29683482  # "Monitoring Alert" in the fake's picklist
INACTIVE_QUEUE = 29683490
NOW = TEST_NOW


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/atservicesrest/"


def _overrides(fake: FakeAutotask, **extra) -> dict:
    values = {"zone_discovery_urls": (fake.discovery_url,), "timeout": 2.0, "retry_budget": 1.5,
              "backoff_base": 0.05, "max_backoff": 0.5, "lost_create_recheck_delay": 0.05}
    values.update(extra)
    return values


@pytest.fixture
def fake():
    f = FakeAutotask().start()
    yield f
    f.stop()


@pytest.fixture
def at_app(app, fake):
    """The app pointed at the fake (discovery URL and test-speed timeouts)."""
    app.config["AUTOTASK_CONFIG_OVERRIDES"] = _overrides(fake)
    app.config["TASKS_SYNCHRONOUS"] = True
    yield app
    app.config.pop("AUTOTASK_CONFIG_OVERRIDES", None)
    app.config.pop("TASKS_SYNCHRONOUS", None)


def configure(fake: FakeAutotask, *, enabled=True, reference=True, base_url="https://bc.example.test") -> SystemSettings:
    s = db.session.get(SystemSettings, 1) or SystemSettings(id=1)
    s.autotask_enabled = enabled
    s.autotask_environment = "production"
    s.autotask_api_user = fake.api_user
    s.autotask_secret = fake.secret
    s.autotask_integration_code = fake.integration_code
    s.autotask_base_url = base_url
    db.session.add(s)
    db.session.commit()
    if reference:
        svc.refresh_reference_data()
        s = db.session.get(SystemSettings, 1)
        s.autotask_default_queue_id = QUEUE
        db.session.commit()
    return s


def mapped_customer(name="Example Dental", company_id=174, status="ok", company_name="Example Dental Practice BV"):
    c = make_customer(name)
    c.autotask_company_id = company_id
    c.autotask_company_name = company_name
    c.autotask_mapping_status = status
    db.session.commit()
    return c


def failed_run(customer, job_name="SQL01 nightly", minutes_ago=60):
    job = make_job(customer, job_name, sender=f"{job_name.replace(' ', '')}@example.test")
    run = make_run(job, "Failed", NOW - timedelta(minutes=minutes_ago), message="VM-A: Disk full")
    db.session.add(RunObject(job_run_id=run.id, name="VM-A", type="VM", status="Failed", effective_status="Failed",
                             message="Disk full"))
    db.session.add(RunObject(job_run_id=run.id, name="VM-B", type="VM", status="Success", effective_status="Success"))
    db.session.commit()
    return job, run


def ticket_creates(fake):
    return [r for r in fake.calls("POST") if r["path"].endswith("/Tickets")]


def no_violations(fake):
    assert fake.violations == [], fake.violations
    for r in fake.requests:
        body = r["body"]
        if isinstance(body, dict):
            assert None not in body.values(), (r["method"], r["path"], body)
    assert not fake.calls("PUT"), "never a full PUT"


# ------------------------------------------------------------------------------- settings


def test_settings_save_keeps_the_secret_write_only_and_masked_in_the_audit(at_app, as_user, fake):
    c = as_user("admin")
    form = {"autotask_enabled": "on", "autotask_environment": "sandbox", "autotask_api_user": fake.api_user,
            "autotask_secret": fake.secret, "autotask_integration_code": fake.integration_code,
            "autotask_base_url": "https://bc.example.test/"}
    r = post_form(c, "/settings/autotask", form, follow_redirects=True)
    assert "Autotask settings saved" in r.get_data(as_text=True)
    s = db.session.get(SystemSettings, 1)
    db.session.refresh(s)
    assert s.autotask_secret == fake.secret and s.autotask_base_url == "https://bc.example.test"
    html = c.get("/settings?section=integrations").get_data(as_text=True)
    assert fake.secret not in html and "A secret is stored" in html
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.autotask")).scalar_one()
    assert entry.after["autotask_secret"] == "••••••" and entry.username == "alice"
    assert fake.secret not in str(entry.before) + str(entry.after)
    # An empty secret field keeps the stored secret.
    post_form(c, "/settings/autotask", dict(form, autotask_secret="", autotask_environment="production"))
    db.session.refresh(s)
    assert s.autotask_secret == fake.secret and s.autotask_environment == "production"


def test_settings_refuse_bad_values_and_save_nothing(at_app, as_user, fake):
    c = as_user("admin")
    r = post_form(c, "/settings/autotask", {"autotask_environment": "staging"}, follow_redirects=True)
    assert "production or sandbox" in r.get_data(as_text=True)
    r = post_form(c, "/settings/autotask", {"autotask_environment": "sandbox", "autotask_enabled": "on"},
                  follow_redirects=True)
    assert "fill in the API user" in r.get_data(as_text=True)
    r = post_form(c, "/settings/autotask", {"autotask_environment": "sandbox", "autotask_base_url": "bc.local"},
                  follow_redirects=True)
    assert "must start with https://" in r.get_data(as_text=True)
    s = db.session.get(SystemSettings, 1)
    assert s is None or not s.autotask_enabled
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event == "settings.autotask")
                              ).scalar_one() == 0


def test_operator_and_viewer_cannot_touch_the_settings(at_app, as_user):
    assert post_form(as_user("operator"), "/settings/autotask", {"autotask_environment": "sandbox"}).status_code == 403
    assert post_form(as_user("viewer"), "/settings/autotask/test", {}).status_code == 403


def test_test_connection_ok_and_wrong_secret(at_app, as_user, fake):
    configure(fake, reference=False)
    c = as_user("admin")
    r = post_form(c, "/settings/autotask/test", {}, token_from="/settings?section=integrations", follow_redirects=True)
    assert "Autotask connection works" in r.get_data(as_text=True)
    s = db.session.get(SystemSettings, 1)
    db.session.refresh(s)
    assert s.autotask_reference_data["zone"]["url"] == fake.zone_url  # remembered as the fallback base
    s.autotask_secret = "wrong-secret-value"
    db.session.commit()
    r = post_form(c, "/settings/autotask/test", {}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "Autotask connection failed" in text and "wrong-secret-value" not in text
    events = db.session.execute(select(AuditLog.after).where(AuditLog.event == "settings.autotask_test")
                                .order_by(AuditLog.id)).scalars().all()
    assert [e["ok"] for e in events] == [True, False]


def test_unreachable_autotask_is_a_clear_message(at_app, as_user, fake):
    configure(fake, reference=False)
    at_app.config["AUTOTASK_CONFIG_OVERRIDES"] = _overrides(fake, zone_discovery_urls=(dead_url(),))
    r = post_form(as_user("admin"), "/settings/autotask/test", {}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "Autotask connection failed" in text and "Traceback" not in text


def test_reference_data_refresh_fills_the_pickers_and_defaults_must_be_active(at_app, as_user, fake):
    configure(fake, reference=False)
    c = as_user("admin")
    assert 'id="no-reference-data"' in c.get("/settings?section=integrations").get_data(as_text=True)
    r = post_form(c, "/settings/autotask/reference-data", {}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "Reference data refreshed" in text
    assert "Monitoring Alert" in text and "Old queue" not in text  # inactive values are not offered
    s = db.session.get(SystemSettings, 1)
    db.session.refresh(s)
    assert {v["label"] for v in s.autotask_reference_data["statuses"]} >= {"New", "Complete"}
    assert s.autotask_reference_refreshed_at is not None
    base = {"autotask_enabled": "on", "autotask_environment": "production", "autotask_api_user": fake.api_user,
            "autotask_integration_code": fake.integration_code}
    r = post_form(c, "/settings/autotask", dict(base, autotask_default_queue_id=str(INACTIVE_QUEUE)), follow_redirects=True)
    assert "not an active value" in r.get_data(as_text=True)
    post_form(c, "/settings/autotask", dict(base, autotask_default_queue_id=str(QUEUE), autotask_default_priority_id="1"))
    db.session.refresh(s)
    assert s.autotask_default_queue_id == QUEUE and s.autotask_default_priority_id == 1


# -------------------------------------------------------------------------------- mapping


def test_mapping_set_search_refresh_and_clear(at_app, as_user, fake):
    configure(fake)
    cust = make_customer("Dental")
    c = as_user("operator")
    html = c.get(f"/customers/{cust.id}/autotask?q=Dental").get_data(as_text=True)
    assert "Example Dental Practice BV" in html
    r = post_form(c, f"/customers/{cust.id}/autotask", {"action": "set", "company_id": "174"}, follow_redirects=True)
    assert "is mapped to Autotask company Example Dental Practice BV" in r.get_data(as_text=True)
    db.session.refresh(cust)
    assert (cust.autotask_company_id, cust.autotask_mapping_status) == (174, "ok")
    # Renamed in Autotask: the new name is stored, status renamed (tickets still allowed).
    fake.companies[174]["companyName"] = "Example Dental Group"
    post_form(c, f"/customers/{cust.id}/autotask", {"action": "refresh"})
    db.session.refresh(cust)
    assert (cust.autotask_mapping_status, cust.autotask_company_name) == ("renamed", "Example Dental Group")
    assert svc.ticket_block_reason(cust) is None
    # Inactive: invalid; deleted: missing. Both block tickets and the page says why.
    fake.companies[174]["isActive"] = False
    post_form(c, f"/customers/{cust.id}/autotask", {"action": "refresh"})
    db.session.refresh(cust)
    assert cust.autotask_mapping_status == "invalid"
    assert "inactive in Autotask" in c.get(f"/customers/{cust.id}/autotask").get_data(as_text=True)
    del fake.companies[174]
    post_form(c, f"/customers/{cust.id}/autotask", {"action": "refresh"})
    db.session.refresh(cust)
    assert cust.autotask_mapping_status == "missing"
    assert "no longer exists in Autotask" in svc.ticket_block_reason(cust)
    # Clear.
    post_form(c, f"/customers/{cust.id}/autotask", {"action": "clear"})
    db.session.refresh(cust)
    assert cust.autotask_company_id is None and cust.autotask_mapping_status is None
    events = db.session.execute(select(AuditLog.event).where(AuditLog.target_type == "customer")).scalars().all()
    assert "customer.autotask_mapped" in events and "customer.autotask_cleared" in events
    assert events.count("customer.autotask_checked") == 3
    no_violations(fake)


def test_mapping_refuses_bad_ids_unknown_and_inactive_companies(at_app, as_user, fake):
    configure(fake)
    fake.add_company(180, "Closed Shop", isActive=False)
    cust = make_customer("Shop")
    c = as_user("operator")
    for value, expected in (("abc", "whole number"), ("999", "no company with id 999"), ("180", "inactive")):
        r = post_form(c, f"/customers/{cust.id}/autotask", {"action": "set", "company_id": value}, follow_redirects=True)
        assert expected in r.get_data(as_text=True)
        db.session.refresh(cust)
        assert cust.autotask_company_id is None
    assert post_form(as_user("viewer"), f"/customers/{cust.id}/autotask", {"action": "clear"}).status_code == 403
    assert as_user("viewer").get(f"/customers/{cust.id}/autotask").status_code == 200


def test_refresh_all_checks_every_mapped_customer_in_batches(at_app, as_user, fake, monkeypatch):
    configure(fake)
    monkeypatch.setattr(at_mapping, "REFRESH_BATCH", 2)
    for i in range(5):
        fake.add_company(500 + i, f"Company {i}", isActive=(i != 3))
        c = make_customer(f"Customer {i}")
        c.autotask_company_id = 500 + i if i != 4 else 999  # 4: gone from Autotask
        c.autotask_company_name = f"Company {i}" if i != 1 else "Old name"
    db.session.commit()
    r = post_form(as_user("operator"), "/customers/autotask/refresh", {}, follow_redirects=True)
    assert r.status_code == 200
    statuses = dict(db.session.execute(select(Customer.name, Customer.autotask_mapping_status)).all())
    assert statuses == {"Customer 0": "ok", "Customer 1": "renamed", "Customer 2": "ok",
                        "Customer 3": "invalid", "Customer 4": "missing"}
    company_queries = [q for q in fake.calls("POST", "Companies/query")]
    assert len(company_queries) == 3  # 5 customers in batches of 2
    viewer = as_user("viewer")
    html = viewer.get("/customers/autotask").get_data(as_text=True)
    assert "Missing" in html and "Renamed" in html and "refresh-all" not in html
    html = viewer.get("/customers/autotask?state=problems").get_data(as_text=True)
    assert "Customer 3" in html and "Customer 4" in html and "Customer 0" not in html
    assert viewer.get("/customers/autotask?state=bogus").status_code == 400


# -------------------------------------------------------------------------------- tickets


def test_create_ticket_from_a_run_sends_the_summary_and_follows_the_next_run(at_app, as_user, fake):
    configure(fake)
    cust = mapped_customer()
    job, run = failed_run(cust)
    c = as_user("operator")
    html = c.get(f"/run-checks?job={job.id}").get_data(as_text=True)
    assert "Create Autotask ticket" in html
    r = post_form(c, "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "created for SQL01 nightly" in r.get_data(as_text=True)
    [create] = ticket_creates(fake)
    body = create["body"]
    assert body["companyID"] == 174 and body["queueID"] == QUEUE and body["externalID"] == f"BC-run-{run.id}"
    assert body["title"] == "Backup failed: SQL01 nightly (Example Dental)"
    desc = body["description"]
    assert "Customer: Example Dental" in desc and "VM-A (VM): Failed — Disk full" in desc and "VM-B" not in desc
    assert f"https://bc.example.test/run-checks?job={job.id}" in desc
    at_ticket = fake.tickets[next(iter(fake.tickets))]
    db.session.refresh(run)
    assert run.autotask_ticket_id == at_ticket["id"] and run.autotask_ticket_number == at_ticket["ticketNumber"]
    assert run.autotask_ticket_created_by_id is not None and run.autotask_ticket_created_at is not None
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert ticket.code == at_ticket["ticketNumber"] and ticket.autotask_ticket_id == at_ticket["id"]
    assert [t.id for t in tickets_for_runs([run.id])[run.id]] == [ticket.id]
    # The next run of the job (import flow) is linked to it.
    nxt = make_run(job, "Failed", NOW)
    link_open_internal_tickets_to_run(nxt)
    db.session.commit()
    assert [t.id for t in tickets_for_runs([nxt.id])[nxt.id]] == [ticket.id]
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "autotask.ticket_created")).scalar_one()
    no_violations(fake)


def test_second_create_for_the_job_links_the_open_ticket(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    c = as_user("operator")
    post_form(c, "/run-checks/autotask/create", {"run_id": run.id})
    later = make_run(job, "Failed", NOW - timedelta(minutes=5))  # e.g. made before the ticket, not linked
    r = post_form(c, "/run-checks/autotask/create", {"run_id": later.id}, follow_redirects=True)
    assert "already has open Autotask ticket" in r.get_data(as_text=True)
    post_form(as_user("admin"), "/run-checks/autotask/create", {"run_id": run.id})  # same run again
    assert len(ticket_creates(fake)) == 1 and len(fake.tickets) == 1
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 1
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert {tjr.job_run_id for tjr in db.session.execute(select(TicketJobRun)).scalars()} == {run.id, later.id}
    db.session.refresh(later)
    assert later.autotask_ticket_id == ticket.autotask_ticket_id
    no_violations(fake)


@pytest.mark.parametrize("mode", ["drop", "502"])
def test_a_lost_create_response_makes_exactly_one_ticket(at_app, as_user, fake, mode):
    configure(fake)
    job, run = failed_run(mapped_customer())
    fake.lose_next_create_response(mode)
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "created for SQL01 nightly" in r.get_data(as_text=True)
    assert len(fake.tickets) == 1
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 1
    db.session.refresh(run)
    assert run.autotask_ticket_id == next(iter(fake.tickets))
    no_violations(fake)


def test_a_timed_out_create_then_a_retry_never_duplicates(at_app, as_user, fake):
    """The response comes too late every time: the user sees an error, retries, and still one ticket exists."""
    configure(fake)
    at_app.config["AUTOTASK_CONFIG_OVERRIDES"] = _overrides(fake, timeout=0.5, lost_create_recheck_delay=0.01)
    job, run = failed_run(mapped_customer())
    fake.lose_next_create_response("delay", delay=1.0)
    create = fake._create_ticket

    def create_then_fail_lookups(body):  # the ticket is made, then Autotask stops answering queries
        result = create(body)
        fake.fail_next(20, status=503, method="POST", path_suffix="/query")
        return result

    fake._create_ticket = create_then_fail_lookups
    c = as_user("operator")
    r = post_form(c, "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "safe to try again" in r.get_data(as_text=True)
    fake.clear_failures()
    fake._create_ticket = create
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0  # nothing half-saved
    db.session.refresh(run)
    assert run.autotask_ticket_id is None
    r = post_form(c, "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "created for SQL01 nightly" in r.get_data(as_text=True)
    assert len(fake.tickets) == 1
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 1
    no_violations(fake)


def test_unreachable_autotask_on_create_saves_nothing(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    fake.fail_next(50, status=503)
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "No Autotask ticket" in text and "Traceback" not in text
    assert fake.tickets == {}
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0
    db.session.refresh(run)
    assert run.autotask_ticket_id is None
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event.like("autotask.%"))).scalar_one() == 0


def test_customer_without_valid_mapping_gets_no_ticket_and_the_page_says_why(at_app, as_user, fake):
    configure(fake)
    cust = mapped_customer(status="invalid")
    job, run = failed_run(cust)
    c = as_user("operator")
    html = c.get(f"/run-checks?job={job.id}").get_data(as_text=True)
    assert "No Autotask ticket possible" in html and "Create Autotask ticket" not in html
    r = post_form(c, "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "inactive in Autotask" in r.get_data(as_text=True)
    unmapped_job, unmapped_run = failed_run(make_customer("Nobody"), "Other job")
    r = post_form(c, "/run-checks/autotask/create", {"run_id": unmapped_run.id}, follow_redirects=True)
    assert "not mapped to an Autotask company" in r.get_data(as_text=True)
    assert ticket_creates(fake) == []


def test_an_unchecked_imported_mapping_is_checked_before_creating(at_app, as_user, fake):
    configure(fake)
    cust = mapped_customer(status=None, company_id=175, company_name=None)
    job, run = failed_run(cust)
    post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id})
    db.session.refresh(cust)
    assert cust.autotask_mapping_status == "ok" and cust.autotask_company_name == "Example Logistics Ltd"
    assert ticket_creates(fake)[0]["body"]["companyID"] == 175


def test_link_existing_ticket_by_number(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    existing = fake.add_ticket(companyID=174, title="Backups failing at Dental", description="Opened by a technician",
                               status=1, priority=2, queueID=QUEUE)
    c = as_user("operator")
    r = post_form(c, "/run-checks/autotask/link", {"run_id": run.id, "number": "T20990101.9999"}, follow_redirects=True)
    assert "has no ticket with number T20990101.9999" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0
    r = post_form(c, "/run-checks/autotask/link", {"run_id": run.id, "number": existing["ticketNumber"]},
                  follow_redirects=True)
    assert f"linked to Autotask ticket {existing['ticketNumber']}" in r.get_data(as_text=True)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert ticket.autotask_ticket_id == existing["id"] and ticket.code == existing["ticketNumber"]
    db.session.refresh(run)
    assert run.autotask_ticket_number == existing["ticketNumber"]
    assert ticket_creates(fake) == [] and fake.tickets[existing["id"]]["description"] == "Opened by a technician"
    # A completed ticket is not linked.
    done = fake.add_ticket(companyID=174, title="Old", status=1, priority=2, queueID=QUEUE)
    fake.complete_out_of_band(done["id"])
    other_job, other_run = failed_run(mapped_customer("Other", 175, company_name="Example Logistics Ltd"), "Other job")
    r = post_form(c, "/run-checks/autotask/link", {"run_id": other_run.id, "number": done["ticketNumber"]},
                  follow_redirects=True)
    assert "already completed" in r.get_data(as_text=True)
    no_violations(fake)


def test_poll_resolves_tickets_completed_in_autotask(at_app, as_user, fake, monkeypatch):
    configure(fake)
    monkeypatch.setattr(at_poll, "POLL_BATCH", 2)
    runs = [failed_run(mapped_customer(f"Cust {i}", 174), f"Job {i}")[1] for i in range(3)]
    for run in runs:
        svc.create_ticket_for_run(run.id, None)
    tickets = {t.autotask_ticket_id: t for t in db.session.execute(select(Ticket)).scalars()}
    first, second, third = sorted(tickets)
    fake.complete_out_of_band(first)
    del fake.tickets[third]  # deleted / merged in Autotask
    before = len(fake.calls())
    counts = svc.poll_open_tickets()
    assert counts["resolved"] == 2 and counts["gone"] == 1 and counts["checked"] == 3
    assert len(fake.calls("POST", "Tickets/query")) >= 2  # batched reads, not one call per ticket
    db.session.expire_all()
    assert tickets[first].resolved_at is not None and "Completed in Autotask" in tickets[first].resolution_note
    assert tickets[first].resolved_by_id is None
    assert tickets[second].resolved_at is None
    assert "no longer exists" in tickets[third].resolution_note
    # Resolved tickets stop following the job; their old links stay.
    nxt = make_run(db.session.get(JobRun, runs[0].id).job, "Failed", NOW)
    link_open_internal_tickets_to_run(nxt)
    db.session.commit()
    assert tickets_for_runs([nxt.id])[nxt.id] == []
    assert [t.id for t in tickets_for_runs([runs[0].id])[runs[0].id]] == [tickets[first].id]
    # A second poll only asks about what is still open, and changes nothing.
    assert svc.poll_open_tickets()["resolved"] == 0
    assert len(fake.calls()) > before
    no_violations(fake)


def test_poll_does_nothing_when_switched_off_or_autotask_is_down(at_app, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    fake.complete_out_of_band(next(iter(fake.tickets)))
    fake.fail_next(50, status=503)
    counts = svc.poll_open_tickets()
    assert counts["errors"] == 1 and counts["resolved"] == 0
    fake.clear_failures()
    s = db.session.get(SystemSettings, 1)
    s.autotask_enabled = False
    db.session.commit()
    n = len(fake.requests)
    assert svc.poll_open_tickets()["checked"] == 0 and len(fake.requests) == n
    s.autotask_enabled = True
    db.session.commit()
    assert svc.poll_open_tickets()["resolved"] == 1


def test_poll_is_registered_as_a_background_loop(at_app):
    from backend.app.services import background
    assert any(loop.name == "autotask_poll" for loop in background.LOOPS)


def test_resolve_from_backupchecks_adds_a_note_and_completes_the_ticket(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    at_id = ticket.autotask_ticket_id
    description = fake.tickets[at_id]["description"]
    c = as_user("operator")
    html = c.get(f"/run-checks?job={job.id}").get_data(as_text=True)
    assert f"Resolve {ticket.code}" in html
    r = post_form(c, "/run-checks/autotask/resolve", {"ticket_id": ticket.id, "job_id": job.id,
                                                      "note": "Disk replaced, backup ran fine"}, follow_redirects=True)
    assert "completed in Autotask" in r.get_data(as_text=True)
    assert fake.tickets[at_id]["status"] == 5 and fake.tickets[at_id]["completedDate"]
    assert fake.tickets[at_id]["description"] == description  # never blanked
    notes = [n for n in fake.notes.values() if n["ticketID"] == at_id]
    assert len(notes) == 1 and "Disk replaced" in notes[0]["description"] and "oscar" in notes[0]["description"]
    patches = fake.calls("PATCH")
    assert patches and all(set(p["body"]) <= {"id", "status"} for p in patches)
    db.session.refresh(ticket)
    assert ticket.resolved_at is not None and ticket.resolution_note == "Disk replaced, backup ran fine"
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "autotask.ticket_completed")).scalar_one()
    # Twice: refused, no second note.
    r = post_form(c, "/run-checks/autotask/resolve", {"ticket_id": ticket.id}, follow_redirects=True)
    assert "already resolved" in r.get_data(as_text=True)
    assert len(fake.notes) == 1
    no_violations(fake)


def test_resolve_with_autotask_down_changes_nothing(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    fake.fail_next(50, status=503)
    r = post_form(as_user("operator"), "/run-checks/autotask/resolve", {"ticket_id": ticket.id, "note": "x"},
                  follow_redirects=True)
    assert "Not resolved" in r.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.resolved_at is None
    fake.clear_failures()
    assert fake.tickets[ticket.autotask_ticket_id]["status"] != 5


def test_lost_note_response_on_resolve_makes_one_note(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    fake.lose_next_create_response("drop", what="note")
    post_form(as_user("operator"), "/run-checks/autotask/resolve", {"ticket_id": ticket.id, "note": "Fixed"})
    assert len(fake.notes) == 1 and fake.tickets[ticket.autotask_ticket_id]["status"] == 5
    no_violations(fake)


def test_ticket_actions_need_admin_or_operator(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    for role in ("viewer", "reporter"):
        c = as_user(role)
        for path in ("/run-checks/autotask/create", "/run-checks/autotask/link", "/run-checks/autotask/resolve"):
            assert post_form(c, path, {"run_id": run.id}).status_code == 403
    assert ticket_creates(fake) == []


def test_switched_off_integration_hides_the_block_and_refuses(at_app, as_user, fake):
    configure(fake, enabled=False, reference=False)
    job, run = failed_run(mapped_customer())
    c = as_user("operator")
    assert "autotask-block" not in c.get(f"/run-checks?job={job.id}").get_data(as_text=True)
    r = post_form(c, "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "switched off" in r.get_data(as_text=True)
    assert fake.requests == []


def test_two_operators_creating_for_two_runs_of_one_job_make_one_ticket(at_app, fake):
    """Both requests at once (Autotask slow to answer): the job lock makes the second link to the first's ticket."""
    import threading

    configure(fake)
    job, run = failed_run(mapped_customer())
    other = make_run(job, "Failed", NOW - timedelta(minutes=30))
    db.session.commit()  # the threads read it
    fake.latency = 0.2
    results, errors = [], []

    def create(run_id):
        with at_app.app_context():
            try:
                results.append(svc.create_ticket_for_run(run_id, None).created)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=create, args=(rid,)) for rid in (run.id, other.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sorted(results) == [False, True]
    assert len(fake.tickets) == 1 and len(ticket_creates(fake)) == 1
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(TicketJobRun)).scalar_one() == 2
    no_violations(fake)


def test_a_run_already_following_the_ticket_shows_no_link_button(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    number = db.session.execute(select(Ticket.code)).scalar_one()
    nxt = make_run(job, "Failed", NOW)
    link_open_internal_tickets_to_run(nxt)
    unlinked = make_run(job, "Warning", NOW - timedelta(days=2))  # older than the ticket: not linked
    db.session.commit()
    html = as_user("operator").get(f"/run-checks?job={job.id}").get_data(as_text=True)
    assert html.count(f"Link to Autotask {number}") == 1  # only the unlinked run offers it
    assert html.count(f"Resolve {number}") == 1  # once per job, on the newest run
    assert "Create Autotask ticket" not in html
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": unlinked.id}, follow_redirects=True)
    assert "this run is now linked to it" in r.get_data(as_text=True)
    assert len(fake.tickets) == 1


def test_create_after_the_jobs_ticket_was_completed_in_autotask_makes_a_new_one(at_app, as_user, fake):
    """The poll has not run yet: "create" notices the completed ticket, resolves it here, and creates anew."""
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    first = db.session.execute(select(Ticket)).scalar_one()
    fake.complete_out_of_band(first.autotask_ticket_id)
    later = make_run(job, "Failed", NOW)
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": later.id}, follow_redirects=True)
    assert "created for SQL01 nightly" in r.get_data(as_text=True)
    db.session.expire_all()
    assert first.resolved_at is not None and "Completed in Autotask" in first.resolution_note
    assert len(fake.tickets) == 2
    assert {t["externalID"] for t in fake.tickets.values()} == {
        f"BC-run-{run.id}", f"BC-run-{later.id}"}
    no_violations(fake)


def test_interactive_calls_give_up_sooner_than_the_poll(app, fake):
    configure(fake, reference=False)
    assert svc.build_config().retry_budget == svc.INTERACTIVE_RETRY_BUDGET
    assert svc.build_config(interactive=False).retry_budget > svc.INTERACTIVE_RETRY_BUDGET
    assert "secret" not in repr(svc.build_config()).lower() or fake.secret not in repr(svc.build_config())


def test_the_autotask_ticket_follows_generated_missed_runs_until_completed(at_app, fake):
    from zoneinfo import ZoneInfo

    from backend.app.services.missed_runs import detect_missed_runs
    from backend.app.services.schedules import recompute_job_schedule

    ams = ZoneInfo("Europe/Amsterdam")

    def local(d, hh, mm=0):
        return datetime(2026, 10, d, hh, mm, tzinfo=ams).astimezone(timezone.utc)

    configure(fake)
    cust = mapped_customer()
    job = make_job(cust, "Nightly file backup", sender="files@example.test")
    run = make_run(job, "Failed", local(10, 22, 1), message="Share unreachable")
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 120}
    recompute_job_schedule(job, local(10, 23), ams)
    db.session.commit()
    svc.create_ticket_for_run(run.id, None)
    ticket = db.session.execute(select(Ticket)).scalar_one()

    assert detect_missed_runs(local(12, 0, 30), ams) == 1  # the 11th at 22:00 never reported
    missed = db.session.execute(select(JobRun).where(JobRun.missed.is_(True))).scalar_one()
    assert [t.id for t in tickets_for_runs([missed.id])[missed.id]] == [ticket.id]
    # "Create" on the missed run links it to the same Autotask ticket.
    outcome = svc.create_ticket_for_run(missed.id, None)
    assert outcome.created is False and len(fake.tickets) == 1

    fake.complete_out_of_band(ticket.autotask_ticket_id)
    assert svc.poll_open_tickets()["resolved"] == 1
    assert detect_missed_runs(local(13, 0, 30), ams) == 1
    newest = db.session.execute(select(JobRun).where(JobRun.missed.is_(True)).order_by(JobRun.missed_slot.desc())
                                .limit(1)).scalar_one()
    assert tickets_for_runs([newest.id])[newest.id] == []  # resolved: no longer follows
    assert [t.id for t in tickets_for_runs([missed.id])[missed.id]] == [ticket.id]  # old link stays
    no_violations(fake)


def test_a_company_deleted_since_the_last_check_is_reported_and_marked_missing(at_app, as_user, fake):
    configure(fake)
    cust = mapped_customer()
    job, run = failed_run(cust)
    del fake.companies[174]
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "no longer exists in Autotask" in r.get_data(as_text=True)
    db.session.refresh(cust)
    assert cust.autotask_mapping_status == "missing"
    assert fake.tickets == {} and db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0


def test_a_run_whose_ticket_was_resolved_can_get_a_new_one(at_app, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    first = db.session.execute(select(Ticket)).scalar_one()
    svc.resolve_ticket(first.id, None, "Fixed")
    fake.lose_next_create_response("drop")  # and the answer of the new create is lost
    outcome = svc.create_ticket_for_run(run.id, None)
    assert outcome.created is True and outcome.number != first.code
    assert sorted(t["externalID"] for t in fake.tickets.values()) == [f"BC-run-{run.id}", f"BC-run-{run.id}-2"]
    db.session.refresh(run)
    assert run.autotask_ticket_number == outcome.number
    assert outcome.ticket.resolved_at is None and outcome.ticket.autotask_ticket_id != first.autotask_ticket_id
    no_violations(fake)


def test_autotask_over_its_request_threshold_gives_a_clear_message_and_saves_nothing(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    fake.request_threshold = len(fake._hits)  # every further call is refused with 429
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "No Autotask ticket" in text and "Traceback" not in text
    assert fake.throttled and fake.tickets == {}
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0
    fake.request_threshold = None
    r = post_form(as_user("operator"), "/run-checks/autotask/create", {"run_id": run.id}, follow_redirects=True)
    assert "created for SQL01 nightly" in r.get_data(as_text=True) and len(fake.tickets) == 1
    no_violations(fake)


def test_the_background_loop_step_resolves_completed_tickets(at_app, fake):
    from backend.app.services import background

    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    fake.complete_out_of_band(next(iter(fake.tickets)))
    loop = next(loop for loop in background.LOOPS if loop.name == "autotask_poll")
    assert loop.interval_seconds(at_app) == svc.DEFAULT_POLL_SECONDS
    loop.step(at_app)
    db.session.expire_all()
    assert db.session.execute(select(Ticket)).scalar_one().resolved_at is not None


def test_the_stored_secret_can_be_removed(at_app, as_user, fake):
    configure(fake, reference=False)
    c = as_user("admin")
    post_form(c, "/settings/autotask", {"autotask_environment": "production", "autotask_api_user": fake.api_user,
                                        "autotask_integration_code": fake.integration_code, "clear_secret": "on"})
    s = db.session.get(SystemSettings, 1)
    db.session.refresh(s)
    assert s.autotask_secret is None and s.autotask_enabled is False
    r = post_form(c, "/settings/autotask/test", {}, follow_redirects=True)
    assert "secret missing" in r.get_data(as_text=True)


def test_the_customers_page_links_to_the_mapping_pages(at_app, as_user):
    cust = make_customer("Linked Co")
    html = as_user("operator").get("/customers").get_data(as_text=True)
    assert f'href="/customers/{cust.id}/autotask"' in html and 'href="/customers/autotask"' in html


def test_resolving_an_autotask_ticket_on_the_tickets_page_completes_it_in_autotask(at_app, as_user, fake):
    configure(fake)
    job, run = failed_run(mapped_customer())
    svc.create_ticket_for_run(run.id, None)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    at_id = ticket.autotask_ticket_id
    r = post_form(as_user("operator"), f"/tickets/{ticket.id}/resolve", {"note": "Fixed the repository"},
                  follow_redirects=True)
    assert "completed in Autotask" in r.get_data(as_text=True)
    assert fake.tickets[at_id]["status"] == 5
    assert [n for n in fake.notes.values() if n["ticketID"] == at_id]
    db.session.refresh(ticket)
    assert ticket.resolved_at is not None
    no_violations(fake)
