"""API tokens in the user menu (/auth/profile/tokens) and Settings → API tokens (admin): a token is
shown once, listed with its use and state, revocable by its owner or an admin; expiry dates in the
past are refused; a viewer gets read-only tokens only; deactivating a user revokes theirs."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import ApiToken, AuditLog, User
from backend.app.services import api_tokens

from .clock import TEST_NOW
from .conftest import PERSONAS, post_form
from .test_csp import inline_problems

PAGE = "/auth/profile/tokens"
SECRET_RE = re.compile(r'id="new-token-secret" value="(bc_[A-Za-z0-9_-]+)"')


def _create(client, name="NOC dashboard", access="read-only", expires_on=""):
    return post_form(client, PAGE, {"name": name, "access": access, "expires_on": expires_on}, token_from=PAGE)


def _user(role) -> User:
    return db.session.execute(select(User).where(User.username == PERSONAS[role])).scalar_one()


def _tokens(role) -> list[ApiToken]:
    db.session.expire_all()
    return api_tokens.tokens_of(_user(role))


def _row(html: str, name: str) -> str:
    start = html.index(f'data-token="{name}"')
    return html[start:html.index("</tr>", start)]


def test_the_user_menu_leads_to_the_page_for_every_staff_role(as_user):
    for role in PERSONAS:
        c = as_user(role)
        assert 'href="/auth/profile/tokens" id="user-menu-api-tokens">API tokens<' in c.get("/auth/profile").get_data(as_text=True)
        page = c.get(PAGE)
        assert page.status_code == 200 and "You have no API tokens" in page.get_data(as_text=True)


def test_a_new_token_is_shown_once_and_then_listed_without_its_secret(as_user):
    c = as_user("operator")
    r = _create(c, "Nightly check", access="read-write")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert "you will not see it again" in html
    secret = SECRET_RE.search(html).group(1)
    assert f'data-copy="{secret}"' in html  # the Copy button (static/js/app.js)
    assert inline_problems(html) == []

    token = api_tokens.authenticate(secret, ip_address="192.0.2.7")  # the secret works as shown
    assert token.user.username == "oscar" and not token.read_only
    db.session.commit()

    page = c.get(PAGE).get_data(as_text=True)
    assert secret not in page and "new-token-secret" not in page
    row = _row(page, "Nightly check")
    assert f"<code>{secret[:10]}…</code>" in row and "Read-write" in row and "Active" in row
    assert "from 192.0.2.7" in row and ">never<" in row  # used (from that address); never expires
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "api_token.create")).scalar_one()
    assert entry.username == "oscar" and "Nightly check" in entry.summary and secret not in str(entry.after)


def test_an_expiry_date_is_a_day_in_the_ui_timezone_and_the_past_is_refused(as_user):
    c = as_user("viewer")
    today = TEST_NOW.astimezone(api_tokens_zone()).date()
    r = _create(c, "Too late", expires_on=(today - timedelta(days=1)).isoformat())
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "is in the past: choose today or a later day" in html
    assert 'value="Too late"' in html  # the form keeps what was typed
    r = _create(c, "Bad date", expires_on="31-12-2026")
    assert r.status_code == 400 and "is not a date: use YYYY-MM-DD" in r.get_data(as_text=True)
    assert _tokens("viewer") == []

    r = _create(c, "Until tonight", expires_on=today.isoformat())
    assert r.status_code == 200
    (token,) = _tokens("viewer")
    # The end of today in Europe/Amsterdam (summer time: UTC+2), shown there as the next midnight.
    assert token.expires_at == datetime.combine(today + timedelta(days=1), datetime.min.time(),
                                                tzinfo=api_tokens_zone()).astimezone(timezone.utc)
    assert f"{(today + timedelta(days=1)).isoformat()} 00:00" in _row(c.get(PAGE).get_data(as_text=True), "Until tonight")


def api_tokens_zone():
    from backend.app.services.settings import ui_zone
    return ui_zone()


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_a_role_that_changes_nothing_gets_read_only_tokens_only(as_user, role):
    c = as_user(role)
    page = c.get(PAGE).get_data(as_text=True)
    assert 'value="read-write"' not in page and f"Your role ({role}) gets read-only tokens." in page
    r = _create(c, "Sneaky", access="read-write")
    assert r.status_code == 400 and "can only have read-only tokens" in r.get_data(as_text=True)
    assert _tokens(role) == []
    assert _create(c, "Fine").status_code == 200
    assert [t.read_only for t in _tokens(role)] == [True]


def test_admin_and_operator_are_offered_read_write(as_user):
    for role in ("admin", "operator"):
        assert 'value="read-write"' in as_user(role).get(PAGE).get_data(as_text=True)


def test_revoking_ones_own_token_stops_it_and_is_audited(as_user):
    c = as_user("reporter")
    secret = SECRET_RE.search(_create(c, "Old script").get_data(as_text=True)).group(1)
    (token,) = _tokens("reporter")
    r = post_form(c, f"{PAGE}/{token.id}/revoke", token_from=PAGE, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "API token &#39;Old script&#39; revoked: it no longer works." in html
    assert "Revoked" in _row(html, "Old script") and "Revoke Old script" not in _row(html, "Old script")
    with pytest.raises(api_tokens.TokenError) as refused:
        api_tokens.authenticate(secret)
    assert refused.value.code == "token_revoked"
    assert db.session.execute(select(AuditLog.username).where(AuditLog.event == "api_token.revoke")).scalar_one() == "rita"


def test_another_users_token_cant_be_revoked_by_id(as_user):
    victim = as_user("operator")
    _create(victim, "Operator's script")
    (token,) = _tokens("operator")
    r = post_form(as_user("viewer"), f"{PAGE}/{token.id}/revoke", token_from=PAGE)
    assert r.status_code == 404
    assert _tokens("operator")[0].revoked_at is None
    # Also not for an admin through their own page: that is Settings → API tokens.
    assert post_form(as_user("admin"), f"{PAGE}/{token.id}/revoke", token_from=PAGE).status_code == 404


def test_an_admin_sees_every_users_tokens_and_revokes_any(as_user):
    _create(as_user("operator"), "Operator's script")
    _create(as_user("viewer"), "Viewer's wallboard")
    admin = as_user("admin")
    page = admin.get("/settings/api-tokens").get_data(as_text=True)
    assert "<td>oscar</td>" in _row(page, "Operator&#39;s script") and "<td>victor</td>" in _row(page, "Viewer&#39;s wallboard")
    assert inline_problems(page) == []
    token = _tokens("viewer")[0]
    r = post_form(admin, f"/settings/api-tokens/{token.id}/revoke", token_from="/settings/api-tokens", follow_redirects=True)
    assert "API token &#39;Viewer&#39;s wallboard&#39; of victor revoked" in r.get_data(as_text=True)
    assert _tokens("viewer")[0].revoked_at is not None and _tokens("operator")[0].revoked_at is None
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "api_token.revoke")).scalar_one()
    assert entry.username == "alice" and "victor" in entry.summary
    # The user sees it revoked on their own page.
    assert "Revoked" in _row(as_user("viewer").get(PAGE).get_data(as_text=True), "Viewer&#39;s wallboard")


def test_only_admins_open_the_list_of_everyones_tokens(as_user):
    assert as_user("operator").get("/settings/api-tokens").status_code == 403


def test_deactivating_a_user_revokes_their_tokens_for_good(as_user):
    c = as_user("operator")
    secret = SECRET_RE.search(_create(c, "Script A", access="read-write").get_data(as_text=True)).group(1)
    _create(c, "Script B")
    oscar = _user("operator")
    admin = as_user("admin")
    r = post_form(admin, f"/settings/users/{oscar.id}", {"action": "deactivate"}, token_from="/settings/users")
    assert r.status_code == 302
    assert [t.revoked_at is not None for t in _tokens("operator")] == [True, True]
    assert db.session.execute(select(AuditLog.id).where(AuditLog.event == "api_token.revoke")).all().__len__() == 2
    post_form(admin, f"/settings/users/{oscar.id}", {"action": "activate"}, token_from="/settings/users")
    with pytest.raises(api_tokens.TokenError) as refused:
        api_tokens.authenticate(secret)
    assert refused.value.code == "token_revoked"  # activating again does not bring them back


def test_an_expired_token_is_listed_as_expired(as_user, clock):
    c = as_user("viewer")
    today = TEST_NOW.astimezone(api_tokens_zone()).date()
    _create(c, "Short lived", expires_on=today.isoformat())
    clock.move_to(TEST_NOW + timedelta(days=2))
    assert "Expired" in _row(as_user("viewer").get(PAGE).get_data(as_text=True), "Short lived")


def test_a_portal_user_makes_read_only_tokens_too(app, personas):
    from .conftest import login
    from .helpers import make_user

    make_user("petra", roles=("portal",))
    db.session.commit()
    c = app.test_client()
    assert login(c, "petra").status_code == 302
    page = c.get(PAGE)
    assert page.status_code == 200 and "Your role (portal) gets read-only tokens." in page.get_data(as_text=True)
    assert _create(c, "Portal read-write", access="read-write").status_code == 400
    r = _create(c, "Our wallboard")
    assert r.status_code == 200 and SECRET_RE.search(r.get_data(as_text=True))
    petra = db.session.execute(select(User).where(User.username == "petra")).scalar_one()
    assert [(t.name, t.read_only) for t in api_tokens.tokens_of(petra)] == [("Our wallboard", True)]
    # Settings → API tokens stays the admins'.
    assert c.get("/settings/api-tokens").status_code == 403


def test_the_token_lists_cost_the_same_queries_for_2_or_12_tokens(as_user):
    from .helpers import page_queries

    def costs(count):
        for i in range(count):
            api_tokens.create_token(_user("operator"), f"op {count}-{i}")
            api_tokens.create_token(_user("viewer"), f"viewer {count}-{i}", read_only=True)
        db.session.commit()
        return page_queries(admin, "/settings/api-tokens"), page_queries(operator, PAGE)

    admin, operator = as_user("admin"), as_user("operator")
    assert costs(1) == costs(6)
