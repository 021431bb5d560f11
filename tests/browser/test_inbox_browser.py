"""In a real browser: upload .eml files, approve one to a new customer, see its job and its other mails processed."""
import re

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import Job, JobRun, MailMessage

from ..conftest import PASSWORD, make_user
from ..corpus import CORPUS

pytestmark = [pytest.mark.browser]

SAMPLES = CORPUS


def test_upload_and_approve_in_the_browser(browser, live_server, tmp_path):
    make_user("oscar", roles=("operator",))
    raw = next(SAMPLES.rglob("v01_vbr_backup_vmware_success.eml")).read_bytes()
    files = []
    for i in range(3):
        p = tmp_path / f"report-{i}.eml"
        p.write_bytes(re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <b{i}@example.test>".encode(), raw, count=1))
        files.append(str(p))
    other = tmp_path / "other.eml"
    other.write_bytes(next(SAMPLES.rglob("v03_vbr_backup_failed.eml")).read_bytes())
    files.append(str(other))

    db.session.commit()  # the live server reads from its own session
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server + "/auth/login")
    page.fill("#username", "oscar")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed
    page.goto(live_server + "/inbox")
    assert "The Inbox is empty" in page.inner_text("main")
    page.set_input_files("#upload-files", files)
    page.click("#upload-form button")
    assert "4 new mail(s)" in page.inner_text("main")
    assert page.locator("#inbox-table tbody tr").count() == 4

    page.locator("#inbox-table a", has_text="[Success] Daily VM Backup").first.click()
    page.wait_for_selector("#mail-frame")
    assert page.frame_locator("#mail-frame").locator("body").inner_text()  # the body renders in the sandbox
    page.fill("#approve-customer", "Fabrikam Testing BV")
    page.click("#approve-form button")
    assert "3 mail(s) became runs" in page.inner_text("main")
    assert page.locator("#inbox-table tbody tr").count() == 1
    page.screenshot(path="/tmp/backupchecks-inbox-after-approve.png", full_page=True)

    job = db.session.execute(select(Job)).scalar_one()
    assert job.customer.name == "Fabrikam Testing BV"
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 3
    assert db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.state == "processed")).scalar_one() == 3
