"""What the background process did, written where the web processes can read it.

The loops run in one process of the deployment (the worker, or whichever process holds the leader
lock), while ``/metrics`` is answered by the web processes: counters in the loops' memory would
never be seen there. So each loop step and each import cycle adds itself to a row in the database
(``background_loop_stats``, ``import_cycle_stats``) with one UPSERT, and a scrape reads those rows.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Optional

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ...models import BackgroundLoopStats, ImportCycle, ImportCycleStats, utcnow

log = logging.getLogger(__name__)

_failing = False  # a failed write is logged once until one succeeds again

# The counts an import cycle keeps (ImportCycle column → ImportCycleStats column).
IMPORT_COUNTS = {"fetched": "fetched_total", "new": "new_total", "duplicates": "duplicates_total",
                 "auto_processed": "auto_processed_total", "to_inbox": "to_inbox_total", "failed": "failed_total"}


def loop_step_statement(loop: str, *, ok: bool, duration_seconds: float, now: datetime):
    """The UPSERT that adds one step of ``loop`` to its row."""
    t = BackgroundLoopStats.__table__
    stmt = insert(t).values(loop=loop, steps_total=1, failures_total=0 if ok else 1,
                            duration_seconds_total=duration_seconds, last_step_at=now,
                            last_success_at=now if ok else None, last_duration_seconds=duration_seconds)
    return stmt.on_conflict_do_update(index_elements=[t.c.loop], set_={
        "steps_total": t.c.steps_total + 1,
        "failures_total": t.c.failures_total + stmt.excluded.failures_total,
        "duration_seconds_total": t.c.duration_seconds_total + stmt.excluded.duration_seconds_total,
        "last_step_at": stmt.excluded.last_step_at,
        "last_success_at": func.coalesce(stmt.excluded.last_success_at, t.c.last_success_at),
        "last_duration_seconds": stmt.excluded.last_duration_seconds,
    })


def record_loop_step(engine: Engine, loop: str, *, ok: bool, duration_seconds: float,
                     now: Optional[datetime] = None) -> None:
    """Add one step of a background loop (``ok``: it did not raise) in a short transaction of its
    own. Never raises: a metric that could not be written never stops the loops."""
    global _failing
    stmt = loop_step_statement(loop, ok=ok, duration_seconds=max(0.0, duration_seconds), now=now or utcnow())
    try:
        with engine.begin() as conn:
            conn.execute(stmt)
    except Exception as exc:  # noqa: BLE001
        if not _failing:
            log.warning("background loop metrics not written: %s", type(exc).__name__)
        _failing = True
        return
    _failing = False


def record_import_cycle(session: Session, cycle: ImportCycle) -> None:
    """Add a finished import cycle to the totals of its trigger and outcome, in the caller's
    transaction (the one that stores the cycle's end), so it is counted exactly once."""
    if cycle.finished_at is None or cycle.state == "running":
        return
    duration = max(0.0, (cycle.finished_at - cycle.started_at).total_seconds())
    t = ImportCycleStats.__table__
    counts = {total: int(getattr(cycle, attr) or 0) for attr, total in IMPORT_COUNTS.items()}
    stmt = insert(t).values(trigger=cycle.trigger, state=cycle.state, cycles_total=1,
                            duration_seconds_total=duration, last_finished_at=cycle.finished_at,
                            last_duration_seconds=duration, **counts)
    added = {name: t.c[name] + stmt.excluded[name] for name in ("cycles_total", "duration_seconds_total", *counts)}
    session.execute(stmt.on_conflict_do_update(
        index_elements=[t.c.trigger, t.c.state],
        set_={**added, "last_finished_at": func.greatest(t.c.last_finished_at, stmt.excluded.last_finished_at),
              "last_duration_seconds": stmt.excluded.last_duration_seconds}))
