"""In a real browser against the fake Autotask: set up, map a customer, ticket from Run Checks, resolve."""
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.extensions import db
from backend.app.models import RunObject, Ticket
from tests.fakes.fake_autotask import FakeAutotask

from ..conftest import PASSWORD, make_customer, make_job, make_run

pytestmark = [pytest.mark.browser]


def _login(page, base, user):
    page.goto(base + "/auth/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_set_up_map_create_and_resolve(browser, live_server, personas, app):
    fake = FakeAutotask().start()
    app.config["AUTOTASK_CONFIG_OVERRIDES"] = {"zone_discovery_urls": (fake.discovery_url,), "timeout": 2.0,
                                               "retry_budget": 1.5, "backoff_base": 0.05,
                                               "lost_create_recheck_delay": 0.05}
    try:
        customer = make_customer("Dental Test")
        job = make_job(customer, job_name="SQL01 nightly")
        run = make_run(job, "Failed", datetime.now(timezone.utc) - timedelta(hours=2), message="VM-A: Disk full")
        db.session.add(RunObject(job_run_id=run.id, name="VM-A", type="VM", status="Failed",
                                 effective_status="Failed", message="Disk full"))
        db.session.commit()

        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        _login(page, live_server, "alice")
        page.goto(live_server + "/settings?section=integrations")
        page.check("#autotask_enabled")
        page.select_option("#autotask_environment", "production")
        page.fill("#autotask_api_user", fake.api_user)
        page.fill("#autotask_secret", fake.secret)
        page.fill("#autotask_integration_code", fake.integration_code)
        page.fill("#autotask_base_url", live_server)
        page.click("#settings-autotask button[type=submit]")
        assert "Autotask settings saved." in page.inner_text("main")
        assert page.input_value("#autotask_secret") == ""  # write-only
        page.click("#autotask-test")
        assert "Autotask connection works" in page.inner_text("main")
        page.click("#autotask-refresh")
        assert "Reference data refreshed" in page.inner_text("main")
        page.select_option("#autotask_default_queue_id", label="Monitoring Alert")
        page.click("#settings-autotask button[type=submit]")
        assert "Autotask settings saved." in page.inner_text("main")
        page.screenshot(path="/tmp/backupchecks-autotask-settings.png", full_page=True)

        page.goto(f"{live_server}/customers/{customer.id}/autotask")
        page.fill("#company-q", "Dental")
        page.click("form[role=search] button")
        page.click("#company-results >> text=Map")
        assert "is mapped to Autotask company Example Dental Practice BV" in page.inner_text("main")
        page.screenshot(path="/tmp/backupchecks-autotask-mapping.png", full_page=True)
        ctx.close()

        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        _login(page, live_server, "oscar")
        page.goto(f"{live_server}/run-checks?job={job.id}")
        page.click(".autotask-create button")
        assert "created for SQL01 nightly" in page.inner_text("main")
        [at] = fake.tickets.values()
        assert f"{live_server}/run-checks?job={job.id}" in at["description"]
        assert at["ticketNumber"] in page.inner_text(".autotask-block")
        page.screenshot(path="/tmp/backupchecks-autotask-run-checks.png", full_page=True)
        page.click(".autotask-resolve summary")
        page.fill(".autotask-resolve textarea", "Disk replaced")
        page.click(".autotask-resolve button")
        assert "completed in Autotask" in page.inner_text("main")
        assert at["status"] == 5 and fake.violations == []
        db.session.expire_all()
        assert db.session.query(Ticket).one().resolved_at is not None
        ctx.close()
    finally:
        app.config.pop("AUTOTASK_CONFIG_OVERRIDES", None)
        fake.stop()
