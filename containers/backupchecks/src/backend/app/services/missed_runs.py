"""Missed runs: one run with status Missed per job and expected slot that passed without a report.

The loop asks the indexed ``jobs.next_expected_at`` (slot + grace) for expired
deadlines only. For each due job it checks the slot(s) against the real runs
that belong to them (``schedules.slot_window``: the nearest slot, at most 12 h
early or 24 h late), creates a Missed run for each slot without one, links
open tickets and remarks to it, and moves the job on to its next slot.
The decisions are pure (``plan_job``: which slots of a due job are decided and where the job
moves on to; ``slots_to_create``: which of them get a Missed run); ``detect_missed_runs`` reads,
claims and writes around them.

Races: a job is claimed with a conditional UPDATE (``WHERE next_expected_slot =
<the slot we read>``), so of two runners only one acts on it; the unique
constraint ``uq_job_runs_job_id_missed_slot`` (inserted under a savepoint) is
the last guard against a second missed run for the same slot.

A real run that arrives late (``reconcile_late_run``, called by the import
flow) replaces an unreviewed missed run of its slot; a reviewed one stays.

Which slots count as missed — ONE definition (``slot_verdict``) for Daily Jobs, the dashboard
and this loop. The stored Missed runs are the source of truth: a slot before the job's
``next_expected_slot`` has been decided by the loop (or lay before the schedule existed), and
it counts as missed only when a Missed run stands for it (which also carries overrides,
reviews and tickets). A slot from ``next_expected_slot`` on is still awaiting the loop: it
counts as missed once its deadline passed and no real run belongs to it, exactly what the
loop is about to store, so the pages read the same before and after the loop runs.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, exists, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import Customer, Job, JobRun, MaintenanceWindow, RemarkJobRun, TicketJobRun, utcnow
from .notifications import enqueue_run_events
from .background import register_loop
from .faults import crash_point
from .overrides import apply_overrides_to_runs
from .quiet import window_for, windows_for
from .schedules import (
    EARLY_LIMIT,
    LATE_LIMIT,
    effective_schedule,
    grace_of,
    is_scheduled,
    next_slot,
    recompute_all_schedules,
    slot_window,
)
from .tickets import link_open_internal_tickets_to_runs
from .timezones import as_zone

log = logging.getLogger(__name__)

CATCH_UP_LIMIT = timedelta(days=7)       # after downtime, slots older than this get no missed run
INTERVAL_SECONDS = 300
RELEARN_AFTER = timedelta(hours=6)       # the loop relearns a job's schedule at most this often
MISSED_MESSAGE = "No report received for the run expected at {hhmm}"




def _existing_missed(job_ids: list[int], lo: datetime, hi: datetime) -> dict[int, list[datetime]]:
    """The slots of the missed runs that already exist for these jobs between lo and hi."""
    out: dict[int, list[datetime]] = defaultdict(list)
    for job_id, slot in db.session.execute(
            select(JobRun.job_id, JobRun.missed_slot)
            .where(JobRun.job_id.in_(job_ids), JobRun.missed.is_(True),
                   JobRun.missed_slot >= lo, JobRun.missed_slot < hi)):
        out[job_id].append(slot)
    return out


# --- Which slots count as missed --------------------------------------------------------------------

EXPECTED_SLOT = "expected"  # awaiting the loop, the deadline lies ahead
MISSED_SLOT = "missed"      # awaiting the loop, the deadline passed and no real run belongs to it
RAN_SLOT = "ran"            # a real run (possibly started on another day) belongs to the slot
SETTLED_SLOT = "settled"    # before next_expected_slot: decided by the loop or before the schedule
                            # existed; a stored Missed run stands for it when it was missed


@dataclass(frozen=True)
class SlotVerdict:
    slot: datetime           # UTC
    deadline: datetime       # slot + grace, UTC
    state: str               # one of the *_SLOT words above
    runs: tuple = ()         # RAN_SLOT: the real runs that belong to the slot


def awaiting_check(slot: datetime, next_expected_slot: Optional[datetime], now: datetime) -> bool:
    """Whether the loop has yet to decide a slot: it decides every slot from the job's
    ``next_expected_slot`` on, and at most ``CATCH_UP_LIMIT`` back (``detect_missed_runs``)."""
    return next_expected_slot is not None and slot >= next_expected_slot and slot >= now - CATCH_UP_LIMIT


def slot_verdict(schedule: Optional[dict], slot: Optional[datetime], *, created_at: Optional[datetime],
                 next_expected_slot: Optional[datetime], now: datetime, zone: ZoneInfo,
                 real_runs: Iterable[Any] = (), window: Optional[tuple[datetime, datetime]] = None
                 ) -> Optional[SlotVerdict]:
    """What one expected slot of a job is at ``now`` (None: the job was not expected then).

    ``schedule`` is the job's effective schedule, ``slot`` one of its slots (UTC), ``real_runs``
    the job's real runs near the slot (objects with ``started_at``; Missed runs are ignored).
    A slot before the job was created is never expected. A slot before ``next_expected_slot`` is
    settled: it counts as missed only through its stored Missed run. A slot from there on is
    Expected until its deadline, then Missed unless a real run belongs to it (``slot_window``;
    ``window`` is that window when the caller has it already).
    """
    if slot is None or not is_scheduled(schedule):
        return None
    if created_at is not None and slot < created_at:
        return None
    deadline = slot + grace_of(schedule)
    lo, hi = window or slot_window(schedule, slot, zone)
    belonging = tuple(r for r in real_runs
                      if not getattr(r, "missed", False) and r.started_at is not None and lo <= r.started_at < hi)
    if not awaiting_check(slot, next_expected_slot, now):
        return SlotVerdict(slot, deadline, RAN_SLOT if belonging else SETTLED_SLOT, belonging)
    if now < deadline:
        return SlotVerdict(slot, deadline, EXPECTED_SLOT)
    if belonging:
        return SlotVerdict(slot, deadline, RAN_SLOT, belonging)
    return SlotVerdict(slot, deadline, MISSED_SLOT)


# --- The loop ---------------------------------------------------------------------------------------

def _due_jobs_query(now: datetime):
    # "archived = false" (not "IS false") so PostgreSQL can use the partial index ix_jobs_next_expected_due.
    has_window = exists().where(or_(MaintenanceWindow.job_id == Job.id,
                                    MaintenanceWindow.customer_id == Job.customer_id)).label("has_window")
    return (select(Job, has_window).join(Customer, Customer.id == Job.customer_id)
            .where(Job.next_expected_at.is_not(None), Job.next_expected_at <= now,
                   Job.archived == False, Customer.active.is_(True))  # noqa: E712
            .order_by(Job.id))


@dataclass(frozen=True)
class DueSlot:
    slot: datetime           # UTC
    lo: datetime             # [lo, hi): the start times that belong to the slot (schedules.slot_window)
    hi: datetime


@dataclass(frozen=True)
class JobPlan:
    """What one pass of the loop does with one due job: claim it by moving ``next_expected_slot``
    from ``old_slot`` to ``new_slot`` (deadline ``new_deadline``), and decide the ``due`` slots."""
    job_id: int
    schedule: Optional[dict]
    old_slot: Optional[datetime]
    due: tuple[DueSlot, ...]
    new_slot: Optional[datetime]
    new_deadline: Optional[datetime]


def plan_job(job_id: int, schedule: Optional[dict], next_expected_slot: Optional[datetime], now: datetime,
             zone: ZoneInfo) -> JobPlan:
    """The plan for a due job (no database): every slot from ``next_expected_slot`` (at most
    ``CATCH_UP_LIMIT`` back) whose deadline has passed at ``now``, and the first slot after them.
    A job without a usable schedule is claimed with no slots and no next slot."""
    if not is_scheduled(schedule):
        return JobPlan(job_id, schedule, next_expected_slot, (), None, None)
    grace = grace_of(schedule)
    slot = next_expected_slot
    if slot is None or slot < now - CATCH_UP_LIMIT:
        slot = next_slot(schedule, now - CATCH_UP_LIMIT - timedelta(microseconds=1), zone)
    due = []
    while slot is not None and slot + grace <= now:
        due.append(DueSlot(slot, *slot_window(schedule, slot, zone)))
        slot = next_slot(schedule, slot, zone)
    return JobPlan(job_id, schedule, next_expected_slot, tuple(due), slot, slot + grace if slot else None)


def slots_to_create(plan: JobPlan, real_runs: Iterable[Any], existing_slots: Iterable[datetime], now: datetime,
                    zone: ZoneInfo, in_maintenance: Optional[Callable[[datetime], bool]] = None) -> list[datetime]:
    """The due slots of a plan that get a Missed run (no database): ``slot_verdict`` calls them
    missed (no real run of ``real_runs`` belongs to them), no stored Missed run lies in their
    window yet (``existing_slots``; also when a relearned time moved the slot a little) and the slot
    does not lie inside a maintenance window of the job (``in_maintenance``, see services/quiet.py)."""
    if not plan.due:
        return []
    existing = list(existing_slots)
    out = []
    for due in plan.due:
        if any(due.lo <= s < due.hi for s in existing):
            continue
        if in_maintenance is not None and in_maintenance(due.slot):
            continue
        verdict = slot_verdict(plan.schedule, due.slot, created_at=None, next_expected_slot=plan.due[0].slot,
                               now=now, zone=zone, real_runs=real_runs)
        if verdict is not None and verdict.state == MISSED_SLOT:
            out.append(due.slot)
    return out


def _runs_near(plans: list[JobPlan]) -> tuple[dict[int, list[Any]], dict[int, list[datetime]]]:
    """Real runs (rows with ``started_at``) near the due slots and the slots of the Missed runs
    already made, per job id, for all plans at once (two queries)."""
    windows = [d for p in plans for d in p.due]
    real: dict[int, list[Any]] = defaultdict(list)
    if not windows:
        return real, {}
    ids = sorted({p.job_id for p in plans if p.due})
    lo_all = min(d.lo for d in windows)
    hi_all = max(d.hi for d in windows)
    for row in db.session.execute(
            select(JobRun.job_id, JobRun.started_at)
            .where(JobRun.job_id.in_(ids), JobRun.missed.is_(False),
                   JobRun.started_at >= lo_all, JobRun.started_at < hi_all)):
        real[row.job_id].append(row)
    return real, _existing_missed(ids, lo_all, hi_all)


def _claim(job: Job, plan: JobPlan) -> bool:
    """Move the job on to the plan's next slot, only if no other runner did (a conditional UPDATE)."""
    old_slot = plan.old_slot
    cond = Job.next_expected_slot.is_(None) if old_slot is None else Job.next_expected_slot == old_slot
    res = db.session.execute(
        update(Job).where(Job.id == job.id, cond)
        .values(next_expected_slot=plan.new_slot, next_expected_at=plan.new_deadline)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    set_committed_value(job, "next_expected_slot", plan.new_slot)
    set_committed_value(job, "next_expected_at", plan.new_deadline)
    return True


def _insert_missed_run(job_id: int, slot: datetime, zone: ZoneInfo) -> Optional[JobRun]:
    """The Missed run of a slot, under a savepoint: None when the unique constraint says another
    runner made it first."""
    hhmm = slot.astimezone(zone).strftime("%H:%M")
    run = JobRun(job_id=job_id, status="Missed", effective_status="Missed", missed=True,
                 missed_slot=slot, started_at=slot, message=MISSED_MESSAGE.format(hhmm=hhmm), objects=[])
    try:
        with db.session.begin_nested():
            db.session.add(run)
            db.session.flush()
    except IntegrityError:
        log.info("missed run for job %s at %s already exists", job_id, slot)
        return None
    return run


def detect_missed_runs(now: datetime, zone: Optional[ZoneInfo] = None) -> int:
    """Create the missed runs that are due at ``now``; returns how many were created. Commits.

    Reads only jobs whose ``next_expected_at`` has passed, that are not archived, whose customer is
    active and whose schedule is Daily/Weekly/Monthly/every N days. A constant number of reads
    (due jobs, their runs around the due slots, existing missed runs) plus one claim per due job.
    The decisions are the pure ``plan_job`` and ``slots_to_create``; this step reads and writes.
    """
    zone = as_zone(zone)
    due = db.session.execute(_due_jobs_query(now)).all()
    if not due:
        return 0
    due_jobs = [job for job, _ in due]
    plans = [plan_job(job.id, effective_schedule(job), job.next_expected_slot, now, zone) for job in due_jobs]
    real, existing = _runs_near(plans)
    # the maintenance windows of the due jobs that have one (theirs or their customer's): one query
    quiet = [job for (job, has_window), plan in zip(due, plans) if has_window and plan.due]
    windows = windows_for([j.id for j in quiet], [j.customer_id for j in quiet]) if quiet else []
    created: list[JobRun] = []
    for job, plan in zip(due_jobs, plans):
        if not _claim(job, plan):  # only the runner whose UPDATE changes the row goes on
            continue
        crash_point("missed_runs.after_claim")
        in_maintenance = (lambda slot, j=job: window_for(windows, j.id, j.customer_id, slot) is not None) \
            if windows else None
        for slot in slots_to_create(plan, real.get(job.id, ()), existing.get(job.id, ()), now, zone, in_maintenance):
            run = _insert_missed_run(job.id, slot, zone)
            if run is not None:
                created.append(run)
    if created:
        # Job-level rules that match status Missed (e.g. a known holiday) apply like to any run.
        apply_overrides_to_runs(created)
        link_open_internal_tickets_to_runs([r.id for r in created])
        enqueue_run_events(created)
    crash_point("missed_runs.before_commit")
    db.session.commit()
    crash_point("missed_runs.after_commit")
    if created:
        log.info("created %d missed run(s)", len(created))
    return len(created)


# The missed runs of a job whose slot lies in [lo, hi]; built once (every import of a run uses it).
_MISSED_AROUND = select(JobRun).where(JobRun.job_id == bindparam("job_id"), JobRun.missed.is_(True),
                                      JobRun.missed_slot >= bindparam("lo", type_=JobRun.missed_slot.type),
                                      JobRun.missed_slot <= bindparam("hi", type_=JobRun.missed_slot.type))


def reconcile_late_run(run: JobRun, zone: Optional[ZoneInfo] = None) -> Optional[JobRun]:
    """A real run arrived: if an UNREVIEWED missed run stands for the slot it belongs to, delete
    that missed run (its ticket and remark links, and an Autotask ticket made from it, move to the
    real run) and return it. A reviewed missed run stays (the late run is simply added): None.
    The caller commits.
    """
    if run.missed or run.started_at is None or run.job_id is None:
        return None
    zone = as_zone(zone)
    job = run.job if run.job is not None else db.session.get(Job, run.job_id)
    sched = effective_schedule(job) if job is not None else None
    usable = is_scheduled(sched)
    t = run.started_at
    back = max(LATE_LIMIT, grace_of(sched)) if usable else LATE_LIMIT
    candidates = db.session.execute(_MISSED_AROUND, {"job_id": run.job_id, "lo": t - back,
                                                     "hi": t + EARLY_LIMIT}).scalars().all()
    fitting = []
    for m in candidates:
        if m.id == run.id:
            continue
        if usable:
            lo, hi = slot_window(sched, m.missed_slot, zone)
            if not lo <= t < hi:
                continue
        fitting.append(m)
    if not fitting:
        return None
    missed = min(fitting, key=lambda m: abs((t - m.missed_slot).total_seconds()))
    if missed.reviewed_at is not None:
        return None
    if run.id is None:
        db.session.flush()
    for link in (TicketJobRun, RemarkJobRun):
        fk = "ticket_id" if link is TicketJobRun else "remark_id"
        other = aliased(link)
        db.session.execute(
            insert(link).from_select(
                [fk, "job_run_id", "linked_at"],
                select(getattr(link, fk), literal(run.id), link.linked_at)
                .where(link.job_run_id == missed.id,
                       ~exists().where(and_(getattr(other, fk) == getattr(link, fk),
                                            other.job_run_id == run.id)))))
    if missed.autotask_ticket_id is not None and run.autotask_ticket_id is None:
        run.autotask_ticket_id = missed.autotask_ticket_id
        run.autotask_ticket_number = missed.autotask_ticket_number
        run.autotask_ticket_created_at = missed.autotask_ticket_created_at
        run.autotask_ticket_created_by_id = missed.autotask_ticket_created_by_id
    db.session.delete(missed)
    db.session.flush()
    return missed


def run_missed_run_check(now: Optional[datetime] = None, zone: Optional[ZoneInfo] = None) -> int:
    """One pass of the loop: relearn stale schedules, then detect. Returns missed runs created."""
    now = now or utcnow()
    recompute_all_schedules(now, zone, stale_after=RELEARN_AFTER)
    db.session.commit()
    return detect_missed_runs(now, zone)


def _step(app) -> None:
    run_missed_run_check(datetime.now(timezone.utc))


def _interval(app) -> float:
    return float(app.config.get("MISSED_RUNS_INTERVAL_SECONDS", INTERVAL_SECONDS))


def register(app) -> None:
    """Register the missed-run loop (every 5 minutes, one runner across processes)."""
    register_loop("missed-runs", _step, _interval)
