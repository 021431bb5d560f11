"""Which runs make an event, and the outbox rows they queue.

A run that arrives Failed sends "failed", a Missed run "missed", a Warning "warning", and the first
Success after a Failed or Missed run of its job "recovery". The effective status decides (after
overrides): an override that turns a run into a success sends nothing. Queuing is one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` per call, so an event is queued once per channel.
"""
from __future__ import annotations

from typing import Iterable, Optional

from sqlalchemy import text

from ...extensions import db
from ...models import utcnow
from ..status import FAILED, MISSED, SUCCESS, WARNING, canonical_status

EVENTS = ("failed", "missed", "warning", "recovery")
_FLAG = {"failed": "on_failed", "missed": "on_missed", "warning": "on_warning", "recovery": "on_recovery",
         "test": None}


def event_of(effective_status: Optional[str]) -> Optional[str]:
    """The event a run's effective status makes on its own (a success is a recovery only after a
    failed or missed run, which the queuing statement checks)."""
    return {FAILED: "failed", MISSED: "missed", WARNING: "warning", SUCCESS: "recovery"}.get(
        canonical_status(effective_status))


def enqueue(event_key: str, kind: str, payload: dict) -> int:
    """Queue ``payload`` for every enabled channel that wants ``kind``; returns the rows queued."""
    import json

    flag = _FLAG[kind]
    cond = f" AND c.{flag}" if flag else ""
    res = db.session.execute(text(
        "INSERT INTO notification_outbox (channel_id, event_key, event, payload, state, attempts,"
        " next_attempt_at, created_at)"
        " SELECT c.id, :key, :kind, CAST(:payload AS json), 'pending', 0, :now, :now"
        f" FROM notification_channels c WHERE c.enabled{cond}"
        " ON CONFLICT (channel_id, event_key) DO NOTHING"),
        {"key": event_key, "kind": kind, "payload": json.dumps(payload, default=str),
         "now": utcnow()})
    return res.rowcount or 0


# One statement for a set of runs: each run's event (recovery only when the job's run before it
# was Failed or Missed) joined to the channels that want it; the payload is built by the database.
_RUN_EVENTS = text("""
INSERT INTO notification_outbox (channel_id, event_key, event, payload, state, attempts, next_attempt_at, created_at)
SELECT c.id, 'run:' || e.run_id || ':' || e.event, e.event,
       json_build_object('event', e.event, 'run_id', r.id, 'job_id', j.id, 'job', j.job_name,
                         'customer', cu.name, 'status', r.effective_status, 'message', r.message,
                         'started_at', r.started_at),
       'pending', 0, :now, :now
FROM (SELECT CAST(x ->> 'id' AS integer) AS run_id, x ->> 'event' AS event
      FROM json_array_elements(CAST(:runs AS json)) AS x) e
JOIN job_runs r ON r.id = e.run_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN customers cu ON cu.id = j.customer_id
JOIN notification_channels c ON c.enabled AND CASE e.event
     WHEN 'failed' THEN c.on_failed WHEN 'missed' THEN c.on_missed
     WHEN 'warning' THEN c.on_warning WHEN 'recovery' THEN c.on_recovery ELSE false END
WHERE e.event <> 'recovery' OR (
      SELECT p.effective_status FROM job_runs p
      WHERE p.job_id = r.job_id AND p.id <> r.id AND p.started_at <= r.started_at
      ORDER BY p.started_at DESC, p.id DESC LIMIT 1) IN ('Failed', 'Missed')
ON CONFLICT (channel_id, event_key) DO NOTHING
""")


def enqueue_run_events(runs: Iterable) -> int:
    """Queue the events of new (flushed) runs, in the caller's transaction; one statement, none
    when no run makes an event."""
    import json

    items = list({r.id: {"id": r.id, "event": ev} for r in runs
                  if r.id is not None and (ev := event_of(r.effective_status)) is not None}.values())
    if not items:
        return 0
    db.session.flush()  # the statement reads the runs' stored effective status
    queued = db.session.execute(_RUN_EVENTS, {"runs": json.dumps(items), "now": utcnow()}).rowcount or 0
    if queued:  # snoozed jobs/customers and runs inside a maintenance window: written, but held
        from ..quiet import hold_for_runs
        hold_for_runs([i["id"] for i in items], utcnow())
    return queued
