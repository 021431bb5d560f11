"""In a real browser: an admin invites a customer's own staff to the portal; the invitee opens the
link, chooses a name and password, lands in the portal and sees only their customer's Daily Jobs,
at desktop and at phone size (screenshots in /tmp/backupchecks-portal-*.png)."""
import pytest

from ..conftest import PASSWORD, make_user
from ..portal_seed import A_JOB, A_NAME, B_JOBS, B_NAME, seed_portal_world

pytestmark = [pytest.mark.browser]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
INVITEE_PASSWORD = "portal-password-123"


def login(page, live_server, name, password=PASSWORD):
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def no_overflow(page, name):
    page.screenshot(path=f"/tmp/backupchecks-portal-{name}.png", full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"


def test_an_admin_invites_a_portal_user_who_sees_only_their_customer(browser, live_server):
    make_user("alice", roles=("admin",))
    seed_portal_world()

    admin = browser.new_page(viewport=DESKTOP)
    errors = []
    admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(admin, live_server, "alice")
    admin.goto(live_server + "/settings/users")
    admin.select_option("#inv-customers", label=A_NAME)
    admin.fill("#inv-note", "Ingrid at Alpha")
    admin.click("#invitation-create button")
    admin.wait_for_selector("#invitation-url")
    link = admin.input_value("#invitation-url")
    assert "/auth/invitation/" in link
    no_overflow(admin, "admin-invitation")
    assert admin.locator("#invitations-table tr[data-state='open']").count() == 1
    admin.close()

    invitee = browser.new_context(viewport=DESKTOP).new_page()
    invitee.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    invitee.goto(link)
    invitee.fill("#username", "ingrid")
    invitee.fill("#password", INVITEE_PASSWORD)
    invitee.fill("#confirm", INVITEE_PASSWORD)
    invitee.click("#invitation-form button[type=submit]")
    invitee.wait_for_url(lambda url: url.rstrip("/") == live_server)
    assert "Your backups" in invitee.inner_text("h1")
    nav = [t.strip() for t in invitee.locator("#main-nav .nav-link").all_inner_texts()]
    assert nav == ["Dashboard", "Daily Jobs", "Reports", "Documentation"]
    no_overflow(invitee, "dashboard-desktop")

    invitee.click("#main-nav >> text=Daily Jobs")
    invitee.wait_for_function("() => document.querySelector('#daily-table') !== null")
    rows = invitee.locator("#daily-table tr[data-job]")
    assert [rows.nth(i).get_attribute("data-job") for i in range(rows.count())] == [A_JOB]
    groups = [g.strip() for g in invitee.locator("#daily-table tr.table-group-header").all_inner_texts()]
    assert groups == [A_NAME]
    text = invitee.content()
    assert B_NAME not in text and not [j for j in B_JOBS if j in text]
    assert invitee.locator("#f-customer option").all_inner_texts() == ["All your customers", A_NAME]
    no_overflow(invitee, "daily-jobs-desktop")

    invitee.click(f"#daily-table a:text('{A_JOB}')")  # the job's history: its runs, read-only
    invitee.wait_for_function("() => document.querySelector('#runs-table') !== null")
    assert invitee.locator("#runs-table tbody tr").count() == 2
    assert invitee.locator("#job-delete, #schedule-form, #quiet").count() == 0
    no_overflow(invitee, "job-desktop")

    # The same at phone size: the navigation behind the Menu button, still only the portal's pages.
    phone = browser.new_context(viewport=PHONE).new_page()
    login(phone, live_server, "ingrid", INVITEE_PASSWORD)
    phone.goto(live_server + "/daily-jobs")
    assert phone.locator("#daily-table tr[data-job]").count() == 1
    assert B_NAME not in phone.content()
    no_overflow(phone, "daily-jobs-phone")
    phone.click("#nav-toggle")
    phone.wait_for_function("() => document.querySelector('#main-nav').classList.contains('show')")
    menu = [t.strip() for t in phone.locator("#main-nav .nav-link").all_inner_texts()]
    assert menu == ["Dashboard", "Daily Jobs", "Reports", "Documentation"]
    phone.screenshot(path="/tmp/backupchecks-portal-menu-phone.png")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
