"""A portal user's token sees only the portal user's customers: every id of another customer answers
404 not_found (never 403, so ids do not leak), no answer names the other customer, and the lists and
the day hold only their own rows. Mail bodies only when an admin allowed them."""
from __future__ import annotations

import pytest

from .conftest import body_text, error_code

OTHER = ("Contoso", "contoso")  # every name, text and address of customer B has this in it


def _no_b(r):
    text = body_text(r)
    assert not any(word in text for word in OTHER), text[:500]


@pytest.fixture
def portal(api, world, make_portal_user):
    user = make_portal_user("pat", customers=[world.a])
    return api.token(user, name="portal dashboard")


def test_a_portal_token_gets_404_for_every_id_of_another_customer(api, world, portal):
    b_ids = [f"/customers/{world.b.id}", f"/jobs/{world.job_b.id}", f"/runs/{world.failed_b.id}",
             f"/runs/{world.failed_b.id}?include=mail"]
    for path in b_ids:
        p, _, q = path.partition("?")
        r = api.open("GET", p, portal, query=q or None)
        assert r.status_code == 404 and error_code(r) == "not_found", (path, r.get_json())
        _no_b(r)
    # The same answer as for an id that does not exist at all.
    missing = api.get("/runs/999999", portal)
    assert missing.status_code == 404 and missing.get_json() == api.get(f"/runs/{world.failed_b.id}", portal).get_json()


def test_a_portal_token_lists_only_its_customers_rows(api, world, portal):
    for path, query in [("/customers", None), ("/jobs", None), ("/runs", None), (f"/days/{world.yesterday}", None),
                        ("/runs", {"customer_id": world.b.id}), ("/jobs", {"customer_id": world.b.id}),
                        ("/runs", {"job_id": world.job_b.id})]:
        r = api.open("GET", path, portal, query=query)
        assert r.status_code == 200, (path, r.get_json())
        _no_b(r)
    assert [c["name"] for c in api.get("/customers", portal).get_json()["data"]] == ["Northwind Demo"]
    assert {r["id"] for r in api.get("/runs", portal).get_json()["data"]} == {world.failed_a.id, world.ok_a.id}
    day = api.get(f"/days/{world.yesterday}", portal).get_json()["data"]
    assert [row["job_name"] for row in day["rows"]] == ["Daily VM Backup"] and day["counts"] == {"Failed": 1}


def test_tickets_and_remarks_are_the_providers_own_notes_never_a_portal_users(api, world, portal, tokens):
    """As on the portal's pages: no ticket or remark list, none on a run (not even their own
    customer's), whatever the id; staff see them."""
    for path in ("/tickets", "/remarks", f"/tickets/{world.ticket_b.id}", f"/remarks/{world.remark_b.id}"):
        r = api.get(path, portal)
        assert r.status_code == 403 and error_code(r) == "forbidden_role", path
        _no_b(r)
    run = api.get(f"/runs/{world.failed_a.id}", portal).get_json()["data"]
    assert run["tickets"] == [] and run["remarks"] == []
    assert {t["code"] for t in api.get("/tickets", tokens["viewer"]).get_json()["data"]} == {"T-A1", "T-B1"}


def test_a_portal_token_may_not_use_the_inbox_or_change_anything(api, world, portal):
    """The Inbox and every change are for staff roles: 403 forbidden_role whatever the id (so it says
    nothing about another customer's ids either)."""
    for method, path, body in [
        ("GET", "/inbox", None),
        ("POST", f"/inbox/{world.inbox_mail.id}/approve", {"customer_id": world.a.id}),
        ("POST", f"/runs/{world.failed_b.id}/review", None), ("POST", f"/runs/{world.failed_a.id}/review", None),
        ("POST", "/runs/review", {"ids": [world.failed_b.id]}),
        ("POST", f"/runs/{world.failed_b.id}/remarks", {"text": "x"}),
        ("POST", "/tickets", {"code": "T-9", "job_id": world.job_b.id}),
        ("POST", f"/tickets/{world.ticket_b.id}/resolve", None),
    ]:
        r = api.open(method, path, portal, json_body=body)
        assert r.status_code == 403 and error_code(r) == "forbidden_role", (method, path)
        _no_b(r)


def test_a_portal_user_reads_mail_bodies_only_when_allowed(api, world, make_portal_user):
    plain = api.token(make_portal_user("pat", customers=[world.a]))
    allowed = api.token(make_portal_user("paula", customers=[world.a], mail_bodies=True))
    assert api.get(f"/runs/{world.failed_a.id}", plain, include="mail").get_json()["data"]["mail"] is None
    mail = api.get(f"/runs/{world.failed_a.id}", allowed, include="mail").get_json()["data"]["mail"]
    assert mail["body_text"] == "Northwind body: vm01 failed"


def test_a_portal_user_bound_to_no_customer_sees_nothing(api, world, make_portal_user):
    token = api.token(make_portal_user("nobody"))
    for path in ("/customers", "/jobs", "/runs"):
        assert api.get(path, token).get_json() == {"data": [], "next_cursor": None}, path
    assert api.get(f"/days/{world.yesterday}", token).get_json()["data"]["rows"] == []
    assert api.get(f"/customers/{world.a.id}", token).status_code == 404


def test_staff_see_every_customer(api, tokens, world):
    names = {c["name"] for c in api.get("/customers", tokens["viewer"]).get_json()["data"]}
    assert names == {"Northwind Demo", "Contoso Hidden Ltd"}
