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

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Customer, ImportCycle, Job, JobRun, utcnow
from .quiet import active_snoozes, snooze_of
from .status import SUCCESSFUL_RANK, severity, status_from_rank, status_rank_sql
from .tickets import open_remarks_for_job, open_tickets_for_job, remarks_for_runs, tickets_for_runs

RUNS_IN_PANEL = 50
REVIEWED_DAYS = 7  # "include reviewed" shows the reviewed runs of the last week


@dataclass(slots=True)
class QueueRow:
    job_id: int
    job_name: str
    software: str
    backup_type: Optional[str]
    customer_id: int
    customer_name: str
    count: int
    rank: int                    # status_rank_sql of its worst run: 0 is worst

    @property
    def worst(self) -> str:
        return status_from_rank(self.rank)

    @property
    def successful(self) -> bool:
        return self.rank >= SUCCESSFUL_RANK


@dataclass
class QueueGroup:
    customer_id: int
    customer_name: str
    rank: int
    rows: list[QueueRow] = field(default_factory=list)  # listed one by one
    folded_jobs: int = 0                                 # jobs with only successful runs: one line
    folded_runs: int = 0
    expanded: bool = False                               # its successful jobs are listed too

    @property
    def worst(self) -> str:
        return status_from_rank(self.rank)

    @property
    def count(self) -> int:
        return sum(r.count for r in self.rows) + self.folded_runs

    @property
    def successful_jobs(self) -> int:
        """Jobs of this customer with only successful runs to review (listed or folded)."""
        return self.folded_jobs + sum(1 for r in self.rows if r.successful)


ALL = "all"


def queue(include_reviewed: bool = False, expand: Union[Collection[int], str] = ()) -> list[QueueGroup]:
    """Jobs with unreviewed runs (or, for admins, all runs of the last days) grouped by customer.
    Groups and jobs are ordered worst first, then by name. Jobs with only successful runs are
    folded per customer, except for the customers in ``expand`` (or every customer: ``ALL``): the
    database counts them per customer, so the page's work grows with what needs attention. Two
    queries: the listed jobs, worst first and by name; the folded ones per customer."""
    rank = status_rank_sql(JobRun.effective_status, JobRun.override_id)
    per_job = select(JobRun.job_id, func.count(JobRun.id).label("n"), func.min(rank).label("rank")) \
        .group_by(JobRun.job_id)
    if include_reviewed:
        since = utcnow() - timedelta(days=REVIEWED_DAYS)
        per_job = per_job.where(or_(JobRun.reviewed_at.is_(None), JobRun.started_at >= since))
    else:
        per_job = per_job.where(JobRun.reviewed_at.is_(None))
    per_job = per_job.subquery()
    expand_all = expand == ALL
    expand_ids = [] if expand_all else [int(c) for c in expand]
    successful = per_job.c.rank >= SUCCESSFUL_RANK
    # the jobs folded into their customer's line (none when every customer is unfolded)
    folds = None if expand_all else and_(successful, Job.customer_id.not_in(expand_ids)) if expand_ids else successful
    joined = lambda q: q.join(Job, Job.id == per_job.c.job_id).join(Customer, Customer.id == Job.customer_id)  # noqa: E731

    groups: dict[int, QueueGroup] = {}
    listed = joined(select(Job.id, Job.job_name, Job.software, Job.backup_type, Customer.id, Customer.name,
                           per_job.c.n, per_job.c.rank)).order_by(per_job.c.rank, func.lower(Job.job_name), Job.id)
    if folds is not None:
        listed = listed.where(~folds)
    for row in db.session.execute(listed).tuples():
        row = QueueRow(*row)
        g = groups.get(row.customer_id)
        if g is None:  # its worst listed job comes first
            g = groups[row.customer_id] = QueueGroup(row.customer_id, row.customer_name, row.rank,
                                                     expanded=expand_all or row.customer_id in expand_ids)
        g.rows.append(row)
    if folds is not None:
        folded = joined(select(Customer.id, Customer.name, func.count(), func.sum(per_job.c.n),
                               func.min(per_job.c.rank))).where(folds).group_by(Customer.id, Customer.name)
        for cid, cname, jobs, runs, worst in db.session.execute(folded).tuples():
            g = groups.get(cid)
            if g is None:
                g = groups[cid] = QueueGroup(cid, cname, worst)
            g.folded_jobs, g.folded_runs, g.rank = jobs, int(runs), min(g.rank, worst)
    return sorted(groups.values(), key=lambda g: (g.rank, g.customer_name.lower()))


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
    return 1 + len(g.rows) + (1 if g.folded_jobs else 0)


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


def snoozed_jobs(groups: list[QueueGroup], now: datetime) -> dict:
    """The snooze in force (its own or its customer's) of each listed job of ``groups``: job id ->
    ``quiet.ActiveSnooze``. One query."""
    rows = [r for g in groups for r in g.rows]
    in_force = active_snoozes([r.job_id for r in rows], [g.customer_id for g in groups], now)
    return {r.job_id: s for r in rows if (s := snooze_of(in_force, r.job_id, r.customer_id)) is not None}


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
