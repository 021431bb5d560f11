"""In a real browser, on a laptop and on a phone: type part of a job's name in the ticket form, choose
the suggestion (keyboard or finger), and create a ticket scoped to that job. The page lists no jobs;
the suggestions come from the server while typing, under the strict Content-Security-Policy."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import Ticket

from ..conftest import PASSWORD, make_customer, make_job, make_user

pytestmark = [pytest.mark.browser]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT = 15_000  # ms: generous for a busy two-core machine


def seed():
    make_user("oscar", roles=("operator",))
    acme, beta = make_customer("Acme Logistics"), make_customer("Beta Dental")
    weekly = make_job(acme, "SQL Server Weekly", sender="a@example.test")
    nightly = make_job(beta, "SQL Server Nightly", sender="b@example.test")
    for i in range(40):
        make_job(acme, f"Fileshare {i:02}", sender=f"f{i}@example.test")
    db.session.commit()  # the live server reads from its own session
    return weekly, nightly


def open_tickets(browser, live_server, viewport):
    phone = viewport == PHONE
    page = browser.new_page(viewport=viewport, reduced_motion="reduce", has_touch=phone, is_mobile=phone)
    page.set_default_timeout(TIMEOUT)
    problems, lookups = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" or "Content Security" in m.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", lambda r: lookups.append(r.url) if "/jobs/lookup" in r.url else None)
    page.goto(live_server + "/auth/login")
    page.fill("#username", "oscar")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.goto(live_server + "/tickets")
    assert "Fileshare" not in page.content()  # no job is listed in the page
    return page, problems, lookups


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_type_part_of_a_job_name_choose_it_and_create_a_ticket_for_it(browser, live_server, viewport):
    weekly, nightly = seed()
    page, problems, lookups = open_tickets(browser, live_server, viewport)
    box, hidden, options = page.locator("#new-job"), page.locator("#new-job-id"), page.locator("#new-job-list [role=option]")
    assert box.get_attribute("role") == "combobox" and box.get_attribute("aria-expanded") == "false"
    assert page.locator("label[for=new-job]").inner_text().startswith("Job")
    page.fill("#new-code", "PSA-4711")

    if viewport == DESKTOP:
        # Two jobs match "sql": ↓ ↓ moves to the second, Enter chooses it (and does not send the form).
        box.press_sequentially("sql", delay=40)
        expect(options).to_have_count(2)
        assert box.get_attribute("aria-expanded") == "true"
        assert options.all_inner_texts()[0].startswith("SQL Server Weekly")  # Acme before Beta
        box.press("ArrowDown")
        box.press("ArrowDown")
        assert box.get_attribute("aria-activedescendant") == "new-job-list-1"
        expect(options.nth(1)).to_have_attribute("aria-selected", "true")
        page.screenshot(path="/tmp/backupchecks-ticket-job-picker-open-1366.png")
        box.press("Enter")
    else:
        box.tap()
        box.press_sequentially("nightly", delay=40)
        expect(options).to_have_count(1)
        rect = page.locator("#new-job-list").bounding_box()
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE["width"]  # the list fits the screen
        page.screenshot(path="/tmp/backupchecks-ticket-job-picker-open-390.png")
        options.first.tap()

    expect(box).to_have_value("Beta Dental · SQL Server Nightly")
    expect(hidden).to_have_value(str(nightly.id))
    expect(page.locator("#new-job-list")).to_be_hidden()
    expect(page.locator("#new-job-status")).to_have_text("Chosen: Beta Dental · SQL Server Nightly "
                                                         "(Veeam Backup & Replication).")
    assert "/tickets/new" not in page.url  # choosing never sent the form
    assert len(lookups) <= 2, lookups  # asked after typing stopped, not once per key

    if viewport == DESKTOP:
        # Typing over the choice clears it; choosing again (one suggestion: Enter takes it) sets it back.
        box.press("End")
        box.press("Backspace")
        expect(hidden).to_have_value("")
        box.press_sequentially("y", delay=40)
        expect(options).to_have_count(1)
        box.press("Enter")
        expect(hidden).to_have_value(str(nightly.id))

    page.screenshot(path=f"/tmp/backupchecks-ticket-job-picker-{viewport['width']}.png", full_page=True)
    with page.expect_navigation():
        page.click("#ticket-create button.btn-primary")
    expect(page.locator("main")).to_contain_text("Ticket PSA-4711 created.")
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert [(s.scope_type, s.job_id) for s in ticket.scopes] == [("job", nightly.id)]
    expect(page.locator("#ticket-table")).to_contain_text("Job: Beta Dental · SQL Server Nightly")
    assert problems == []


def test_a_chosen_customer_narrows_the_suggestions_and_escape_closes_them(browser, live_server):
    weekly, nightly = seed()
    page, problems, _ = open_tickets(browser, live_server, DESKTOP)
    page.select_option("#new-customer", label="Acme Logistics")
    box, options = page.locator("#new-job"), page.locator("#new-job-list [role=option]")
    box.press_sequentially("sql server", delay=30)
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("SQL Server Weekly")
    box.press("Escape")
    expect(page.locator("#new-job-list")).to_be_hidden()
    # ↓ in a box with the whole name lists the customer's first jobs; many match: the status says so.
    box.fill("")
    box.press("ArrowDown")
    expect(options).to_have_count(20)
    expect(page.locator("#new-job-status")).to_have_text("The first 20 matching jobs: type more to narrow them down.")
    box.press("Escape")
    box.press_sequentially("zzz", delay=30)
    expect(page.locator("#new-job-status")).to_have_text("No job of the chosen customer matches.")
    assert page.locator("#new-job-id").input_value() == ""
    assert problems == []
