"""In a real browser: add a customer, see it listed, find its job and open the job's page."""
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.extensions import db
from backend.app.models import Customer, RunObject

from ..conftest import PASSWORD, make_customer, make_job, make_run

pytestmark = [pytest.mark.browser]


def test_add_customer_and_open_job_detail(browser, live_server, personas):
    existing = make_customer("Contoso Test")
    job = make_job(existing, job_name="Daily VM Backup")
    run = make_run(job, "Warning", datetime.now(timezone.utc) - timedelta(hours=3), message="1 VM had warnings")
    db.session.add(RunObject(job_run_id=run.id, name="vm-web-01", type="VM", status="Warning", message="Low disk space"))
    db.session.commit()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(live_server + "/auth/login")
    page.fill("#username", "oscar")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")

    page.click("#main-nav >> text=Customers")
    page.fill("#new-customer-name", "Northwind Demo")
    page.click("#customer-create button")
    assert "Customer Northwind Demo added." in page.inner_text("main")
    row = page.locator("tr[data-customer='Northwind Demo']")
    assert row.count() == 1 and "0 jobs" in row.inner_text()
    page.goto(live_server + "/customers")
    assert page.locator("tr[data-customer='Contoso Test']").inner_text().count("1 job") == 1
    page.screenshot(path="/tmp/backupchecks-customers.png", full_page=True)

    # The top bar's search lands on Jobs, grouped by customer.
    page.fill("#global-search", "contoso")
    page.press("#global-search", "Enter")
    page.wait_for_url("**/jobs?q=contoso")
    assert page.locator("tr[data-customer-group='Contoso Test']").count() == 1
    assert "Warning" in page.locator("tr[data-job='Daily VM Backup']").inner_text()
    page.screenshot(path="/tmp/backupchecks-jobs.png", full_page=True)

    page.click("tr[data-job='Daily VM Backup'] a")
    page.wait_for_url(f"**/jobs/{job.id}")
    assert "Daily VM Backup" in page.inner_text("h1")
    page.click("#runs-table summary")
    assert page.locator("#runs-table >> text=vm-web-01").is_visible()
    assert "Low disk space" in page.inner_text("#runs-table")
    assert "Delete this job and its 1 run" in page.inner_text("#job-delete")
    page.screenshot(path="/tmp/backupchecks-job-detail.png", full_page=True)
    ctx.close()
    assert db.session.query(Customer).filter_by(name="Northwind Demo").count() == 1
