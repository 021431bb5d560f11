"""Settings → Maintenance shows what takes room (the database, its largest tables, what the raw-mail
retention will free) and raw mails stay bounded: one over MAIL_RAW_MAX_MB is parsed and stored
without its raw copy."""
from __future__ import annotations

from datetime import timedelta

from backend.app.extensions import db
from backend.app.models import MailMessage
from backend.app.services.ingest import ingest_message
from tests.clock import TEST_NOW
from tests.helpers import make_mail

REPORT = (b"From: backup@example.test\r\nTo: reports@example.test\r\nSubject: Nightly copy finished\r\n"
          b"Message-ID: <big-1@example.test>\r\nDate: Wed, 10 Jun 2026 02:00:00 +0000\r\n"
          b"Content-Type: text/plain\r\n\r\nThe nightly copy finished.\r\n")


def test_a_mail_over_the_raw_limit_is_stored_without_its_raw_copy(app, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RAW_MAX_MB", 1)
    big = REPORT + b"x" * (1024 * 1024)
    out = ingest_message(big, source="upload", source_id="big", keep_raw=True)
    small = ingest_message(REPORT.replace(b"big-1", b"small-1"), source="upload", source_id="small", keep_raw=True)
    db.session.expire_all()
    stored = db.session.get(MailMessage, out.message_id)
    assert stored.raw is None and stored.raw_size == len(big) and stored.subject == "Nightly copy finished"
    assert stored.body_text and "nightly copy finished" in stored.body_text.lower()
    assert db.session.get(MailMessage, small.message_id).raw is not None


def test_the_maintenance_page_shows_sizes_and_what_retention_frees(app, as_user, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RAW_MAX_MB", 1)
    old = make_mail(subject="Old report", raw=b"r" * 5000, raw_size=5000,
                    imported_at=TEST_NOW - timedelta(days=200))
    make_mail(subject="New report", raw=b"n" * 3000, raw_size=3000, imported_at=TEST_NOW - timedelta(days=1))
    make_mail(subject="Huge report", raw=None, raw_size=3 * 1024 * 1024, imported_at=TEST_NOW)
    db.session.commit()
    page = as_user("admin").get("/settings?section=maintenance").get_data(as_text=True)
    summary = page.split('id="storage-summary"')[1].split("</p>")[0]
    assert "The database takes" in summary
    assert "the next purge frees" in summary and "5.0 kB" in summary and "(1 raw mail older than that)" in summary
    assert "1.0 MB" in summary and "1 so far" in summary
    sizes = page.split('id="table-sizes"')[1].split("</table>")[0]
    assert "<code>mail_messages</code>" in sizes and "<code>job_runs</code>" in sizes
    assert old.id
