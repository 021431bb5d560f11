"""The Inbox's mail body: a hostile nesting depth costs a bounded time and still shows the words."""
from __future__ import annotations

import time

import pytest

from backend.app.services import mail_body

from ..test_inbox import upload


@pytest.mark.parametrize("html", [
    "<div>" * 40_000 + "disk full",
    "<b>" * 40_000 + "disk full",
    "<div></span>" * 20_000 + "disk full",     # end tags of elements that are not open close nothing
    "<table><tr><td>" * 15_000 + "disk full",
], ids=["div", "b", "unmatched-end-tags", "nested-tables"])
def test_a_hostile_nesting_depth_is_shown_as_text_quickly(html):
    started = time.process_time()
    shown = mail_body.clean(html)
    assert time.process_time() - started < 1.0  # generous bound: nh3 alone needed ~3 s for "<div>" * 40000
    assert mail_body.TOO_DEEP.replace("'", "&#x27;") in shown and "disk full" in shown
    assert "<div>" not in shown and "<b>" not in shown


def test_a_report_mail_keeps_its_layout():
    html = ("<html><body><table><tr><td><table><tr><td><p>Job <b>Nightly</b> <span style='color:red'>Failed"
            "</span><p>next<br>line</td></tr></table></td></tr></table></body></html>")
    assert mail_body.nesting_depth(html) == 5  # html, body, table, table, then b or span (p, td, tr are flat)
    shown = mail_body.clean(html)
    assert "<table>" in shown and "<b>Nightly</b>" in shown and mail_body.TOO_DEEP not in shown


def test_the_inbox_frame_shows_a_hostile_mail_as_text(as_user, app):
    from email.message import EmailMessage

    from backend.app.extensions import db
    from backend.app.models import MailMessage
    from sqlalchemy import select

    c = as_user("admin")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "nas@example.invalid", "reports@example.invalid", "Deep report"
    msg["Message-ID"] = "<deep-1@example.invalid>"
    msg.set_content("plain part")
    msg.add_alternative("<html><body>" + "<div>" * 40_000 + "disk full</body></html>", subtype="html")
    upload(c, [("deep.eml", msg.as_bytes())])
    mail = db.session.execute(select(MailMessage).where(MailMessage.subject == "Deep report")).scalar_one()
    started = time.process_time()
    r = c.get(f"/inbox/{mail.id}/body")
    assert time.process_time() - started < 2.0
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "nests too deeply" in body and "disk full" in body
