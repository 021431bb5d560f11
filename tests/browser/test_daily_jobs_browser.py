"""In a real browser: a day in Daily Jobs with a failed, a missed, an overridden and an expected job;
filter by status, step to the previous day and back."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.extensions import db
from backend.app.models import Override, Ticket, TicketJobRun
from backend.app.services.schedules import effective_schedule, first_slot_in_force

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]
AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def at(day, hh, mm=0):
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=AMS).astimezone(UTC)


def daily(time_, grace=60):
    return {"kind": "weekdays", "weekdays": [0, 1, 2, 3, 4, 5, 6], "time": time_, "grace_minutes": grace}


def test_a_day_with_every_status(browser, live_server):
    make_user("victor", roles=("viewer",))
    now_local = datetime.now(AMS)
    # Today, unless the test runs so late that 23:30 + grace is close: then tomorrow (all still Expected there).
    day = now_local.date() if now_local.hour < 22 else now_local.date() + timedelta(days=1)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    alpha, beta = make_customer("Alpha Testing"), make_customer("Beta Testing")

    def job(cust, name, sched):
        # In force since long ago, and the missed-run check has not visited since: its slots await it.
        j = make_job(cust, name, sender=f"{name.split()[0].lower()}@example.test", manual_schedule=sched,
                     created_at=long_ago)
        j.next_expected_slot, j.next_expected_at = first_slot_in_force(effective_schedule(j), long_ago, AMS)
        return j

    failed = job(alpha, "SQL Backup", daily("00:05"))
    r = make_run(failed, "Failed", at(day, 0, 7), message="SQL01: Access denied")
    ticket = Ticket(code="T20261126.0042", description="Service account locked")
    db.session.add(ticket)
    db.session.flush()
    db.session.add(TicketJobRun(ticket_id=ticket.id, job_run_id=r.id))
    make_run(failed, "Success", at(day, 0, 40))  # a retry: the worst run still decides the day
    missed = job(alpha, "File Server Backup", daily("00:10"))
    make_run(missed, "Missed", at(day, 0, 10), missed=True, missed_slot=at(day, 0, 10),
             message="No report arrived for the run expected at 00:10.")
    overridden = job(beta, "VM Backup", daily("00:15"))
    rule = Override(level="job", job_id=overridden.id, match_status="Warning", treat_as_success=True,
                    comment="CBT reset is expected after the host upgrade")
    db.session.add(rule)
    db.session.flush()
    make_run(overridden, "Warning", at(day, 0, 16), effective_status="Success", override_id=rule.id,
             message="Changed block tracking reset")
    job(beta, "Exchange Backup", daily("23:30", grace=20))
    db.session.commit()

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(live_server + "/auth/login")
    page.fill("#username", "victor")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed
    page.goto(f"{live_server}/daily-jobs?date={day.isoformat()}")

    def status_of(name):
        return page.locator(f"#daily-table tr[data-job='{name}'] td").nth(4).inner_text().strip()

    assert status_of("SQL Backup") == "Failed"
    assert status_of("File Server Backup") == "Missed"
    assert status_of("VM Backup") == "Success (override)"
    assert status_of("Exchange Backup") == "Expected"
    assert page.locator("#daily-table tr[data-job='SQL Backup'] .day-run").count() == 2
    assert "T20261126.0042" in page.inner_text("#daily-table tr[data-job='SQL Backup']")
    groups = page.locator("#daily-table tr.table-group-header").all_inner_texts()
    assert [g.strip() for g in groups] == ["Alpha Testing", "Beta Testing"]
    page.screenshot(path="/tmp/backupchecks-daily-jobs.png", full_page=True)

    # Filter by status through the form: only the missed job stays.
    page.select_option("#f-status", "missed")
    page.click("#daily-filters button")
    page.wait_for_url("**status=missed**")
    assert page.locator("#daily-table tr[data-job]").count() == 1
    assert status_of("File Server Backup") == "Missed"

    # The day before: nothing ran and the jobs are Missed; "Today" comes back with the filter kept.
    page.click("#prev-day")
    page.wait_for_url(f"**date={(day - timedelta(days=1)).isoformat()}**")
    assert status_of("SQL Backup") == status_of("VM Backup") == "Missed"
    page.click("#next-day")
    page.wait_for_url(f"**date={day.isoformat()}**")
    assert status_of("File Server Backup") == "Missed"

    # A mistyped date in the address: a clear message, not a stack trace.
    page.goto(f"{live_server}/daily-jobs?date=26-11-2026")
    assert "is not a date: use YYYY-MM-DD" in page.inner_text("#error-message")
