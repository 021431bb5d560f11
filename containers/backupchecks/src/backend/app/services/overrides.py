"""Overrides: rules that treat known, accepted warnings or failures as success.

Levels
  object  one object (by name, case-insensitive) of one job
  job     one job (its runs, and each of its runs' objects)
  global  every job of a software, optionally of one backup type and/or whose
          name matches a glob pattern such as "Daily*" (case-insensitive)

A rule matches a status (empty = any non-success status) and a message text
(contains / exact / starts / ends, case-insensitive, empty = any), when the
run started inside its validity window [valid_from, valid_until).
Object and job rules are checked before global ones; the first matching rule
decides. "Treat as success" turns the matched Warning/Failed into Success; a
matching rule without it is linked (shown as the reason) but changes nothing.

A run is an effective Success when its own status is overridden, or when it
has non-success objects and every one of them is overridden. A Missed run can
only be overridden by a job-level rule that matches status Missed.

Creating, changing or deleting a rule re-evaluates the unreviewed runs it can
touch; reviewed runs keep what they showed when they were reviewed.
"""
from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Interval, and_, func, inspect, literal, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import STATUSES, Job, JobRun, Override, RunObject, utcnow
from . import audit
from .status import MISSED, SUCCESS, normalise_status
from .timezones import as_zone

LEVELS = ("global", "job", "object")
MATCH_MODES = ("contains", "exact", "starts", "ends")
MATCH_MODE_LABELS = {"contains": "contains", "exact": "is exactly", "starts": "starts with", "ends": "ends with"}
PATTERN_MAX = 200
PATTERN_MAX_WILDCARDS = 10
_LEVEL_RANK = {"object": 0, "job": 1, "global": 2}
_FIELDS = ("level", "software", "backup_type", "job_name_pattern", "job_id", "object_name", "match_status",
           "match_text", "match_mode", "valid_from", "valid_until", "treat_as_success", "comment", "active")
_LIMITS = {"software": 120, "backup_type": 120, "object_name": 500, "match_text": 1000, "comment": 1000}
_TRUE = {"1", "true", "on", "yes", "y"}
_FALSE = {"0", "false", "off", "no", "n", ""}
REEVALUATE_CHUNK = 500
# "Mark as success → this run only" makes a rule valid from the run's start for this long: it
# covers that one run. Such a rule is shown as "applied to run N", not as expired.
ONE_RUN_WINDOW = timedelta(seconds=1)


# --- Validation -----------------------------------------------------------------------------

def _text(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    if key not in data or data.get(key) is None:
        return default
    value = data.get(key)
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"'{key}' must be yes or no, not '{str(value)[:20]}'.")


def _moment(data: Mapping[str, Any], key: str, label: str, zone: Optional[ZoneInfo]) -> Optional[datetime]:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{label} '{str(value)[:40]}' is not a date and time: use e.g. 2026-03-29 08:00.") from None
    if dt.tzinfo is None:  # a form gives local time in the UI timezone
        dt = dt.replace(tzinfo=as_zone(zone))
    return dt.astimezone(timezone.utc)


def _check_pattern(pattern: str) -> None:
    if len(pattern) > PATTERN_MAX:
        raise ValueError(f"The job-name pattern is too long ({len(pattern)} characters, at most {PATTERN_MAX}).")
    if any(unicodedata.category(ch).startswith("C") for ch in pattern):
        raise ValueError("The job-name pattern contains control characters (a line break or tab?).")
    if pattern.count("*") + pattern.count("?") > PATTERN_MAX_WILDCARDS:
        raise ValueError(f"The job-name pattern has too many wildcards (at most {PATTERN_MAX_WILDCARDS}).")
    if pattern.replace("*", "") == "" and len(pattern) > 1:
        raise ValueError("The job-name pattern is only wildcards: use a single '*' or leave it empty.")
    # Brackets must be a complete, non-empty set like [0-9] or [!x].
    i = 0
    while i < len(pattern):
        if pattern[i] == "]":
            raise ValueError("The job-name pattern has a ']' without an opening '['.")
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # "[]" or "[!]"
                raise ValueError("The job-name pattern has an empty set '[]'.")
            close = pattern.find("]", j)
            if close == -1:
                raise ValueError("The job-name pattern has a '[' without a closing ']'. "
                                 "Use * for any text and ? for one character, e.g. Daily*.")
            body = pattern[j:close]
            for m in re.finditer(r"(.)-(.)", body):
                if m.group(1) > m.group(2):
                    raise ValueError(f"The job-name pattern has a reversed range '[{m.group(0)}]'.")
            i = close + 1
            continue
        i += 1
    try:
        _compiled(pattern)
    except re.error as exc:  # pragma: no cover - guarded by the checks above
        raise ValueError(f"The job-name pattern is not valid: {exc}.") from None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL)


def pattern_matches(pattern: Optional[str], job_name: Optional[str]) -> bool:
    """Glob match of a job name, case-insensitive (empty pattern = any name)."""
    if not pattern:
        return True
    return _compiled(pattern).match(job_name or "") is not None


def validate_override(data: Mapping[str, Any], zone: Optional[ZoneInfo] = None) -> dict:
    """Check and clean override fields from a form or a JSON import.

    Returns a dict with every Override field (empty text -> None, times in UTC,
    fields the level does not use -> None). Raises ValueError with a message an
    operator can act on. Naive times are read in ``zone`` (default: the UI timezone).
    """
    if data is None:
        raise ValueError("No override data given.")
    level = (_text(data, "level") or "").lower()
    if level not in LEVELS:
        raise ValueError("Choose the level of the override: global, job or object.")

    out: dict[str, Any] = {"level": level}
    for key, limit in _LIMITS.items():
        value = _text(data, key)
        if value is not None and len(value) > limit:
            raise ValueError(f"'{key.replace('_', ' ')}' is too long (at most {limit} characters).")
        out[key] = value

    raw_job = data.get("job_id")
    job_id: Optional[int] = None
    if raw_job not in (None, ""):
        try:
            job_id = int(str(raw_job).strip())
        except ValueError:
            raise ValueError(f"Unknown job '{str(raw_job)[:40]}'.") from None
        if not 0 < job_id < 2 ** 31:
            raise ValueError(f"Unknown job {job_id}.")

    pattern = _text(data, "job_name_pattern")
    if level == "global":
        if not out["software"]:
            raise ValueError("A global override needs the software it applies to.")
        if pattern:
            _check_pattern(pattern)
        if out["object_name"]:
            raise ValueError("A global override has no object name: use level 'object' on a job.")
        out["job_name_pattern"] = pattern
        out["job_id"] = None
    else:
        if job_id is None:
            raise ValueError(f"A{'n' if level == 'object' else ''} {level}-level override needs a job.")
        if db.session.get(Job, job_id) is None:
            raise ValueError(f"Unknown job {job_id}: it may have been deleted.")
        if level == "object" and not out["object_name"]:
            raise ValueError("An object-level override needs the object name.")
        if level == "job" and out["object_name"]:
            raise ValueError("A job-level override has no object name: choose level 'object' for one object.")
        out["job_id"] = job_id
        out["job_name_pattern"] = None
        out["software"] = None
        out["backup_type"] = None

    status = _text(data, "match_status")
    if status is not None:
        canon = normalise_status(status)
        if canon not in STATUSES or canon == SUCCESS:
            raise ValueError(f"Status '{status[:20]}' cannot be matched: use Warning, Failed or Missed, "
                             "or leave it empty for any problem.")
        if canon == MISSED and level != "job":
            raise ValueError("Only a job-level override can match a Missed run.")
        status = canon
    out["match_status"] = status

    mode = (_text(data, "match_mode") or "contains").lower()
    if mode not in MATCH_MODES:
        raise ValueError(f"Text match '{mode[:20]}' is unknown: use contains, exact, starts or ends.")
    out["match_mode"] = mode

    out["valid_from"] = _moment(data, "valid_from", "Valid from", zone)
    out["valid_until"] = _moment(data, "valid_until", "Valid until", zone)
    if out["valid_from"] and out["valid_until"] and out["valid_until"] <= out["valid_from"]:
        raise ValueError("'Valid until' must be after 'valid from'.")

    out["treat_as_success"] = _bool(data, "treat_as_success", True)
    out["active"] = _bool(data, "active", True)
    return out


# --- Matching -------------------------------------------------------------------------------

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


def _run_moment(run: JobRun) -> datetime:
    return run.started_at or run.missed_slot or run.created_at or utcnow()


def _global_applies(rule: Override, job: Job) -> bool:
    if (rule.software or "").strip().lower() != (job.software or "").strip().lower():
        return False
    if rule.backup_type and rule.backup_type.strip().lower() != (job.backup_type or "").strip().lower():
        return False
    return pattern_matches(rule.job_name_pattern, job.job_name)


def _precedence(rule: Override) -> tuple:
    return (_LEVEL_RANK.get(rule.level, 9), 0 if rule.treat_as_success else 1, rule.id or 0)


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
    rules = db.session.execute(
        select(Override).where(
            Override.active.is_(True),
            or_(
                and_(Override.level.in_(("job", "object")), Override.job_id.in_(ids)),
                and_(Override.level == "global", func.lower(func.trim(Override.software)).in_(softwares)),
            ),
        )
    ).scalars().all()
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
    status = normalise_status(run.status) or SUCCESS
    when = _run_moment(run)

    # Objects: object rules of this name first, then job and global rules.
    problem_objects = 0
    covered_objects = 0
    first_object_rule: Optional[Override] = None
    for obj in run.objects or ():
        obj_status = normalise_status(obj.status)
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


# --- Changes by users -----------------------------------------------------------------------

def describe(rule: Override) -> str:
    """One line for lists, flashes and the audit log."""
    if rule.level == "global":
        scope = f"global {rule.software}"
        if rule.backup_type:
            scope += f" / {rule.backup_type}"
        if rule.job_name_pattern:
            scope += f" jobs '{rule.job_name_pattern}'"
    else:
        job = rule.job if rule.job is not None else (db.session.get(Job, rule.job_id) if rule.job_id else None)
        scope = f"job '{job.job_name if job else rule.job_id}'"
        if rule.level == "object":
            scope = f"object '{rule.object_name}' of {scope}"
    what = rule.match_status or "any problem"
    if rule.match_text:
        what += f", message {MATCH_MODE_LABELS.get(rule.match_mode, rule.match_mode)} '{rule.match_text[:60]}'"
    return f"{scope}: {what}" + (" → success" if rule.treat_as_success else "")


def is_one_run_rule(rule: Override) -> bool:
    """Whether a rule covers a single run of its job ("this run only"): a job or object rule whose
    validity window is at most ``ONE_RUN_WINDOW`` long."""
    return (rule.level in ("job", "object") and rule.job_id is not None and rule.valid_from is not None
            and rule.valid_until is not None and rule.valid_until - rule.valid_from <= ONE_RUN_WINDOW)


def one_run_rule_sql():
    """``is_one_run_rule`` as a SQL condition, for filtering lists in the database."""
    return and_(Override.level.in_(("job", "object")), Override.job_id.is_not(None),
                Override.valid_from.is_not(None), Override.valid_until.is_not(None),
                Override.valid_until <= Override.valid_from + literal(ONE_RUN_WINDOW, Interval()))


def _snapshot(rule: Override) -> dict:
    return {f: getattr(rule, f) for f in _FIELDS}


def _scope_job_ids(*snapshots: Mapping[str, Any]) -> list[int]:
    """The jobs a rule (before and after a change) can touch: its job, or for a global
    rule every job of its software (one query)."""
    ids: set[int] = set()
    softwares = set()
    for snap in snapshots:
        if snap.get("level") == "global":
            softwares.add((snap.get("software") or "").strip().lower())
        elif snap.get("job_id") is not None:
            ids.add(snap["job_id"])
    if softwares:
        ids.update(db.session.execute(
            select(Job.id).where(func.lower(func.trim(Job.software)).in_(sorted(softwares)))
        ).scalars())
    return sorted(ids)


def create_override(data: Mapping[str, Any], actor, zone: Optional[ZoneInfo] = None) -> Override:
    """Validate, store and audit a rule, then re-evaluate the unreviewed runs it can touch. Commits."""
    values = validate_override(data, zone)
    rule = Override(**values, created_by_id=getattr(actor, "id", None))
    db.session.add(rule)
    db.session.flush()
    audit.record("override.create", f"Override {rule.id} created: {describe(rule)}", user=actor,
                 target_type="override", target_id=rule.id, after=_snapshot(rule))
    reevaluate_unreviewed_runs(_scope_job_ids(values))
    db.session.commit()
    return rule


def update_override(rule: Override, data: Mapping[str, Any], actor, zone: Optional[ZoneInfo] = None) -> Override:
    """Change a rule (audited with before/after), then re-evaluate unreviewed runs of the old
    and the new scope. Commits. Nothing changes when the data is invalid."""
    values = validate_override(data, zone)
    before = _snapshot(rule)
    for key, value in values.items():
        setattr(rule, key, value)
    after = _snapshot(rule)
    b, a = audit.changed_fields(before, after)
    if a:
        audit.record("override.update", f"Override {rule.id} changed: {describe(rule)}", user=actor,
                     target_type="override", target_id=rule.id, before=b, after=a)
        db.session.flush()
        reevaluate_unreviewed_runs(_scope_job_ids(before, after))
    db.session.commit()
    return rule


def delete_override(rule: Override, actor) -> None:
    """Delete a rule (audited) and re-evaluate the unreviewed runs it could touch. Commits.

    Reviewed runs keep their effective status; their link to the rule is cleared by
    the database (ON DELETE SET NULL)."""
    before = _snapshot(rule)
    summary = f"Override {rule.id} deleted: {describe(rule)}"
    audit.record("override.delete", summary, user=actor, target_type="override", target_id=rule.id, before=before)
    rule_id = rule.id
    # Unlink in the session too, so runs loaded here don't point at a deleted rule.
    db.session.query(JobRun).filter(JobRun.override_id == rule_id).update(
        {JobRun.override_id: None}, synchronize_session="fetch")
    db.session.query(RunObject).filter(RunObject.override_id == rule_id).update(
        {RunObject.override_id: None}, synchronize_session="fetch")
    db.session.delete(rule)
    db.session.flush()
    reevaluate_unreviewed_runs(_scope_job_ids(before))
    db.session.commit()


def _first_line(message: Optional[str], limit: int = 1000) -> Optional[str]:
    for line in (message or "").splitlines():
        line = " ".join(line.split())
        if line:
            return line[:limit]
    return None


def override_from_run(run: JobRun, actor, future: bool, comment: Optional[str] = None) -> Override:
    """Run Checks' "Mark as success": a rule made from this run, applied at once. Commits.

    Object level when exactly one object is the cause (its name, status and message),
    else job level (the run's status and message). The message is matched on its
    first line ("contains"). With ``future`` False the rule is valid only around this
    run's start (``ONE_RUN_WINDOW``), so it covers this run alone; with ``future`` True it
    covers this run and later ones.
    """
    status = normalise_status(run.status)
    if status == SUCCESS:
        raise ValueError("This run is already a success; there is nothing to override.")
    problems = [o for o in (run.objects or ()) if normalise_status(o.status) not in (None, SUCCESS)]
    when = _run_moment(run)
    data: dict[str, Any] = {"job_id": run.job_id, "match_mode": "contains", "treat_as_success": True,
                            "valid_from": when, "valid_until": None if future else when + ONE_RUN_WINDOW}
    if status != MISSED and len(problems) == 1:
        obj = problems[0]
        data.update(level="object", object_name=obj.name, match_status=normalise_status(obj.status),
                    match_text=_first_line(obj.message))
    else:
        data.update(level="job", match_status=status, match_text=_first_line(run.message))
    when_txt = "this and future runs" if future else "this run only"
    data["comment"] = (comment or f"Marked as success from run {run.id} ({when_txt})")[:1000]
    rule = create_override(data, actor)
    # The operator acted on this very run: show it as overridden even if it was reviewed.
    if run.reviewed_at is not None:
        apply_overrides(run, active_overrides_for([run.job]).get(run.job_id, []))
        db.session.commit()
    return rule
