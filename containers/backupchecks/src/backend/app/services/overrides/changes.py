"""Changes users make to override rules (create, update, delete, "Mark as success" from a run): each
audited, then the unreviewed runs the rule can touch are re-evaluated. Each commits."""
from __future__ import annotations

from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ...extensions import db
from ...models import Job, JobRun, Override, RunObject
from .. import audit
from ..status import MISSED, SUCCESS, canonical_status
from .matching import active_overrides_for, apply_overrides, reevaluate_unreviewed_runs, run_moment
from .rules import ONE_RUN_WINDOW, describe, validate_override

_FIELDS = ("level", "software", "backup_type", "job_name_pattern", "job_id", "object_name", "match_status",
           "match_text", "match_mode", "valid_from", "valid_until", "treat_as_success", "comment", "active")


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
    status = canonical_status(run.status)
    if status == SUCCESS:
        raise ValueError("This run is already a success; there is nothing to override.")
    problems = [o for o in (run.objects or ()) if canonical_status(o.status) not in (None, SUCCESS)]
    when = run_moment(run)
    data: dict[str, Any] = {"job_id": run.job_id, "match_mode": "contains", "treat_as_success": True,
                            "valid_from": when, "valid_until": None if future else when + ONE_RUN_WINDOW}
    if status != MISSED and len(problems) == 1:
        obj = problems[0]
        data.update(level="object", object_name=obj.name, match_status=canonical_status(obj.status),
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
