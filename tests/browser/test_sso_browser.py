"""Single sign-on in Chromium against a real OpenID Connect provider on loopback
(oidc-provider-mock, in this process on a thread, so its tokens follow the suite's frozen clock):
an admin sets up Settings → Sign-in, then a new user signs in with the button and gets an account."""
from __future__ import annotations

import pytest
import requests
from oidc_provider_mock import run_server_in_thread

from tests.conftest import PASSWORD, PERSONAS

pytestmark = pytest.mark.browser

TIMEOUT = 15_000


@pytest.fixture
def provider():
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def no_env(app):
    saved = app.config.get("OIDC_ENV_OVERRIDES")
    app.config["OIDC_ENV_OVERRIDES"] = {}
    yield
    app.config["OIDC_ENV_OVERRIDES"] = saved


def test_an_admin_sets_up_sso_and_a_new_user_signs_in(app, browser, live_server, personas, provider, no_env):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(TIMEOUT)
    page.goto(live_server + "/auth/login")
    assert page.locator("#sso-login").count() == 0
    page.fill("#username", PERSONAS["admin"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.goto(live_server + "/settings/sign-in")
    page.fill("#oidc_issuer", provider)
    page.fill("#oidc_client_id", "backupchecks-browser")
    page.fill("#oidc_client_secret", "browser-test-secret-1")
    page.fill("#oidc_allowed_domains", "example.com")
    page.check("#oidc_jit_enabled")
    page.select_option("#oidc_default_role", "viewer")
    page.click("#signin-form button[type=submit]")
    assert "Sign-in settings saved." in page.inner_text("body")
    assert "browser-test-secret-1" not in page.content()
    page.context.clear_cookies()

    r = requests.put(f"{provider}/users/newcomer", json={"email": "newcomer@example.com", "email_verified": True},
                     timeout=5)
    assert r.status_code == 204
    page.goto(live_server + "/auth/login")
    assert page.inner_text("#sso-login") == "Sign in with Microsoft"
    page.click("#sso-login")
    page.wait_for_url(lambda url: url.startswith(provider))
    page.fill("input[name=sub]", "newcomer")
    page.click("button[type=submit]:has-text('Authorize')")
    page.wait_for_url(lambda url: url.startswith(live_server) and "/auth/" not in url)
    page.goto(live_server + "/auth/profile")
    assert "newcomer@example.com" in page.inner_text("body")
    page.close()
