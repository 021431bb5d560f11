"""Accounts: first-run setup, login, throttling, logout, profile, roles, user management."""
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, User

from .conftest import PASSWORD, csrf_token, login, make_user, post_form


def events():
    return [a.event for a in db.session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]


def test_without_users_every_page_leads_to_setup(client):
    for path in ("/", "/inbox", "/settings", "/auth/login"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/auth/setup"), path


def test_setup_creates_the_first_admin_once(client):
    token = csrf_token(client, "/auth/setup")
    r = client.post("/auth/setup", data={"username": "firstadmin", "password": PASSWORD, "confirm": PASSWORD,
                                         "csrf_token": token})
    assert r.status_code == 302
    user = db.session.execute(select(User)).scalar_one()
    assert user.username == "firstadmin" and user.role_list == ["admin"]
    assert client.get("/").status_code == 200  # logged in straight away
    # The page is closed now, even for a second visitor.
    other = client.application.test_client()
    r = other.get("/auth/setup")
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")
    r = other.post("/auth/setup", data={"username": "intruder", "password": PASSWORD, "confirm": PASSWORD,
                                        "csrf_token": csrf_token(other, "/auth/login")})
    assert db.session.execute(select(User.username)).scalars().all() == ["firstadmin"]


def test_two_setups_at_the_same_moment_create_exactly_one_admin(app, monkeypatch):
    """Two people send the first-run form at once: one admin; the other is told plainly."""
    import threading
    import time

    from backend.app.services import accounts

    real_hash = accounts.hash_password

    def slow_hash(password):  # widen the window between "no users yet?" and the insert
        time.sleep(0.5)
        return real_hash(password)

    monkeypatch.setattr(accounts, "hash_password", slow_hash)
    clients = [app.test_client(), app.test_client()]
    tokens = [csrf_token(c, "/auth/setup") for c in clients]
    start = threading.Barrier(2)
    results, errors = {}, []

    def send(i):
        try:
            start.wait(timeout=10)
            results[i] = clients[i].post("/auth/setup", data={"username": f"admin{i}", "password": PASSWORD,
                                                              "confirm": PASSWORD, "csrf_token": tokens[i]})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    db.session.expire_all()
    admins = db.session.execute(select(User)).scalars().all()
    assert len(admins) == 1 and admins[0].role_list == ["admin"]
    winner = int(admins[0].username[-1])
    loser = 1 - winner
    assert results[winner].status_code == 302 and results[winner].headers["Location"] == "/"
    assert results[loser].status_code == 302 and results[loser].headers["Location"].endswith("/auth/login")
    page = clients[loser].get("/auth/login").get_data(as_text=True)
    assert "set up a moment ago by someone else" in page
    assert clients[loser].get("/").status_code == 302  # not logged in
    assert events().count("user.create") == 1


def test_setup_rejects_a_short_password_with_a_message(client):
    token = csrf_token(client, "/auth/setup")
    r = client.post("/auth/setup", data={"username": "a", "password": "short", "confirm": "short", "csrf_token": token})
    assert r.status_code == 200
    assert "at least 10" in r.get_data(as_text=True)
    assert db.session.execute(select(User)).first() is None


def test_login_wrong_password_and_unknown_user_get_the_same_clear_message(client):
    make_user("alice", roles=("admin",))
    r = login(client, "alice", "wrong-password-123")
    assert r.status_code == 401 and "Unknown user name or wrong password" in r.get_data(as_text=True)
    r = login(client, "nobody", "wrong-password-123")
    assert r.status_code == 401 and "Unknown user name or wrong password" in r.get_data(as_text=True)
    # One audit row for the address, counting both (tests/test_login_throttle.py has more).
    row = db.session.execute(select(AuditLog).where(AuditLog.event == "login.failed")).scalar_one()
    assert row.after["failed"] == 2 and row.after["user names"] == ["alice", "nobody"]


def test_login_then_logout(client):
    make_user("alice", roles=("admin",))
    r = login(client, "alice")
    assert r.status_code == 302
    assert client.get("/").status_code == 200
    r = post_form(client, "/auth/logout", token_from="/")
    assert r.status_code == 302
    r = client.get("/")
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    assert {"login", "logout"} <= set(events())


def test_deactivated_user_cannot_log_in(client):
    make_user("gone", roles=("viewer",), active=False)
    r = login(client, "gone")
    assert r.status_code == 401 and "deactivated" in r.get_data(as_text=True)


class CountingHasher:
    """Wraps the real Argon2 hasher and counts verifications."""

    def __init__(self, real):
        self.real, self.verifies = real, 0

    def verify(self, hashed, password):
        self.verifies += 1
        return self.real.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_every_login_path_costs_exactly_one_argon2_verification(client, monkeypatch):
    """Equal work whether the name exists or not, so timing does not reveal user names."""
    from backend.app.services import accounts

    make_user("alice", roles=("admin",))
    make_user("gone", roles=("viewer",), active=False)
    hasher = CountingHasher(accounts._hasher)
    monkeypatch.setattr(accounts, "_hasher", hasher)
    counts = {}
    for path, name, password, status in [("unknown name", "nobody", PASSWORD, 401),
                                         ("wrong password", "alice", "wrong-password-123", 401),
                                         ("deactivated, right password", "gone", PASSWORD, 401),
                                         ("deactivated, wrong password", "gone", "wrong-password-123", 401),
                                         ("right password", "alice", PASSWORD, 302)]:
        c = client.application.test_client()
        token = csrf_token(c, "/auth/login")
        before = hasher.verifies
        r = c.post("/auth/login", data={"username": name, "password": password, "csrf_token": token})
        assert r.status_code == status, path
        counts[path] = hasher.verifies - before
    assert counts == dict.fromkeys(counts, 1)


def test_outside_the_tests_passwords_are_hashed_with_argon2id_at_its_default_cost():
    """The suite swaps in a cheap Argon2id hasher (tests/conftest.py); the app's own is the library's
    default (RFC 9106 low-memory: 64 MiB, 3 passes, 4 lanes), and so is the hash for unknown names."""
    from argon2 import PasswordHasher, Type, extract_parameters

    from .conftest import PRODUCTION_PASSWORD_HASHING

    hasher, dummy = PRODUCTION_PASSWORD_HASHING["hasher"], PRODUCTION_PASSWORD_HASHING["dummy_hash"]
    default = PasswordHasher()
    assert (hasher.type, hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (
        Type.ID, default.memory_cost, default.time_cost, default.parallelism) == (Type.ID, 65536, 3, 4)
    params = extract_parameters(dummy)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (Type.ID, 65536, 3, 4)


def test_login_rejects_a_post_without_csrf_token_and_changes_nothing(client):
    make_user("alice", roles=("admin",))
    r = client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 400
    assert "security token" in r.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out


def test_login_redirects_only_to_local_next(client):
    make_user("alice", roles=("admin",))
    token = csrf_token(client, "/auth/login")
    r = client.post("/auth/login?next=https://evil.example/x", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/"


def test_role_switch_changes_navigation_and_is_remembered(app):
    make_user("multi", roles=("operator", "viewer"))
    c = app.test_client()
    login(c, "multi")
    assert "Run Checks" in c.get("/").get_data(as_text=True)
    r = post_form(c, "/auth/switch-role", {"role": "viewer"}, token_from="/")
    assert r.status_code == 302
    page = c.get("/").get_data(as_text=True)
    assert 'href="/run-checks"' not in page
    assert c.get("/run-checks").status_code == 403
    # Remembered across logins.
    c2 = app.test_client()
    login(c2, "multi")
    assert c2.get("/run-checks").status_code == 403
    assert db.session.execute(select(User.active_role).where(User.username == "multi")).scalar_one() == "viewer"


def test_cannot_switch_to_a_role_one_does_not_hold(as_user):
    c = as_user("viewer")
    r = post_form(c, "/auth/switch-role", {"role": "admin"}, token_from="/")
    assert r.status_code == 400
    assert c.get("/settings").status_code == 403


def test_profile_password_change_needs_the_current_password(as_user):
    c = as_user("viewer")
    r = post_form(c, "/auth/profile", {"section": "password", "pw-current": "not-it-at-all",
                                        "pw-password": "new-password-456", "pw-confirm": "new-password-456"})
    assert r.status_code == 200 and "current password is wrong" in r.get_data(as_text=True)
    r = post_form(c, "/auth/profile", {"section": "password", "pw-current": PASSWORD,
                                        "pw-password": "new-password-456", "pw-confirm": "new-password-456"})
    assert r.status_code == 302
    fresh = c.application.test_client()
    assert login(fresh, "victor", "new-password-456").status_code == 302


def test_profile_theme_is_saved_and_applied(as_user):
    c = as_user("reporter")
    post_form(c, "/auth/profile", {"section": "theme", "theme-theme": "dark"})
    assert 'data-bs-theme="dark"' in c.get("/").get_data(as_text=True)


def test_admin_manages_users_and_the_last_admin_is_protected(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/users/new", {"username": "newbie", "password": "long-enough-pw", "roles": ["operator", "viewer"]})
    assert r.status_code == 302
    newbie = db.session.execute(select(User).where(User.username == "newbie")).scalar_one()
    assert newbie.role_list == ["operator", "viewer"]
    alice = db.session.execute(select(User).where(User.username == "alice")).scalar_one()
    # Demoting, deactivating or deleting the last active admin is refused with a message.
    for data in ({"action": "roles", "roles": ["viewer"]}, {"action": "deactivate"}, {"action": "delete"}):
        r = post_form(c, f"/settings/users/{alice.id}", data, follow_redirects=True)
        assert "last active admin" in r.get_data(as_text=True) or "own account" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, alice.id).role_list == ["admin"]
    # Bad input: a duplicate name and an unknown role.
    r = post_form(c, "/settings/users/new", {"username": "NEWBIE", "password": "long-enough-pw", "roles": ["viewer"]}, follow_redirects=True)
    assert "already exists" in r.get_data(as_text=True)
    r = post_form(c, "/settings/users/new", {"username": "x2", "password": "long-enough-pw", "roles": ["root"]}, follow_redirects=True)
    assert "Unknown role" in r.get_data(as_text=True)
    # Reset password, deactivate, delete.
    post_form(c, f"/settings/users/{newbie.id}", {"action": "password", "password": "another-long-pw"})
    post_form(c, f"/settings/users/{newbie.id}", {"action": "deactivate"})
    db.session.expire_all()
    assert db.session.get(User, newbie.id).is_active_user is False
    post_form(c, f"/settings/users/{newbie.id}", {"action": "delete"})
    assert db.session.get(User, newbie.id) is None
    assert {"user.create", "user.password_reset", "user.deactivate", "user.delete"} <= set(events())


def test_expired_session_leads_back_to_login(app, personas):
    c = app.test_client()
    login(c, "alice")
    with c.session_transaction() as s:
        s.clear()
    r = c.get("/settings")
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
