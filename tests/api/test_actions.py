"""The changes a read-write token may make within its user's role: review runs, add a remark, create
and resolve an internal ticket, approve an Inbox mail. Each goes through the same service as the
page and is audited as the token's user, "via API token <name>"."""
from __future__ import annotations

from backend.app.extensions import db
from backend.app.models import AuditLog, Job, JobRun, MailMessage

from .conftest import error_code


def audit_entries(event):
    return db.session.execute(db.select(AuditLog).where(AuditLog.event == event)).scalars().all()


def test_review_one_run_audited_via_the_token(api, personas, world):
    token = api.token(personas["operator"], name="NOC screen")
    r = api.post(f"/runs/{world.failed_a.id}/review", token)
    assert r.status_code == 200 and r.get_json()["changed"] is True and r.get_json()["data"]["reviewed"] is True
    again = api.post(f"/runs/{world.failed_a.id}/review", token)
    assert again.status_code == 200 and again.get_json()["changed"] is False
    [entry] = audit_entries("run.review")
    assert entry.username == "oscar" and entry.summary.endswith("(via API token 'NOC screen')")
    assert db.session.get(JobRun, world.failed_a.id).reviewed_by_id == personas["operator"].id
    assert api.post("/runs/999999/review", token).status_code == 404


def test_review_several_runs(api, tokens, world):
    world.ok_a.reviewed_at = world.ok_a.started_at
    db.session.commit()
    r = api.post("/runs/review", tokens["admin"], {"ids": [world.failed_a.id, world.failed_b.id, world.ok_a.id,
                                                           999999]})
    assert r.get_json() == {"reviewed": sorted([world.failed_a.id, world.failed_b.id]),
                            "already_reviewed": [world.ok_a.id], "not_found": [999999]}
    assert len(audit_entries("job.review")) == 2


def test_bulk_review_refuses_a_bad_body(api, tokens, world):
    for body in ({"ids": []}, {"ids": "1"}, {"ids": [True]}, {"ids": ["1"]}, {"other": 1},
                 {"ids": list(range(1, 502))}):
        r = api.post("/runs/review", tokens["admin"], body)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == "ids", body
    r = api.open("POST", "/runs/review", tokens["admin"], raw_body=b"not json")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "body"


def test_add_a_remark_to_a_run(api, tokens, world):
    r = api.post(f"/runs/{world.failed_b.id}/remarks", tokens["operator"], {"text": "Share back online"})
    assert r.status_code == 201
    remark = r.get_json()["data"]
    assert remark["body"] == "Share back online" and remark["linked_runs"] == 1
    assert remark["scopes"][0]["job_id"] == world.job_b.id
    assert "via API token" in audit_entries("remark.created")[-1].summary
    r = api.post(f"/runs/{world.failed_b.id}/remarks", tokens["operator"], {"text": "  "})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "text"


def test_create_a_ticket_for_a_run_a_job_or_a_customer_and_resolve_it(api, tokens, world):
    t = tokens["operator"]
    r = api.post("/tickets", t, {"code": "T-900", "description": "Disk full", "run_id": world.failed_a.id})
    assert r.status_code == 201
    ticket = r.get_json()["data"]
    assert ticket["linked_runs"] == 1 and ticket["scopes"][0]["job_id"] == world.job_a.id
    for target in ({"job_id": world.job_b.id}, {"customer_id": world.a.id}):
        assert api.post("/tickets", t, {"code": "T-901", **target}).status_code == 201
    for body, field in [({"code": "T-1"}, "run_id"), ({"code": "T-1", "job_id": 1, "customer_id": 1}, "customer_id"),
                        ({"code": "", "job_id": world.job_a.id}, "code"), ({"code": "T-1", "job_id": 999999}, "job_id"),
                        ({"code": "T-1", "run_id": "1"}, "run_id")]:
        r = api.post("/tickets", t, body)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field, (body, r.get_json())
    r = api.post(f"/tickets/{ticket['id']}/resolve", t, {"note": "replaced disk"})
    assert r.status_code == 200 and r.get_json()["data"]["resolved"] is True
    assert r.get_json()["data"]["resolution_note"] == "replaced disk"
    again = api.post(f"/tickets/{ticket['id']}/resolve", t)
    assert again.status_code == 409 and error_code(again) == "conflict"
    assert api.post("/tickets/999999/resolve", t).status_code == 404
    mine = [e for e in audit_entries("ticket.created") + audit_entries("ticket.resolved") if e.username == "oscar"]
    assert len(mine) == 4 and all(e.summary.endswith("(via API token 'operator script')") for e in mine)


def test_approve_an_inbox_mail_to_a_customer_by_name(api, tokens, world):
    r = api.post(f"/inbox/{world.inbox_mail.id}/approve", tokens["operator"], {"customer_name": "Contoso Hidden Ltd"})
    assert r.status_code == 200, r.get_json()
    data = r.get_json()["data"]
    assert data["runs_created"] == 1 and data["job"]["customer_id"] == world.b.id
    assert data["job"]["job_name"] == "Contoso New Server"
    assert db.session.get(MailMessage, world.inbox_mail.id).state == "processed"
    assert db.session.execute(db.select(Job).where(Job.job_name == "Contoso New Server")).scalar_one()
    assert "via API token" in audit_entries("job.create")[-1].summary
    again = api.post(f"/inbox/{world.inbox_mail.id}/approve", tokens["operator"], {"customer_id": world.b.id})
    assert again.status_code == 404


def test_approve_refuses_a_bad_body_and_an_unparsed_mail(api, tokens, world):
    from tests.helpers import make_mail

    t = tokens["admin"]
    for body, field in [({}, "customer_id"), ({"customer_id": world.a.id, "customer_name": "X"}, "customer_id"),
                        ({"customer_id": 999999}, "customer_id"), ({"customer_name": 5}, "customer_name")]:
        r = api.post(f"/inbox/{world.inbox_mail.id}/approve", t, body)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field, body
    unparsed = make_mail("x@example.test", "hello", state="inbox", parsed=False)
    db.session.commit()
    r = api.post(f"/inbox/{unparsed.id}/approve", t, {"customer_id": world.a.id})
    assert r.status_code == 409 and error_code(r) == "conflict"
