"""On a phone (390×844) and on a desktop (1440×900): the navigation folds behind a Menu button below
Bootstrap's lg breakpoint, every page starts with its heading, and a Run Checks job opens as its own view."""
from datetime import datetime, timezone

import pytest

from backend.app.extensions import db
from backend.app.models import RunObject

from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
T0 = datetime(2024, 3, 5, 22, 0, tzinfo=timezone.utc)  # fixed: the tests never read the clock


def _queue():
    """Two customers, four jobs with unreviewed runs (the failed one is the worst)."""
    alpha, beta = make_customer("Alpha Testing"), make_customer("Beta Testing")
    jobs = [make_job(alpha, "File Server Backup", sender="a@example.test"),
            make_job(beta, "SQL Backup", sender="b@example.test"),
            make_job(alpha, "VM Backup", sender="c@example.test"),
            make_job(beta, "Exchange Backup", sender="d@example.test")]
    for job, status in zip(jobs, ("Warning", "Failed", "Success", "Success")):
        run = make_run(job, status, T0, message=f"{job.job_name}: {status}")
        db.session.add(RunObject(job_run_id=run.id, name="SRV01", type="VM", status=status, effective_status=status,
                                 message="" if status == "Success" else "Changed block tracking reset"))
    db.session.commit()
    return jobs


def _login(browser, live_server, viewport, username="oscar"):
    page = browser.new_page(viewport=viewport)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server + "/auth/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.console_errors = errors
    return page


def _top(page, selector):
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not visible"
    return box["y"] + box["height"]


def _no_sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("path", ["/", "/run-checks", "/inbox", "/daily-jobs", "/customers", "/jobs", "/tickets",
                                  "/docs/"])
def test_on_a_phone_every_page_starts_with_its_heading(browser, live_server, path):
    make_user("oscar", roles=("operator",))
    _queue()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, PHONE)
    page.goto(live_server + path)
    page.screenshot(path=f"/tmp/backupchecks-phone-{path.strip('/').replace('/', '-') or 'dashboard'}.png")
    assert _top(page, "main h1") <= PHONE["height"], f"the heading of {path} is below the first screen"
    assert not page.locator("#main-nav").is_visible()  # folded away behind the Menu button
    assert page.locator("#nav-toggle").is_visible()
    assert _no_sideways_scroll(page), f"{path} scrolls sideways on a phone"
    page.close()


def test_the_menu_button_opens_the_navigation_on_a_phone(browser, live_server):
    make_user("oscar", roles=("operator",))
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, PHONE)
    page.screenshot(path="/tmp/backupchecks-phone-dashboard.png")
    page.click("#nav-toggle")
    page.locator("#main-nav.show").wait_for()
    assert page.locator("#main-nav a", has_text="Customers").is_visible()
    page.screenshot(path="/tmp/backupchecks-phone-menu.png")
    page.locator("#main-nav a", has_text="Customers").click()
    page.wait_for_url("**/customers")
    assert page.locator("main h1").inner_text() == "Customers"
    assert not page.locator("#main-nav").is_visible()
    assert page.console_errors == []
    page.close()


def test_on_a_desktop_the_sidebar_stays_and_there_is_no_menu_button(browser, live_server):
    make_user("oscar", roles=("operator",))
    _queue()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, DESKTOP)
    page.goto(live_server + "/run-checks")
    assert page.locator("#main-nav a", has_text="Customers").is_visible()
    assert not page.locator("#nav-toggle").is_visible()
    nav, main = page.locator("#main-nav").bounding_box(), page.locator("main").bounding_box()
    assert nav["x"] < main["x"] and nav["y"] == pytest.approx(main["y"], abs=1)  # side by side
    # Both panes of Run Checks side by side: the queue and the selected (worst) job.
    assert page.locator("#queue").is_visible() and page.locator("#job-panel h2").inner_text() == "SQL Backup"
    assert not page.locator("#panel-back").is_visible()
    page.screenshot(path="/tmp/backupchecks-desktop-run-checks.png")
    assert page.console_errors == []
    page.close()


def test_on_a_phone_tapping_a_job_opens_its_panel_at_once(browser, live_server):
    make_user("oscar", roles=("operator",))
    jobs = _queue()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, PHONE)
    page.goto(live_server + "/run-checks")
    assert page.locator("#queue").is_visible()
    assert not page.locator("#job-panel").is_visible()  # the queue first; a job opens when tapped
    page.screenshot(path="/tmp/backupchecks-phone-run-checks.png")

    page.locator(f"#queue [data-job-id='{jobs[1].id}'] a").click()
    page.wait_for_url(f"**/run-checks?job={jobs[1].id}")
    assert page.locator("#job-panel h2").inner_text() == "SQL Backup"
    assert _top(page, "#job-panel h2") <= PHONE["height"]
    assert _top(page, "#review-job button") <= PHONE["height"]
    assert not page.locator("#queue").is_visible()
    assert _no_sideways_scroll(page)
    page.screenshot(path="/tmp/backupchecks-phone-run-checks-job.png")

    # Reviewing moves to the next listed job (the successful ones are folded), still as its own view.
    page.click("#review-job button")
    page.wait_for_url(f"**/run-checks?job={jobs[0].id}")
    assert "1 run of 'SQL Backup' marked reviewed" in page.inner_text("main")
    assert page.locator("#job-panel h2").inner_text() == "File Server Backup"

    page.click("#panel-back")
    page.wait_for_url(lambda url: "job=" not in url)
    assert page.locator("#queue").is_visible() and not page.locator("#job-panel").is_visible()
    assert page.console_errors == []
    page.close()


def test_pages_load_without_console_errors_and_with_the_favicon(browser, live_server):
    make_user("oscar", roles=("operator",))
    _queue()
    db.session.commit()  # the live server reads from its own session
    page = _login(browser, live_server, DESKTOP)
    for path in ("/", "/run-checks", "/inbox", "/customers", "/docs/"):
        page.goto(live_server + path)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(live_server + icon).headers["content-type"].startswith("image/svg+xml")
    assert page.console_errors == [], page.console_errors
    page.close()


@pytest.mark.parametrize("path", ["/settings/digest", "/settings/maintenance-windows", "/settings/users",
                                  "/settings/sign-in"])
def test_settings_tabs_stay_on_one_line_with_the_current_one_in_sight(browser, live_server, path):
    make_user("alice", roles=("admin",))
    db.session.commit()
    for viewport in ({"width": 390, "height": 844}, {"width": 1366, "height": 900}):
        page = _login(browser, live_server, viewport, "alice")
        page.goto(live_server + path)
        assert _no_sideways_scroll(page)
        tabs = page.locator(".settings-tabs .nav-link")
        tops = {round(tabs.nth(i).bounding_box()["y"]) for i in range(tabs.count())}
        assert len(tops) == 1, "the tabs wrapped onto more than one line"
        box = page.locator(".settings-tabs .nav-link.active").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], "the current tab is scrolled away"
        assert page.console_errors == []
        page.close()
