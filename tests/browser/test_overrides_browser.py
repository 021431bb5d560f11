"""In a real browser: create an override with the job picker, see a refused pattern explained, edit,
and delete as admin (the operator has no delete button)."""
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import JobRun, Override

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]


def login(page, live_server, name):
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed


def test_create_edit_and_delete_an_override(browser, live_server):
    make_user("oscar", roles=("operator",))
    make_user("alice", roles=("admin",))
    now = datetime.now(timezone.utc)
    alpha, beta = make_customer("Alpha Testing"), make_customer("Beta Testing")
    make_job(alpha, "File Server Backup", sender="a@example.test")
    sql = make_job(beta, "SQL Backup", sender="b@example.test")
    run = make_run(sql, "Warning", now - timedelta(hours=2), message="Transaction log is nearly full")

    db.session.commit()  # the live server reads from its own session
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    login(page, live_server, "oscar")
    page.goto(live_server + "/overrides")
    assert "No overrides yet" in page.inner_text("main")
    page.click("#new-override")

    # Global first, with a broken pattern: refused with the reason, and what was typed stays.
    page.check("#level-global")
    assert page.locator("#job_text").is_hidden() and page.locator("#software").is_visible()
    page.fill("#software", "Veeam Backup & Replication")
    page.fill("#job_name_pattern", "SQL[0-9")
    page.click("#save-override")
    assert "has a '[' without a closing ']'" in page.inner_text("#form-error")
    assert page.input_value("#job_name_pattern") == "SQL[0-9"
    assert page.is_checked("#level-global")

    # Job level: type part of the customer and job name, choose the suggestion, match the message.
    page.check("#level-job")
    assert page.locator("#software").is_disabled() and page.locator("#job_text").is_enabled()
    page.locator("#job_text").press_sequentially("beta sql", delay=30)
    suggestions = page.locator("#job_text-list [role=option]")
    expect(suggestions).to_have_count(1)
    suggestions.first.click()
    expect(page.locator("#job_id")).to_have_value(str(sql.id))
    assert page.input_value("#job_text") == "Beta Testing · SQL Backup"
    page.select_option("#match_status", "Warning")
    page.fill("#match_text", "nearly full")
    page.fill("#comment", "Log backups run at noon")
    page.screenshot(path="/tmp/backupchecks-override-form.png", full_page=True)
    page.click("#save-override")
    page.wait_for_url("**/overrides")
    assert "it now decides 1 of them" in page.inner_text("main")
    db.session.expire_all()
    assert db.session.get(JobRun, run.id).effective_status == "Success"
    assert page.locator(".delete-override").count() == 0  # operators don't delete

    # Edit: switch it off.
    page.click(".edit-override")
    page.uncheck("#active")
    page.click("#save-override")
    page.wait_for_url("**/overrides")
    assert "switched off" in page.inner_text("#overrides-table")
    db.session.expire_all()
    assert db.session.get(JobRun, run.id).effective_status == "Warning"
    page.screenshot(path="/tmp/backupchecks-overrides.png", full_page=True)

    # The admin deletes it (after confirming).
    page.goto(live_server + "/auth/logout")  # a page with a button: GET alone logs nobody out
    page.click("#logout-button")
    page.wait_for_url("**/auth/login")
    login(page, live_server, "alice")
    page.goto(live_server + "/overrides")
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.click(".delete-override button")
    assert "deleted" in page.inner_text("main")
    assert db.session.execute(select(func.count(Override.id))).scalar_one() == 0
