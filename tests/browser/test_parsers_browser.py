"""The Parsers page in a browser: long patterns wrap instead of pushing the page sideways, at a desktop
and a phone width, and "Try a message" says which parser matched and on what."""
import pytest

from backend.app.extensions import db

from ..conftest import PASSWORD, make_user
from ..corpus import CORPUS

pytestmark = [pytest.mark.browser]

SAMPLES = CORPUS


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_parsers_page_stays_within_the_screen_and_explains_a_match(browser, live_server, viewport, tmp_path):
    make_user("alice", roles=("admin",))
    db.session.commit()  # the live server reads from its own session
    page = browser.new_page(viewport=viewport)
    page.goto(live_server + "/auth/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.goto(live_server + "/parsers")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    table = page.locator("#parser-table")
    assert table.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the parser table is wider than the screen"

    mail = tmp_path / "failed.eml"
    mail.write_bytes(next(SAMPLES.rglob("v03_vbr_backup_failed.eml")).read_bytes())
    page.set_input_files("#eml", str(mail))
    page.click("#try-form button")
    page.wait_for_selector("#why")
    why = page.inner_text("#why")
    assert "veeam" in why and "Veeam session report" in why
    assert "the sender “noreply-veeam@wideworldimporters.example” contains veeam" in why
    assert "the subject “[Failed] SQL Tier Backup (2 objects) 1 failed” matches the pattern" in why
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("#try-result").screenshot(path=f"/tmp/backupchecks-parsers-try-{viewport['width']}.png")
    page.screenshot(path=f"/tmp/backupchecks-parsers-{viewport['width']}.png", full_page=True)
    page.close()
