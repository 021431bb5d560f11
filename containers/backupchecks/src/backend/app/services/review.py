"""Review: marking runs reviewed in Run Checks, and un-reviewing them (admins).

Every mark is one conditional UPDATE ``... WHERE reviewed_at IS NULL``: when two
operators review the same job at once, each run is reviewed exactly once (by
whoever's UPDATE reached it first) and the counts they are told add up. The
reviewer and the time are stored on the run and written to the audit log.
Role checks (operator/admin; un-review admin only) belong to the pages.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from sqlalchemy import func, select, update

from ..extensions import db
from ..models import Customer, Job, JobRun, utcnow
from . import audit
from .status import SUCCESSFUL_RANK, status_rank_sql


def _mark(actor, *conditions) -> list[tuple[int, int]]:
    """Mark the unreviewed runs matching ``conditions``; returns (run id, job id) of those marked."""
    now = utcnow()
    # The rows are locked in id order (the subquery) so concurrent reviews of overlapping
    # jobs queue behind each other instead of deadlocking; the outer condition is the guard.
    targets = (select(JobRun.id).where(JobRun.reviewed_at.is_(None), *conditions)
               .order_by(JobRun.id).with_for_update())
    rows = db.session.execute(
        update(JobRun)
        .where(JobRun.id.in_(targets.scalar_subquery()), JobRun.reviewed_at.is_(None))
        .values(reviewed_at=now, reviewed_by_id=getattr(actor, "id", None))
        .returning(JobRun.id, JobRun.job_id)
        .execution_options(synchronize_session="fetch")
    ).all()
    return [(r[0], r[1]) for r in rows]


def _ids(values: Iterable) -> list[int]:
    out = set()
    for v in values:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"'{str(v)[:40]}' is not a run or job id.") from None
        if not 0 < n < 2 ** 31:  # no such row; also keeps PostgreSQL's integer column happy
            continue
        out.add(n)
    return sorted(out)


def mark_run_reviewed(run: JobRun, actor) -> bool:
    """Mark one run reviewed. False when it was already reviewed (by anyone). Commits."""
    marked = _mark(actor, JobRun.id == run.id)
    if marked:
        job = db.session.get(Job, run.job_id)
        audit.record("run.review", f"Run {run.id} of '{job.job_name if job else run.job_id}' marked reviewed",
                     user=actor, target_type="job_run", target_id=run.id, after={"count": 1, "run_ids": [run.id]})
    db.session.commit()
    return bool(marked)


def mark_job_reviewed(job: Job, actor, run_ids: Optional[list[int]] = None) -> int:
    """Mark all unreviewed runs of a job (or only ``run_ids`` among them) reviewed in ONE
    conditional UPDATE; returns how many this call marked. Ids of other jobs' runs are
    ignored; an empty ``run_ids`` marks nothing. Commits."""
    conditions = [JobRun.job_id == job.id]
    if run_ids is not None:
        ids = _ids(run_ids)
        if not ids:
            return 0
        conditions.append(JobRun.id.in_(ids))
    marked = _mark(actor, *conditions)
    if marked:
        ids = sorted(r for r, _ in marked)
        audit.record("job.review", f"{len(ids)} run{'s' if len(ids) != 1 else ''} of '{job.job_name}' marked reviewed",
                     user=actor, target_type="job", target_id=job.id, after={"count": len(ids), "run_ids": ids})
    db.session.commit()
    return len(marked)


def mark_runs_reviewed(run_ids: Iterable, actor) -> list[int]:
    """Mark the given runs reviewed in ONE conditional UPDATE (those already reviewed, by anyone,
    are left as they are); one audit entry per job that had runs marked. Returns the ids this
    call marked. The caller decides which ids the actor may see. Commits."""
    ids = _ids(run_ids)
    if not ids:
        return []
    marked = _mark(actor, JobRun.id.in_(ids))
    if marked:
        runs_per_job: dict[int, list[int]] = {}
        for run_id, job_id in marked:
            runs_per_job.setdefault(job_id, []).append(run_id)
        names = dict(db.session.execute(select(Job.id, Job.job_name).where(Job.id.in_(runs_per_job))).all())
        for job_id, run_list in sorted(runs_per_job.items()):
            n = len(run_list)
            audit.record("job.review", f"{n} run{'s' if n != 1 else ''} of '{names.get(job_id, job_id)}' marked "
                         f"reviewed", user=actor, target_type="job", target_id=job_id,
                         after={"count": n, "run_ids": sorted(run_list)})
    db.session.commit()
    return sorted(r for r, _ in marked)


def bulk_mark_jobs_reviewed(job_ids: Iterable, actor) -> int:
    """Mark every unreviewed run of several jobs reviewed in ONE UPDATE; one audit entry
    per job that had runs to mark. Returns the number of runs marked. Commits."""
    ids = _ids(job_ids)
    if not ids:
        return 0
    marked = _mark(actor, JobRun.job_id.in_(ids))
    if marked:
        per_job = Counter(j for _, j in marked)
        runs_per_job: dict[int, list[int]] = {}
        for run_id, job_id in marked:
            runs_per_job.setdefault(job_id, []).append(run_id)
        names = dict(db.session.execute(select(Job.id, Job.job_name).where(Job.id.in_(per_job))).all())
        for job_id, n in sorted(per_job.items()):
            audit.record("job.review", f"{n} run{'s' if n != 1 else ''} of '{names.get(job_id, job_id)}' marked "
                         f"reviewed (bulk)", user=actor, target_type="job", target_id=job_id,
                         after={"count": n, "run_ids": sorted(runs_per_job[job_id]), "bulk": True})
    db.session.commit()
    return len(marked)


def successful_jobs_query(customer_id: Optional[int] = None):
    """The ids of the jobs (of one customer, or all) whose unreviewed runs are all successful:
    Success or Success (override). Run Checks folds them into one line per customer."""
    rank = status_rank_sql(JobRun.effective_status, JobRun.override_id)
    q = select(JobRun.job_id).where(JobRun.reviewed_at.is_(None)).group_by(JobRun.job_id) \
        .having(func.min(rank) >= SUCCESSFUL_RANK)
    if customer_id is not None:
        q = q.join(Job, Job.id == JobRun.job_id).where(Job.customer_id == customer_id)
    return q


def mark_successful_jobs_reviewed(actor, customer_id: Optional[int] = None) -> tuple[int, int]:
    """Mark reviewed every unreviewed run of the jobs whose unreviewed runs are all successful (of
    one customer, or of all), in ONE conditional UPDATE: a job that got a failure in the meantime
    stays in the queue whole. One audit entry for the action. Returns (runs, jobs) marked. Commits."""
    rank = status_rank_sql(JobRun.effective_status, JobRun.override_id)
    marked = _mark(actor, JobRun.job_id.in_(successful_jobs_query(customer_id)), rank >= SUCCESSFUL_RANK)
    jobs = {j for _, j in marked}
    if marked:
        name = db.session.get(Customer, customer_id).name if customer_id is not None else None
        n = len(marked)
        audit.record("job.review", f"{n} successful run{'s' if n != 1 else ''} of {len(jobs)} "
                     f"job{'s' if len(jobs) != 1 else ''}{f' of {name!r}' if name else ''} marked reviewed",
                     user=actor, target_type="customer" if customer_id is not None else None,
                     target_id=customer_id,
                     after={"count": n, "jobs": len(jobs), "run_ids": sorted(r for r, _ in marked),
                            "successful_only": True})
    db.session.commit()
    return len(marked), len(jobs)


def unreview_run(run: JobRun, actor) -> bool:
    """Put a reviewed run back in the queue (admins; the page checks the role) and re-apply the
    current overrides to it. False when it was not reviewed. Audited with who had reviewed it
    and when. Commits."""
    row = db.session.execute(
        select(JobRun.reviewed_at, JobRun.reviewed_by_id).where(JobRun.id == run.id)
    ).one_or_none()
    changed = db.session.execute(
        update(JobRun)
        .where(JobRun.id == run.id, JobRun.reviewed_at.is_not(None))
        .values(reviewed_at=None, reviewed_by_id=None)
        .returning(JobRun.id)
        .execution_options(synchronize_session="fetch")
    ).all()
    if changed:
        # Back in the queue it shows what today's rules say (a rule may have changed since).
        from .overrides import apply_overrides_to_runs

        apply_overrides_to_runs([run])
        job = db.session.get(Job, run.job_id)
        before = {"reviewed_at": row[0], "reviewed_by_id": row[1]} if row else None
        audit.record("run.unreview", f"Run {run.id} of '{job.job_name if job else run.job_id}' back in Run Checks",
                     user=actor, target_type="job_run", target_id=run.id, before=before)
    db.session.commit()
    return bool(changed)
