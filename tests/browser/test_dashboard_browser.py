"""In a real browser: the dashboard's chart renders with data, and an admin posts a news item."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import ImportCycle, NewsItem

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]

AMS = ZoneInfo("Europe/Amsterdam")


def test_chart_renders_and_admin_posts_news(browser, live_server):
    make_user("alice", roles=("admin",))
    make_user("victor", roles=("viewer",))
    today = datetime.now(AMS).date()
    customer = make_customer("Alpha Testing")
    jobs = [make_job(customer, f"Job {i}", sender=f"j{i}@example.test") for i in range(4)]
    for back in range(30):
        day = today - timedelta(days=back)
        for i, job in enumerate(jobs):
            if back % 7 == 3 and i == 0:
                status = "Failed"
            elif back % 5 == 1 and i == 1:
                status = "Warning"
            elif back % 11 == 2 and i == 2:
                status = "Missed"
            else:
                status = "Success"
            started = datetime.combine(day, time(1 + i), tzinfo=AMS).astimezone(timezone.utc)
            make_run(job, status, started, missed=status == "Missed",
                     reviewed_at=started if back else None)
    db.session.add(ImportCycle(state="done", started_at=datetime.now(timezone.utc) - timedelta(minutes=12),
                               fetched=4, new=4, auto_processed=4))
    db.session.commit()

    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    page.goto(live_server + "/auth/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed
    page.goto(live_server + "/")

    # The chart: Chart.js drew on the canvas with 30 days of rates.
    page.wait_for_function("() => window.bcSuccessChart !== undefined")
    points = page.evaluate("window.bcSuccessChart.data.datasets[0].data")
    assert len(points) == 30 and all(p is not None for p in points)
    assert min(points) < 100 and max(points) == 100
    drawn = page.evaluate("""() => {
        const c = document.getElementById('success-chart');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) { if (px[i] > 0) n++; }
        return n; }""")
    assert drawn > 1000, drawn  # pixels painted, not an empty canvas
    assert page.locator("[data-kpi=unreviewed]").inner_text() == "4"
    assert "4 fetched · 4 new" in page.inner_text("#last-import")

    # Post a news item with Markdown, visible from now on.
    page.click("#news-post summary")
    page.fill("#news-title-input", "Patch night Thursday")
    page.fill("#news-body-input", "Servers reboot from **22:00**; expect *missed* runs.\n\n"
                                  "- [Maintenance plan](https://example.test/plan)\n- <script>alert(1)</script>")
    page.click("#news-form button")
    page.wait_for_url("**/#news")
    assert "News 'Patch night Thursday' posted." in page.inner_text("main")
    article = page.locator("article.news-item").first
    assert article.locator("h3").inner_text() == "Patch night Thursday"
    assert article.locator("strong").inner_text() == "22:00"
    assert article.locator("a").get_attribute("href") == "https://example.test/plan"
    assert "<script>alert(1)</script>" in article.inner_text()  # shown as text, never run
    page.locator("#news-post summary").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path="/tmp/backupchecks-dashboard.png", full_page=True)

    # Bad input keeps the form open, says why and saves nothing.
    page.click("#news-post summary")
    page.fill("#news-title-input", "Backwards")
    page.fill("#news-visible_from", "2026-07-02T08:00")
    page.fill("#news-visible_until", "2026-07-01T08:00")
    page.click("#news-form button")
    assert "Visible until must be after visible from" in page.inner_text("#news-post")
    assert len(db.session.execute(select(NewsItem)).scalars().all()) == 1

    # A viewer sees the news, not the admin's form.
    viewer = browser.new_page(viewport={"width": 1280, "height": 900})
    viewer.goto(live_server + "/auth/login")
    viewer.fill("#username", "victor")
    viewer.fill("#password", PASSWORD)
    viewer.click("button[type=submit]")
    viewer.goto(live_server + "/")
    assert "Patch night Thursday" in viewer.inner_text("#news")
    assert viewer.locator("#news-post").count() == 0
    viewer.close()
    page.close()


def test_empty_dashboard_says_what_to_do_and_shows_a_failed_import(browser, live_server):
    make_user("alice", roles=("admin",))
    db.session.add(ImportCycle(state="failed", started_at=datetime.now(timezone.utc) - timedelta(minutes=3),
                               error="Graph refused the client secret (AADSTS7000215): it may have expired."))
    db.session.commit()
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page.goto(live_server + "/auth/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed
    page.goto(live_server + "/")
    empty = page.inner_text("#empty-state")
    assert "No backup runs yet" in empty and "Settings → Mail" in empty and "Inbox → Upload" in empty
    problem = page.inner_text("#import-problem")
    assert "The last import failed." in problem and "AADSTS7000215" in problem and "What to do" in problem
    assert page.locator("#success-chart").count() == 0  # no empty grid: a sentence instead
    assert "the chart appears once backup reports are imported" in page.inner_text("#success-rate")
    page.click("#empty-state a[href='/settings?section=mail']")
    page.wait_for_url("**/settings?section=mail")
    page.go_back()
    page.screenshot(path="/tmp/backupchecks-dashboard-empty.png", full_page=True)
    page.close()
