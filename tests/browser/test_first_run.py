"""In a real browser: first-run setup, login, role switch changes the navigation."""
import pytest

pytestmark = [pytest.mark.browser]

PASSWORD = "a-long-admin-password"


def nav_labels(page):
    return [t.strip() for t in page.locator("#main-nav a.nav-link span:first-child").all_inner_texts()]


def test_first_run_login_and_role_switch(browser, live_server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(live_server + "/")
    assert page.url.endswith("/auth/setup")
    page.fill("#username", "firstadmin")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    assert "Settings" in nav_labels(page)

    # Give ourselves the operator role too (Settings → Users), then switch to it.
    page.click("text=Settings")
    page.click("a.nav-link:has-text('Users')")
    row = page.locator("tr[data-user=firstadmin]")
    row.locator("input[name=roles][value=operator]").check()
    row.locator("button:has-text('Save roles')").click()
    assert "Roles of firstadmin saved" in page.inner_text("main")

    page.select_option("#role-select", "operator")
    page.wait_for_url(live_server + "/")
    labels = nav_labels(page)
    assert "Run Checks" in labels and "Settings" not in labels and "Audit log" not in labels
    page.screenshot(path="/tmp/backupchecks-operator-nav.png")

    # Log out and in again: the active role is remembered.
    page.click("#user-menu")
    page.click("text=Log out")
    page.wait_for_url("**/auth/login")
    page.fill("#username", "firstadmin")
    page.fill("#password", "wrong-password-xyz")
    page.click("button[type=submit]")
    assert "Unknown user name or wrong password" in page.inner_text("#login-error")
    page.fill("#username", "firstadmin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    assert page.locator("#role-select").input_value() == "operator"
    assert "Settings" not in nav_labels(page)
    ctx.close()
