"""Every "go back to" value from a request (login ``next=``, a form's ``next`` field) passes one
check, security.safe_next: a local path, or the default page; never another host, never a 500."""
import pytest

from backend.app.security import safe_next

from .conftest import PASSWORD, csrf_token, make_customer, make_user, post_form

UNSAFE = [
    "/inbox\r\nSet-Cookie: stolen=1",   # CR/LF: would break the Location header (was a 500)
    "/\n",
    "/inbox\x00",
    "//evil.example/x",
    "/\\evil.example",
    "https://evil.example/x",
    "javascript:alert(1)",
    "inbox",
    "",
]


@pytest.mark.parametrize("target", UNSAFE)
def test_unsafe_targets_fall_back_to_the_default(app, target):
    with app.test_request_context():
        assert safe_next(target) == "/"
        assert safe_next(target, "/customers") == "/customers"


def test_local_paths_are_kept(app):
    with app.test_request_context():
        assert safe_next("/inbox?page=2&q=a%0d%0a") == "/inbox?page=2&q=a%0d%0a"  # encoded stays encoded
        assert safe_next(None) == "/"


@pytest.mark.parametrize("target", UNSAFE[:6])
def test_login_with_an_unsafe_next_goes_to_the_dashboard(client, target):
    make_user("alice", roles=("admin",))
    token = csrf_token(client, "/auth/login")
    r = client.post("/auth/login", query_string={"next": target},
                    data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "stolen" not in r.headers.get("Set-Cookie", "")


def test_login_with_a_local_next_goes_there(client):
    make_user("alice", roles=("admin",))
    token = csrf_token(client, "/auth/login")
    r = client.post("/auth/login", query_string={"next": "/inbox?page=2"},
                    data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/inbox?page=2"


def test_a_form_next_with_cr_lf_goes_to_the_page_default(as_user):
    customer = make_customer("Acme")
    c = as_user("operator")
    r = post_form(c, f"/customers/{customer.id}", {"action": "deactivate", "next": "/customers\r\nX-Evil: 1"})
    assert r.status_code == 302 and r.headers["Location"] == "/customers"
    r = post_form(c, f"/customers/{customer.id}", {"action": "activate", "next": "/customers?q=Acme"})
    assert r.headers["Location"] == "/customers?q=Acme"
