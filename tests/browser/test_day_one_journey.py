"""Day one, in a real browser, as a brand-new user, on a desktop and a phone.

First start (no users) → create the first admin → Settings → Mail: type the mailbox values and test
them (typed, not saved) → save → Settings → Imports → Import now, its progress card runs to the end →
the Inbox lists the imported reports → approve one to a new customer (the other mail of its job
becomes a run too) → approve the rest → Run Checks: review every job until "All runs reviewed".
No console errors on the way. Screenshots of each step land in /tmp/journey-<size>-<step>.png.

The mailbox is a FakeGraph (real HTTPS on loopback) holding real sample reports from
tests/parsers/samples: three Synology reports of one NAS (a Hyper Backup job on two nights and a
failed Active Backup PC task) and a Veeam job of another customer.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from backend.app.mail import graph as graph_module
from tests.clock import TEST_NOW
from tests.fakes.fake_graph import FakeGraph

pytestmark = [pytest.mark.browser]

SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
SAMPLES = Path(__file__).resolve().parents[1] / "parsers" / "samples"
ADMIN, PASSWORD = "dayone-admin", "a-long-first-admin-password"
INCOMING, PROCESSED = "Inbox/Backup reports", "Inbox/Backup reports/Processed"
TIMEOUT = 20_000  # ms: generous for a busy two-core machine; the steps take far less


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def next_night(raw: bytes) -> bytes:
    """The Hyper Backup report of the night after (a new mail of the same job)."""
    swaps = [(b"Tue, 04 Mar 2025 01:42:20", b"Wed, 05 Mar 2025 01:44:51"),
             (b"synology-hyperbackup-success-nl.83150@", b"synology-hyperbackup-success-nl.83151@"),
             (b"di, 04 mrt 2025 01:00:03", b"wo, 05 mrt 2025 01:00:04"),
             (b"di, =\n04 mrt 2025 01:00:03", b"wo, =\n05 mrt 2025 01:00:04")]
    for old, new in swaps:
        assert old in raw, old
        raw = raw.replace(old, new)
    return raw


def mailbox() -> list[tuple[bytes, object]]:
    """(mail, received) in the incoming folder: received in the hours before TEST_NOW."""
    hyper = sample("synology_hyperbackup_success_nl.eml")
    mails = [hyper, next_night(hyper), sample("synology_abb_pc_failed_nl.eml"),
             sample("veeam_backup_retry_success_us.eml")]
    return [(raw, TEST_NOW - timedelta(hours=8 - i)) for i, raw in enumerate(mails)]


@pytest.fixture
def fake_graph(app, monkeypatch):
    """A FakeGraph with the sample reports, the app aimed at its endpoints (nothing saved: the
    user types the values in the browser)."""
    graph_module.reset_token_cache()
    with FakeGraph(mailbox(), incoming=INCOMING, processed=PROCESSED) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        app.config.update(GRAPH_AUTHORITY_HOST=fake.authority_host, GRAPH_API_BASE=fake.api_base,
                          GRAPH_CLIENT_OPTIONS={"timeout": 5, "max_retry_wait": 1, "backoff_base": 0.01})
        yield fake
    app.config.update(GRAPH_AUTHORITY_HOST="https://login.microsoftonline.com",
                      GRAPH_API_BASE="https://graph.microsoft.com/v1.0", GRAPH_CLIENT_OPTIONS=None)
    graph_module.reset_token_cache()


class Journey:
    """The page plus what every step needs: the size, the console watch and the screenshots."""

    def __init__(self, page, base: str, size: str):
        self.page, self.base, self.size = page, base, size
        self.phone = size == "phone"
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.set_default_timeout(TIMEOUT)

    def shot(self, step: str, full_page: bool = True) -> None:
        self.page.screenshot(path=f"/tmp/journey-{self.size}-{step}.png", full_page=full_page)

    def nav(self, label: str) -> None:
        """Follow the main navigation: the sidebar, or on a phone the menu behind #nav-toggle."""
        page = self.page
        link = page.locator("#main-nav a.nav-link").filter(has=page.locator(f"span:text-is('{label}')"))
        if self.phone:
            expect(page.locator("#main-nav a.nav-link").first).to_be_hidden()
            page.click("#nav-toggle")
            page.locator("#main-nav.show").wait_for()
        link.click()
        expect(page.locator("main h1")).to_have_text(label)

    def tab(self, label: str) -> None:
        self.page.locator("ul.nav-tabs a.nav-link", has_text=label).click()
        expect(self.page.locator("ul.nav-tabs a.nav-link.active")).to_have_text(label)

    def on_screen(self, selector: str, whole: bool = False) -> None:
        """``selector`` is on the screen as it is now, below the fixed top bar: its top (or with
        ``whole`` all of it) visible without scrolling."""
        js = """([sel, whole]) => { const e = document.querySelector(sel); if (!e) return false;
                  const r = e.getBoundingClientRect(), bar = document.querySelector('header').getBoundingClientRect();
                  return r.height > 0 && r.top >= bar.bottom - 1
                         && (whole ? r.bottom : r.top + Math.min(r.height, 40)) <= window.innerHeight + 1; }"""
        try:
            self.page.wait_for_function(js, arg=[selector, whole], timeout=5_000)
        except PlaywrightTimeout:
            rect = self.page.evaluate("s => JSON.stringify(document.querySelector(s)?.getBoundingClientRect())",
                                      selector)
            raise AssertionError(f"{selector} is not on the first screen of {self.page.url} "
                                 f"({self.page.viewport_size}): {rect}") from None

    def no_sideways_scroll(self) -> None:
        assert self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
            f"{self.page.url} scrolls sideways"


@pytest.mark.parametrize("size", list(SIZES))
def test_day_one_from_first_start_to_all_runs_reviewed(browser, live_server, fake_graph, size):
    ctx = browser.new_context(viewport=SIZES[size])
    j = Journey(ctx.new_page(), live_server, size)
    try:
        _first_start(j)
        _mail_settings(j, fake_graph)
        _import_now(j, fake_graph)
        _inbox(j)
        _run_checks(j)
        assert j.errors == [], j.errors
    finally:
        ctx.close()


def _first_start(j: Journey) -> None:
    page = j.page
    page.goto(j.base + "/")
    page.wait_for_url("**/auth/setup")
    expect(page.locator("h1")).to_have_text("Welcome to Backupchecks")
    j.shot("1-setup")
    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(j.base + "/")
    expect(page.locator("#user-menu")).to_have_text(ADMIN)


def _mail_settings(j: Journey, fake: FakeGraph) -> None:
    page = j.page
    j.nav("Settings")
    j.tab("Mail")
    typed = {"#graph_tenant_id": fake.tenant_id, "#graph_client_id": fake.client_id,
             "#graph_client_secret": fake.client_secret, "#graph_mailbox": fake.mailbox,
             "#graph_incoming_folder": INCOMING, "#graph_processed_folder": PROCESSED}
    for selector, value in typed.items():
        page.fill(selector, value)

    # Test connection tries the typed values, saves nothing, and gives the form back as typed.
    page.click("#test-mail")
    result = page.locator("#mail-test-result")
    expect(result).to_contain_text("Connection test: it works")
    expect(result.locator("[role=status]")).to_contain_text("Connection works")
    expect(result).to_contain_text("Testing saved nothing")
    expect(result.locator("li")).to_have_count(6)
    expect(result.locator("li .badge", has_text="✓ ok")).to_have_count(6)
    for selector, value in typed.items():
        expect(page.locator(selector)).to_have_value(value)
    j.shot("2-mail-test")
    # The result is seen at once, with the buttons just pressed: on a desktop beside the form (the
    # page does not move), on a phone below the long form, so the page brings it into view.
    j.on_screen("#mail-test-result", whole=True)
    j.shot("2b-mail-test-screen", full_page=False)  # what the user sees
    if j.phone:
        j.on_screen("#test-mail", whole=True)
    else:
        assert page.evaluate("window.scrollY") == 0
    j.no_sideways_scroll()

    page.click("#settings-mail button:text-is('Save mail settings')")
    expect(page.locator(".alert-success")).to_contain_text("Mail settings saved")
    expect(page.locator("#graph_mailbox")).to_have_value(fake.mailbox)
    expect(page.locator("#graph_client_secret")).to_have_value("")  # write-only: never shown again
    expect(page.locator("#graph_client_secret")).to_have_attribute("placeholder", re.compile("A secret is stored"))
    j.shot("3-mail-saved")


def _import_now(j: Journey, fake: FakeGraph) -> None:
    page = j.page
    j.tab("Imports")
    expect(page.locator("main .empty-state")).to_contain_text("No import has run yet")
    j.on_screen('form[action$="/settings/imports/run"] button', whole=True)  # not below the settings form on a phone
    page.click("main button:text-is('Import now')")
    page.wait_for_url(re.compile(r"section=imports&task=\d+"))
    card = page.locator(".task-progress")
    expect(card).to_have_attribute("data-task-state", "done")
    expect(card.locator(".task-message")).to_have_text(
        "4 fetched, 4 new, 0 became runs, 4 to the Inbox, 0 failed")
    expect(card.locator(".progress-bar")).to_have_class(re.compile("bg-success"))
    page.wait_for_function("""() => { const b = document.querySelector('.task-progress .progress-bar');
                                       return b.getBoundingClientRect().width >= b.parentElement.clientWidth - 1; }""")
    # The page around the card was drawn while the import ran: the card offers a reload.
    again = card.locator(".task-reload a")
    expect(again).to_be_visible()
    j.shot("4-import-done")
    j.on_screen(".task-progress .task-message")
    j.no_sideways_scroll()
    assert len(fake.messages_in(PROCESSED)) == 4 and fake.messages_in(INCOMING) == []

    again.click()
    expect(card).to_have_attribute("data-task-state", "done")
    expect(page.locator("main .empty-state")).to_have_count(0)
    cycle = page.locator("#import-cycles tbody tr")
    expect(cycle).to_have_count(1)
    expect(cycle.locator("td")).to_have_text([re.compile("just now"), "manual", "4", "4", "0", "4", "0", ""])
    j.shot("4b-import-reloaded")


def _inbox(j: Journey) -> None:
    page = j.page
    j.nav("Inbox")
    rows = page.locator("#inbox-table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("main h1 + div")).to_have_text("4 mails wait for a person: approve a job, or delete")
    for text in ("Dagelijks C2", "Werkplekken", "Pluto (Site A) VMs"):
        expect(page.locator("#inbox-table")).to_contain_text(text)
    expect(page.locator("#inbox-table .badge", has_text="Failed")).to_have_count(1)
    j.shot("5-inbox")
    j.no_sideways_scroll()
    j.on_screen("#inbox-table tbody tr:nth-child(2)", whole=True)  # the filters leave room for the mails

    # Open a Hyper Backup report (the newest first: the second night's) and approve it to a new
    # customer: the job is made, and the first night's mail of the same job becomes a run as well.
    rows.filter(has_text="Dagelijks C2").first.locator("td.subject a").click()
    expect(page.locator("#approve-form")).to_contain_text("Creates the job “Dagelijks C2”")
    # the report itself, in its sandboxed frame
    expect(page.frame_locator("#mail-frame").locator("body")).to_contain_text("Starttijd: wo, 05 mrt 2025 01:00:04")
    page.fill("#approve-customer", "Zuid Accountants")
    j.on_screen("#approve-form button", whole=True)
    j.shot("6-mail")
    page.click("#approve-form button")
    expect(page.locator(".alert-success")).to_have_text(
        re.compile(r"Approved for Zuid Accountants: Dagelijks C2\. 2 mail\(s\) became runs\."))
    expect(rows).to_have_count(2)

    # The rest with the bulk bar: the failed PC task to the same (now known) customer, the Veeam
    # job to a second new one.
    for job, customer in (("Werkplekken", "Zuid Accountants"), ("Pluto (Site A) VMs", "Pluto Dental")):
        rows.filter(has_text=job).locator("[data-row-check]").check()
        page.fill("#bulk-customer", customer)
        page.click("#bulk-form button:text-is('Approve selected')")
        expect(page.locator(".alert-success")).to_have_text(
            re.compile(rf"Approved for {re.escape(customer)}: {re.escape(job)}\. 1 mail\(s\) became runs\."))
    expect(rows).to_have_count(0)
    expect(page.locator("main .empty-state")).to_contain_text("The Inbox is empty")
    j.shot("7-inbox-empty")


def _run_checks(j: Journey) -> None:
    page = j.page
    j.nav("Run Checks")
    expect(page.locator("main h1 + div")).to_have_text("4 unreviewed runs")
    # Worst first: the customer with the failed PC task, its failed job listed on top; the two
    # customers whose jobs only succeeded are one line each, to be reviewed in one action.
    queue = page.locator("#queue [data-job-id]")
    expect(queue).to_have_count(1)
    expect(queue.first).to_contain_text("Werkplekken")
    folded = page.locator("#queue .folded-successful")
    expect(folded).to_have_count(2)
    expect(page.locator("#queue")).to_contain_text("Zuid Accountants")
    expect(page.locator("#queue")).to_contain_text("Pluto Dental")
    expect(folded.first).to_contain_text("1 job with only successful runs")
    j.shot("8-run-checks")
    j.no_sideways_scroll()

    if j.phone:
        # The queue first; a tapped job opens as its own view with a Back button. Reviewing the last
        # listed job opens the queue with what is left: the folded lines, reviewed one by one.
        expect(page.locator("#job-panel")).to_be_hidden()
        j.on_screen("#queue [data-job-id]")
        queue.first.locator("a").click()
        expect(page.locator("#panel-back")).to_be_visible()
        expect(page.locator("#queue")).to_be_hidden()
        j.on_screen("#job-panel h2")
        j.on_screen("#review-job button", whole=True)
        expect(page.locator("#job-panel h2")).to_have_text("Werkplekken")
        j.shot("9-run-checks-job")
        j.no_sideways_scroll()
        page.click("#review-job button")
        expect(page.locator(".alert-success")).to_contain_text("of 'Werkplekken' marked reviewed")
        for _ in range(2):
            expect(page.locator("#queue")).to_be_visible()
            j.on_screen("#queue .folded-successful button", whole=True)
            page.locator("#queue .folded-successful button").first.click()
            expect(page.locator(".alert-success")).to_contain_text("successful run")
    else:
        # Both panes side by side, the worst job chosen; r marks it reviewed. Then only successful
        # runs are waiting, and one button reviews them all.
        expect(page.locator("#job-panel h2")).to_have_text("Werkplekken")
        j.shot("9-run-checks-job")
        with page.expect_navigation():
            page.keyboard.press("r")
        expect(page.locator(".alert-success")).to_contain_text("of 'Werkplekken' marked reviewed")
        expect(page.locator("#only-successful")).to_contain_text("Only successful runs are waiting")
        page.once("dialog", lambda d: d.accept())
        page.click("#review-all-successful")
        expect(page.locator(".alert-success")).to_contain_text("3 successful runs of 2 jobs marked reviewed")
    expect(page.locator("#queue-empty")).to_contain_text("All runs reviewed")
    expect(page.locator("main h1 + div")).to_have_text("0 unreviewed runs")
    j.shot("10-all-reviewed")
    j.on_screen("#queue-empty")
    j.no_sideways_scroll()
