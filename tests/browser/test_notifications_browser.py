"""In a real browser: an admin adds a signed webhook channel with a secret generated in the page,
sends a test message that the receiver can verify, and reads the delivery log; the page fits a phone."""
import hashlib
import hmac
import json

import pytest

from backend.app.extensions import db
from backend.app.models import NotificationChannel

from ..conftest import PASSWORD, make_user
from ..fakes.receiver import Receiver

pytestmark = [pytest.mark.browser]


def login(page, live_server, name):
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def test_add_a_signed_webhook_with_a_generated_secret_and_send_a_test(browser, live_server):
    make_user("alice", roles=("admin",))
    db.session.commit()
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    with Receiver() as rx:
        login(page, live_server, "alice")
        page.goto(live_server + "/settings/notifications")
        page.fill("#name", "Ops webhook")
        page.select_option("#kind", "webhook")
        page.fill("#target_url", rx.url("/hooks/backup"))
        page.click("[data-generate-secret]")
        secret = page.input_value("#secret")
        assert len(secret) == 64 and int(secret, 16) >= 0  # 32 random bytes as hex, visible to copy
        assert page.get_attribute("#secret", "type") == "text"
        page.click("#channel-form button[type=submit]")
        page.wait_for_url("**/settings/notifications")
        assert "Channel Ops webhook added." in page.inner_text("main")
        assert secret not in page.content()  # write-only from now on

        page.click("#notification-channels button:has-text('Send test')")
        page.wait_for_url("**/settings/notifications")
        assert "Test message delivered to Ops webhook." in page.inner_text("main")
        page.screenshot(path="/tmp/backupchecks-notifications.png", full_page=True)
    (req,) = rx.requests
    expected = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Backupchecks-Signature"] == expected
    assert json.loads(req.body)["event"] == "test"
    assert db.session.query(NotificationChannel).one().secret == secret

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    login(phone, live_server, "alice")
    phone.goto(live_server + "/settings/notifications")
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone"
    phone.screenshot(path="/tmp/backupchecks-notifications-phone.png", full_page=True)
