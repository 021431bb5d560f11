"""In a real browser: an admin makes a rule for a product no parser knows from a pasted mail, sees it
match in the tester, tries the rules on the Inbox, and approves the mail, which becomes a run."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import Job, JobRun, MailMessage, ParserRule

from ..conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]

# An invented product: the "Quillstone Q4 NAS" and its nightly mail.
MAIL = ("From: Quillstone NAS <nas-q4@quillstone.example>\n"
        "To: backups@msp.example\n"
        "Subject: Q4-NAS: replication task \"Branch office\" finished with warnings\n"
        "Date: Fri, 04 Dec 2026 01:30:00 +0000\n"
        "Message-ID: <q4-0001@quillstone.example>\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Quillstone Q4 replication summary\n"
        "\n"
        "volume1: done\n"
        "volume2: skipped - target full\n")


def test_an_admin_makes_a_rule_from_a_pasted_mail_and_the_inbox_mail_becomes_a_run(browser, live_server, tmp_path):
    make_user("alice", roles=("admin",))
    eml = tmp_path / "q4.eml"
    eml.write_text(MAIL.replace("\n", "\r\n"))
    db.session.commit()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live_server + "/auth/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)

    # The mail arrives: nothing reads it, it waits in the Inbox.
    page.goto(live_server + "/inbox")
    page.set_input_files("#upload-files", [str(eml)])
    page.click("#upload-form button")
    expect(page.locator("#inbox-table tbody tr")).to_have_count(1)

    # The tester: not understood; "Create a rule from this mail" starts from its sender and subject.
    page.goto(live_server + "/parsers")
    page.click("#paste-details summary")
    page.fill("#pasted", MAIL)
    page.click("#try-pasted")
    expect(page.locator("#try-result")).to_contain_text("Not understood")
    page.click("#rule-from-mail")
    expect(page.locator("#sender_value")).to_have_value("nas-q4@quillstone.example")
    page.fill("#name", "Quillstone Q4")
    page.fill("#sender_value", "@quillstone.example")
    page.select_option("#subject_mode", "regex")
    page.fill("#subject_value", 'replication task "(?P<job>[^"]+)"')
    page.fill("#job_group", "job")
    page.fill("#status_word_1", "with warnings")
    page.select_option("#status_value_1", "Warning")
    page.fill("#status_word_2", "failed")
    page.select_option("#status_value_2", "Failed")
    page.click("#add-status-row")
    page.fill("#status_word_4", "finished")
    page.select_option("#status_value_4", "Success")
    page.select_option("#objects_mode", "lines")
    page.fill("#objects_lines", r"^(?P<name>volume\d+): (?P<status>\w+)(?: - (?P<message>.*))?$")
    page.fill("#software", "Quillstone Q4")
    page.fill("#backup_type", "Replication")
    page.click("#save-rule")
    expect(page.locator(".alert-success")).to_contain_text("Rule 'Quillstone Q4' saved")
    expect(page.locator("#rule-table")).to_contain_text("Quillstone Q4")

    # The tester now shows the rule matching and what it reads.
    page.click("#paste-details summary")
    page.fill("#pasted", MAIL)
    page.click("#try-pasted")
    result = page.locator("#try-result")
    expect(result).to_contain_text("rule: Quillstone Q4")
    expect(result).to_contain_text("Branch office")
    expect(result).to_contain_text("Warning")
    expect(page.locator("#try-objects")).to_contain_text("target full")
    expect(page.locator("#rule-checks")).to_contain_text("matched")
    page.screenshot(path="/tmp/backupchecks-parser-rule-tester.png", full_page=True)

    # Try the rules on the Inbox: the mail is now read by the rule, a job proposal.
    page.click("#try-inbox")
    page.wait_for_url(re.compile(r"/parsers\?task=\d+"))
    card = page.locator(".task-progress")
    expect(card).to_have_attribute("data-task-state", "done", timeout=15_000)
    expect(card.locator(".task-message")).to_contain_text("1 are now read by a rule")

    # The Inbox approve flow: the mail becomes a run of the new job.
    page.goto(live_server + "/inbox")
    page.locator("#inbox-table a", has_text="Branch office").first.click()
    page.wait_for_selector("#approve-form")
    page.fill("#approve-customer", "Quillstone Demo Customer")
    page.click("#approve-form button")
    expect(page.locator("main")).to_contain_text("1 mail(s) became runs")

    db.session.expire_all()
    job = db.session.execute(select(Job)).scalar_one()
    assert (job.job_name, job.software, job.backup_type) == ("Branch office", "Quillstone Q4", "Replication")
    run = db.session.execute(select(JobRun)).scalar_one()
    assert run.status == "Warning" and [o.name for o in run.objects] == ["volume1", "volume2"]
    assert db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.state == "processed")).scalar_one() == 1
    assert db.session.execute(select(func.count(ParserRule.id))).scalar_one() == 1
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
