"""The Inbox as a new admin meets it: a full page of long subjects fits a 1440 px screen, the count says
what a filter matched, and a viewer is not told to approve or delete."""
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.extensions import db
from backend.app.models import MailMessage

from ..conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]

T0 = datetime(2024, 3, 5, 22, 0, tzinfo=timezone.utc)  # fixed: the tests never read the clock
LONG_SUBJECT = ("[Warning] Nightly Backup Copy Job - Contoso Production Hyper-V Cluster Replicas to the "
                "Offsite Repository in the Second Datacenter (24 objects) 3 warnings, 1 retry pending")


def _fill_inbox(n=28):
    for i in range(n):
        parsed = i % 4 != 3
        db.session.add(MailMessage(
            source="upload", source_id=f"wide-{i}",
            from_address=f"veeam-backup-notifications-{i}@backupserver{i:02d}.contoso-datacenter.example.test",
            subject=f"{LONG_SUBJECT} #{i}", received_at=T0 - timedelta(minutes=i), parsed=parsed, is_report=parsed,
            parser_name="veeam" if parsed else None,
            parse_reason=("Veeam session report ('Backup Copy job:' header with summary grid)" if parsed else
                          "no parser recognised this message: the sender, subject and body match no parser's criteria"),
            software="Veeam Backup & Replication" if parsed else None,
            backup_type="Backup Copy Job" if parsed else None,
            job_name=f"Nightly Backup Copy Job - Contoso Production Hyper-V Cluster Replicas {i}" if parsed else None,
            overall_status="Warning" if parsed else None, state="inbox", raw=b"Subject: x\r\n\r\nx"))
    db.session.commit()


def _login(browser, live_server, username, viewport):
    page = browser.new_page(viewport=viewport)
    page.goto(live_server + "/auth/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return page


def test_a_full_inbox_fits_a_1440_screen(browser, live_server):
    make_user("alice", roles=("admin",))
    _fill_inbox()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, "alice", {"width": 1440, "height": 900})
    page.goto(live_server + "/inbox")
    page.screenshot(path="/tmp/backupchecks-inbox-1440.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    wrapper = page.locator("#inbox-table").locator("xpath=..")
    assert wrapper.evaluate("el => el.scrollWidth <= el.clientWidth"), "columns are cut off at 1440 px"
    # Every column header is on the screen, and no cell's text runs into its neighbour.
    for th in page.locator("#inbox-table thead th").all():
        box = th.bounding_box()
        assert box["x"] + box["width"] <= 1440
    spilling = page.evaluate("""() => [...document.querySelectorAll('#inbox-table td')]
        .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.innerText)""")
    assert spilling == []
    # A long subject takes at most two lines; the full text is in its title.
    link = page.locator("#inbox-table tbody tr").first.locator("td.subject a")
    line = float(link.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
    assert link.bounding_box()["height"] <= 2 * line + 1
    assert link.get_attribute("title") == f"{LONG_SUBJECT} #0"
    page.close()


def test_the_count_says_what_a_filter_matched(browser, live_server):
    make_user("oscar", roles=("operator",))
    _fill_inbox()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, "oscar", {"width": 1440, "height": 900})
    page.goto(live_server + "/inbox")
    assert "28 mails wait for a person: approve a job, or delete" in page.inner_text("main")
    page.fill("#f-q", "no-such-mail")
    page.click("form[aria-label=Filters] button")
    page.wait_for_url("**q=no-such-mail**")
    assert "0 of 28 mails match these filters" in page.inner_text("main")
    page.select_option("#f-p", "no")
    page.fill("#f-q", "")
    page.click("form[aria-label=Filters] button")
    page.wait_for_url("**parsed=no**")
    assert "7 of 28 mails match these filters" in page.inner_text("main")
    page.close()


def test_a_viewer_is_not_told_to_approve_or_delete(browser, live_server):
    make_user("victor", roles=("viewer",))
    _fill_inbox(3)
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, "victor", {"width": 1440, "height": 900})
    page.goto(live_server + "/inbox")
    text = page.inner_text("main")
    assert "3 mails wait for an admin or operator to approve or delete them" in text
    assert "approve a job, or delete" not in text
    page.screenshot(path="/tmp/backupchecks-inbox-viewer.png")
    page.close()


def test_on_a_phone_the_inbox_scrolls_only_inside_its_table(browser, live_server):
    make_user("oscar", roles=("operator",))
    _fill_inbox(5)
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, "oscar", {"width": 390, "height": 844})
    page.goto(live_server + "/inbox")
    assert page.locator("main h1").bounding_box()["y"] < 844
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path="/tmp/backupchecks-inbox-390.png")
    page.close()
