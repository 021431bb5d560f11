"""In a real browser: work a day's Run Checks queue to empty, with an override, the keyboard and a bulk review."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import JobRun, Override, RunObject

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]


def test_work_the_queue_to_empty(browser, live_server):
    make_user("oscar", roles=("operator",))
    now = datetime.now(timezone.utc)
    alpha, beta = make_customer("Alpha Testing"), make_customer("Beta Testing")
    jobs = {
        "warn": make_job(alpha, "File Server Backup", sender="a@example.test"),
        "fail": make_job(beta, "SQL Backup", sender="b@example.test"),
        "ok1": make_job(alpha, "VM Backup", sender="c@example.test"),
        "ok2": make_job(beta, "Exchange Backup", sender="d@example.test"),
    }
    r = make_run(jobs["warn"], "Warning", now - timedelta(hours=5), message="FS01: Changed block tracking reset")
    db.session.add(RunObject(job_run_id=r.id, name="FS01", type="VM", status="Warning", effective_status="Warning",
                             message="Changed block tracking reset"))
    r = make_run(jobs["fail"], "Failed", now - timedelta(hours=4), message="SQL01: Access denied")
    db.session.add(RunObject(job_run_id=r.id, name="SQL01", type="VM", status="Failed", effective_status="Failed",
                             message="Access denied"))
    make_run(jobs["ok1"], "Success", now - timedelta(hours=3))
    make_run(jobs["ok2"], "Success", now - timedelta(hours=3))
    db.session.commit()

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(live_server + "/auth/login")
    page.fill("#username", "oscar")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed
    page.goto(live_server + "/run-checks")
    assert page.locator("#job-panel h2").inner_text() == "SQL Backup"  # the worst job first
    page.screenshot(path="/tmp/backupchecks-run-checks.png", full_page=True)

    # The two jobs with only successful runs are folded, one line per customer.
    assert page.locator("#queue .folded-successful").count() == 2
    assert page.locator("#queue [data-job-id]").count() == 2

    # Keyboard: r marks the failed job reviewed and moves to the next listed job (the warning).
    page.keyboard.press("r")
    page.wait_for_url(f"**/run-checks?job={jobs['warn'].id}")
    assert "1 run of 'SQL Backup' marked reviewed" in page.inner_text("main")
    assert page.locator("#job-panel h2").inner_text() == "File Server Backup"

    # Unfolded, Alpha's successful job is listed too, and j walks to it.
    page.click("#queue [data-customer-id='%d'] a" % alpha.id)
    page.wait_for_url(f"**/run-checks?expand={alpha.id}")
    assert page.locator("#job-panel h2").inner_text() == "File Server Backup"
    page.keyboard.press("j")
    page.wait_for_url(f"**/run-checks?expand={alpha.id}&job={jobs['ok1'].id}")
    assert page.locator("#job-panel h2").inner_text() == "VM Backup"
    page.keyboard.press("k")
    page.wait_for_url(f"**/run-checks?expand={alpha.id}&job={jobs['warn'].id}")

    # The warning is known and accepted: mark it as success for future runs too.
    page.select_option(".mark-success select[name=future]", "yes")
    page.click(".mark-success button")
    assert "Marked as success (this run and future runs)" in page.inner_text("main")
    assert "Success (override)" in page.inner_text("#job-panel")

    # What is left is successful: one button reviews it all, after a confirmation.
    page.goto(live_server + "/run-checks")
    assert page.locator("#only-successful").is_visible()
    page.once("dialog", lambda d: d.accept())
    page.click("#review-all-successful")
    assert "3 successful runs of 3 jobs marked reviewed" in page.inner_text("main")
    assert "All runs reviewed" in page.inner_text("main")
    page.screenshot(path="/tmp/backupchecks-run-checks-empty.png")

    assert db.session.execute(select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None))).scalar_one() == 0
    assert db.session.execute(select(func.count(Override.id))).scalar_one() == 1
