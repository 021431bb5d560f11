"""Sessions end on the server: logout, a password change, a role change and deactivation make
every earlier session (a copied cookie too) useless; logout needs a POST with the CSRF token;
the CSRF token is new after login; the session is bound to the trusted client address."""
import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import User

from .conftest import PASSWORD, csrf_token, login, make_user, post_form
from .net import app_behind_proxy, client_at, http_from, http_login, http_token, login_at


def copy_of(c, address: str = "127.0.0.1"):
    """Another client (same address and browser, as a thief replaying the cookie would pretend)
    holding a copy of ``c``'s session cookie."""
    thief = client_at(c.application, address)
    thief.set_cookie("session", c.get_cookie("session").value)
    return thief


def is_logged_in(c) -> bool:
    r = c.get("/auth/profile")
    assert r.status_code in (200, 302)
    return r.status_code == 200


@pytest.fixture
def victor(app):
    return make_user("victor", roles=("viewer",))


@pytest.fixture
def alice(app):
    return make_user("alice", roles=("admin",))


def logged_in(app, name):
    c = app.test_client()
    assert login(c, name).status_code == 302
    return c


def test_a_copied_cookie_is_refused_after_logout(app, victor):
    c = logged_in(app, "victor")
    thief = copy_of(c)
    assert is_logged_in(thief)  # the copy works while the session lives ...
    r = post_form(c, "/auth/logout", token_from="/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")
    assert not is_logged_in(c)
    r = thief.get("/auth/profile")  # ... and not after logout
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    assert "logged out, on every device" in c.get("/auth/login").get_data(as_text=True)


def test_a_password_change_ends_the_other_sessions_but_keeps_this_one(app, victor):
    c = logged_in(app, "victor")
    thief = copy_of(c)
    other_device = logged_in(app, "victor")
    r = post_form(c, "/auth/profile", {"section": "password", "pw-current": PASSWORD,
                                        "pw-password": "new-password-456", "pw-confirm": "new-password-456"},
                  follow_redirects=True)
    assert "Your other sessions have ended" in r.get_data(as_text=True)
    assert is_logged_in(c)
    assert not is_logged_in(thief) and not is_logged_in(other_device)
    assert is_logged_in(c)  # still, after the others were refused


@pytest.mark.parametrize("changes", [
    [{"action": "roles", "roles": ["operator"]}],
    [{"action": "deactivate"}, {"action": "activate"}],  # activated again: the old sessions stay ended
    [{"action": "password", "password": "reset-by-admin-1"}],
], ids=["roles", "deactivate-activate", "password-reset"])
def test_an_admin_change_ends_the_users_sessions(app, alice, victor, changes):
    c = logged_in(app, "victor")
    thief = copy_of(c)
    admin = logged_in(app, "alice")
    for change in changes:
        r = post_form(admin, f"/settings/users/{victor.id}", change)
        assert r.status_code == 302
    assert not is_logged_in(c) and not is_logged_in(thief)
    assert is_logged_in(admin)


def test_saving_unchanged_roles_ends_no_session(app, alice, victor):
    c = logged_in(app, "victor")
    post_form(logged_in(app, "alice"), f"/settings/users/{victor.id}", {"action": "roles", "roles": ["viewer"]})
    assert is_logged_in(c)


def test_an_admin_changing_their_own_roles_stays_logged_in_here(app, alice):
    make_user("adam", roles=("admin",))
    c = logged_in(app, "alice")
    other_device = logged_in(app, "alice")
    r = post_form(c, f"/settings/users/{alice.id}", {"action": "roles", "roles": ["admin", "viewer"]})
    assert r.status_code == 302
    assert is_logged_in(c) and not is_logged_in(other_device)


def test_logout_by_get_shows_a_button_and_logs_nobody_out(app, victor):
    c = logged_in(app, "victor")
    r = c.get("/auth/logout")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="logout-button"' in html and 'method="post"' in html
    assert is_logged_in(c)
    # The user menu logs out by POST with the token.
    assert 'action="/auth/logout"><input type="hidden" name="csrf_token"' in c.get("/").get_data(as_text=True)
    # Anonymous: the login page.
    r = app.test_client().get("/auth/logout")
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")


def test_logout_without_the_csrf_token_is_refused(app, victor):
    c = logged_in(app, "victor")
    r = c.post("/auth/logout")
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)
    assert is_logged_in(c)


def test_the_csrf_token_is_new_after_login(app, victor):
    c = app.test_client()
    before = csrf_token(c, "/auth/login")
    with c.session_transaction() as s:
        raw_before = s["csrf_token"]
    r = c.post("/auth/login", data={"username": "victor", "password": PASSWORD, "csrf_token": before})
    assert r.status_code == 302
    csrf_token(c, "/auth/profile")
    with c.session_transaction() as s:
        raw_after = s["csrf_token"]
    assert raw_after != raw_before
    # A token seen (or planted) before the login is worthless after it.
    r = c.post("/auth/switch-role", data={"role": "viewer", "csrf_token": before})
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)


def test_the_session_binding_ignores_a_client_sent_x_forwarded_for(app, victor):
    c = logged_in(app, "victor")  # from 127.0.0.1
    thief = copy_of(c, "10.0.0.66")
    r = thief.get("/auth/profile", headers={"X-Forwarded-For": "127.0.0.1"})  # pretending to be there
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    assert is_logged_in(c)  # the owner is not affected


def test_behind_a_trusted_proxy_the_session_is_bound_to_the_forwarded_address(app, victor):
    proxied = app_behind_proxy(app)
    proxy = client_at(proxied, "127.0.0.1")
    home = {"X-Forwarded-For": "203.0.113.5"}
    assert login_at(proxy, "victor", headers=home).status_code == 302
    assert proxy.get("/auth/profile", headers=home).status_code == 200
    r = proxy.get("/auth/profile", headers={"X-Forwarded-For": "198.51.100.9"})  # the cookie elsewhere
    assert r.status_code == 302


def test_the_generation_check_needs_no_extra_query(app, victor):
    """The generation is on the user row, which is loaded for every request anyway."""
    from .conftest import count_queries

    c = logged_in(app, "victor")
    log = []
    count_queries(lambda: c.get("/auth/profile"), log)
    assert sum(1 for q in log if "FROM users" in q) == 1


def test_over_real_http_a_copied_cookie_is_refused_after_logout(app, victor, live_server):
    """End to end against the server on a socket."""
    owner = http_from("127.0.0.1")
    assert http_login(owner, live_server, "victor").status_code == 302
    thief = http_from("127.0.0.1")
    thief.cookies.set("session", owner.cookies.get("session"))
    r = thief.get(live_server + "/auth/profile", allow_redirects=False, timeout=30)
    assert r.status_code == 200  # the copy works while the session lives

    token = http_token(owner, live_server + "/auth/profile")
    r = owner.post(live_server + "/auth/logout", data={"csrf_token": token}, allow_redirects=False, timeout=30)
    assert r.status_code == 302

    r = thief.get(live_server + "/auth/profile", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    db.session.expire_all()
    assert db.session.execute(select(User.session_generation).where(User.username == "victor")).scalar_one() == 1
