"""The API tests' client: tokens for the personas (and a portal user), and every answer checked
against the OpenAPI document (openapi_check.py) before the test sees it."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Optional

import pytest

from tests.helpers import make_user

from .openapi_check import OpenApiChecker

BASE = "/api/v1"


class ApiClient:
    """``api.get("/runs", token, status="Failed")``: the answer, already validated against the document."""

    def __init__(self, app, checker: OpenApiChecker):
        self.app = app
        self.client = app.test_client()
        self.checker = checker

    def token(self, user, *, name: str = "script", read_only: bool = False,
              expires_at: Optional[datetime] = None) -> str:
        from backend.app.extensions import db
        from backend.app.services.api_tokens import create_token

        new = create_token(user, name, read_only=read_only, expires_at=expires_at)
        db.session.commit()
        return new.secret

    def open(self, method: str, path: str, token: Optional[str] = None, *, json_body=None, query=None,
             headers=None, check: bool = True, raw_body: Optional[bytes] = None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        kwargs = {"method": method, "headers": all_headers, "query_string": query}
        if json_body is not None:
            kwargs["json"] = json_body
        elif raw_body is not None:
            kwargs["data"] = raw_body
            kwargs["content_type"] = "application/json"
        r = self.client.open(BASE + path, **kwargs)
        assert r.mimetype == "application/json", (method, path, r.status_code, r.get_data(as_text=True)[:300])
        if check:
            self.checker.check(method, BASE + path, r.status_code, r.get_json())
        if 200 <= r.status_code < 300 and token is not None and not path.startswith("/openapi"):
            assert r.headers.get("X-RateLimit-Limit"), (method, path)
        if r.status_code >= 400:
            assert set(r.get_json()) == {"error"}, r.get_json()
        return r

    def get(self, path: str, token: Optional[str] = None, **query):
        return self.open("GET", path, token, query=query or None)

    def post(self, path: str, token: Optional[str] = None, body=None, **kw):
        return self.open("POST", path, token, json_body=body, **kw)


@pytest.fixture(scope="session")
def openapi_doc(_session_app):
    from backend.app.api.openapi import openapi_document

    with _session_app.app_context():
        return openapi_document()


@pytest.fixture
def api(app, openapi_doc):
    return ApiClient(app, OpenApiChecker(openapi_doc))


@pytest.fixture
def tokens(api, personas):
    """A read-write token per persona: tokens["viewer"]."""
    return {role: api.token(user, name=f"{role} script") for role, user in personas.items()}


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def body_text(response) -> str:
    return json.dumps(response.get_json())


@pytest.fixture
def make_portal_user(app):
    """make_portal_user("pat", customers=[a]) -> a portal user bound to those customers."""
    from backend.app.extensions import db
    from backend.app.models import user_customers

    def _make(username: str, customers=(), mail_bodies: bool = False):
        user = make_user(username, roles=("portal",))
        user.portal_mail_bodies = mail_bodies
        db.session.flush()
        for customer in customers:
            db.session.execute(user_customers.insert().values(user_id=user.id, customer_id=customer.id))
        db.session.commit()
        return user

    return _make


# --- A small world: two customers, so a portal user of one can try every id of the other ------------

@pytest.fixture
def world(app):
    """Customer A (Northwind Demo) and B (Contoso Hidden Ltd), each with a job on a schedule, runs
    of last night (one failed per customer, A's also a success with objects and a mail), a ticket
    and a remark each, and a mail in the Inbox for a job nobody approved yet."""
    from types import SimpleNamespace
    from datetime import timedelta

    from backend.app.extensions import db
    from backend.app.models import RunObject
    from backend.app.services.tickets import create_remark, create_ticket
    from tests.clock import TEST_NOW
    from tests.helpers import make_customer, make_job, make_mail, make_run

    long_ago = TEST_NOW - timedelta(days=200)
    last_night = TEST_NOW.replace(hour=20, minute=0, second=0, microsecond=0) - timedelta(days=1)
    daily = {"kind": "weekdays", "weekdays": [0, 1, 2, 3, 4, 5, 6], "time": "22:00", "grace_minutes": 120}
    a = make_customer("Northwind Demo")
    b = make_customer("Contoso Hidden Ltd")
    job_a = make_job(a, "Daily VM Backup", sender="veeam@northwind.test", manual_schedule=daily,
                     created_at=long_ago)
    job_b = make_job(b, "Contoso File Backup", sender="veeam@contoso.test", manual_schedule=daily,
                     created_at=long_ago)
    mail_a = make_mail("veeam@northwind.test", "[Failed] Daily VM Backup", body_text="Northwind body: vm01 failed",
                       received_at=last_night + timedelta(hours=1), state="processed", parsed=True,
                       software="Veeam Backup & Replication", job_name="Daily VM Backup", overall_status="Failed",
                       parse_result={"objects": [{"name": "vm01"}]})
    mail_b = make_mail("veeam@contoso.test", "[Failed] Contoso File Backup", body_text="Contoso secret body",
                       received_at=last_night + timedelta(hours=1), state="processed", parsed=True)
    failed_a = make_run(job_a, "Failed", started_at=last_night, ended_at=last_night + timedelta(minutes=30),
                        message="vm01: disk full", mail_message_id=mail_a.id)
    db.session.add(RunObject(job_run_id=failed_a.id, name="vm01", type="VM", status="Failed",
                             effective_status="Failed", message="disk full"))
    ok_a = make_run(job_a, "Success", started_at=last_night - timedelta(days=1))
    failed_b = make_run(job_b, "Failed", started_at=last_night, message="Contoso share offline",
                        mail_message_id=mail_b.id)
    inbox_mail = make_mail("backup@contoso.test", "Contoso New Server backup", state="inbox", parsed=True,
                           is_report=True, software="Veeam Backup & Replication", backup_type="Backup Job",
                           job_name="Contoso New Server", overall_status="Success", body_text="Contoso inbox body",
                           received_at=last_night, parser_name="veeam", parse_result={"objects": []})
    ticket_a = create_ticket("T-A1", "Northwind disk", [{"type": "job", "job_id": job_a.id}], None)
    ticket_b = create_ticket("T-B1", "Contoso disk", [{"type": "job", "job_id": job_b.id}], None)
    remark_a = create_remark("Northwind remark", [{"type": "customer", "customer_id": a.id}], None)
    remark_b = create_remark("Contoso remark", [{"type": "job", "job_id": job_b.id}], None)
    db.session.commit()
    return SimpleNamespace(a=a, b=b, job_a=job_a, job_b=job_b, failed_a=failed_a, ok_a=ok_a, failed_b=failed_b,
                           mail_a=mail_a, mail_b=mail_b, inbox_mail=inbox_mail, ticket_a=ticket_a,
                           ticket_b=ticket_b, remark_a=remark_a, remark_b=remark_b,
                           yesterday=(TEST_NOW - timedelta(days=1)).date().isoformat())
