"""Loading a report's data: everything the PDF, the CSV and the preview show, in a constant number
of queries whatever the number of customers (customers, jobs, runs of the period, overrides
applied, tickets). Runs are aggregated in Python with the very functions the pages use
(``services.status``), so a report never disagrees with them; counting per override and per
ticket is done in SQL."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from ...extensions import db
from ...models import Customer, Job, JobRun, Override, ReportDefinition, RunObject, Ticket, TicketScope, utcnow
from ..settings import get_settings, ui_zone
from ..status import configured_day_rule, day_status, display_status
from ..timezones import local_day
from .data import (
    CustomerReport,
    FailureRow,
    JobStats,
    OverrideUse,
    ReportData,
    RunRow,
    TicketInfo,
    bucket,
    one_line,
)
from .definitions import content_flags, intro_html
from .periods import Period, period_for
from .vocabulary import PROBLEM_STATUSES

FAILURES_PER_CUSTOMER = 200   # the PDF lists at most this many failed/missed runs per customer
MESSAGE_CHARS = 400


def _override_description(level: str, software, backup_type, pattern, job_name, object_name,
                          match_status, match_text) -> str:
    if level == "global":
        parts = ["All jobs"]
        if software:
            parts.append(f"software {software}")
        if backup_type:
            parts.append(f"type {backup_type}")
        if pattern:
            parts.append(f"name like '{pattern}'")
        what = ", ".join(parts)
    elif level == "object":
        what = f"Object '{object_name or '*'}'" + (f" of {job_name}" if job_name else "")
    else:
        what = f"Job {job_name or '?'}"
    cond = []
    if match_status:
        cond.append(f"when {match_status}")
    if match_text:
        cond.append(f"message contains '{match_text}'")
    return what + (" (" + ", ".join(cond) + ")" if cond else "")


def selected_customer_ids(defn_all: bool, ids: Optional[Iterable[int]]) -> Optional[list[int]]:
    return None if defn_all else sorted({int(i) for i in (ids or [])})


def build_report(defn: ReportDefinition, *, zone: Optional[ZoneInfo] = None, today: Optional[date] = None,
                 now: Optional[datetime] = None, period: Optional[Period] = None) -> ReportData:
    """Everything the PDF, the CSV and the preview show, in a constant number of queries."""
    zone = zone or ui_zone()
    period = period or period_for(defn, zone, today)
    settings = get_settings()
    rule = configured_day_rule()
    content = content_flags(defn)
    ids = selected_customer_ids(defn.all_customers, defn.customer_ids)

    # 1. Customers (all active ones, or the chosen ones whatever their state).
    q = select(Customer.id, Customer.name)
    q = q.where(Customer.active.is_(True)) if ids is None else q.where(Customer.id.in_(ids or [-1]))
    customers = {cid: CustomerReport(cid, name) for cid, name in db.session.execute(q.order_by(func.lower(Customer.name)))}
    cust_ids = list(customers)

    # 2. Runs of the period for those customers' jobs (columns only, no ORM objects).
    job_filter = Job.customer_id.in_(cust_ids or [-1])
    run_rows: dict[int, list[RunRow]] = defaultdict(list)
    for row in db.session.execute(
            select(JobRun.id, JobRun.job_id, JobRun.status, JobRun.effective_status, JobRun.override_id,
                   JobRun.started_at, JobRun.missed, JobRun.message, JobRun.reviewed_at)
            .join(Job, Job.id == JobRun.job_id)
            .where(job_filter, JobRun.started_at >= period.start_utc, JobRun.started_at < period.end_utc)
            .order_by(JobRun.job_id, JobRun.started_at, JobRun.id)):
        r = RunRow(*row)
        r.shown = display_status(r)
        r.day = local_day(r.started_at, zone)
        run_rows[r.job_id].append(r)

    # 3. Jobs: every active job, and archived ones that ran in the period.
    for jid, cid, name, software, btype, archived in db.session.execute(
            select(Job.id, Job.customer_id, Job.job_name, Job.software, Job.backup_type, Job.archived)
            .where(job_filter).order_by(Job.customer_id, func.lower(Job.job_name), Job.id)):
        if archived and jid not in run_rows:
            continue
        job = JobStats(jid, name, software or "", btype or "", bool(archived), runs=run_rows.get(jid, []))
        customers[cid].jobs.append(job)

    days = period.days
    data = ReportData(getattr(defn, "id", None), defn.name, settings.company_name or "", period, zone,
                      now or utcnow(), rule, content, str(intro_html(defn)), bool(defn.all_customers),
                      list(customers.values()), daily={d: Counter() for d in days})
    for cust in data.customers:
        cust.daily = {d: Counter() for d in days}
        for job in cust.jobs:
            by_day: dict[date, list[RunRow]] = defaultdict(list)
            for r in job.runs:
                b = bucket(r.shown)
                job.counts[b] += 1
                cust.daily[r.day][b] += 1
                by_day[r.day].append(r)
                if r.shown in PROBLEM_STATUSES:
                    cust.failures_total += 1
                    if len(cust.failures) < FAILURES_PER_CUSTOMER:
                        cust.failures.append(FailureRow(r.started_at, job.name, r.shown,
                                                        one_line(r.message, MESSAGE_CHARS), r.reviewed_at is not None))
            job.day_statuses = {d: day_status(rs, rule) for d, rs in sorted(by_day.items())}
            cust.counts.update(job.counts)
        cust.failures.sort(key=lambda f: (f.started_at, f.job_name))
        data.counts.update(cust.counts)
        for d, c in cust.daily.items():
            data.daily[d].update(c)

    if content["overrides"] and cust_ids:
        _load_overrides(data, customers, job_filter, period)
    if content["tickets"] and cust_ids:
        _load_tickets(customers, cust_ids, period)
    return data


def _load_overrides(data: ReportData, customers: dict[int, CustomerReport], job_filter, period: Period) -> None:
    in_period = and_(JobRun.started_at >= period.start_utc, JobRun.started_at < period.end_utc)
    uses: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for cid, oid, n in db.session.execute(
            select(Job.customer_id, JobRun.override_id, func.count(JobRun.id))
            .join(Job, Job.id == JobRun.job_id)
            .where(job_filter, in_period, JobRun.override_id.is_not(None))
            .group_by(Job.customer_id, JobRun.override_id)):
        uses[(cid, oid)][0] += n
    for cid, oid, n in db.session.execute(
            select(Job.customer_id, RunObject.override_id, func.count(RunObject.id))
            .join(JobRun, JobRun.id == RunObject.job_run_id).join(Job, Job.id == JobRun.job_id)
            .where(job_filter, in_period, RunObject.override_id.is_not(None))
            .group_by(Job.customer_id, RunObject.override_id)):
        uses[(cid, oid)][1] += n
    if not uses:
        return
    oids = sorted({oid for _, oid in uses})
    described = {}
    for o, job_name in db.session.execute(
            select(Override, Job.job_name).outerjoin(Job, Job.id == Override.job_id).where(Override.id.in_(oids))):
        described[o.id] = (_override_description(o.level, o.software, o.backup_type, o.job_name_pattern, job_name,
                                                 o.object_name, o.match_status, o.match_text), o.comment or "")
    for (cid, oid), (runs, objects) in sorted(uses.items()):
        desc, comment = described.get(oid, (f"Override #{oid} (deleted)", ""))
        customers[cid].overrides.append(OverrideUse(oid, desc, comment, runs, objects))


def _load_tickets(customers: dict[int, CustomerReport], cust_ids: list[int], period: Period) -> None:
    owner = func.coalesce(TicketScope.customer_id, Job.customer_id)
    rows = db.session.execute(
        select(owner, Ticket.id, Ticket.code, Ticket.description, Ticket.active_from, Ticket.resolved_at)
        .join(TicketScope, TicketScope.ticket_id == Ticket.id)
        .outerjoin(Job, Job.id == TicketScope.job_id)
        .where(owner.in_(cust_ids), Ticket.active_from < period.end_utc,
               or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= period.start_utc))
        .distinct().order_by(Ticket.active_from, Ticket.id))
    seen: set[tuple[int, int]] = set()
    for cid, tid, code, desc, active_from, resolved_at in rows:
        if (cid, tid) in seen:
            continue
        seen.add((cid, tid))
        customers[cid].tickets.append(TicketInfo(tid, code, one_line(desc, 300), active_from, resolved_at))

