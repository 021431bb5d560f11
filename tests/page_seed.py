"""One of everything, so every page of the app shows real content (not an empty state or a 404).

Each kind of record gets id 1 (the tables are emptied with RESTART IDENTITY after every test), so
the route walk of test_route_matrix, which puts 1 in every <int:...>, lands on a page with data.
Used by tests/test_csp.py and tests/browser/test_csp_browser.py.
"""
from __future__ import annotations

from datetime import timedelta

from backend.app.services import tickets as tk
from backend.app.extensions import db
from backend.app.models import (BackgroundTask, DigestDelivery, FeedbackAttachment, FeedbackItem, FeedbackReply, ImportCycle,
                                MailMessage, NewsItem, NotificationChannel, NotificationOutbox, Override,
                                ReportDefinition, ReportRun, RunObject, SystemSettings, User)
from backend.app.services import reports as report_svc
from tests.clock import TEST_NOW

from .conftest import make_customer, make_job, make_run
from .test_feedback import png

MAIL_HTML = ('<table style="border:1px solid #ccc"><tr><td style="color:#b00;font-weight:bold">Failed</td>'
             '<td>Daily VM Backup: 1 of 2 VMs processed</td></tr></table>'
             '<p onclick="alert(1)">Details below.</p><script>window.parent.pwned = 1</script>')


def seed_pages() -> dict:
    """Customers, jobs with unreviewed runs (objects, messages, a mail), an inbox mail with an HTML
    body, a deleted mail, an override, a ticket and a remark, news, feedback with a screenshot and a
    reply, a report with a running and a finished generation, a running background task."""
    admin = db.session.query(User).filter_by(username="alice").one_or_none()
    north = make_customer("Northwind Demo")                                            # customer 1
    fabri = make_customer("Fabrikam Demo")
    job = make_job(north, "Daily VM Backup")                                            # job 1
    sql = make_job(fabri, "SQL Backup", sender="sql@example.test", software="Synology Active Backup")
    t0 = TEST_NOW - timedelta(hours=9)

    inbox_mail = MailMessage(source="upload", internet_message_id="<seed-1@example.test>",  # mail 1
                             from_address="veeam@example.test", subject="[Failed] Daily VM Backup (2 VMs) 1 failed",
                             received_at=t0, raw=b"Subject: seed\r\n\r\nbody", raw_size=24, body_html=MAIL_HTML,
                             body_text="Failed", parsed=True, parser_name="veeam", software="Veeam Backup & Replication",
                             backup_type="Backup Job", job_name="Daily VM Backup", overall_status="Failed",
                             parse_result={"objects": [{"name": "SRV01", "type": "VM", "status": "Failed",
                                                        "message": "Changed block tracking reset"}]},
                             state="inbox")
    processed = MailMessage(source="upload", internet_message_id="<seed-2@example.test>",
                            from_address="veeam@example.test", subject="[Warning] Daily VM Backup", received_at=t0,
                            body_text="Warning: snapshot took long\nsecond line", parsed=True, state="processed",
                            software="Veeam Backup & Replication", job_name="Daily VM Backup",
                            overall_status="Warning", job_id=job.id)
    deleted = MailMessage(source="upload", internet_message_id="<seed-3@example.test>",
                          from_address="nas@example.test", subject="Newsletter", received_at=t0, body_text="hi",
                          parsed=False, is_report=False, state="deleted", deleted_at=t0)
    db.session.add_all([inbox_mail, processed, deleted])
    db.session.commit()

    warn = make_run(job, "Warning", t0, message="Snapshot took long\nsecond line",       # run 1
                    mail_message_id=processed.id)
    failed = make_run(job, "Failed", t0 - timedelta(days=1), message="Disk full")
    make_run(sql, "Success", t0 + timedelta(minutes=5))
    make_run(sql, "Failed", t0 - timedelta(days=2), message="Agent offline")
    for run, status in ((warn, "Warning"), (failed, "Failed")):
        db.session.add(RunObject(job_run_id=run.id, name="SRV01", type="VM", status=status, effective_status=status,
                                 message="Changed block tracking reset"))
    # Older, reviewed history for the dashboard chart and the report (40 days: the last calendar month
    # holds runs on any TEST_NOW, 29 February included).
    for day in range(1, 40):
        make_run(sql, "Success" if day % 5 else "Warning", t0 - timedelta(days=day, hours=1),
                 reviewed_at=t0 - timedelta(days=day - 1))

    db.session.add(Override(level="job", job_id=job.id, match_status="Warning", match_mode="contains",  # override 1
                            match_text="Snapshot took long", comment="Known: slow storage", treat_as_success=True))
    ticket = tk.create_ticket("T-100", "VM host disk full\nsecond line", [{"type": "job", "job_id": job.id}], admin,
                              active_from=t0 - timedelta(days=3))                          # ticket 1
    tk.create_remark("Customer knows; moves the VM next week", [{"type": "customer", "customer_id": north.id}],
                     admin, active_from=t0 - timedelta(days=3))                             # remark 1
    db.session.commit()
    tk.link_open_internal_tickets_to_runs([warn.id, failed.id])
    db.session.commit()

    db.session.add(NewsItem(title="Maintenance Friday", body="The **NAS** is replaced on Friday.",   # news 1
                            created_by_id=admin.id if admin else None))
    item = FeedbackItem(kind="bug", title="Export button does nothing", description="Steps:\n\n1. Open **Jobs**",
                        created_by_id=admin.id if admin else None)                         # feedback 1
    db.session.add(item)
    db.session.commit()
    db.session.add_all([FeedbackAttachment(item_id=item.id, filename="screen.png", content_type="image/png",
                                           size=len(png()), data=png()),                       # attachment 1
                        FeedbackReply(item_id=item.id, user_id=admin.id if admin else None, body="Seen, thanks.")])

    definition = ReportDefinition(name="Monthly backup report", all_customers=True, period="last_month",  # report 1
                                  content={k: True for k in report_svc.CONTENT_KEYS}, intro_markdown="Hello",
                                  schedule="none")
    db.session.add(definition)
    db.session.commit()
    start = TEST_NOW - timedelta(days=30)
    db.session.add_all([
        ReportRun(definition_id=definition.id, fmt="pdf", state="running", progress=1, total=3,      # run 1
                  period_start=start, period_end=TEST_NOW),
        ReportRun(definition_id=definition.id, fmt="csv", state="done", progress=2, total=2, period_start=start,
                  period_end=TEST_NOW, filename="report.csv", content_type="text/csv", data=b"a,b\n", size=4,
                  finished_at=TEST_NOW, delivery_state="failed", delivery_attempts=1,
                  delivery_error="SMTP refused", next_attempt_at=TEST_NOW + timedelta(hours=1)),
        BackgroundTask(kind="reparse_all", state="running", progress=2, total=5, message="Re-parsing 2 of 5"),  # task 1
        ImportCycle(trigger="manual", started_at=t0, finished_at=t0, state="done", fetched=3, new=3,
                    auto_processed=2, to_inbox=1),
    ])
    db.session.commit()
    channel = NotificationChannel(name="Ops webhook", kind="webhook", target_url="https://hooks.example.test/t",  # channel 1
                                  secret="s")
    db.session.add(channel)
    db.session.commit()
    db.session.add(NotificationOutbox(channel_id=channel.id, event_key=f"run:{warn.id}:warning", event="warning",
                                      payload={"event": "warning"}, state="failed", attempts=1,
                                      last_error="HTTP 404 Not Found"))
    db.session.add(NotificationChannel(name="Ops mail", kind="email", recipients="ops@example.test",  # channel 2
                                       transport="smtp"))
    settings = db.session.get(SystemSettings, 1)
    if settings is not None:
        settings.digest_enabled, settings.digest_recipients = True, "noc@example.test"
    db.session.add_all([
        DigestDelivery(day=TEST_NOW.date(), recipient="noc@example.test", state="failed", attempts=1,
                       subject="Backups: 1 failed", last_error="550 5.1.1 <noc@example.test>: mailbox unavailable"),
        DigestDelivery(day=TEST_NOW.date(), recipient="ops@example.test", state="sent", attempts=1,
                       subject="Backups: 1 failed", sent_at=TEST_NOW),
    ])
    db.session.commit()
    return {"job": job, "inbox_mail": inbox_mail, "run": warn, "ticket": ticket, "definition": definition,
            "feedback": item}
