"""The OpenAPI document: valid OpenAPI 3.1 (its schemas valid JSON Schema 2020-12), public, the same
operations and roles as the routes, and true to the real answers: every answer of the API tests is
validated against it (conftest.py), and a tour of every operation shows every documented field."""
from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from backend.app.api.openapi import openapi_document

from tests.conftest import login
from tests.test_csp import inline_problems

from .endpoints import operations


def test_the_document_is_valid_openapi_3_1(openapi_doc):
    assert openapi_doc["openapi"].startswith("3.1")
    validate(openapi_doc)
    for name, schema in openapi_doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_the_document_is_public_and_sets_no_cookie(api, app):
    r = api.get("/openapi.json")
    assert r.status_code == 200 and r.get_json() == openapi_document()
    assert "Set-Cookie" not in r.headers and "X-RateLimit-Limit" not in r.headers


def test_every_route_is_documented_with_its_roles(app, openapi_doc):
    routes = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        template = re.sub(r"<(?:id:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes[(template, method.lower())] = app.view_functions[rule.endpoint]
    documented = {(path, method) for path, methods in openapi_doc["paths"].items() for method in methods}
    assert set(routes) == documented
    for (path, method), view in routes.items():
        op = openapi_doc["paths"][path][method]
        assert op["x-roles"] == list(view.allowed_roles or []), (path, method)
        assert op["x-write"] == getattr(view, "api_write", False), (path, method)
        params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert params == set(re.findall(r"\{([^}]+)\}", path)), (path, method)


def test_a_tour_of_every_operation_shows_every_documented_field(api, personas, world, make_portal_user, monkeypatch,
                                                                 app):
    """Each answer is validated on the way (conftest.py); afterwards every property of every
    component schema must have shown up in at least one of them."""
    admin = api.token(personas["admin"])
    for method, path, body in operations(world):
        assert api.open(method, path, admin, json_body=body).status_code in (200, 201), (method, path)
    api.post("/tickets", admin, {"code": "T-RUN", "run_id": world.failed_a.id})
    api.get(f"/runs/{world.failed_a.id}", admin, include="mail")
    api.get("/inbox", admin, include="body")
    api.get("/runs", admin, limit="1")  # a next_cursor
    api.get("/runs", admin, limit="0")  # an error with its field
    api.get("/customers")  # 401
    api.get("/customers", api.token(personas["reporter"]))  # 403
    api.get("/customers/999999", admin)  # 404
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_PER_MINUTE", 1)
    api.get("/customers", admin)  # 429
    missing = api.checker.coverage.missing(api.checker.doc)
    assert missing == [], f"documented but never in an answer: {missing}"


def test_the_docs_page_lists_every_operation_with_a_curl_example(app, personas, openapi_doc):
    client = app.test_client()
    assert login(client, "victor").status_code == 302
    r = client.get("/docs/api")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert inline_problems(html) == []
    for path, methods in openapi_doc["paths"].items():
        for method in methods:
            assert f"{method.upper()} /api/v1{path}" in html, (method, path)
    assert html.count("curl -sS") >= len(openapi_doc["paths"])
    assert "Authorization: Bearer $BACKUPCHECKS_TOKEN" in html
    assert "rate_limited" in html and "portal" in html
    index = client.get("/docs/").get_data(as_text=True)
    assert 'href="/docs/api"' in index
