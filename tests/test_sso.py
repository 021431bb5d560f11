"""Single sign-on with OpenID Connect, against a real provider on loopback (oidc-provider-mock).

The provider runs in this process on a thread, so it issues ID tokens on the suite's frozen clock
(tests/clock.py: time-machine moves every thread's clock), and iat/exp match what the app checks.
The browser's part is played by hand: the Flask test client follows the app's redirect to the
provider's authorize endpoint, the provider's form is submitted for a chosen subject (its claims
set beforehand through the mock's PUT /users/<sub>), and its redirect back is followed to the
app's callback.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from oidc_provider_mock import run_server_in_thread

from .conftest import PERSONAS, login, post_form
from .helpers import make_user

CLIENT_ID = "backupchecks-test"
CLIENT_SECRET = "oidc-client-secret-for-tests"


@pytest.fixture(scope="module")
def provider():
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def other_provider():
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def configure(issuer: str, **values):
    from backend.app.extensions import db
    from backend.app.services.settings import get_settings

    row = get_settings()
    row.oidc_issuer = issuer
    row.oidc_client_id = CLIENT_ID
    row.oidc_client_secret = CLIENT_SECRET
    for key, value in values.items():
        setattr(row, f"oidc_{key}", value)
    db.session.commit()
    return row


@pytest.fixture
def sso(app, provider):
    return configure(provider)


def set_claims(issuer: str, sub: str, **claims):
    r = requests.put(f"{issuer}/users/{sub}", json=claims, timeout=5)
    assert r.status_code == 204, r.text


def sign_in(client, issuer: str, sub: str, *, before_callback=None, **claims):
    """The whole round trip; answers the app's response to the callback."""
    set_claims(issuer, sub, **claims)
    r = client.get("/auth/oidc/start")
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    authorize = r.headers["Location"]
    assert authorize.startswith(f"{issuer}/oauth2/authorize?")
    assert "code_challenge_method=S256" in authorize and "nonce=" in authorize and "state=" in authorize
    back = requests.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text[:300]
    location = urlsplit(back.headers["Location"])
    assert location.path == "/auth/oidc/callback"
    if before_callback:
        before_callback()
    return client.get(f"{location.path}?{location.query}")


def audit_events(event: str):
    from sqlalchemy import select

    from backend.app.extensions import db
    from backend.app.models import AuditLog

    return db.session.execute(select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)).scalars().all()


def user_named(name: str):
    from sqlalchemy import select

    from backend.app.extensions import db
    from backend.app.models import User

    db.session.expire_all()
    return db.session.execute(select(User).where(User.username == name)).scalar_one_or_none()


def logged_in_as(client) -> str | None:
    r = client.get("/auth/profile")
    if r.status_code != 200:
        return None
    return r.get_data(as_text=True)


# --- The login page --------------------------------------------------------------------------

def test_the_button_shows_only_when_configured(app, provider, personas):
    c = app.test_client()
    assert "sso-login" not in c.get("/auth/login").get_data(as_text=True)
    configure(provider, button_label="Sign in with Contoso")
    html = c.get("/auth/login").get_data(as_text=True)
    assert "sso-login" in html and "Sign in with Contoso" in html


# --- Who comes in ----------------------------------------------------------------------------

def test_an_existing_user_logs_in_by_verified_email_then_by_subject(app, sso, provider, personas):
    alice = personas["admin"]
    alice.email = "Alice@Example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    r = sign_in(c, provider, "alice-sub", email="alice@example.com", email_verified=True)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/", r.get_data(as_text=True)[:500]
    assert "alice" in logged_in_as(c)
    assert user_named("alice").oidc_subject == f"{provider}|alice-sub"
    assert [e.username for e in audit_events("login.sso")] == ["alice"]
    # Later logins match by subject, even with another address.
    c2 = app.test_client()
    r = sign_in(c2, provider, "alice-sub", email="alice.new@example.com", email_verified=True)
    assert r.status_code == 302 and logged_in_as(c2) and "alice" in logged_in_as(c2)


def test_an_unverified_email_is_not_matched(app, sso, provider, personas):
    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    r = sign_in(c, provider, "mallory", email="alice@example.com", email_verified=False)
    assert r.status_code == 403 and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "no_verified_email"


def test_entra_without_email_matches_preferred_username(app, sso, provider, personas):
    personas["operator"].email = "oscar@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    r = sign_in(c, provider, "oscar-oid", preferred_username="oscar@example.com", tid="t1")
    assert r.status_code == 302 and "oscar" in logged_in_as(c)


def test_no_account_and_no_jit_is_refused(app, sso, provider, personas):
    c = app.test_client()
    r = sign_in(c, provider, "nobody", email="nobody@example.com", email_verified=True)
    assert r.status_code == 403 and "no account" in r.get_data(as_text=True).lower()
    assert logged_in_as(c) is None


def test_jit_creates_the_account_with_the_default_role(app, provider, personas):
    configure(provider, jit_enabled=True, default_role="viewer")
    c = app.test_client()
    r = sign_in(c, provider, "new-sub", email="newbie@example.com", email_verified=True)
    assert r.status_code == 302
    user = user_named("newbie@example.com")
    assert user.role_list == ["viewer"] and user.email == "newbie@example.com"
    assert c.get("/daily-jobs").status_code == 200
    assert any("single sign-on" in e.summary for e in audit_events("user.create"))


def test_jit_without_a_default_role_makes_a_pending_account(app, provider, personas):
    configure(provider, jit_enabled=True, default_role=None)
    c = app.test_client()
    r = sign_in(c, provider, "pending-sub", email="waiting@example.com", email_verified=True)
    assert r.status_code == 302
    assert user_named("waiting@example.com").role_list == []
    r = c.get("/", follow_redirects=True)
    assert "Waiting for an admin to give you a role" in r.get_data(as_text=True)
    assert c.get("/daily-jobs").headers["Location"].endswith("/auth/pending")
    # An admin gives a role: the pending session ends, the next sign-in works normally.
    admin = as_admin(app)
    r = post_form(admin, f"/settings/users/{user_named('waiting@example.com').id}",
                  {"action": "roles", "roles": ["viewer"]})
    assert r.status_code in (302, 200)
    assert user_named("waiting@example.com").role_list == ["viewer"]
    assert c.get("/daily-jobs").status_code == 302  # ended by the role change


def as_admin(app):
    c = app.test_client()
    assert login(c, PERSONAS["admin"]).status_code == 302
    return c


def test_a_domain_not_allowed_is_refused(app, provider, personas):
    configure(provider, jit_enabled=True, default_role="viewer", allowed_domains="example.com")
    c = app.test_client()
    r = sign_in(c, provider, "evil", email="eve@evil.test", email_verified=True)
    assert r.status_code == 403 and "evil.test" in r.get_data(as_text=True)
    assert user_named("eve@evil.test") is None and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "domain_not_allowed"


def test_a_tenant_not_allowed_is_refused(app, provider, personas):
    configure(provider, jit_enabled=True, default_role="viewer", allowed_tenants="good-tenant")
    c = app.test_client()
    r = sign_in(c, provider, "other-tenant", email="x@example.com", email_verified=True, tid="bad-tenant")
    assert r.status_code == 403 and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "tenant_not_allowed"
    r = sign_in(app.test_client(), provider, "good", email="y@example.com", email_verified=True, tid="GOOD-tenant")
    assert r.status_code == 302


def test_a_deactivated_user_is_refused(app, sso, provider, personas):
    make_user("dora", roles=("viewer",), active=False).email = "dora@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    r = sign_in(c, provider, "dora", email="dora@example.com", email_verified=True)
    assert r.status_code == 403 and "deactivated" in r.get_data(as_text=True)
    assert logged_in_as(c) is None


# --- What is checked -------------------------------------------------------------------------

def test_a_forged_state_is_refused(app, sso, provider, personas):
    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    set_claims(provider, "alice-sub", email="alice@example.com", email_verified=True)
    authorize = c.get("/auth/oidc/start").headers["Location"]
    back = urlsplit(requests.post(authorize, data={"sub": "alice-sub"}, allow_redirects=False,
                                  timeout=5).headers["Location"])
    forged = back.query.replace("state=", "state=forged")
    r = c.get(f"/auth/oidc/callback?{forged}")
    assert r.status_code == 403 and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "state_mismatch"
    assert audit_events("login.sso") == []
    # The pending request was used up: the real state no longer works either.
    assert c.get(f"/auth/oidc/callback?{back.query}").status_code == 403


def test_refusals_from_one_address_share_one_audit_row(app, sso, provider, personas):
    c = app.test_client()
    for _ in range(5):
        assert c.get("/auth/oidc/callback?state=forged&code=x").status_code == 403
    entries = audit_events("login.sso_refused")
    assert len(entries) == 1
    assert entries[0].after["count"] == 5 and entries[0].after["reasons"] == {"state_mismatch": 5}
    assert "5 times" in entries[0].summary


def test_a_token_signed_by_another_key_is_refused(app, sso, provider, other_provider, personas, monkeypatch):
    from backend.app.services import oidc

    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    real_fetch = oidc.fetch_jwks
    # The token comes from `provider`; the keys the app checks it against are the other provider's.
    monkeypatch.setattr(oidc, "fetch_jwks", lambda meta: real_fetch({"jwks_uri": f"{other_provider}/jwks"}))
    other_keys = requests.get(f"{other_provider}/jwks", timeout=5).json()
    assert other_keys != requests.get(f"{provider}/jwks", timeout=5).json()
    c = app.test_client()
    r = sign_in(c, provider, "alice-sub", email="alice@example.com", email_verified=True)
    assert r.status_code == 403 and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "bad_signature"


def test_a_nonce_mismatch_is_refused(app, sso, provider, personas):
    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()

    def swap_nonce():
        with c.session_transaction() as sess:
            pending = dict(sess["_oidc_pending"])
            pending["nonce"] = "another-nonce"
            sess["_oidc_pending"] = pending

    r = sign_in(c, provider, "alice-sub", before_callback=swap_nonce, email="alice@example.com", email_verified=True)
    assert r.status_code == 403 and logged_in_as(c) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "nonce_mismatch"


def test_an_expired_token_is_refused_beyond_the_leeway(app, sso, provider, personas, clock, monkeypatch):
    """The mock's ID tokens live an hour; the app allows 120 s of clock skew, no more. The clock is
    moved on between the token endpoint's answer and the app's check."""
    from datetime import timedelta

    from backend.app.services import oidc

    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    real_exchange = oidc.exchange_code
    late = {"by": timedelta(hours=1, seconds=60)}

    def exchange_then_wait(*args, **kwargs):
        token = real_exchange(*args, **kwargs)
        clock.shift(late["by"])
        return token

    monkeypatch.setattr(oidc, "exchange_code", exchange_then_wait)
    c = app.test_client()
    r = sign_in(c, provider, "alice-sub", email="alice@example.com", email_verified=True)
    assert r.status_code == 302  # expired 60 s ago: within the leeway
    late["by"] = timedelta(hours=1, minutes=5)
    c2 = app.test_client()
    r = sign_in(c2, provider, "alice-sub", email="alice@example.com", email_verified=True)
    assert r.status_code == 403 and logged_in_as(c2) is None
    assert audit_events("login.sso_refused")[-1].after["reason"] == "bad_token"


# --- Roles from the IdP ----------------------------------------------------------------------

def test_groups_map_to_roles_at_each_login_and_are_removed_again(app, provider, personas):
    configure(provider, jit_enabled=True, default_role="viewer",
              role_mapping="grp-ops = operator\nBackupchecks.Reporter = reporter")
    c = app.test_client()
    r = sign_in(c, provider, "gina", email="gina@example.com", email_verified=True, groups=["grp-ops"],
                roles=["Backupchecks.Reporter"])
    assert r.status_code == 302
    assert user_named("gina@example.com").role_list == ["operator", "reporter"]
    c2 = app.test_client()
    r = sign_in(c2, provider, "gina", email="gina@example.com", email_verified=True, groups=[],
                roles=["Backupchecks.Reporter"])
    assert r.status_code == 302
    assert user_named("gina@example.com").role_list == ["reporter"]
    assert logged_in_as(c) is None  # the role change ended the older session
    # In none of the mapped groups: the role of a new account.
    assert sign_in(app.test_client(), provider, "gina", email="gina@example.com", email_verified=True,
                   groups=["unmapped"], roles=[]).status_code == 302
    assert user_named("gina@example.com").role_list == ["viewer"]


def test_with_a_mapping_and_no_default_role_an_unmapped_user_becomes_pending(app, provider, personas):
    configure(provider, role_mapping="grp-ops = operator")
    personas["operator"].email = "oscar@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    assert sign_in(c, provider, "oscar", email="oscar@example.com", email_verified=True,
                   groups=["other"]).status_code == 302
    assert user_named("oscar").role_list == []
    assert c.get("/daily-jobs").headers["Location"].endswith("/auth/pending")
    admin = as_admin(app)
    html = admin.get("/settings/users").get_data(as_text=True)
    assert "pending" in html and "SSO" in html


def test_the_last_admin_keeps_admin_whatever_the_mapping(app, provider, personas):
    configure(provider, role_mapping="grp-ops = operator")
    personas["admin"].email = "alice@example.com"
    from backend.app.extensions import db
    db.session.commit()
    assert sign_in(app.test_client(), provider, "alice", email="alice@example.com", email_verified=True,
                   groups=["grp-ops"]).status_code == 302
    assert user_named("alice").role_list == ["admin", "operator"]
    assert any("from single sign-on" in e.summary for e in audit_events("user.roles"))


# --- Password login and sessions -------------------------------------------------------------

def test_password_login_off_except_for_the_break_glass_admin(app, provider, personas):
    configure(provider, password_break_glass_only=True, break_glass_user_id=personas["admin"].id)
    assert login(app.test_client(), PERSONAS["admin"]).status_code == 302
    r = login(app.test_client(), PERSONAS["operator"])
    assert r.status_code == 401 and "single sign-on" in r.get_data(as_text=True)
    assert audit_events("login.password_refused")
    # Without SSO configured (secret removed) nobody is locked out.
    configure(provider, client_secret=None)
    assert login(app.test_client(), PERSONAS["operator"]).status_code == 302


def test_deactivation_ends_an_sso_session(app, sso, provider, personas):
    personas["operator"].email = "oscar@example.com"
    from backend.app.extensions import db
    db.session.commit()
    c = app.test_client()
    assert sign_in(c, provider, "oscar", email="oscar@example.com", email_verified=True).status_code == 302
    assert c.get("/daily-jobs").status_code == 200
    admin = as_admin(app)
    r = post_form(admin, f"/settings/users/{personas['operator'].id}", {"action": "deactivate"})
    assert r.status_code in (200, 302)
    assert not user_named("oscar").is_active_user
    assert c.get("/daily-jobs").status_code == 302
    # And logout ends it too.
    c = app.test_client()
    personas["admin"].email = "alice@example.com"
    db.session.commit()
    assert sign_in(c, provider, "alice", email="alice@example.com", email_verified=True).status_code == 302
    copy = app.test_client()
    with c.session_transaction() as s, copy.session_transaction() as s2:
        s2.update(dict(s))
    post_form(c, "/auth/logout", token_from="/auth/profile")
    assert copy.get("/daily-jobs").status_code == 302


# --- Settings → Sign-in ----------------------------------------------------------------------

def signin_form(**values):
    form = {"oidc_issuer": "", "oidc_tenant_id": "0a1b2c3d-0000-4000-8000-000000000001", "oidc_client_id": "abc",
            "oidc_client_secret": "", "oidc_allowed_domains": "example.com", "oidc_allowed_tenants": "",
            "oidc_button_label": "", "oidc_default_role": "", "oidc_role_mapping": ""}
    form.update(values)
    return form


def test_only_admins_see_the_settings(as_user):
    for role in ("operator", "reporter", "viewer"):
        assert as_user(role).get("/settings/sign-in").status_code == 403
    assert as_user("admin").get("/settings/sign-in").status_code == 200


def test_the_secret_is_write_only_encrypted_and_masked(app, as_user):
    from sqlalchemy import text

    from backend.app.extensions import db
    from backend.app.services.settings import get_settings

    c = as_user("admin")
    r = post_form(c, "/settings/sign-in", signin_form(oidc_client_secret="very-secret-value-1"), follow_redirects=True)
    assert r.status_code == 200
    assert "very-secret-value-1" not in r.get_data(as_text=True)
    db.session.expire_all()
    assert get_settings().oidc_client_secret == "very-secret-value-1"
    raw = db.session.execute(text("SELECT oidc_client_secret FROM system_settings")).scalar_one()
    assert "very-secret-value-1" not in raw
    entry = audit_events("settings.signin")[-1]
    assert entry.after["oidc_client_secret"] == "••••••"
    assert "very-secret-value-1" not in str(entry.before) + str(entry.after) + entry.summary
    # An empty field keeps it.
    post_form(c, "/settings/sign-in", signin_form(oidc_button_label="Company login"))
    db.session.expire_all()
    assert get_settings().oidc_client_secret == "very-secret-value-1"
    assert "very-secret-value-1" not in c.get("/settings/sign-in").get_data(as_text=True)


@pytest.mark.parametrize("bad", [
    {"oidc_issuer": "ftp://idp.example.com"},
    {"oidc_default_role": "superuser"},
    {"oidc_role_mapping": "grp-ops = god"},
    {"oidc_allowed_domains": "not a domain"},
    {"oidc_password_break_glass_only": "on"},  # without a break-glass admin
])
def test_settings_validation_saves_nothing(app, as_user, bad):
    from backend.app.extensions import db
    from backend.app.services.settings import get_settings

    c = as_user("admin")
    r = post_form(c, "/settings/sign-in", signin_form(oidc_client_secret="never-stored-1", **bad))
    assert r.status_code == 400 and "Nothing was saved" in r.get_data(as_text=True)
    db.session.expire_all()
    s = get_settings()
    assert s.oidc_client_secret is None and s.oidc_client_id is None
    assert audit_events("settings.signin") == []


def test_environment_values_win_and_show_read_only(app, as_user, monkeypatch):
    monkeypatch.setitem(app.config, "OIDC_ENV_OVERRIDES", {"oidc_tenant_id": "env-tenant", "oidc_client_secret": "x"})
    html = as_user("admin").get("/settings/sign-in").get_data(as_text=True)
    assert "env-tenant" in html and "OIDC_TENANT_ID" in html
    from backend.app.services import oidc
    assert oidc.current_config().issuer == "https://login.microsoftonline.com/env-tenant/v2.0"


def test_the_break_glass_admin_can_be_chosen(app, as_user, personas):
    from backend.app.extensions import db
    from backend.app.services.settings import get_settings

    c = as_user("admin")
    r = post_form(c, "/settings/sign-in", signin_form(oidc_password_break_glass_only="on",
                                                    oidc_break_glass_user_id=str(personas["admin"].id)))
    assert r.status_code == 302
    db.session.expire_all()
    assert get_settings().oidc_break_glass_user_id == personas["admin"].id
    r = post_form(c, "/settings/sign-in", signin_form(oidc_password_break_glass_only="on",
                                                    oidc_break_glass_user_id=str(personas["viewer"].id)))
    assert r.status_code == 400


def test_a_single_sign_on_login_asks_for_the_second_factor_when_the_role_requires_it(app, sso, provider, personas):
    """SSO and the password end in the same step: a role that must have 2FA is sent to enrolment,
    and is not logged in before it."""
    from backend.app.extensions import db
    from backend.app.services.settings import get_settings

    alice = personas["admin"]
    alice.email = "alice@example.com"
    get_settings().two_factor_required_roles = "admin"
    db.session.commit()
    c = app.test_client()
    r = sign_in(c, provider, "alice-sub", email="alice@example.com", email_verified=True)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/auth/two-factor/enrol"
    assert logged_in_as(c) is None
    assert c.get("/run-checks").status_code == 302  # nothing else opens before the second factor
