"""In a real browser: a customer's status badge made on the edit page; its SVG preview is an image
the browser really decodes, and its JSON address answers."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backend.app.extensions import db

from ..conftest import make_customer, make_user
from .test_api_tokens_browser import DESKTOP, _login

pytestmark = [pytest.mark.browser]


def test_the_badge_preview_is_an_image_the_browser_draws(browser, live_server):
    make_user("oscar", roles=("operator",))
    customer = make_customer("Northwind Demo")
    db.session.commit()
    context = browser.new_context(viewport=DESKTOP)
    page = _login(context, live_server, "oscar")
    page.goto(f"{live_server}/customers/{customer.id}/edit")
    page.click("#status-badge-create")
    expect(page.locator("#status-badge-preview")).to_be_visible()
    page.wait_for_function("() => { const i = document.getElementById('status-badge-preview');"
                           " return i && i.complete && i.naturalWidth > 100 && i.naturalHeight === 20; }")
    url = page.input_value("#badge-url-json")
    assert page.request.get(url).json()["status"] == "no jobs"
    page.locator("#status-badge").screenshot(path="/tmp/backupchecks-api-tokens-badge.png")
    assert page.errors == []
    context.close()
