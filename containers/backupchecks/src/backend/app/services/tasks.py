"""Long actions in a background thread, with progress stored in background_tasks.

The page polls /tasks/<id>; the progress survives a page reload because it is
in the database, not in the browser.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from flask import Flask
from sqlalchemy import select, update

from ..extensions import db
from ..models import BackgroundTask, utcnow

log = logging.getLogger(__name__)

Progress = Callable[[int, Optional[int], Optional[str]], None]


def running_task(kind: str) -> Optional[BackgroundTask]:
    return db.session.execute(select(BackgroundTask).where(BackgroundTask.kind == kind,
                                                           BackgroundTask.state.in_(("queued", "running")))
                              .order_by(BackgroundTask.id.desc()).limit(1)).scalar_one_or_none()


def visible_task(task_id: int, user) -> Optional[BackgroundTask]:
    """A task's progress is for the user who started it and for admins (the active role); None
    for anyone else, as for a task that does not exist."""
    task = db.session.get(BackgroundTask, task_id)
    if task is None:
        return None
    if getattr(user, "current_role", None) == "admin":
        return task
    if task.created_by_id is not None and task.created_by_id == getattr(user, "id", None):
        return task
    return None


def start_task(app: Flask, kind: str, actor_id: Optional[int], work: Callable[[Progress], str],
               *, synchronous: bool = False) -> BackgroundTask:
    """Run ``work(progress)`` in a thread; its return value is the final message."""
    task = BackgroundTask(kind=kind, state="queued", created_by_id=actor_id, message="Waiting to start")
    db.session.add(task)
    db.session.commit()
    task_id = task.id

    def set_progress(done: int, total: Optional[int] = None, message: Optional[str] = None) -> None:
        values = {"progress": done}
        if total is not None:
            values["total"] = total
        if message:
            values["message"] = message[:1000]
        db.session.execute(update(BackgroundTask).where(BackgroundTask.id == task_id).values(**values))
        db.session.commit()

    def run() -> None:
        with app.app_context():
            db.session.execute(update(BackgroundTask).where(BackgroundTask.id == task_id)
                               .values(state="running", started_at=utcnow(), message="Working…"))
            db.session.commit()
            try:
                final = work(set_progress)
                state = "done"
            except Exception as exc:  # noqa: BLE001 - shown on the page, logged in full
                log.exception("background task %s failed", kind)
                db.session.rollback()
                final, state = f"Failed: {type(exc).__name__}: {exc}", "failed"
            db.session.execute(update(BackgroundTask).where(BackgroundTask.id == task_id)
                               .values(state=state, message=(final or "")[:1000], finished_at=utcnow()))
            db.session.commit()
            db.session.remove()

    if synchronous:
        run()
    else:
        threading.Thread(target=run, name=f"task-{kind}-{task_id}", daemon=True).start()
    return task


def task_json(task: BackgroundTask) -> dict:
    pct = None
    if task.total:
        pct = int(100 * task.progress / task.total)
    return {"id": task.id, "kind": task.kind, "state": task.state, "progress": task.progress,
            "total": task.total, "percent": pct, "message": task.message}
