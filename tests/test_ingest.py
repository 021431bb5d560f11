"""Ingest: store once, parse, match a known job (normalised identity), create the run; Inbox approval.

Real sample reports from tests/samples/emails go through ingest_message on the test database.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Job, JobRun, MailMessage, RunObject
from backend.app.services.inbox import InboxError, approve_message, process_inbox_for_job, reparse_message
from backend.app.services.ingest import ingest_message, job_identity_key
from tests.conftest import make_customer, make_job, make_user
from tests.test_importer import SAMPLES, _with_message_id

V01 = "veeam/v01_vbr_backup_vmware_success.eml"        # Veeam B&R, started_at in the report
V01_SENDER = "veeam-vbr01@northwind-logistics.example"
ACRONIS = "other/acronis_backup_failed.eml"            # job name 'Servers - nightly' in plain HTML
ACRONIS_SENDER = "noreply-abc@cloud.acronis.com"
QNAP = "other/qnap_hbs_success_en.eml"                 # no start time in the report
NEWSLETTER = "veeam/v15_vendor_newsletter_not_report.eml"
PBS_UPDATES = "other/pbs_package_updates_not_backup.eml"


def sample(name: str, message_id: str | None = None, replace: tuple[bytes, bytes] | None = None) -> bytes:
    raw = (SAMPLES / name).read_bytes()
    if replace:
        raw = raw.replace(*replace)
    return _with_message_id(raw, message_id) if message_id else raw


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def job_with_identity(sender: str, job_name: str, software: str, **kw) -> Job:
    """A job stored the way the app stores them (identity_key from job_identity_key)."""
    job = Job(customer_id=make_customer(kw.pop("customer_name", "Identity Test")).id, sender=sender,
              job_name=job_name, software=software, identity_key=job_identity_key(sender, job_name, software), **kw)
    db.session.add(job)
    db.session.commit()
    return job


# --- matching a known job ------------------------------------------------------------------------

def test_a_known_jobs_report_becomes_a_run_with_its_objects(app):
    job = make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")

    outcome = ingest_message(sample(V01), source="upload")

    assert outcome.state == "processed" and outcome.run_id
    run = db.session.get(JobRun, outcome.run_id)
    assert run.job_id == job.id and run.status == run.effective_status == "Success"
    assert sorted(o.name for o in run.objects) == ["nwl-app03", "nwl-dc01", "nwl-sql02"]
    msg = db.session.get(MailMessage, outcome.message_id)
    assert (msg.state, msg.job_id, msg.parsed, msg.is_report) == ("processed", job.id, True, True)
    assert db.session.get(Job, job.id).last_status == "Success"


def test_identity_matching_ignores_case_and_spacing_of_sender_job_name_and_software(app):
    job = job_with_identity("  VEEAM-vbr01@Northwind-Logistics.EXAMPLE ", "daily   vm  BACKUP",
                            "veeam  backup & REPLICATION")

    outcome = ingest_message(sample(V01))

    assert outcome.state == "processed"
    assert db.session.get(JobRun, outcome.run_id).job_id == job.id


def test_a_report_whose_job_name_differs_in_case_matches_the_same_job(app):
    job = job_with_identity(ACRONIS_SENDER, "Servers - nightly", "Acronis Cyber Protect")

    outcome = ingest_message(sample(ACRONIS, replace=(b"Servers - nightly", b"SERVERS - NIGHTLY")))

    assert outcome.state == "processed"
    assert db.session.get(MailMessage, outcome.message_id).job_name == "SERVERS - NIGHTLY"
    assert db.session.get(JobRun, outcome.run_id).job_id == job.id


def test_another_sender_or_software_is_another_job(app):
    make_job(sender="someone-else@example.test", job_name="Daily VM Backup", software="Veeam Backup & Replication")
    make_job(customer=make_customer("Other"), sender=V01_SENDER, job_name="Daily VM Backup",
             software="Veeam Agent for Microsoft Windows")

    outcome = ingest_message(sample(V01))

    assert outcome.state == "inbox" and outcome.run_id is None
    assert count(JobRun) == 0


def test_archived_jobs_do_not_match(app):
    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication", archived=True,
             archived_at=datetime(2026, 1, 1, tzinfo=timezone.utc))

    outcome = ingest_message(sample(V01))

    assert outcome.state == "inbox" and outcome.run_id is None
    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.job_id is None and count(JobRun) == 0
    with pytest.raises(InboxError, match="archived"):
        approve_message(msg, make_customer("Someone"), actor=None)


# --- when a run happened ---------------------------------------------------------------------------

def test_started_at_comes_from_the_report_in_utc(app):
    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")

    run = db.session.get(JobRun, ingest_message(sample(V01)).run_id)

    # the report says 22:00:14 -06:00; the mail's Date header says 22:32:51 -06:00
    assert run.started_at == datetime(2024, 3, 6, 4, 0, 14, tzinfo=timezone.utc)
    assert run.ended_at == datetime(2024, 3, 6, 4, 32, 40, tzinfo=timezone.utc)


def test_started_at_falls_back_to_the_date_header(app):
    make_job(sender="qnap-fs01@example.com", job_name="Daily-to-S3", software="QNAP Hybrid Backup Sync")

    outcome = ingest_message(sample(QNAP))

    assert outcome.state == "processed"
    run = db.session.get(JobRun, outcome.run_id)
    # Date: 2024-05-14 02:13:46 +02:00 (the report has an end time but no start time)
    assert run.started_at == datetime(2024, 5, 14, 0, 13, 46, tzinfo=timezone.utc)
    assert run.started_at != db.session.get(MailMessage, outcome.message_id).imported_at


# --- not-a-report and unreadable mails --------------------------------------------------------------

@pytest.mark.parametrize("name, sender", [(NEWSLETTER, "news@vendor-news.example"),
                                          (PBS_UPDATES, "root@pbs01.example.com")])
def test_mails_that_are_not_reports_never_become_runs(app, name, sender):
    make_job(sender=sender, job_name="store-main", software="Proxmox Backup Server")

    outcome = ingest_message(sample(name))

    assert outcome.state == "inbox" and outcome.run_id is None
    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.is_report is False and msg.job_id is None
    with pytest.raises(InboxError, match="Only a parsed backup report"):
        approve_message(msg, make_customer("Someone"), actor=None)
    assert count(JobRun) == 0 and count(Job) == 1


def test_garbage_bytes_are_stored_with_their_reason(app):
    garbage = b"\x00\x01\xff\xfe" * 200

    first = ingest_message(garbage, source="graph", source_id="AAMk-garbage")
    again = ingest_message(garbage, source="graph", source_id="AAMk-garbage")

    assert first.state == "inbox" and again.state == "duplicate"
    msg = db.session.get(MailMessage, first.message_id)
    assert not msg.parsed and (msg.parse_reason or msg.parse_error) and msg.raw == garbage


# --- stored once --------------------------------------------------------------------------------

def test_the_same_message_again_adds_nothing(app):
    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    raw = sample(V01)

    first = ingest_message(raw, source="graph", source_id="AAMk-1")
    same_id_elsewhere = ingest_message(raw, source="upload")
    same_source_id = ingest_message(sample(V01, message_id="<other@example.test>"), source="graph",
                                    source_id="AAMk-1")

    assert first.state == "processed"
    assert same_id_elsewhere.state == same_source_id.state == "duplicate"
    assert count(MailMessage) == 1 and count(JobRun) == 1


def test_keep_raw_off_keeps_the_hash_and_parsed_data_only(app):
    outcome = ingest_message(sample(V01), keep_raw=False)

    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.raw is None and len(msg.raw_sha256) == 64 and msg.raw_size > 1000
    assert msg.job_name == "Daily VM Backup" and msg.body_html
    with pytest.raises(InboxError, match="no longer stored"):
        reparse_message(msg)


# --- the Inbox: approve -------------------------------------------------------------------------

def test_approve_creates_the_job_and_processes_the_other_inbox_mails_of_that_job(app):
    admin = make_user("alice", roles=("admin",))
    same_job = [ingest_message(sample(ACRONIS, f"<acr-{i}@example.test>")) for i in range(3)]
    shouting = ingest_message(sample(ACRONIS, "<acr-upper@example.test>",
                                     replace=(b"Servers - nightly", b"SERVERS - NIGHTLY")))
    other_job = ingest_message(sample(V01))
    assert {o.state for o in same_job + [shouting, other_job]} == {"inbox"}
    customer = make_customer("Contoso")
    msg = db.session.get(MailMessage, same_job[1].message_id)

    job, processed = approve_message(msg, customer, actor=admin)
    db.session.commit()

    assert (job.customer_id, job.job_name, job.software, job.sender) == (
        customer.id, "Servers - nightly", "Acronis Cyber Protect", ACRONIS_SENDER)
    assert processed == 4
    states = {o.message_id: db.session.get(MailMessage, o.message_id).state
              for o in same_job + [shouting, other_job]}
    assert [states[o.message_id] for o in same_job + [shouting]] == ["processed"] * 4
    assert states[other_job.message_id] == "inbox"
    runs = db.session.execute(select(JobRun).where(JobRun.job_id == job.id)).scalars().all()
    assert len(runs) == 4 and {r.status for r in runs} == {"Failed"}
    assert count(RunObject) >= 4
    audit = db.session.execute(select(AuditLog).where(AuditLog.event == "job.create")).scalar_one()
    assert audit.user_id == admin.id

    # a later report of the approved job needs no human
    later = ingest_message(sample(ACRONIS, "<acr-later@example.test>"))
    assert later.state == "processed"


def test_approve_matches_inbox_mails_whose_job_name_differs_only_in_spacing(app):
    """Identity is normalised for spacing, so the Inbox sweep after approval must be too."""
    first = ingest_message(sample(ACRONIS, "<acr-a@example.test>"))
    spaced = ingest_message(sample(ACRONIS, "<acr-b@example.test>"))
    m = db.session.get(MailMessage, spaced.message_id)
    m.job_name = "Servers  -  nightly"   # as a text-format report may render it
    db.session.commit()

    job, processed = approve_message(db.session.get(MailMessage, first.message_id), make_customer("C"), actor=None)
    db.session.commit()

    assert processed == 2
    assert db.session.get(MailMessage, spaced.message_id).state == "processed"


def test_approve_twice_is_refused(app):
    outcome = ingest_message(sample(V01))
    msg = db.session.get(MailMessage, outcome.message_id)
    approve_message(msg, make_customer("A"), actor=None)
    db.session.commit()

    with pytest.raises(InboxError, match="no longer in the Inbox"):
        approve_message(msg, make_customer("B"), actor=None)


def test_approve_to_a_different_customer_than_the_existing_job_is_refused(app):
    make_job(customer=make_customer("Owner"), sender=V01_SENDER, job_name="Daily VM Backup",
             software="Veeam Backup & Replication")
    outcome = ingest_message(sample(V01))
    assert outcome.state == "processed"
    # an Inbox mail of that job (e.g. it arrived while the job was archived)
    second = ingest_message(sample(V01, "<v01-again@example.test>"))
    msg = db.session.get(MailMessage, second.message_id)
    msg.state, msg.job_id = "inbox", None
    db.session.execute(JobRun.__table__.delete().where(JobRun.mail_message_id == msg.id))
    db.session.commit()

    with pytest.raises(InboxError, match="already belongs to customer 'Owner'"):
        approve_message(msg, make_customer("Intruder"), actor=None)


def test_process_inbox_for_job_after_unarchiving(app):
    job = make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication",
                   archived=True)
    outcome = ingest_message(sample(V01))
    assert outcome.state == "inbox"
    job.archived = False
    db.session.commit()

    assert process_inbox_for_job(job) == 1
    db.session.commit()
    assert db.session.get(MailMessage, outcome.message_id).state == "processed"


def test_reparse_turns_an_inbox_mail_of_a_known_job_into_a_run(app):
    outcome = ingest_message(sample(V01))
    assert outcome.state == "inbox"
    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    msg = db.session.get(MailMessage, outcome.message_id)

    assert reparse_message(msg) is True
    db.session.commit()
    assert msg.state == "processed" and count(JobRun) == 1


def test_nul_characters_in_headers_do_not_stop_the_mail_from_being_stored(app):
    """PostgreSQL text can't hold NUL; a mail with one in its subject is still stored (not lost)."""
    raw = (b"From: backup@customer.example\r\nTo: reports@msp.example\r\nSubject: Backup \x00 report\r\n"
           b"Message-ID: <nul-subject@example.test>\r\nDate: Tue, 05 Mar 2024 22:32:51 -0600\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nJob: x\x00y\r\nresult ok\r\n")

    outcome = ingest_message(raw, source="graph", source_id="AAMk-nul")

    assert outcome.state == "inbox"
    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.subject == "Backup  report" and msg.raw == raw
    assert ingest_message(raw, source="graph", source_id="AAMk-nul").state == "duplicate"


def test_a_mail_the_database_refuses_to_store_parsed_is_kept_raw_with_its_error(app, monkeypatch):
    """Nothing is lost: if storing the parsed fields fails (here: NUL cleaning switched off), the raw
    mail is stored with the error, so it shows in the Inbox and can be re-parsed later."""
    from backend.app.services import ingest

    monkeypatch.setattr(ingest, "_clean_text_fields", lambda msg: None)
    raw = (b"From: backup@customer.example\r\nSubject: Backup \x00 report\r\nMessage-ID: <refused@example.test>\r\n"
           b"Content-Type: text/plain\r\n\r\nhello\r\n")

    outcome = ingest_message(raw, source="graph", source_id="AAMk-refused")

    assert outcome.state == "inbox" and "Storing the parsed mail failed" in outcome.error
    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.raw == raw and not msg.parsed and msg.internet_message_id == "<refused@example.test>"
    assert ingest_message(raw, source="graph", source_id="AAMk-refused").state == "duplicate"


def test_the_same_report_in_another_mail_adds_no_second_run(app):
    """A colleague forwards (or replies to) a report that was already imported: the copy is a new
    mail, but the report started at the same time, so the job keeps one run."""
    job = make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    first = ingest_message(sample(V01), source="upload")
    copy = sample(V01, message_id="<forwarded-copy@example.test>").replace(b"Subject: ", b"Subject: FW: ", 1)
    second = ingest_message(copy, source="upload")
    assert second.state == "processed" and second.run_id == first.run_id
    assert count(JobRun) == 1 and count(MailMessage) == 2
    assert "same report as run" in db.session.get(MailMessage, second.message_id).parse_reason
    # The report itself sent again by the product (not a copy) stays a separate mail and run.
    resent = ingest_message(sample(V01, message_id="<resent@example.test>"), source="upload")
    assert resent.run_id != first.run_id and count(JobRun) == 2


# --- the run's message -----------------------------------------------------------------------------

QNAP_SYNC_FAILED = Path(__file__).parent / "parsers" / "samples" / "qnap_hbs_sync_failed_en.eml"


def test_a_qnap_failure_reason_becomes_the_runs_message_and_shows_in_run_checks(app, as_user):
    job = job_with_identity("nas-archive@example.invalid", "Scans to Branch", "QNAP Hybrid Backup Sync")
    outcome = ingest_message(QNAP_SYNC_FAILED.read_bytes(), source="upload")
    run = db.session.get(JobRun, outcome.run_id)
    assert run.job_id == job.id and run.status == "Failed" and run.objects == []
    assert run.message == ('Sync job "Scans to Branch" failed. Error: The remote server refused the login '
                           '(check the user name and password).')
    page = as_user("operator").get(f"/run-checks?job={job.id}").get_data(as_text=True)
    shown = page.split('run-message')[1].split("</pre>")[0]
    assert "The remote server refused the login (check the user name and password)." in unescape(shown)


def test_a_qnap_success_has_no_message(app):
    job_with_identity("qnap-fs01@example.com", "Daily-to-S3", "QNAP Hybrid Backup Sync")
    outcome = ingest_message(sample(QNAP), source="upload")
    run = db.session.get(JobRun, outcome.run_id)
    assert run.status == "Success" and run.message is None


def test_object_problems_still_make_the_message_when_the_report_gives_no_reason_of_its_own(app):
    job_with_identity(ACRONIS_SENDER, "Servers - nightly", "Acronis Cyber Protect")
    outcome = ingest_message(sample(ACRONIS), source="upload")
    run = db.session.get(JobRun, outcome.run_id)
    assert run is not None and run.message.startswith("FS01: Failed to connect to the backup location")


# --- what one mail costs ---------------------------------------------------------------------------

def test_a_mail_costs_a_constant_number_of_statements(app):
    """An Inbox mail: the job lookup and one INSERT (also the duplicate check). A mail of a known job:
    also the late-run and override lookups, the run, its objects, the ticket and remark links in one
    statement (and the job's last run). No savepoints, no UPDATE of the new mail or run."""
    from tests.helpers import queries

    from backend.app.services.parser_rules import load_ruleset

    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    ingest_message(sample(V01, message_id="<warm@example.test>"))  # the settings row, the statement cache
    rules = load_ruleset()  # the users' parser rules: an import batch loads them once, not per mail

    with queries() as inbox:
        assert ingest_message(sample(ACRONIS), rules=rules).state == "inbox"
    with queries() as known:
        assert ingest_message(sample(V01), rules=rules).state == "processed"
    with queries() as again:
        assert ingest_message(sample(V01), rules=rules).state == "duplicate"

    assert [s.split()[0] for s in inbox] == ["SELECT", "INSERT"], inbox
    kinds = [" ".join(s.split()[:3]) for s in known]
    assert len(known) <= 8 and not any(k.startswith(("SAVEPOINT", "RELEASE", "UPDATE mail_messages",
                                                      "UPDATE job_runs", "UPDATE run_objects")) for k in kinds), kinds
    assert len(again) == 2  # the job lookup, the INSERT that finds it stored


def test_a_mail_whose_job_lookup_fails_is_kept_in_the_inbox_with_the_error(app, monkeypatch):
    from backend.app.services import ingest

    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    db.session.commit()

    def broken(msg):
        raise RuntimeError("lookup broke")

    monkeypatch.setattr(ingest, "find_job_for", broken)
    outcome = ingest_message(sample(V01), source="graph", source_id="AAMk-lookup")

    assert outcome.state == "inbox" and count(MailMessage) == 1 and count(JobRun) == 0
    msg = db.session.get(MailMessage, outcome.message_id)
    assert "Creating the run failed: RuntimeError: lookup broke" in msg.parse_error and msg.job_id is None
    assert msg.job_name == "Daily VM Backup" and msg.parsed


# --- a database that can't work now: nothing of the mail is stored ----------------------------------

def database_error(kind: str):
    """What SQLAlchemy raises for a full disk (SQLSTATE 53100) or a connection the server closed."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    orig = (psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device')
            if kind == "disk_full" else psycopg.OperationalError("server closed the connection unexpectedly"))
    return OperationalError("INSERT INTO job_runs …", {}, orig)


@pytest.mark.parametrize("where,kind", [("lookup", "connection_lost"), ("run", "disk_full"),
                                        ("run", "connection_lost")])
def test_a_database_that_cannot_work_now_stores_nothing_of_the_mail(app, monkeypatch, where, kind):
    """Not the mail's fault: the error is raised and nothing is stored, so the importer leaves the
    mail in the mailbox. Before, the mail was stored again on its own, in the Inbox without its run
    ("Creating the run failed: OperationalError"), and moved out of the mailbox: the run was never made."""
    from sqlalchemy.exc import OperationalError

    from backend.app.services import ingest
    from backend.app.services.db_errors import database_unavailable, describe

    make_job(sender=V01_SENDER, job_name="Daily VM Backup", software="Veeam Backup & Replication")
    db.session.commit()

    def broken(*args, **kwargs):
        raise database_error(kind)

    monkeypatch.setattr(ingest, "find_job_for" if where == "lookup" else "after_run_created", broken)
    with pytest.raises(OperationalError) as raised:
        ingest_message(sample(V01), source="graph", source_id="AAMk-db-gone")
    assert database_unavailable(raised.value)
    assert describe(raised.value).startswith("its disk is full (could not extend file" if kind == "disk_full"
                                             else "the connection to it was lost or refused (server closed")
    assert count(MailMessage) == 0 and count(JobRun) == 0

    monkeypatch.undo()  # the database works again: the same mail is stored once, with its run
    outcome = ingest_message(sample(V01), source="graph", source_id="AAMk-db-gone")
    assert outcome.state == "processed" and count(MailMessage) == 1 and count(JobRun) == 1


def test_an_error_about_the_values_is_not_the_database_going_away():
    import psycopg
    from sqlalchemy.exc import DataError, OperationalError

    from backend.app.services.db_errors import database_unavailable

    too_long = DataError("INSERT …", {}, psycopg.errors.StringDataRightTruncation("value too long"))
    index_row = OperationalError("INSERT …", {}, psycopg.errors.ProgramLimitExceeded("index row size exceeds"))
    assert not database_unavailable(too_long) and not database_unavailable(index_row)
    assert not database_unavailable(RuntimeError("override service broke"))
    assert database_unavailable(OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating")))
