"""Two-factor authentication (TOTP): enrolment, the code step, replay, recovery codes, required
per role, admin reset, remember this browser, throttling, the pages' CSP. Codes are computed for
the suite's frozen clock (tests/clock.py), as the app sees it."""
import re
from datetime import timedelta

import pyotp
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, LoginAttempt, RecoveryCode, User, utcnow
from backend.app.services import accounts, two_factor
from backend.app.services.settings import get_settings
from backend.app.web import CONTENT_SECURITY_POLICY

from .conftest import PASSWORD, PERSONAS, csrf_token, login, make_user, post_form
from .test_csp import inline_problems


def now():
    """The app's clock: every test runs frozen at tests/clock.py:TEST_NOW."""
    return utcnow()


def code_for(secret, at=None):
    return pyotp.TOTP(secret).at(at or now())


def enrolled(username="victor", roles=("viewer",)):
    user = make_user(username, roles=roles)
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = utcnow()
    db.session.commit()
    return user


def events():
    return [a.event for a in db.session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]


def reload(user):
    db.session.expire_all()
    return db.session.get(User, user.id)


def password_step(client, name):
    r = login(client, name)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return r


def send_code(client, code, **extra):
    token = csrf_token(client, "/auth/two-factor")
    return client.post("/auth/two-factor", data={"code": code, "csrf_token": token, **extra})


def logged_in(client) -> bool:
    return client.get("/auth/profile").status_code == 200


# --- Enrolment -------------------------------------------------------------------------------

def test_enrolment_needs_a_right_code_then_shows_ten_recovery_codes_once(app, as_user):
    c = as_user("viewer")
    other = as_user("viewer")  # another session of the same user
    r = c.get("/auth/two-factor/setup")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'src="data:image/svg+xml;base64,' in html
    user = db.session.execute(select(User).where(User.username == "victor")).scalar_one()
    secret = user.totp_secret
    assert two_factor.formatted_secret(secret) in html  # the key in text, for typing by hand
    assert c.get("/auth/two-factor/setup").get_data(as_text=True).count(two_factor.formatted_secret(secret)) == 1

    wrong = str((int(code_for(secret)) + 1) % 1_000_000).zfill(6)
    r = post_form(c, "/auth/two-factor/setup", {"code": wrong}, token_from="/auth/profile")
    assert r.status_code == 400 and "not right" in r.get_data(as_text=True)
    assert not reload(user).has_two_factor  # a wrong confirmation keeps it off

    r = post_form(c, "/auth/two-factor/setup", {"code": code_for(secret)}, token_from="/auth/profile")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    codes_block = re.search(r'<pre[^>]*id="recovery-codes">(.*?)</pre>', html, re.S).group(1)
    shown = codes_block.split()
    assert len(set(shown)) == 10 and "recovery-codes-download" in html and "js/pages/recovery_codes.js" in html
    user = reload(user)
    assert user.has_two_factor
    stored = db.session.execute(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).scalars().all()
    assert len(stored) == 10 and not set(shown) & set(stored)  # hashed, never in clear
    assert "user.2fa_enabled" in events()
    assert logged_in(c) and not logged_in(other)  # this session goes on, the other ended


# --- The code step -----------------------------------------------------------------------------

def test_login_with_a_code_and_nothing_else_is_reachable_before_it(app, client):
    user = enrolled()
    r = password_step(client, "victor")
    assert r.headers["Location"].endswith("/auth/two-factor")
    for path in ("/", "/auth/profile", "/docs/", "/auth/two-factor/setup"):
        r = client.get(path)
        assert r.status_code == 302 and "/auth/login" in r.headers["Location"], path
    r = send_code(client, code_for(user.totp_secret))
    assert r.status_code == 302 and not r.headers["Location"].endswith("/auth/two-factor")
    assert logged_in(client)
    assert events()[-1] == "login.second_factor"


def test_a_wrong_code_is_refused_and_counted(app, client):
    user = enrolled()
    password_step(client, "victor")
    wrong = str((int(code_for(user.totp_secret)) + 7) % 1_000_000).zfill(6)
    r = send_code(client, wrong)
    assert r.status_code == 401 and "not right" in r.get_data(as_text=True)
    assert not logged_in(client)
    assert db.session.execute(select(func.count(LoginAttempt.id))).scalar_one() == 1
    assert "login.failed" in events()


def test_a_code_is_accepted_once(app, client, clock):
    user = enrolled()
    code = code_for(user.totp_secret)
    password_step(client, "victor")
    assert send_code(client, code).status_code == 302
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/profile")})

    second = app.test_client()
    password_step(second, "victor")
    r = send_code(second, code)  # the same code, still within its 30 seconds
    assert r.status_code == 401 and not logged_in(second)
    clock.shift(timedelta(seconds=30))  # the next step's code works
    assert send_code(second, code_for(user.totp_secret)).status_code == 302 and logged_in(second)


def test_one_step_of_clock_skew_is_allowed_not_two(app, client):
    user = enrolled()
    password_step(client, "victor")
    assert send_code(client, code_for(user.totp_secret, now() - timedelta(seconds=65))).status_code == 401
    assert send_code(client, code_for(user.totp_secret, now() - timedelta(seconds=30))).status_code == 302


def test_a_recovery_code_works_once(app, client):
    user = enrolled()
    codes = two_factor._new_recovery_codes(user)
    db.session.commit()
    password_step(client, "victor")
    r = send_code(client, codes[3].upper())  # any capitalisation
    assert r.status_code == 302 and logged_in(client)
    assert two_factor.recovery_codes_left(user) == 9
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/profile")})
    again = app.test_client()
    password_step(again, "victor")
    assert send_code(again, codes[3]).status_code == 401 and not logged_in(again)


def test_code_attempts_are_throttled_like_passwords(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_THROTTLE_MAX", 3)
    user = enrolled()
    password_step(client, "victor")
    wrong = str((int(code_for(user.totp_secret)) + 7) % 1_000_000).zfill(6)
    for _ in range(3):
        assert send_code(client, wrong).status_code == 401
    r = send_code(client, code_for(user.totp_secret))  # even the right code waits now
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert not logged_in(client)
    # The password counts the same failures: a new login from this address waits too.
    assert login(app.test_client(), "victor").status_code == 429


# --- Required per role, admin reset ------------------------------------------------------------

def test_a_required_role_without_2fa_is_sent_to_enrolment_and_can_do_nothing_else(app, client, personas):
    admin = as_admin(app)
    r = post_form(admin, "/settings/users/two-factor", {"two_factor_roles": ["operator"]}, token_from="/settings/users")
    assert r.status_code == 302 and get_settings().two_factor_required_roles == "operator"
    assert "settings.two_factor" in events()

    assert password_step(client, "rita").headers["Location"] == "/"  # reporter: not required
    oscar = app.test_client()
    r = password_step(oscar, "oscar")
    assert r.headers["Location"].endswith("/auth/two-factor/enrol")
    for path in ("/", "/run-checks", "/auth/profile", "/auth/two-factor"):
        r = oscar.get(path)
        assert r.status_code == 302 and ("/auth/login" in r.headers["Location"]
                                         or r.headers["Location"].endswith("/auth/two-factor/enrol")), path
    assert oscar.get("/auth/two-factor/enrol").status_code == 200
    user = reload(personas["operator"])
    token = csrf_token(oscar, "/auth/two-factor/enrol")
    r = oscar.post("/auth/two-factor/enrol", data={"code": code_for(user.totp_secret), "csrf_token": token})
    assert r.status_code == 200 and "Your recovery codes" in r.get_data(as_text=True)
    assert logged_in(oscar) and reload(user).has_two_factor
    # Required: it can't be switched off.
    r = post_form(oscar, "/auth/two-factor/disable", {"password": PASSWORD})
    assert reload(user).has_two_factor


def as_admin(app):
    c = app.test_client()
    assert login(c, PERSONAS["admin"]).status_code == 302
    return c


def test_an_admin_resets_2fa_audited_and_the_users_sessions_end(app, personas):
    user = personas["viewer"]
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = utcnow()
    two_factor._new_recovery_codes(user)
    db.session.commit()
    victor = app.test_client()
    password_step(victor, "victor")
    assert send_code(victor, code_for(user.totp_secret)).status_code == 302 and logged_in(victor)

    admin = as_admin(app)
    assert "Reset 2FA" in admin.get("/settings/users").get_data(as_text=True)
    r = post_form(admin, f"/settings/users/{user.id}", {"action": "reset_2fa"}, token_from="/settings/users")
    assert r.status_code == 302
    user = reload(user)
    assert not user.has_two_factor and user.totp_secret is None and two_factor.recovery_codes_left(user) == 0
    row = db.session.execute(select(AuditLog).where(AuditLog.event == "user.2fa_reset")).scalar_one()
    assert row.user_id == personas["admin"].id and str(row.target_id) == str(user.id)
    assert not logged_in(victor)  # their session ended
    assert logged_in(admin)
    assert password_step(app.test_client(), "victor").headers["Location"] == "/"  # password alone again


# --- Remember this browser ---------------------------------------------------------------------

def test_remember_this_browser_skips_the_step_until_the_password_changes(app, client, clock):
    user = enrolled()
    settings = get_settings()
    settings.two_factor_remember_allowed = True
    db.session.commit()
    password_step(client, "victor")
    assert 'name="remember"' in client.get("/auth/two-factor").get_data(as_text=True)
    r = send_code(client, code_for(user.totp_secret), remember="1")
    assert two_factor.REMEMBER_COOKIE in " ".join(r.headers.getlist("Set-Cookie"))
    assert "HttpOnly" in " ".join(h for h in r.headers.getlist("Set-Cookie") if two_factor.REMEMBER_COOKIE in h)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/profile")})

    assert password_step(client, "victor").headers["Location"] == "/"  # remembered: no code asked
    assert logged_in(client)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/profile")})

    accounts.set_password(reload(user), "a-new-password-1", actor=None)
    db.session.commit()
    r = login(client, "victor", "a-new-password-1")
    assert r.headers["Location"].endswith("/auth/two-factor")  # the password change forgot the browser

    # Deactivation forgets it too (and so do enabling, disabling and resetting 2FA: the same generation).
    user = reload(user)
    value, _ = two_factor.remember_cookie(user)
    assert two_factor.is_remembered(user, value)
    accounts.set_active(user, False, actor=None)
    accounts.set_active(user, True, actor=None)
    db.session.commit()
    assert not two_factor.is_remembered(reload(user), value)


def test_remembering_needs_the_admins_permission(app, client):
    user = enrolled()
    password_step(client, "victor")
    assert 'name="remember"' not in client.get("/auth/two-factor").get_data(as_text=True)
    send_code(client, code_for(user.totp_secret), remember="1")
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/profile")})
    assert password_step(client, "victor").headers["Location"].endswith("/auth/two-factor")
    # A cookie of the right shape but for old credentials, or forged, never counts.
    value, _ = two_factor.remember_cookie(user)
    get_settings().two_factor_remember_allowed = True
    db.session.commit()
    assert two_factor.is_remembered(user, value)
    assert not two_factor.is_remembered(user, value[:-2] + "xx")
    assert not two_factor.is_remembered(user, value, now=utcnow() + timedelta(days=31))


# --- The profile: new recovery codes, switching off ----------------------------------------------

def test_new_recovery_codes_need_a_code_and_switching_off_needs_a_code_or_the_password(app, client, clock):
    user = enrolled()
    old = two_factor._new_recovery_codes(user)
    db.session.commit()
    password_step(client, "victor")
    send_code(client, code_for(user.totp_secret))
    r = post_form(client, "/auth/two-factor/recovery-codes", {"code": "000000"})
    assert r.status_code == 302  # refused, back to the profile
    clock.shift(timedelta(seconds=30))
    r = post_form(client, "/auth/two-factor/recovery-codes", {"code": code_for(user.totp_secret)})
    assert r.status_code == 200 and "Your earlier recovery codes no longer work" in r.get_data(as_text=True)
    assert not two_factor._use_recovery_code(user, old[0])
    assert "user.2fa_recovery_codes" in events()

    post_form(client, "/auth/two-factor/disable", {"password": "wrong-password-here"})
    assert reload(user).has_two_factor
    other = app.test_client()
    clock.shift(timedelta(seconds=30))
    password_step(other, "victor")
    send_code(other, code_for(user.totp_secret))
    assert logged_in(other)
    post_form(client, "/auth/two-factor/disable", {"password": PASSWORD})
    assert not reload(user).has_two_factor and "user.2fa_disabled" in events()
    assert logged_in(client) and not logged_in(other)  # switching off ends the other sessions


# --- Pages ---------------------------------------------------------------------------------

def test_the_two_factor_pages_send_the_strict_policy_without_inline_code(app, client, personas):
    user = enrolled("walter")
    two_factor._new_recovery_codes(user)
    db.session.commit()
    pages = []
    password_step(client, "walter")
    pages.append(client.get("/auth/two-factor"))
    send_code(client, code_for(user.totp_secret))
    pages.append(client.get("/auth/profile"))
    get_settings().two_factor_required_roles = "operator"
    db.session.commit()
    oscar = app.test_client()
    password_step(oscar, "oscar")
    pages.append(oscar.get("/auth/two-factor/enrol"))
    rita = app.test_client()
    password_step(rita, "rita")
    pages.append(rita.get("/auth/two-factor/setup"))
    oscar_user = reload(personas["operator"])
    pages.append(oscar.post("/auth/two-factor/enrol", data={"code": code_for(oscar_user.totp_secret),
                                                            "csrf_token": csrf_token(oscar, "/auth/two-factor/enrol")}))
    admin = as_admin(app)
    pages.append(admin.get("/settings/users"))
    pages.append(admin.get("/docs/two_factor"))
    for r in pages:
        assert r.status_code == 200, r.request.path
        assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert inline_problems(r.get_data(as_text=True)) == [], r.request.path


def test_ops_reset_2fa_from_the_command_line(app):
    user = enrolled()
    r = app.test_cli_runner().invoke(args=["reset-2fa", "VICTOR"])
    assert r.exit_code == 0, r.output
    assert not reload(user).has_two_factor
    row = db.session.execute(select(AuditLog).where(AuditLog.event == "user.2fa_reset")).scalar_one()
    assert row.username == "cli"
    assert app.test_cli_runner().invoke(args=["reset-2fa", "nobody"]).exit_code != 0
