"""In a real browser: switch on two-factor authentication from the profile (QR code and key, a wrong
code first), save the recovery codes, log out, log in again with a code, then with a recovery code.

The live server runs in a thread of the test process, so it sees the suite's frozen (ticking) clock;
the codes are computed here for that same clock."""
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from backend.app.extensions import db
from backend.app.models import User, utcnow

from ..conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]


def code_for(secret: str) -> str:
    return pyotp.TOTP(secret).at(utcnow())  # the app's (frozen) clock


def password_step(page, live_server, name):
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def log_out(page, live_server):
    page.goto(live_server + "/auth/logout")
    page.click("#logout-button")
    page.wait_for_url(lambda url: "/auth/login" in url)


def test_enrol_log_out_and_log_in_with_a_code(browser, live_server, clock):
    make_user("victor", roles=("viewer",))
    db.session.commit()
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    errors = []  # script errors and CSP refusals (the wrong code's 400 answer is expected)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)

    password_step(page, live_server, "victor")
    assert page.url.rstrip("/") == live_server  # no 2FA yet: straight in
    page.click("#user-menu")
    page.click("text=Two-factor authentication")
    page.click("#two-factor-setup")
    page.wait_for_url(lambda url: "/auth/two-factor/setup" in url)
    # The QR code is an image the browser really decoded (an SVG data: image the CSP allows).
    page.wait_for_function("() => { const i = document.getElementById('two-factor-qr');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    secret = page.inner_text("#two-factor-secret").replace(" ", "")
    assert len(secret) == 32

    page.fill("#code", "000000" if code_for(secret) != "000000" else "111111")
    page.click("#two-factor-enrol-form button[type=submit]")
    expect(page.locator("#two-factor-error")).to_contain_text("not right")
    page.fill("#code", code_for(secret))
    page.click("#two-factor-enrol-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your recovery codes")
    codes = page.inner_text("#recovery-codes").split()
    assert len(codes) == 10
    with page.expect_download() as info:
        page.click("#recovery-codes-download")
    download = info.value
    saved = open(download.path(), encoding="utf-8").read()
    assert all(c in saved for c in codes) and download.suggested_filename == "backupchecks-recovery-codes.txt"
    page.click("#recovery-codes-done")
    page.wait_for_url(lambda url: "/auth/profile" in url)
    expect(page.locator("#two-factor")).to_contain_text("10 recovery codes left")

    log_out(page, live_server)
    clock.shift(timedelta(seconds=30))  # the enrolment's code is used; the next one is new
    password_step(page, live_server, "victor")
    assert "/auth/two-factor" in page.url
    page.goto(live_server + "/jobs")  # nothing else opens before the code
    assert "/auth/login" in page.url
    page.go_back()
    page.goto(live_server + "/auth/two-factor")
    page.fill("#code", code_for(secret))
    page.click("#two-factor-form button[type=submit]")
    page.wait_for_url(lambda url: "/auth/two-factor" not in url)
    expect(page.locator("#user-menu")).to_have_text("victor")

    # A lost phone: a recovery code logs in once.
    log_out(page, live_server)
    password_step(page, live_server, "victor")
    page.fill("#code", codes[0])
    page.click("#two-factor-form button[type=submit]")
    page.wait_for_url(lambda url: "/auth/two-factor" not in url)
    expect(page.locator(".alert-warning")).to_contain_text("9 left")
    db.session.expire_all()
    assert db.session.query(User).filter_by(username="victor").one().has_two_factor
    assert errors == []
    page.close()
