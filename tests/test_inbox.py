"""The Inbox page: upload, list, detail, approve, delete, restore, sandboxed body."""
import io
import re

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Customer, Job, JobRun, MailMessage

from .conftest import count_queries, post_form
from .corpus import CORPUS

SAMPLES = CORPUS


def sample(name: str) -> bytes:
    return next(SAMPLES.rglob(name)).read_bytes()


def variant(raw: bytes, n: int, date: str | None = None) -> bytes:
    """The same report again as another mail (new Message-ID, optionally another Date)."""
    out = re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <copy-{n}@example.test>".encode(), raw, count=1)
    if date:
        out = re.sub(rb"(?im)^Date:.*$", f"Date: {date}".encode(), out, count=1)
    return out


def upload(client, files):
    data = {"files": [(io.BytesIO(raw), name) for name, raw in files]}
    return post_form(client, "/inbox/upload", data, content_type="multipart/form-data", follow_redirects=True)


V01 = "v01_vbr_backup_vmware_success.eml"


def test_upload_lists_mails_with_what_the_parser_understood(as_user):
    c = as_user("operator")
    r = upload(c, [("a.eml", sample(V01)), ("news.eml", sample("v15_vendor_newsletter_not_report.eml")),
                   ("junk.eml", b"\x00\x01 this is not a mail at all")])
    text = r.get_data(as_text=True)
    assert "3 new mail(s)" in text
    page = c.get("/inbox").get_data(as_text=True)
    assert "Daily VM Backup" in page and "Veeam Backup &amp; Replication" in page
    assert "Not a report" in page
    assert "Not understood" in page  # the junk is kept and shown, with its reason


def test_duplicate_upload_adds_nothing(as_user):
    c = as_user("operator")
    upload(c, [("a.eml", sample(V01))])
    r = upload(c, [("a.eml", sample(V01))])
    assert "1 were already imported" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(MailMessage.id))).scalar_one() == 1


def test_approve_to_a_new_customer_creates_the_job_and_processes_its_other_mails(as_user):
    c = as_user("operator")
    raw = sample(V01)
    upload(c, [("1.eml", raw), ("2.eml", variant(raw, 2)), ("3.eml", variant(raw, 3)),
               ("other.eml", sample("v03_vbr_backup_failed.eml"))])
    first = db.session.execute(select(MailMessage).order_by(MailMessage.id)).scalars().first()
    r = post_form(c, "/inbox/approve", {"ids": [first.id], "customer": "Fabrikam Testing BV"}, follow_redirects=True)
    assert "3 mail(s) became runs" in r.get_data(as_text=True)
    customer = db.session.execute(select(Customer)).scalar_one()
    job = db.session.execute(select(Job)).scalar_one()
    assert customer.name == "Fabrikam Testing BV" and job.customer_id == customer.id
    assert job.job_name == "Daily VM Backup"
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 3
    left = db.session.execute(select(MailMessage.job_name).where(MailMessage.state == "inbox")).scalars().all()
    assert left == ["SQL Tier Backup"]
    events = set(db.session.execute(select(AuditLog.event)).scalars())
    assert {"customer.create", "job.create"} <= events
    # The next report of that job becomes a run without a person.
    upload(c, [("4.eml", variant(raw, 4))])
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 4


def test_approve_without_a_customer_is_refused_and_changes_nothing(as_user):
    c = as_user("operator")
    upload(c, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    r = post_form(c, "/inbox/approve", {"ids": [msg.id], "customer": "  "}, follow_redirects=True)
    assert "Choose a customer" in r.get_data(as_text=True)
    assert db.session.execute(select(Job)).first() is None
    db.session.refresh(msg)
    assert msg.state == "inbox"


def test_unparsed_mail_cannot_be_approved(as_user):
    c = as_user("operator")
    upload(c, [("junk.eml", b"Subject: hello\r\n\r\njust text")])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    r = post_form(c, "/inbox/approve", {"ids": [msg.id], "customer": "Somebody"}, follow_redirects=True)
    assert "Only a parsed backup report can be approved" in r.get_data(as_text=True)


def test_delete_restore_and_purge(as_user):
    op, admin = as_user("operator"), as_user("admin")
    upload(op, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    post_form(op, "/inbox/delete", {"ids": [msg.id]})
    assert "Daily VM Backup" not in op.get("/inbox").get_data(as_text=True)
    assert op.get("/inbox/deleted").status_code == 403
    assert "Daily VM Backup" in admin.get("/inbox/deleted").get_data(as_text=True)
    post_form(admin, "/inbox/deleted/action", {"ids": [msg.id], "action": "restore"})
    db.session.refresh(msg)
    assert msg.state == "inbox"
    post_form(admin, "/inbox/deleted/action", {"ids": [msg.id], "action": "purge"})  # not deleted: nothing happens
    assert db.session.get(MailMessage, msg.id) is not None
    post_form(op, "/inbox/delete", {"ids": [msg.id]})
    post_form(admin, "/inbox/deleted/action", {"ids": [msg.id], "action": "purge"})
    db.session.expire_all()
    assert db.session.get(MailMessage, msg.id) is None


def test_viewer_reads_but_cannot_act(as_user):
    op, viewer = as_user("operator"), as_user("viewer")
    upload(op, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    assert viewer.get("/inbox").status_code == 200
    assert viewer.get(f"/inbox/{msg.id}").status_code == 200
    assert 'id="approve-form"' not in viewer.get(f"/inbox/{msg.id}").get_data(as_text=True)
    assert post_form(viewer, "/inbox/approve", {"ids": [msg.id], "customer": "X"}).status_code == 403


def test_mail_body_is_sanitised_and_sandboxed(as_user):
    c = as_user("operator")
    evil = (b"From: a@example.test\r\nSubject: Hi\r\nMessage-ID: <evil@example.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<p onclick=\"steal()\">Hello</p><script>alert(1)</script><img src=\"https://tracker.example/x.png\">")
    upload(c, [("evil.eml", evil)])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    r = c.get(f"/inbox/{msg.id}/body")
    body = r.get_data(as_text=True)
    assert "Hello" in body and "<script" not in body and "onclick" not in body and "tracker.example" not in body
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    page = c.get(f"/inbox/{msg.id}").get_data(as_text=True)
    assert 'sandbox=""' in page


HOSTILE_STYLES = """<html><head><style>@import url("https://evil.example/a.css");
body { background: url(https://evil.example/body.png) }</style></head><body>
<table style="background-image: url('https://evil.example/t.png'); border-collapse: collapse">
<tr><td style="color: #c00; background: URL(https://evil.example/u.png) no-repeat">Failed</td>
<td style="background:u\\72 l(https://evil.example/escaped.png); font-weight: bold">escaped</td>
<td style="background:&#117;rl(https://evil.example/entity.png)">entity</td>
<td style="background: image-set('https://evil.example/set.png' 1x); padding: 2px">set</td>
<td style="list-style: url(//evil.example/relative.png)">relative</td>
<td style="b: url/**/(https://evil.example/comment.png)">comment</td>
<td style="--x: url(https://evil.example/var.png); background: var(--x)">var</td>
<td style="background-image: url(data:image/png;base64,iVBORw0KGgo=); color: green">inline image</td>
</tr></table></body></html>"""


def test_mail_body_styles_never_load_anything_remote(as_user):
    c = as_user("viewer")
    op = as_user("operator")
    raw = (b"From: a@example.test\r\nSubject: Styles\r\nMessage-ID: <styles@example.test>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n" + HOSTILE_STYLES.encode())
    upload(op, [("styles.eml", raw)])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    body = c.get(f"/inbox/{msg.id}/body").get_data(as_text=True)
    assert "evil.example" not in body, body
    assert "@import" not in body and "<style" not in body
    low = body.lower()
    assert "url(" not in low.replace("url(data:image/png;base64,ivborw0kggo=)", "")
    # The layout survives: harmless declarations, the words, and the inline (data:) image.
    for kept in ("border-collapse: collapse", "color: #c00", "font-weight: bold", "padding: 2px",
                 "background: var(--x)", "background-image: url(data:image/png;base64,iVBORw0KGgo=); color: green"):
        assert kept in body, kept
    for word in ("Failed", "escaped", "entity", "set", "relative", "comment", "inline image"):
        assert f">{word}</td>" in body


def test_eml_download_returns_the_original_bytes(as_user):
    c = as_user("viewer")
    op = as_user("operator")
    upload(op, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    r = c.get(f"/inbox/{msg.id}/eml")
    assert r.data == sample(V01) and r.headers["Content-Type"].startswith("message/rfc822")


def test_filters_and_unknown_id(as_user):
    c = as_user("operator")
    upload(c, [("1.eml", sample(V01)), ("2.eml", sample("v03_vbr_backup_failed.eml"))])
    page = c.get("/inbox?status=Failed").get_data(as_text=True)
    assert "SQL Tier Backup" in page and "Daily VM Backup" not in page
    assert "No mails match" in c.get("/inbox?q=nothing-like-this").get_data(as_text=True)
    assert c.get("/inbox/999999").status_code == 404




def test_inbox_list_uses_a_constant_number_of_queries(as_user):
    c = as_user("operator")
    raw = sample(V01)
    upload(c, [(f"{i}.eml", variant(raw, i)) for i in range(3)])
    small = count_queries(lambda: c.get("/inbox"))
    upload(c, [(f"{i}.eml", variant(raw, i)) for i in range(3, 40)])
    large = count_queries(lambda: c.get("/inbox"))
    assert small == large, (small, large)


def test_reparse_all_runs_in_the_background_with_progress(as_user, app):
    c = as_user("operator")
    upload(c, [("1.eml", sample(V01)), ("2.eml", sample("v03_vbr_backup_failed.eml"))])
    app.config["TASKS_SYNCHRONOUS"] = True
    try:
        r = post_form(c, "/inbox/reparse-all", {})
    finally:
        app.config.pop("TASKS_SYNCHRONOUS")
    task_id = int(re.search(r"task=(\d+)", r.headers["Location"]).group(1))
    status = c.get(f"/tasks/{task_id}").json
    assert status["state"] == "done" and status["progress"] == 2 and "Re-parsed 2 mails" in status["message"]


def duplicati_report(job: str, n: int) -> bytes:
    return (f"From: duplicati@example.test\r\nTo: ops@example.test\r\nSubject: Duplicati Backup report for {job}\r\n"
            f"Message-ID: <dup-{n}@example.test>\r\nDate: Tue, 05 Mar 2024 22:00:00 +0000\r\n\r\n"
            "ParsedResult: Success\r\nMainOperation: Backup\r\n").encode()


def test_bulk_approve_names_five_jobs_and_says_how_many_more(as_user):
    c = as_user("operator")
    upload(c, [(f"{i}.eml", duplicati_report(f"Job {i}", i)) for i in range(1, 8)])
    ids = db.session.execute(select(MailMessage.id)).scalars().all()
    r = post_form(c, "/inbox/approve", {"ids": ids, "customer": "Fabrikam Testing BV"}, follow_redirects=True)
    assert "Approved for Fabrikam Testing BV: Job 1, Job 2, Job 3, Job 4, Job 5 and 2 more. 7 mail(s) became runs." \
        in r.get_data(as_text=True)


def test_filtered_count_says_how_many_of_all_match(as_user):
    c = as_user("viewer")
    upload(as_user("operator"), [("1.eml", sample(V01)), ("2.eml", sample("v03_vbr_backup_failed.eml"))])
    assert "2 mails wait for an admin or operator to approve or delete them" in c.get("/inbox").get_data(as_text=True)
    assert "1 of 2 mails match these filters" in c.get("/inbox?status=Failed").get_data(as_text=True)


# --- A deleted mail: one visibility rule for every route of a mail ----------------------------

def _deleted_mail(as_user) -> MailMessage:
    op = as_user("operator")
    upload(op, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    post_form(op, "/inbox/delete", {"ids": [msg.id]})
    db.session.refresh(msg)
    assert msg.state == "deleted"
    return msg


# (role, expected status) per read route; the reporter has no Inbox at all.
DELETED_READS = [
    ("admin", 200), ("operator", 404), ("viewer", 404), ("reporter", 403),
]


@pytest.mark.parametrize("suffix", ["", "/body", "/eml"], ids=["view", "body", "eml"])
@pytest.mark.parametrize("role,expected", DELETED_READS)
def test_a_deleted_mail_is_hidden_on_every_read_route_except_for_admins(as_user, suffix, role, expected):
    msg = _deleted_mail(as_user)
    r = as_user(role).get(f"/inbox/{msg.id}{suffix}")
    assert r.status_code == expected
    if expected == 404:
        assert b"Daily VM Backup" not in r.data and b"Veeam" not in r.data
    if expected == 200 and suffix == "/eml":
        assert r.data == sample(V01)


@pytest.mark.parametrize("role,expected", [("admin", 302), ("operator", 404), ("viewer", 403), ("reporter", 403)])
def test_only_an_admin_may_reparse_a_deleted_mail(as_user, role, expected):
    msg = _deleted_mail(as_user)
    r = post_form(as_user(role), f"/inbox/{msg.id}/reparse", {})
    assert r.status_code == expected
    db.session.expire_all()
    reparsed = db.session.execute(select(AuditLog).where(AuditLog.event == "inbox.reparse")).scalars().all()
    assert len(reparsed) == (1 if role == "admin" else 0)
    assert db.session.get(MailMessage, msg.id).state == "deleted"  # re-parsing never revives it
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 0


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_approving_a_deleted_mail_changes_nothing_and_says_so(as_user, role):
    msg = _deleted_mail(as_user)
    r = post_form(as_user(role), "/inbox/approve", {"ids": [msg.id], "customer": "Fabrikam Testing BV"},
                  follow_redirects=True)
    assert "None of the selected mails is in the Inbox any more; nothing was approved." in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(MailMessage, msg.id).state == "deleted"
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 0  # no customer made on the side
    assert db.session.execute(select(func.count(Job.id))).scalar_one() == 0


@pytest.mark.parametrize("role,expected", [("admin", 302), ("operator", 403), ("viewer", 403)])
def test_only_an_admin_may_restore_a_deleted_mail(as_user, role, expected):
    msg = _deleted_mail(as_user)
    r = post_form(as_user(role), "/inbox/deleted/action", {"ids": [msg.id], "action": "restore"})
    assert r.status_code == expected
    db.session.expire_all()
    assert db.session.get(MailMessage, msg.id).state == ("inbox" if role == "admin" else "deleted")


def test_deleting_a_deleted_mail_again_changes_nothing(as_user):
    msg = _deleted_mail(as_user)
    r = post_form(as_user("operator"), "/inbox/delete", {"ids": [msg.id]}, follow_redirects=True)
    assert "Select at least one mail to delete." in r.get_data(as_text=True)
    deletes = db.session.execute(select(AuditLog).where(AuditLog.event == "inbox.delete")).scalars().all()
    assert len(deletes) == 1


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_reparsing_an_inbox_mail_is_audited(as_user, role):
    op = as_user("operator")
    upload(op, [("1.eml", sample(V01))])
    msg = db.session.execute(select(MailMessage)).scalar_one()
    r = post_form(as_user(role), f"/inbox/{msg.id}/reparse", {}, follow_redirects=True)
    assert "Re-parsed with" in r.get_data(as_text=True)
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "inbox.reparse")).scalar_one()
    assert entry.username == {"admin": "alice", "operator": "oscar"}[role] and entry.target_id == str(msg.id)
