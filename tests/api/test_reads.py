"""What the read operations answer: customers, jobs with schedule and last status, runs and their
filters, one run with objects/tickets/remarks/mail, a day as Daily Jobs shows it, tickets and
remarks by state, the Inbox with its parse result."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.app.extensions import db

from tests.clock import TEST_NOW

from .conftest import error_code


def ids(r):
    return [row["id"] for row in r.get_json()["data"]]


def test_customers_and_one_customer(api, tokens, world):
    body = api.get("/customers", tokens["viewer"]).get_json()
    assert [(c["name"], c["job_count"], c["active"]) for c in body["data"]] == [
        ("Northwind Demo", 1, True), ("Contoso Hidden Ltd", 1, True)]
    world.b.active = False
    db.session.commit()
    assert [c["name"] for c in api.get("/customers", tokens["viewer"], active="false").get_json()["data"]] == [
        "Contoso Hidden Ltd"]
    assert api.get(f"/customers/{world.a.id}", tokens["viewer"]).get_json()["data"]["name"] == "Northwind Demo"
    assert api.get("/customers/9999", tokens["viewer"]).status_code == 404


def test_jobs_with_schedule_and_last_status(api, tokens, world):
    world.job_a.last_status, world.job_a.last_run_at = "Failed", world.failed_a.started_at
    db.session.commit()
    job = api.get(f"/jobs/{world.job_a.id}", tokens["viewer"]).get_json()["data"]
    assert job["schedule"]["description"].startswith("Daily at 22:00") and job["schedule"]["manual"] is True
    assert job["last_status"] == "Failed" and job["last_run_at"] == "2026-06-09T20:00:00Z"
    assert ids(api.get("/jobs", tokens["viewer"], customer_id=world.b.id)) == [world.job_b.id]


def test_archived_jobs_are_listed_for_admins_only(api, tokens, world):
    world.job_b.archived = True
    db.session.commit()
    assert ids(api.get("/jobs", tokens["operator"])) == [world.job_a.id]
    assert ids(api.get("/jobs", tokens["admin"], archived="true")) == [world.job_b.id]
    r = api.get("/jobs", tokens["operator"], archived="true")
    assert r.status_code == 403 and error_code(r) == "forbidden_role"


def test_run_filters(api, tokens, world):
    t = tokens["viewer"]
    assert set(ids(api.get("/runs", t, status="Failed"))) == {world.failed_a.id, world.failed_b.id}
    assert ids(api.get("/runs", t, job_id=world.job_a.id)) == [world.failed_a.id, world.ok_a.id]
    assert ids(api.get("/runs", t, customer_id=world.b.id)) == [world.failed_b.id]
    assert set(ids(api.get("/runs", t, **{"from": world.yesterday}))) == {world.failed_a.id, world.failed_b.id}
    # "to" as a date includes that whole UTC day; as a date-time it is the moment before which runs started.
    assert ids(api.get("/runs", t, to=(TEST_NOW - timedelta(days=2)).date().isoformat())) == [world.ok_a.id]
    assert ids(api.get("/runs", t, to="2026-06-09T20:00:00Z")) == [world.ok_a.id]
    assert set(ids(api.get("/runs", t, **{"from": "2026-06-09T22:00:00+02:00"}))) == {world.failed_a.id,
                                                                                    world.failed_b.id}
    world.failed_a.reviewed_at = TEST_NOW
    db.session.commit()
    assert ids(api.get("/runs", t, reviewed="true")) == [world.failed_a.id]
    assert world.failed_a.id not in ids(api.get("/runs", t, reviewed="false"))


@pytest.mark.parametrize("name,value", [("from", "yesterday"), ("to", "2026-13-01"), ("status", "failed"),
                                        ("reviewed", "maybe"), ("customer_id", "x"), ("job_id", "-1")])
def test_a_bad_filter_is_400_naming_it(api, tokens, world, name, value):
    r = api.get("/runs", tokens["viewer"], **{name: value})
    assert r.status_code == 400 and error_code(r) == "bad_request" and r.get_json()["error"]["field"] == name


def test_one_run_with_objects_tickets_remarks_and_mail(api, tokens, world):
    from backend.app.models import RemarkJobRun, TicketJobRun

    db.session.add_all([TicketJobRun(ticket_id=world.ticket_a.id, job_run_id=world.failed_a.id),
                        RemarkJobRun(remark_id=world.remark_a.id, job_run_id=world.failed_a.id)])
    db.session.commit()
    run = api.get(f"/runs/{world.failed_a.id}", tokens["viewer"]).get_json()["data"]
    assert run["objects"] == [{"name": "vm01", "type": "VM", "status": "Failed", "effective_status": "Failed",
                               "shown_status": "Failed", "message": "disk full"}]
    assert [t["code"] for t in run["tickets"]] == ["T-A1"] and [r["body"] for r in run["remarks"]] == [
        "Northwind remark"]
    assert "mail" not in run
    mail = api.get(f"/runs/{world.failed_a.id}", tokens["viewer"], include="mail").get_json()["data"]["mail"]
    assert mail["subject"] == "[Failed] Daily VM Backup" and mail["body_text"] == "Northwind body: vm01 failed"
    assert api.get(f"/runs/{world.ok_a.id}", tokens["viewer"], include="mail").get_json()["data"]["mail"] is None


def test_a_day_as_daily_jobs_shows_it(api, tokens, world):
    day = api.get(f"/days/{world.yesterday}", tokens["viewer"]).get_json()["data"]
    assert day["timezone"] == "Europe/Amsterdam" and day["rule"] == "worst"
    assert {(r["customer_name"], r["job_name"], r["status"]) for r in day["rows"]} == {
        ("Northwind Demo", "Daily VM Backup", "Failed"), ("Contoso Hidden Ltd", "Contoso File Backup", "Failed")}
    assert day["counts"] == {"Failed": 2}
    reviewed = api.get(f"/days/{world.yesterday}", tokens["viewer"]).get_json()["data"]["rows"][0]["runs"][0]
    assert reviewed["reviewed"] is False and reviewed["started_at"] == "2026-06-09T20:00:00Z"


@pytest.mark.parametrize("day", ["2026-6-9", "yesterday", "0001-01-01", "2026-02-30"])
def test_a_bad_day_is_400(api, tokens, world, day):
    r = api.get(f"/days/{day}", tokens["viewer"])
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "day"


def test_tickets_and_remarks_by_state(api, tokens, world):
    from backend.app.services.tickets import resolve_ticket

    resolve_ticket(world.ticket_b, None, "fixed")
    db.session.commit()
    t = tokens["viewer"]
    assert [x["code"] for x in api.get("/tickets", t).get_json()["data"]] == ["T-A1"]
    resolved = api.get("/tickets", t, state="resolved").get_json()["data"]
    assert [(x["code"], x["resolved"], x["resolution_note"]) for x in resolved] == [("T-B1", True, "fixed")]
    assert len(api.get("/tickets", t, state="all").get_json()["data"]) == 2
    assert [x["body"] for x in api.get("/remarks", t, customer_id=world.a.id).get_json()["data"]] == [
        "Northwind remark"]
    assert api.get("/tickets", t, state="closed").status_code == 400


def test_the_inbox_with_its_parse_result_and_the_body_on_request(api, tokens, world):
    rows = api.get("/inbox", tokens["admin"]).get_json()["data"]
    assert [(m["subject"], m["parse"]["job_name"], m["parse"]["parser"]) for m in rows] == [
        ("Contoso New Server backup", "Contoso New Server", "veeam")]
    assert "body_text" not in rows[0]
    rows = api.get("/inbox", tokens["admin"], include="body").get_json()["data"]
    assert rows[0]["body_text"] == "Contoso inbox body"
