"""Storing a job's schedule: relearning it, setting or clearing it by hand, and the next expected
slot and deadline the missed-run loop reads (``Job.next_expected_slot``/``next_expected_at``)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ...extensions import db
from ...models import Job, JobRun
from .. import audit
from ..timezones import as_zone
from .learning import MONTHLY_WINDOW_DAYS, infer_schedule
from .manual import _normalise_manual, describe_schedule, effective_schedule, validate_manual_schedule
from .slots import UTC, first_open_slot, first_slot_in_force, grace_of, is_scheduled, local_day, local_to_utc, next_slot


def _apply(job: Job, learned: Optional[dict], now: datetime, zone: ZoneInfo, keep_pending: bool) -> None:
    if learned is not None:
        job.learned_schedule = learned
    sched = effective_schedule(job)
    job.schedule_kind = (sched or {}).get("kind") or "unknown"
    if not is_scheduled(sched):
        job.next_expected_slot = None
        job.next_expected_at = None
        return
    # A slot that is due but not yet checked by the missed-run loop stays pending when the
    # schedule still has it, so relearning never skips a check.
    if keep_pending and job.next_expected_slot is not None and job.next_expected_at is not None \
            and job.next_expected_at <= now:
        pending = job.next_expected_slot
        if next_slot(sched, pending - timedelta(microseconds=1), zone) == pending:
            job.next_expected_at = pending + grace_of(sched)
            return
    if not keep_pending or job.next_expected_slot is None:
        # A new schedule (set or cleared by hand, learned for the first time, the job unarchived)
        # counts from now on.
        nxt = first_slot_in_force(sched, now, zone)
    else:
        nxt = first_open_slot(sched, now, zone)
        reached = local_day(job.next_expected_slot, zone)
        if nxt and local_day(nxt[0], zone) < reached:
            # Relearning may shift the slot the check has reached (a new median time), but never
            # moves the check back to an earlier day's slot, e.g. one before the schedule existed.
            nxt = first_slot_in_force(sched, local_to_utc(reached, time.min, zone), zone)
    job.next_expected_slot, job.next_expected_at = nxt if nxt else (None, None)


def _learning_since(now: datetime) -> datetime:
    return now - timedelta(days=MONTHLY_WINDOW_DAYS + 1)


def recompute_job_schedule(job: Job, now: datetime, zone: Optional[ZoneInfo] = None) -> dict:
    """Relearn one job's schedule from its recent real runs (one query) and store it with the next
    expected slot and deadline. Returns the learned schedule. The caller commits."""
    zone = as_zone(zone)
    starts = db.session.execute(
        select(JobRun.started_at)
        .where(JobRun.job_id == job.id, JobRun.missed.is_(False), JobRun.started_at.is_not(None),
               JobRun.started_at >= _learning_since(now), JobRun.started_at <= now)
    ).scalars().all()
    learned = infer_schedule(starts, zone, now)
    job.learned_at = now
    _apply(job, learned, now, zone, keep_pending=True)
    return learned


def recompute_all_schedules(now: datetime, zone: Optional[ZoneInfo] = None,
                            stale_after: Optional[timedelta] = None) -> int:
    """Relearn every non-archived job (or only those learned longer than ``stale_after`` ago).

    Two queries whatever the number of jobs: the jobs, then the recent run starts of all of them,
    grouped in Python. Returns the number of jobs recomputed. The caller commits.
    """
    zone = as_zone(zone)
    q = select(Job).where(Job.archived.is_(False))
    if stale_after is not None:
        q = q.where((Job.learned_at.is_(None)) | (Job.learned_at <= now - stale_after))
    jobs = db.session.execute(q.order_by(Job.id)).scalars().all()
    if not jobs:
        return 0
    starts: dict[int, list[datetime]] = defaultdict(list)
    ids = [j.id for j in jobs]
    for chunk_start in range(0, len(ids), 5000):
        chunk = ids[chunk_start:chunk_start + 5000]
        rows = db.session.execute(
            select(JobRun.job_id, JobRun.started_at)
            .where(JobRun.job_id.in_(chunk), JobRun.missed.is_(False), JobRun.started_at.is_not(None),
                   JobRun.started_at >= _learning_since(now), JobRun.started_at <= now)
        ).all()
        for job_id, started in rows:
            starts[job_id].append(started)
    for job in jobs:
        learned = infer_schedule(starts.get(job.id, []), zone, now)
        job.learned_at = now
        _apply(job, learned, now, zone, keep_pending=True)
    return len(jobs)


def set_manual_schedule(job: Job, data: dict, actor, now: Optional[datetime] = None,
                        zone: Optional[ZoneInfo] = None) -> dict:
    """Validate and store a schedule set by hand (it wins over the learned one); audited.

    Raises ValueError with a message for the operator on bad input (nothing is changed then).
    Returns the stored schedule. The caller commits.
    """
    zone = as_zone(zone)
    now = now or datetime.now(UTC)
    clean = validate_manual_schedule(data, today=local_day(now, zone))
    before = job.manual_schedule
    job.manual_schedule = clean
    _apply(job, None, now, zone, keep_pending=False)
    audit.record("job.schedule.set", f"Set the schedule of job {job.job_name} by hand: "
                 f"{describe_schedule(_normalise_manual(clean))}", user=actor, target_type="job",
                 target_id=job.id, before={"manual_schedule": before}, after={"manual_schedule": clean})
    db.session.flush()
    return clean


def clear_manual_schedule(job: Job, actor, now: Optional[datetime] = None,
                          zone: Optional[ZoneInfo] = None) -> None:
    """Remove a manual schedule: the learned one counts again; audited. The caller commits."""
    zone = as_zone(zone)
    now = now or datetime.now(UTC)
    before = job.manual_schedule
    if before is None:
        return
    job.manual_schedule = None
    _apply(job, None, now, zone, keep_pending=False)
    audit.record("job.schedule.clear", f"Cleared the manual schedule of job {job.job_name}; "
                 f"the learned schedule counts again", user=actor, target_type="job", target_id=job.id,
                 before={"manual_schedule": before}, after={"manual_schedule": None})
    db.session.flush()
