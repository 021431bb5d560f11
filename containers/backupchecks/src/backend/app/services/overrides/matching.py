"""Matching override rules to runs and their objects, and re-evaluating unreviewed runs after a rule
changes (the precedence rules: ``services/overrides``)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable, Optional, Sequence

from sqlalchemy import and_, bindparam, func, inspect, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ...extensions import db
from ...models import Job, JobRun, Override, RunObject, utcnow
from ..status import MISSED, SUCCESS, canonical_status
from .rules import pattern_matches

_LEVEL_RANK = {"object": 0, "job": 1, "global": 2}
REEVALUATE_CHUNK = 500


def _text_matches(rule: Override, message: Optional[str]) -> bool:
    wanted = (rule.match_text or "").strip().lower()
    if not wanted:
        return True
    have = (message or "").strip().lower()
    mode = rule.match_mode or "contains"
    if mode == "exact":
        return have == wanted
    if mode == "starts":
        return have.startswith(wanted)
    if mode == "ends":
        return have.endswith(wanted)
    return wanted in have


def _in_window(rule: Override, when: datetime) -> bool:
    if rule.valid_from is not None and when < rule.valid_from:
        return False
    if rule.valid_until is not None and when >= rule.valid_until:
        return False
    return True


def _status_matches(rule: Override, status: str) -> bool:
    if status == MISSED:
        return rule.level == "job" and rule.match_status == MISSED
    if rule.match_status:
        return rule.match_status == status
    return status != SUCCESS


def run_moment(run: JobRun) -> datetime:
    return run.started_at or run.missed_slot or run.created_at or utcnow()


def _global_applies(rule: Override, job: Job) -> bool:
    if (rule.software or "").strip().lower() != (job.software or "").strip().lower():
        return False
    if rule.backup_type and rule.backup_type.strip().lower() != (job.backup_type or "").strip().lower():
        return False
    return pattern_matches(rule.job_name_pattern, job.job_name)


def _precedence(rule: Override) -> tuple:
    return (_LEVEL_RANK.get(rule.level, 9), 0 if rule.treat_as_success else 1, rule.id or 0)


# Built once, with the jobs and softwares as parameters: every imported run asks it.
_ACTIVE_RULES = select(Override).where(
    Override.active.is_(True),
    or_(
        and_(Override.level.in_(("job", "object")), Override.job_id.in_(bindparam("job_ids", expanding=True))),
        and_(Override.level == "global",
             func.lower(func.trim(Override.software)).in_(bindparam("softwares", expanding=True))),
    ),
)


def active_overrides_for(jobs: Iterable[Job]) -> dict[int, list[Override]]:
    """The active rules that can touch each job, in precedence order, in ONE query.

    Validity windows are not applied here (they depend on each run's start).
    """
    jobs = [j for j in jobs if j is not None]
    result: dict[int, list[Override]] = {j.id: [] for j in jobs}
    if not jobs:
        return result
    ids = sorted({j.id for j in jobs})
    softwares = sorted({(j.software or "").strip().lower() for j in jobs})
    rules = db.session.execute(_ACTIVE_RULES, {"job_ids": ids, "softwares": softwares}).scalars().all()
    by_job: dict[int, list[Override]] = defaultdict(list)
    globals_ = []
    for rule in rules:
        if rule.level == "global":
            globals_.append(rule)
        else:
            by_job[rule.job_id].append(rule)
    for job in jobs:
        mine = list(by_job.get(job.id, ())) + [g for g in globals_ if _global_applies(g, job)]
        mine.sort(key=_precedence)
        result[job.id] = mine
    return result


def _first_match(rules: Sequence[Override], status: str, message: Optional[str], when: datetime,
                 object_name: Optional[str] = None) -> Optional[Override]:
    for rule in rules:
        if rule.level == "object":
            if object_name is None or (rule.object_name or "").strip().lower() != object_name.strip().lower():
                continue
        if _status_matches(rule, status) and _text_matches(rule, message) and _in_window(rule, when):
            return rule
    return None


def apply_overrides(run: JobRun, overrides: Optional[Sequence[Override]] = None) -> JobRun:
    """Set run.effective_status / run.override_id and each object's from the rules.

    ``overrides`` are the job's candidate rules (from ``active_overrides_for``);
    without them they are loaded (one query). Nothing is committed.
    """
    if overrides is None:
        job = run.job if run.job is not None else db.session.get(Job, run.job_id)
        overrides = active_overrides_for([job]).get(job.id, [])
    status = canonical_status(run.status) or SUCCESS
    when = run_moment(run)

    # Objects: object rules of this name first, then job and global rules.
    problem_objects = 0
    covered_objects = 0
    first_object_rule: Optional[Override] = None
    for obj in run.objects or ():
        obj_status = canonical_status(obj.status)
        if obj_status in (None, SUCCESS) or status == MISSED:
            obj.effective_status = obj_status
            obj.override_id = None
            continue
        problem_objects += 1
        rule = _first_match(overrides, obj_status, obj.message, when, object_name=obj.name)
        obj.override_id = rule.id if rule else None
        if rule is not None and rule.treat_as_success:
            obj.effective_status = SUCCESS
            covered_objects += 1
            first_object_rule = first_object_rule or rule
        else:
            obj.effective_status = obj_status

    run_rule = None
    if status != SUCCESS:
        run_rule = _first_match([r for r in overrides if r.level != "object"], status, run.message, when)
    if run_rule is not None and run_rule.treat_as_success:
        run.effective_status, run.override_id = SUCCESS, run_rule.id
    elif status != SUCCESS and problem_objects and covered_objects == problem_objects:
        run.effective_status, run.override_id = SUCCESS, first_object_rule.id
    else:
        run.effective_status = status
        run.override_id = run_rule.id if run_rule is not None else None
    return run


def apply_overrides_to_runs(runs: Iterable[JobRun]) -> None:
    """``apply_overrides`` for many new runs at once (the missed-run generator, bulk imports):
    their jobs, objects and rules are loaded in at most three queries whatever the count.
    Nothing is committed."""
    runs = [r for r in runs if r is not None]
    if not runs:
        return
    job_ids = sorted({r.job_id for r in runs})
    jobs = {j.id: j for j in db.session.execute(select(Job).where(Job.id.in_(job_ids))).scalars()}
    unloaded = [r for r in runs if r.id is not None and "objects" in inspect(r).unloaded]
    if unloaded:
        found: dict[int, list[RunObject]] = defaultdict(list)
        for obj in db.session.execute(select(RunObject).where(RunObject.job_run_id.in_([r.id for r in unloaded]))
                                      .order_by(RunObject.id)).scalars():
            found[obj.job_run_id].append(obj)
        for r in unloaded:
            set_committed_value(r, "objects", found.get(r.id, []))
    rules = active_overrides_for(jobs.values())
    for r in runs:
        apply_overrides(r, rules.get(r.job_id, []))


def reevaluate_unreviewed_runs(job_ids: Optional[Iterable[int]] = None) -> int:
    """Re-apply the current rules to every unreviewed run (of ``job_ids`` when given).

    Loads runs in chunks with their jobs and objects (a constant number of queries
    per chunk), locking them so a review committed meanwhile is respected: a run
    reviewed before this reads it keeps what it showed. Returns how many runs
    changed effective status or override. Flushes; the caller commits.
    """
    ids = None if job_ids is None else sorted({int(i) for i in job_ids if i is not None})
    if ids is not None and not ids:
        return 0
    changed = 0
    last_id = 0
    while True:
        q = (select(JobRun)
             .where(JobRun.reviewed_at.is_(None), JobRun.id > last_id)
             .order_by(JobRun.id)
             .limit(REEVALUATE_CHUNK)
             .options(selectinload(JobRun.job), selectinload(JobRun.objects))
             .with_for_update(of=JobRun)
             .execution_options(populate_existing=True))
        if ids is not None:
            q = q.where(JobRun.job_id.in_(ids))
        runs = db.session.execute(q).scalars().all()
        if not runs:
            break
        rules = active_overrides_for({r.job.id: r.job for r in runs}.values())
        for run in runs:
            before = (run.effective_status, run.override_id)
            apply_overrides(run, rules.get(run.job_id, []))
            if (run.effective_status, run.override_id) != before:
                changed += 1
        db.session.flush()
        # Not "fewer than a chunk = done": a run reviewed while we waited for its lock is
        # left out of a chunk, so only an empty chunk means the end.
        last_id = runs[-1].id
    return changed
