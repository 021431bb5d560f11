"""Two customers for the customer-portal tests: A (the portal user's) and B (someone else's).

A's rows are made first, so every id 1 (customer, job, run, mail, ticket, remark, override, report,
generated file) is A's: the route matrix, which puts 1 into every id of a URL, then reaches real
pages of A as the portal user. B has a row of every kind, named so a leak is easy to spot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from tests.clock import TEST_NOW
from tests.helpers import make_customer, make_job, make_mail, make_override, make_run, make_ticket, make_user

A_NAME = "Alpha Portal Holding"
B_NAME = "Bravo Secret Logistics"
A_JOB = "Alpha Nightly Files"
B_JOBS = ("Bravo Hidden SQL", "Bravo Confidential Exchange")
PORTAL_USER = "paula"


@dataclass
class PortalWorld:
    a: object
    b: object
    portal: object
    a_job: object
    b_jobs: list
    a_runs: list
    b_runs: list
    ids: dict = field(default_factory=dict)  # kind -> A's id;  b_ids: kind -> [B's ids]
    b_ids: dict = field(default_factory=dict)

    @property
    def b_strings(self) -> list[str]:
        return [B_NAME, *B_JOBS]


def _report(name, customer_ids, all_customers=False):
    from backend.app.extensions import db
    from backend.app.models import ReportDefinition

    defn = ReportDefinition(name=name, all_customers=all_customers, customer_ids=customer_ids, period="last_7_days",
                            content={"summary": True})
    db.session.add(defn)
    db.session.flush()
    return defn


def _report_file(defn, customer_ids, state="done"):
    from backend.app.extensions import db
    from backend.app.models import ReportRun

    run = ReportRun(definition_id=defn.id, fmt="csv", state=state, progress=1, total=1,
                    filename=f"report-{defn.id}.csv", content_type="text/csv; charset=utf-8",
                    data=b"customer\n" if state == "done" else None, size=9 if state == "done" else None,
                    customer_ids=customer_ids, created_at=TEST_NOW - timedelta(hours=1),
                    finished_at=TEST_NOW - timedelta(hours=1) if state == "done" else None,
                    period_start=TEST_NOW - timedelta(days=7), period_end=TEST_NOW)
    db.session.add(run)
    db.session.flush()
    return run


def _remark(body, job, run):
    from backend.app.extensions import db
    from backend.app.models import Remark, RemarkJobRun, RemarkScope

    remark = Remark(body=body)
    remark.scopes.append(RemarkScope(scope_type="job", job_id=job.id))
    db.session.add(remark)
    db.session.flush()
    db.session.add(RemarkJobRun(remark_id=remark.id, job_run_id=run.id))
    db.session.flush()
    return remark


def seed_portal_world(mail_bodies: bool = True) -> PortalWorld:
    """A and B with jobs, runs (one of each with a mail), tickets, remarks, overrides, reports and
    generated files; the portal user ``paula`` bound to A. Committed (the live server reads it)."""
    from backend.app.extensions import db

    a = make_customer(A_NAME)
    a_job = make_job(a, A_JOB, sender="alpha@example.test")
    a_mail = make_mail("alpha@example.test", f"[Success] {A_JOB}", state="processed", body_text="Alpha mail body",
                       received_at=TEST_NOW - timedelta(hours=3))
    a_runs = [make_run(a_job, "Success", TEST_NOW - timedelta(hours=3), mail_message_id=a_mail.id,
                       message="All alpha files copied"),
              make_run(a_job, "Failed", TEST_NOW - timedelta(days=1, hours=3), message="Alpha disk full")]
    a_ticket = make_ticket("T-A1", "Alpha ticket", job=a_job, runs=a_runs[:1])
    a_remark = _remark("Alpha remark", a_job, a_runs[0])
    a_override = make_override(a_job)
    a_report = _report("Alpha monthly", [a.id])
    a_file = _report_file(a_report, [a.id])

    b = make_customer(B_NAME)
    b_jobs = [make_job(b, name, sender="bravo@example.test") for name in B_JOBS]
    b_mail = make_mail("bravo@example.test", f"[Failed] {B_JOBS[0]}", state="processed",
                       body_text=f"{B_NAME} mail body", received_at=TEST_NOW - timedelta(hours=2))
    b_runs = [make_run(b_jobs[0], "Failed", TEST_NOW - timedelta(hours=2), mail_message_id=b_mail.id,
                       message=f"{B_NAME}: SQL dump failed"),
              make_run(b_jobs[1], "Success", TEST_NOW - timedelta(hours=4), message="Bravo exchange ok")]
    b_ticket = make_ticket("T-B1", f"{B_NAME} ticket", job=b_jobs[0], customer=b, runs=b_runs[:1])
    b_remark = _remark(f"{B_NAME} remark", b_jobs[0], b_runs[0])
    b_override = make_override(b_jobs[0])
    b_report = _report("Bravo monthly", [b.id])
    ab_report = _report("Alpha and Bravo together", [a.id, b.id])
    all_report = _report("Everyone", None, all_customers=True)
    b_files = [_report_file(b_report, [b.id]), _report_file(ab_report, [a.id, b.id]),
               _report_file(all_report, [a.id, b.id])]
    # A's own report whose file was made while it still covered B too: never the portal's.
    narrowed_file = _report_file(a_report, [a.id, b.id])
    b_inbox = make_mail("bravo@example.test", f"{B_NAME} unknown job", state="inbox")

    portal = make_user(PORTAL_USER, roles=("portal",))
    portal.customers = [a]
    portal.portal_mail_bodies = mail_bodies
    db.session.flush()
    db.session.commit()

    world = PortalWorld(a=a, b=b, portal=portal, a_job=a_job, b_jobs=b_jobs, a_runs=a_runs, b_runs=b_runs)
    world.ids = {"customer": a.id, "job": a_job.id, "run": a_runs[0].id, "mail": a_mail.id, "ticket": a_ticket.id,
                 "remark": a_remark.id, "override": a_override.id, "report": a_report.id, "report_run": a_file.id}
    world.b_ids = {"customer": [b.id], "job": [j.id for j in b_jobs], "run": [r.id for r in b_runs],
                   "mail": [b_mail.id, b_inbox.id], "ticket": [b_ticket.id], "remark": [b_remark.id],
                   "override": [b_override.id], "report": [b_report.id, ab_report.id, all_report.id],
                   "report_run": [f.id for f in b_files] + [narrowed_file.id]}
    return world
