"""In a real browser: a reporter defines a report, generates a PDF in the background, watches it finish
and downloads it; the preview shows the figures."""
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.extensions import db

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]


def test_reporter_generates_and_downloads_a_pdf(browser, live_server, app, tmp_path):
    make_user("rita", roles=("reporter",))
    job = make_job(make_customer("Northwind Demo"))
    now = datetime.now(timezone.utc)
    for day in range(1, 8):
        make_run(job, status="Failed" if day == 3 else "Success", message="disk full" if day == 3 else None,
                 started_at=now - timedelta(days=day, hours=2))

    db.session.commit()  # the live server reads from its own session
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(live_server + "/auth/login")
    page.fill("#username", "rita")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")

    page.goto(live_server + "/reports")
    assert "No reports defined yet" in page.inner_text("main")
    page.click("#new-report")
    page.fill("#name", "Weekly for Northwind")
    page.check("#period-last_7_days")
    page.fill("#intro_markdown", "Dear customer, **all is well**.")
    page.click("#save-report")
    assert "Report 'Weekly for Northwind' created" in page.inner_text("main")

    page.click("#generate-pdf")
    # The page polls the progress and reloads when the file is ready.
    page.wait_for_selector("a.report-download", timeout=30000)
    with page.expect_download() as info:
        page.click("a.report-download")
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert download.suggested_filename.startswith("weekly-for-northwind_") and path.read_bytes().startswith(b"%PDF")

    page.screenshot(path="/tmp/backupchecks-report-detail.png", full_page=True)
    page.click("#preview-report")
    text = page.inner_text("main")
    assert "Northwind Demo" in text and "all is well" in text and "disk full" in text
    page.screenshot(path="/tmp/backupchecks-report-preview.png", full_page=True)
    ctx.close()
