"""Which runs make an event, and the outbox rows they queue.

A run that arrives Failed sends "failed", a Missed run "missed", a Warning "warning", and the first
Success after a Failed or Missed run of its job "recovery". The effective status decides (after
overrides): an override that turns a run into a success sends nothing. Queuing is one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` per call, so an event is queued once per channel.

Each channel's rules (docs: Notifications → Rules) are part of that statement:

- scope: a channel limited to some customers only gets runs of their jobs;
- N consecutive failures (``min_failures``, or the job's ``alert_after_failures``): with N > 1 a
  failed or missed event is queued only for the run that makes the job's streak of Failed/Missed
  runs exactly N (once per streak), and a recovery only when the streak before it reached N. With
  N = 1 every failure is sent and a recovery follows any Failed or Missed run. A run's streak is
  counted in the database from the job's latest runs before it (at most ``STREAK_LIMIT``).
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


MAX_FAILURES = 30  # the largest N a channel or a job may ask for
STREAK_LIMIT = MAX_FAILURES + 1  # runs looked at before a run: enough to tell "exactly N" for any N

# One statement for a set of runs: each run's event joined to the channels that want it, for the
# customer, at this point of the job's streak of failures; the payload is built by the database.
# s.before = the Failed/Missed runs right before the run (the job's runs ordered by start, then id).
_RUN_EVENTS = text(f"""
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
CROSS JOIN LATERAL (
      SELECT COALESCE(MIN(p.n) FILTER (WHERE p.effective_status IS NULL
                                       OR p.effective_status NOT IN ('Failed', 'Missed')) - 1, COUNT(*)) AS before
      FROM (SELECT q.effective_status, row_number() OVER (ORDER BY q.started_at DESC, q.id DESC) AS n
            FROM job_runs q
            WHERE q.job_id = r.job_id AND (q.started_at, q.id) < (r.started_at, r.id)
            ORDER BY q.started_at DESC, q.id DESC LIMIT {STREAK_LIMIT}) p) s
JOIN notification_channels c ON c.enabled AND CASE e.event
     WHEN 'failed' THEN c.on_failed WHEN 'missed' THEN c.on_missed
     WHEN 'warning' THEN c.on_warning WHEN 'recovery' THEN c.on_recovery ELSE false END
WHERE (c.all_customers OR EXISTS (SELECT 1 FROM notification_channel_customers cc
                                  WHERE cc.channel_id = c.id AND cc.customer_id = j.customer_id))
  AND CASE e.event
      WHEN 'recovery' THEN s.before >= COALESCE(j.alert_after_failures, c.min_failures)
      WHEN 'warning' THEN true
      ELSE COALESCE(j.alert_after_failures, c.min_failures) <= 1
           OR s.before + 1 = COALESCE(j.alert_after_failures, c.min_failures) END
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
