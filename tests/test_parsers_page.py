"""The Parsers page (admin): every parser in order with its criteria; "try a message" stores nothing."""
import io
from html import unescape
from pathlib import Path

from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import MailMessage
from backend.app.parsers.registry import all_parsers

from .conftest import post_form
from .corpus import CORPUS

SAMPLES = CORPUS


def test_lists_every_parser_in_order_with_its_criteria(as_user):
    html = as_user("admin").get("/parsers").get_data(as_text=True)
    names = [p.name for p in all_parsers()]
    assert len(names) >= 15
    positions = [html.index(f"<code>{n}</code>") for n in names]
    assert positions == sorted(positions)
    assert "Sender contains" in html or "Subject matches" in html


def test_try_a_message_shows_the_result_and_stores_nothing(as_user):
    c = as_user("admin")
    raw = next(SAMPLES.rglob("v03_vbr_backup_failed.eml")).read_bytes()
    r = post_form(c, "/parsers", {"eml": (io.BytesIO(raw), "failed.eml")}, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert "SQL Tier Backup" in html and "Failed" in html and "Veeam Backup &amp; Replication" in html
    assert db.session.execute(select(func.count(MailMessage.id))).scalar_one() == 0


def test_try_a_message_shows_the_reports_own_failure_reason(as_user):
    raw = (Path(__file__).parent / "parsers" / "samples" / "qnap_hbs_sync_failed_en.eml").read_bytes()
    r = post_form(as_user("admin"), "/parsers", {"eml": (io.BytesIO(raw), "qnap.eml")},
                  content_type="multipart/form-data")
    html = unescape(r.get_data(as_text=True))
    assert ('<dd class="col-sm-10" data-result-message>Sync job "Scans to Branch" failed. Error: The remote '
            'server refused the login (check the user name and password).</dd>') in html


def test_try_a_message_that_no_parser_understands(as_user):
    r = post_form(as_user("admin"), "/parsers", {"eml": (io.BytesIO(b"Subject: hello\r\n\r\nhi"), "x.eml")},
                  content_type="multipart/form-data")
    assert "Not understood" in r.get_data(as_text=True)


def test_try_without_a_file_asks_for_one(as_user):
    r = post_form(as_user("admin"), "/parsers", {}, follow_redirects=True)
    assert "Choose an .eml file" in r.get_data(as_text=True)


def test_only_admins_open_the_parsers_page(as_user):
    assert as_user("operator").get("/parsers").status_code == 403


def test_try_a_message_says_why_the_parser_matched(as_user):
    raw = next(SAMPLES.rglob("v03_vbr_backup_failed.eml")).read_bytes()
    r = post_form(as_user("admin"), "/parsers", {"eml": (io.BytesIO(raw), "failed.eml")},
                  content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    why = html[html.index('id="why"'):html.index("</dl>", html.index('id="why"'))]
    assert "<code>veeam</code>" in why and "Why it matched" in why
    assert "Veeam session report (&#39;Backup job:&#39; header with summary grid)" in why  # the parser's own words
    # ... and what in the mail met its listed criteria
    assert 'the sender <span class="found">“noreply-veeam@wideworldimporters.example”</span> contains <code>veeam</code>' in why
    assert 'the subject <span class="found">“[Failed] SQL Tier Backup (2 objects) 1 failed”</span> matches the pattern' in why
    assert "the body has the marker <code>Start time</code>" in why


def test_a_message_recognised_as_not_a_report_says_why_too(as_user):
    raw = next(SAMPLES.rglob("v15_vendor_newsletter_not_report.eml")).read_bytes()
    r = post_form(as_user("admin"), "/parsers", {"eml": (io.BytesIO(raw), "news.eml")},
                  content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert "Recognised as not a backup report" in html
    assert "<code>not_report</code>" in html and "Why it matched" in html
