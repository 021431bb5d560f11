"""In a real browser: an operator makes an API token from the user menu, copies it with the Copy
button (the clipboard holds the token the API accepts), it is not shown again, and revokes it; the
page at desktop and phone size."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.app.extensions import db
from backend.app.services import api_tokens

from ..conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def _login(context, live_server, name):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.errors = errors
    return page


def _fits(page, name):
    page.screenshot(path=f"/tmp/backupchecks-api-tokens-{name}.png", full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"


def test_make_a_token_from_the_user_menu_and_copy_it(browser, live_server):
    make_user("oscar", roles=("operator",))
    db.session.commit()
    context = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    page = _login(context, live_server, "oscar")
    page.click("#user-menu")
    page.click("#user-menu-api-tokens")
    page.wait_for_url(lambda url: url.endswith("/auth/profile/tokens"))
    expect(page.locator("#api-tokens-empty")).to_be_visible()
    page.fill("#token-name", "NOC dashboard")
    page.check("#access-read-write")
    page.click("#api-token-create")
    expect(page.locator("#new-token")).to_contain_text("you will not see it again")
    secret = page.input_value("#new-token-secret")
    assert re.fullmatch(r"bc_[A-Za-z0-9_-]{43}", secret)
    _fits(page, "created-desktop")

    page.click("#new-token-copy")
    page.wait_for_function("() => document.getElementById('new-token-copy').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    db.session.expire_all()
    token = api_tokens.authenticate(secret)
    assert token.name == "NOC dashboard" and not token.read_only
    db.session.commit()

    page.goto(live_server + "/auth/profile/tokens")
    expect(page.locator("#new-token")).to_have_count(0)
    row = page.locator('tr[data-token="NOC dashboard"]')
    expect(row).to_contain_text(secret[:10] + "…")
    expect(row).to_contain_text("Read-write")
    expect(row).to_contain_text("Active")
    assert secret not in page.content()
    _fits(page, "list-desktop")

    # Revoke asks first, then the row says so.
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke NOC dashboard").click()
    expect(page.locator(".alert-success")).to_contain_text("revoked: it no longer works")
    expect(page.locator('tr[data-token="NOC dashboard"] .token-state')).to_have_text("Revoked")
    assert page.errors == []
    context.close()

    phone = browser.new_context(viewport=PHONE)
    page = _login(phone, live_server, "oscar")
    page.goto(live_server + "/auth/profile/tokens")
    page.fill("#token-name", "Phone check")
    page.click("#api-token-create")
    expect(page.locator("#new-token-secret")).to_be_visible()
    _fits(page, "created-phone")
    assert page.errors == []
    phone.close()
