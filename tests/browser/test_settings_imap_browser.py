"""Settings → Mail with an IMAP mailbox, in Chromium against a real Dovecot: choose IMAP, fill in
the form, test the connection, save, and pick the folders from the live list."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, PERSONAS

pytestmark = pytest.mark.browser

TIMEOUT = 15_000


@pytest.fixture
def no_env(app):
    saved = {k: app.config.get(k) for k in ("IMAP_ENV_OVERRIDES", "IMAP_CLIENT_OPTIONS", "GRAPH_ENV_OVERRIDES")}
    app.config.update(IMAP_ENV_OVERRIDES={}, GRAPH_ENV_OVERRIDES={})
    yield
    app.config.update(saved)


def test_an_admin_sets_up_an_imap_mailbox(app, browser, live_server, personas, dovecot, no_env, tmp_path):
    from backend.app.extensions import db
    from backend.app.models import SystemSettings

    dovecot.create("Processed")
    app.config["IMAP_CLIENT_OPTIONS"] = {"ca_file": dovecot.tls.ca_bundle, "timeout": 10}
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(TIMEOUT)
    page.goto(live_server + "/auth/login")
    page.fill("#username", PERSONAS["admin"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.goto(live_server + "/settings?section=mail")
    page.select_option("#mail_source", "imap")
    page.fill("#imap_host", "127.0.0.1")
    page.fill("#imap_port", str(dovecot.port))
    page.select_option("#imap_tls", "starttls")
    page.fill("#imap_username", dovecot.user)
    page.fill("#imap_password", dovecot.password)
    page.fill("#imap_folder", "INBOX")
    page.fill("#imap_processed_folder", "Processed")
    page.click("#test-mail")
    result = page.locator("#mail-test-result")
    assert "it works" in result.inner_text() and "with STARTTLS" in result.inner_text()
    # the password typed in this request came back for saving; the choice too
    assert page.input_value("#imap_password") == dovecot.password
    assert page.input_value("#mail_source") == "imap"
    page.click("#settings-mail button[type=submit]:not([formaction])")
    page.wait_for_selector("text=Mail settings saved")
    assert page.input_value("#imap_password") == ""  # write-only
    page.click("#load-folders")
    page.wait_for_selector("#folder-status.text-success")
    assert "2 folders loaded" in page.inner_text("#folder-status")
    options = page.eval_on_selector_all("#folder-list option", "els => els.map(e => e.value)")
    assert options == ["INBOX", "Processed"]
    page.screenshot(path=str(tmp_path / "settings-imap.png"), full_page=True)
    db.session.expire_all()
    row = db.session.get(SystemSettings, 1)
    assert (row.mail_source, row.imap_host, row.imap_port, row.imap_tls, row.imap_password) == (
        "imap", "127.0.0.1", dovecot.port, "starttls", dovecot.password)
    page.close()
