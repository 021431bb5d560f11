"""Who may call the API: a Bearer token only (never the session cookie), the token kinds (missing,
unknown, expired, revoked, of a deactivated user, read-only), and the role of the token's user,
for every operation. Every answer is checked against the OpenAPI document (conftest.py)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from backend.app.extensions import db
from backend.app.services.api_tokens import revoke

from tests.clock import TEST_NOW
from tests.conftest import login

from .conftest import error_code
from .endpoints import operations, template_of

# The current roles that may call each operation (the web app's rules: docs/api.md).
READERS = {"admin", "operator", "viewer"}
EDITORS = {"admin", "operator"}
ALLOWED = {
    "/customers": READERS, "/customers/{customer_id}": READERS, "/jobs": READERS, "/jobs/{job_id}": READERS,
    "/runs": READERS, "/runs/{run_id}": READERS, "/days/{day}": READERS, "/tickets": READERS,
    "/tickets/{ticket_id}": READERS, "/remarks": READERS, "/remarks/{remark_id}": READERS,
    "/inbox": {"admin"},
    ("POST", "/runs/{run_id}/review"): EDITORS, ("POST", "/runs/review"): EDITORS,
    ("POST", "/runs/{run_id}/remarks"): EDITORS, ("POST", "/tickets"): EDITORS,
    ("POST", "/tickets/{ticket_id}/resolve"): EDITORS, ("POST", "/inbox/{message_id}/approve"): EDITORS,
}


def allowed_roles(method: str, path: str) -> set:
    template = template_of(path)
    return ALLOWED[(method, template)] if method == "POST" else ALLOWED[template]


def test_without_a_token_every_operation_answers_401_missing_with_www_authenticate(api, world):
    for method, path, body in operations(world):
        r = api.open(method, path, json_body=body)
        assert r.status_code == 401 and error_code(r) == "missing", (method, path, r.get_json())
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)


@pytest.mark.parametrize("header,code", [
    ("Bearer bc_not-a-real-token", "invalid_token"),
    ("Bearer something-else", "invalid_token"),
    ("Basic YWxpY2U6c2VjcmV0", "invalid_token"),
    ("Bearer", "invalid_token"),
])
def test_an_unknown_or_malformed_token_is_401_invalid_token(api, world, header, code):
    r = api.open("GET", "/customers", headers={"Authorization": header})
    assert r.status_code == 401 and error_code(r) == code
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert "Northwind" not in r.get_data(as_text=True)


def test_an_expired_token_is_401_token_expired(api, personas, clock, world):
    token = api.token(personas["admin"], expires_at=TEST_NOW + timedelta(hours=1))
    assert api.get("/customers", token).status_code == 200
    clock.shift(timedelta(hours=1, seconds=1))
    r = api.get("/customers", token)
    assert r.status_code == 401 and error_code(r) == "token_expired"


def test_a_revoked_token_is_401_token_revoked(api, personas, world):
    from backend.app.models import ApiToken

    token = api.token(personas["operator"])
    assert api.get("/runs", token).status_code == 200
    revoke(db.session.execute(db.select(ApiToken)).scalar_one(), actor=personas["admin"])
    db.session.commit()
    r = api.get("/runs", token)
    assert r.status_code == 401 and error_code(r) == "token_revoked"


def test_the_token_of_a_deactivated_user_is_401_user_inactive(api, personas, world):
    token = api.token(personas["viewer"])
    personas["viewer"].is_active_user = False
    db.session.commit()
    r = api.get("/customers", token)
    assert r.status_code == 401 and error_code(r) == "user_inactive"


def test_a_logged_in_browser_session_is_not_a_token(app, api, personas, world):
    browser = app.test_client()
    assert login(browser, "alice").status_code == 302
    r = browser.get("/api/v1/customers")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "missing"
    assert "Set-Cookie" not in r.headers
    api.checker.check("GET", "/api/v1/customers", r.status_code, r.get_json())


def test_the_api_never_sets_a_session_cookie_and_needs_no_csrf_token(api, tokens, world):
    r = api.post(f"/runs/{world.failed_a.id}/review", tokens["operator"])
    assert r.status_code == 200 and r.get_json()["changed"] is True
    assert "Set-Cookie" not in r.headers and r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", ["admin", "operator", "viewer", "reporter"])
def test_every_operation_follows_the_role_of_the_tokens_user(api, personas, world, role):
    token = api.token(personas[role])
    for method, path, body in operations(world):
        r = api.open(method, path, token, json_body=body)
        if role in allowed_roles(method, path):
            assert r.status_code in (200, 201), (role, method, path, r.get_json())
        else:
            assert r.status_code == 403 and error_code(r) == "forbidden_role", (role, method, path, r.get_json())


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_a_read_only_token_reads_but_every_change_is_403_read_only_token(api, personas, world, role):
    token = api.token(personas[role], read_only=True)
    for method, path, body in operations(world):
        r = api.open(method, path, token, json_body=body)
        if method == "GET":
            assert r.status_code == 200 or (path == "/inbox" and role != "admin"), (method, path)
        else:
            assert r.status_code == 403 and error_code(r) == "read_only_token", (method, path, r.get_json())
    assert db.session.get(type(world.failed_a), world.failed_a.id).reviewed_at is None


def test_the_token_acts_in_its_users_current_role(api, world):
    from tests.helpers import make_user

    both = make_user("olga", roles=("operator", "viewer"))
    both.active_role = "viewer"
    db.session.commit()
    token = api.token(both)
    r = api.post(f"/runs/{world.failed_a.id}/review", token)
    assert r.status_code == 403 and error_code(r) == "forbidden_role"
    both.active_role = "operator"
    db.session.commit()
    assert api.post(f"/runs/{world.failed_a.id}/review", token).status_code == 200


def test_the_tokens_last_use_is_noted(api, personas, world):
    from backend.app.models import ApiToken

    token = api.token(personas["viewer"])
    api.get("/customers", token)
    row = db.session.execute(db.select(ApiToken)).scalar_one()
    db.session.refresh(row)
    assert row.last_used_at is not None and row.last_used_ip == "127.0.0.1"


def test_unknown_addresses_and_methods_answer_json_errors(api, tokens, world):
    r = api.get("/no-such-thing", tokens["admin"])
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = api.open("DELETE", "/customers", tokens["admin"])
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
    r = api.get("/customers/2147483648", tokens["admin"])
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_a_server_error_is_a_json_error_without_a_trace(api, tokens, world, monkeypatch):
    from backend.app.services import api_data

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api_data, "list_customers", boom)
    api.client.application.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        r = api.get("/customers", tokens["admin"])
    finally:
        api.client.application.config["PROPAGATE_EXCEPTIONS"] = None
    assert r.status_code == 500 and error_code(r) == "server_error"
    assert "secret internals" not in r.get_data(as_text=True)


@pytest.mark.parametrize("bad", ["2147483648", "99999999999999999999", "0"])
def test_an_id_out_of_range_is_not_found_on_every_operation(app, api, tokens, world, bad):
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or "<id:" not in rule.rule:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = rule.rule.replace("/api/v1", "", 1)
            url = re.sub(r"<id:[^>]+>", bad, url)
            r = api.open(method, url, tokens["admin"], json_body={} if method == "POST" else None)
            assert r.status_code == 404 and error_code(r) == "not_found", (method, url, r.status_code)


def test_before_the_first_user_exists_the_api_answers_401_not_the_setup_page(api):
    r = api.get("/customers", "bc_anything")
    assert r.status_code == 401 and error_code(r) == "invalid_token"
    assert api.get("/openapi.json").status_code == 200


def test_a_database_outage_is_503_database_unavailable(api, tokens, world, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from backend.app.services import api_data

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused to db.internal:5432"))

    monkeypatch.setattr(api_data, "list_runs", down)
    r = api.get("/runs", tokens["viewer"])
    assert r.status_code == 503 and error_code(r) == "database_unavailable"
    assert "db.internal" not in r.get_data(as_text=True)
