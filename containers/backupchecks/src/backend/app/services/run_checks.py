"""Run Checks: the review queue (jobs with unreviewed runs, worst first, grouped by customer)
and the selected job's panel. A constant number of queries whatever the queue size.

The jobs whose runs to review are all successful (Success, Success (override)) are folded into one
line per customer — "12 jobs with only successful runs" — with one action to review them; the
page lists them one by one only for the customers the operator unfolds (``expand``). So the page
grows with what needs attention, not with the number of jobs."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Collection, Optional, Union

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Customer, ImportCycle, Job, JobRun, utcnow
from .status import SUCCESSFUL, severity, status_from_rank, status_rank_sql
from .tickets import open_remarks_for_job, open_tickets_for_job, remarks_for_runs, tickets_for_runs

RUNS_IN_PANEL = 50
REVIEWED_DAYS = 7  # "include reviewed" shows the reviewed runs of the last week


@dataclass
class QueueRow:
    job_id: int
    job_name: str
    software: str
    backup_type: Optional[str]
    customer_id: int
    customer_name: str
    count: int
    worst: str

    @property
    def successful(self) -> bool:
        return self.worst in SUCCESSFUL


@dataclass
class QueueGroup:
    customer_id: int
    customer_name: str
    worst: str
    rows: list[QueueRow] = field(default_factory=list)       # listed one by one
    folded: list[QueueRow] = field(default_factory=list)     # only successful runs: one line
    expanded: bool = False                                   # its successful jobs are listed too

    @property
    def count(self) -> int:
        return sum(r.count for r in self.rows) + self.folded_runs

    @property
    def folded_runs(self) -> int:
        return sum(r.count for r in self.folded)

    @property
    def successful_jobs(self) -> int:
        """Jobs of this customer with only successful runs to review (listed or folded)."""
        return len(self.folded) + sum(1 for r in self.rows if r.successful)


ALL = "all"


def queue(include_reviewed: bool = False, expand: Union[Collection[int], str] = ()) -> list[QueueGroup]:
    """Jobs with unreviewed runs (or, for admins, all runs of the last days) grouped by customer.
    Groups and jobs are ordered worst first, then by name. Jobs with only successful runs are
    folded per customer, except for the customers in ``expand`` (or every customer: ``ALL``).
    One query."""
    rank = status_rank_sql(JobRun.effective_status, JobRun.override_id)
    q = (select(Job.id, Job.job_name, Job.software, Job.backup_type, Customer.id, Customer.name,
                func.count(JobRun.id), func.min(rank))
         .join(Job, Job.id == JobRun.job_id).join(Customer, Customer.id == Job.customer_id)
         .group_by(Job.id, Job.job_name, Job.software, Job.backup_type, Customer.id, Customer.name))
    if include_reviewed:
        since = utcnow() - timedelta(days=REVIEWED_DAYS)
        q = q.where(or_(JobRun.reviewed_at.is_(None), JobRun.started_at >= since))
    else:
        q = q.where(JobRun.reviewed_at.is_(None))
    groups: dict[int, QueueGroup] = {}
    for job_id, name, software, btype, cid, cname, count, worst_rank in db.session.execute(q):
        row = QueueRow(job_id, name, software, btype, cid, cname, count, status_from_rank(worst_rank))
        g = groups.get(cid)
        if g is None:
            g = groups[cid] = QueueGroup(cid, cname, row.worst, expanded=expand == ALL or cid in expand)
        if severity(row.worst) < severity(g.worst):
            g.worst = row.worst
        (g.folded if row.successful and not g.expanded else g.rows).append(row)
    for g in groups.values():
        g.rows.sort(key=lambda r: (severity(r.worst), r.job_name.lower()))
        g.folded.sort(key=lambda r: r.job_name.lower())
    return sorted(groups.values(), key=lambda g: (severity(g.worst), g.customer_name.lower()))


QUEUE_PAGE_LINES = 120  # lines (jobs and folded lines) per page of the queue, whole customers


@dataclass
class QueuePage:
    groups: list[QueueGroup]   # the customers on this page
    page: int
    pages: int
    first: int                 # 1-based number of the first customer on the page (0: none)
    last: int
    customers: int             # in the whole queue


def _lines(g: QueueGroup) -> int:
    return 1 + len(g.rows) + (1 if g.folded else 0)


def queue_page(groups: list[QueueGroup], page: int = 1, job_id: Optional[int] = None,
               per_page: Optional[int] = None) -> QueuePage:
    """One page of the queue: whole customers, up to about ``per_page`` lines (a customer with more
    jobs has a page of its own), so a large queue stays a small page. With ``job_id`` the page that
    lists that job (``page`` is then ignored); a page past the end is the last one."""
    per_page = per_page or QUEUE_PAGE_LINES
    starts = [0]
    lines = 0
    for i, g in enumerate(groups):
        if lines and lines + _lines(g) > per_page:
            starts.append(i)
            lines = 0
        lines += _lines(g)
    if job_id is not None:
        for i, g in enumerate(groups):
            if any(r.job_id == job_id for r in g.rows):
                page = sum(1 for s in starts if s <= i)
                break
    page = min(max(1, page), len(starts))
    start = starts[page - 1]
    end = starts[page] if page < len(starts) else len(groups)
    shown = groups[start:end]
    return QueuePage(shown, page, len(starts), start + 1 if shown else 0, end, len(groups))


def flat_order(groups: list[QueueGroup]) -> list[int]:
    """The jobs the keyboard walks (j/k) in page order: the listed ones, not the folded ones."""
    return [r.job_id for g in groups for r in g.rows]


@dataclass
class JobPanel:
    job: Job
    runs: list[JobRun]
    tickets: dict
    remarks: dict
    open_tickets: list
    open_remarks: list


def job_panel(job_id: int, include_reviewed: bool = False) -> Optional[JobPanel]:
    job = db.session.execute(select(Job).options(selectinload(Job.customer)).where(Job.id == job_id)).scalar_one_or_none()
    if job is None:
        return None
    q = (select(JobRun).where(JobRun.job_id == job_id)
         .options(selectinload(JobRun.objects), selectinload(JobRun.reviewed_by))
         .order_by(JobRun.started_at.desc().nulls_last(), JobRun.id.desc()).limit(RUNS_IN_PANEL))
    if not include_reviewed:
        q = q.where(JobRun.reviewed_at.is_(None))
    runs = db.session.execute(q).scalars().all()
    for run in runs:  # failed and warning objects on top
        run.sorted_objects = sorted(run.objects, key=lambda o: (severity(o.effective_status or o.status), o.name.lower()))
    ids = [r.id for r in runs]
    return JobPanel(job=job, runs=runs, tickets=tickets_for_runs(ids), remarks=remarks_for_runs(ids),
                    open_tickets=open_tickets_for_job(job_id), open_remarks=open_remarks_for_job(job_id))


def last_import() -> Optional[ImportCycle]:
    return db.session.execute(select(ImportCycle).order_by(ImportCycle.started_at.desc()).limit(1)).scalar_one_or_none()


def get_run(run_id: int) -> Optional[JobRun]:
    return db.session.execute(select(JobRun).options(selectinload(JobRun.objects), selectinload(JobRun.job))
                              .where(JobRun.id == run_id)).scalar_one_or_none()
