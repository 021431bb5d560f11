"""Background work started by a request: one small pool of threads per process, one way to
start work on it, and one shape of progress the pages poll.

**The runner** (``runner()``) is a ``ThreadPoolExecutor`` with ``MAX_WORKERS`` threads, created on
first use in each process (a forked worker starts its own) and shut down when the interpreter
exits: work that has not started yet is cancelled (its ``on_cancel`` runs, e.g. the task is marked
failed; a queued report stays queued and the reports loop generates it), work that runs is waited
for. However many clicks, at most ``MAX_WORKERS`` threads work at once; the rest waits in the
pool's queue, and the per-user and per-kind limits (below and in ``reports.request_report``) keep
that queue short.

**Starting work** goes through ``run_in_background`` and nothing else: "Import now", "Re-parse
all", "Refresh all Autotask mappings" (through ``start_task``) and "Generate report"
(``reports.start_generation``). With the app's ``TASKS_SYNCHRONOUS`` set (tests) the work runs at
once in the caller's thread, in an app context of its own, as a pool thread would run it.

**Task rows** hold the progress, so it survives a page reload: a row with ``state``
(queued → running → done | failed), ``progress`` and ``total``. Actions use ``background_tasks``
(``start_task``); a report's row is its ``report_runs`` row, which also keeps the generated file.
Both are claimed once (``claim``), updated with ``update_row`` and shown as ``progress_json``,
which ``static/js/app.js`` polls (``data-task-url``) for the task card and the report list alike.

**Tasks** (``start_task``) are long actions with a progress bar. One task of a kind is queued or
running at a time (across processes); starting another raises ``TaskBusy`` with the one that runs.
The page polls /tasks/<id> (for the user who started it and admins).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

from flask import Flask
from sqlalchemy import select, text, update

from ..extensions import db
from ..models import BackgroundTask, utcnow
from .locks import lock_key

log = logging.getLogger(__name__)

Progress = Callable[[int, Optional[int], Optional[str]], None]

MAX_WORKERS = 2
THREAD_PREFIX = "backupchecks-task"


# --- The runner: one bounded pool per process ---------------------------------------------------

class TaskRunner:
    """A fixed pool of ``max_workers`` threads for all background work of this process."""

    def __init__(self, max_workers: int = MAX_WORKERS):
        self.max_workers = max_workers
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pid: Optional[int] = None
        self._on_cancel: dict[Future, tuple[Flask, Callable[[], None]]] = {}
        self._exit_hook_pid: Optional[int] = None
        self.queued = 0   # submitted, not started yet
        self.running = 0  # working now (never more than max_workers)
        self.peak = 0     # the most that ever worked at once (since the last reset_peak)

    def _pool(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        if self._executor is None or self._pid != pid:
            # First use in this process (or a fork of one that had a pool: its threads did not come along).
            self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=THREAD_PREFIX)
            self._pid, self._on_cancel, self.queued, self.running = pid, {}, 0, 0
            if self._exit_hook_pid != pid:
                self._exit_hook_pid = pid
                _at_interpreter_exit(self.shutdown)
        return self._executor

    def submit(self, app: Flask, name: str, fn: Callable[[], object],
               on_cancel: Optional[Callable[[], None]] = None) -> Future:
        """Run ``fn()`` in an app context on a pool thread; ``on_cancel()`` (in an app context) if the
        process shuts down before it started. Errors are logged, never raised into the pool."""
        with self._lock:
            future = self._pool().submit(self._run, app, name, fn)
            self.queued += 1
            if on_cancel is not None:
                self._on_cancel[future] = (app, on_cancel)
        future.add_done_callback(self._forget)
        return future

    def _run(self, app: Flask, name: str, fn: Callable[[], object]) -> None:
        with self._lock:
            self.queued -= 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            run_now(app, name, fn)
        finally:
            with self._lock:
                self.running -= 1
                self._idle.notify_all()

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._on_cancel.pop(future, None)
            if future.cancelled():
                self.queued -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False when ``timeout`` seconds passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self.queued == 0 and self.running == 0, timeout)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.running

    def shutdown(self, wait: bool = True) -> None:
        """Cancel what has not started (calling its ``on_cancel``), then wait for what runs."""
        with self._lock:
            executor, self._executor = self._executor, None
            if executor is None or self._pid != os.getpid():
                return
            pending = dict(self._on_cancel)
        executor.shutdown(wait=False, cancel_futures=True)
        for future, (app, on_cancel) in pending.items():
            if future.cancelled():
                try:
                    with app.app_context():
                        on_cancel()
                        db.session.remove()
                except Exception:  # noqa: BLE001 - shutting down: log and go on
                    log.exception("could not record a cancelled background job")
        if wait:
            executor.shutdown(wait=True)


def run_now(app: Flask, name: str, fn: Callable[[], object]) -> None:
    """Run ``fn()`` in an app context (and database session) of its own, as a pool thread does;
    errors are logged, never raised."""
    try:
        with app.app_context():
            try:
                fn()
            finally:
                db.session.remove()
    except Exception:  # noqa: BLE001 - one failing job never takes a pool thread down
        log.exception("background work %s failed", name)


def _at_interpreter_exit(fn: Callable[[], None]) -> None:
    """Run ``fn`` when the interpreter exits, *before* ``concurrent.futures`` joins its threads
    (that join would otherwise first run every queued job to the end). ``threading`` calls these
    hooks last-registered first, ahead of ``atexit``; older Pythons fall back to ``atexit``."""
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading exit hooks")
        register(fn)
    except RuntimeError:
        atexit.register(fn)


_runner = TaskRunner()


def runner() -> TaskRunner:
    """The process's task runner."""
    return _runner


def run_in_background(app: Flask, name: str, fn: Callable[[], object],
                      on_cancel: Optional[Callable[[], None]] = None) -> None:
    """The one way a request hands work to a thread: ``fn()`` on the runner (``on_cancel()`` when
    the process stops before its turn), or at once in this thread when the app's
    ``TASKS_SYNCHRONOUS`` is set (tests)."""
    if app.config.get("TASKS_SYNCHRONOUS"):
        run_now(app, name, fn)
    else:
        runner().submit(app, name, fn, on_cancel=on_cancel)


# --- Task rows: claim, progress, outcome, and the JSON the pages poll ----------------------------

def claim(model, row_id: int, **values) -> bool:
    """Move a queued row to running (with ``values``) and commit; False when another thread or
    process claimed it first, so a row's work runs once."""
    res = db.session.execute(update(model).where(model.id == row_id, model.state == "queued")
                             .values(state="running", **values).execution_options(synchronize_session=False))
    db.session.commit()
    return res.rowcount == 1


def update_row(model, row_id: int, **values) -> None:
    """Store progress or the outcome on a task row and commit, so the polling page sees it."""
    db.session.execute(update(model).where(model.id == row_id).values(**values)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def progress_json(row_id: int, kind: str, state: str, progress: int, total: Optional[int],
                  message: Optional[str], **extra) -> dict:
    """The progress of a task row as the pages poll it (``static/js/app.js``)."""
    percent = int(100 * progress / total) if total else None
    return {"id": row_id, "kind": kind, "state": state, "progress": progress, "total": total,
            "percent": percent, "message": message, **extra}


# --- Tasks with progress ------------------------------------------------------------------------

class TaskBusy(Exception):
    """A task of this kind is already queued or running; ``task`` is that one."""

    def __init__(self, task: BackgroundTask):
        super().__init__(f"a {task.kind} task is already {task.state}")
        self.task = task


class TaskFailed(Exception):
    """Raised by a task's work to end it as failed with this message, as is."""


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


def _finish(task_id: int, state: str, message: str) -> None:
    update_row(BackgroundTask, task_id, state=state, message=(message or "")[:1000], finished_at=utcnow())


def start_task(app: Flask, kind: str, actor_id: Optional[int], work: Callable[[Progress], str],
               *, first_message: str = "Working…") -> BackgroundTask:
    """Queue ``work(progress)`` through ``run_in_background``; its return value is the final message.

    The caller's pending changes (e.g. its audit entry) are committed with the new task, or rolled
    back when a task of this kind is already queued or running: then ``TaskBusy`` is raised and
    nothing starts."""
    if db.engine.dialect.name == "postgresql":  # two clicks at once: the second waits, then sees the first
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(f"task:{kind}")})
    busy = running_task(kind)
    if busy is not None:
        db.session.rollback()
        raise TaskBusy(busy)
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
        update_row(BackgroundTask, task_id, **values)

    def run() -> None:
        if not claim(BackgroundTask, task_id, started_at=utcnow(), message=first_message):
            return
        try:
            final, state = work(set_progress), "done"
        except TaskFailed as exc:
            db.session.rollback()
            final, state = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged in full
            log.exception("background task %s failed", kind)
            db.session.rollback()
            final, state = f"Failed: {type(exc).__name__}: {exc}", "failed"
        _finish(task_id, state, final)

    run_in_background(app, f"task-{kind}-{task_id}", run, on_cancel=lambda: _finish(
        task_id, "failed", "Not started: the app was stopped before this task's turn came. Start it again."))
    return task


def task_json(task: BackgroundTask) -> dict:
    return progress_json(task.id, task.kind, task.state, task.progress, task.total, task.message)
