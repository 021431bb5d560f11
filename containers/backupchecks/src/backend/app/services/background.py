"""Background loops (mail import, missed runs, ...) in one process across workers and containers.

Each process starts one daemon thread. The thread tries to take a leader lock
(a PostgreSQL advisory lock kept on its own connection); only the process that
holds it runs the loops. If that process dies its connection closes, the lock
frees, and another process takes over on its next try. On SIGTERM the thread
finishes the step it is in and stops (no half-written cycle).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask

from .locks import LeaderLock

log = logging.getLogger(__name__)


@dataclass
class Loop:
    name: str
    interval_seconds: Callable[[Flask], float]  # read each time, so settings changes apply
    step: Callable[[Flask], None]
    next_run: float = field(default=0.0)


LOOPS: list[Loop] = []
_stop = threading.Event()
_started = False
_thread: threading.Thread | None = None


def register_loop(name: str, step: Callable[[Flask], None], interval_seconds: Callable[[Flask], float]) -> None:
    if any(loop.name == name for loop in LOOPS):
        return
    LOOPS.append(Loop(name=name, step=step, interval_seconds=interval_seconds))


def stop() -> None:
    _stop.set()


def shutdown(timeout: float | None = None) -> bool:
    """Ask the runner to stop and wait (at most ``timeout`` seconds) until it has finished the
    step it is in. True when no runner is left running."""
    _stop.set()
    if _thread is None:
        return True
    _thread.join(timeout)
    return not _thread.is_alive()


def running() -> bool:
    return _thread is not None and _thread.is_alive()


def run_due_loops(app: Flask, now: float | None = None) -> list[str]:
    """Run every loop whose time has come (one pass). Returns the names run."""
    ran = []
    now = time.monotonic() if now is None else now
    for loop in list(LOOPS):
        if _stop.is_set():
            break
        if now < loop.next_run:
            continue
        try:
            with app.app_context():
                loop.step(app)
        except Exception:  # noqa: BLE001 - one failing loop never stops the others
            log.exception("background loop %s failed", loop.name)
        finally:
            try:
                with app.app_context():
                    interval = float(loop.interval_seconds(app))
            except Exception:  # noqa: BLE001
                interval = 60.0
            loop.next_run = time.monotonic() + max(5.0, interval)
            ran.append(loop.name)
    return ran


def _runner(app: Flask) -> None:
    from ..extensions import db

    with app.app_context():
        engine = db.engine
    lock = LeaderLock(engine, "backupchecks-background")
    while not _stop.is_set():
        try:
            if lock.try_acquire():
                run_due_loops(app)
        except Exception:  # noqa: BLE001
            log.exception("background runner error")
        _stop.wait(5.0)
    lock.release()


def start_background_jobs(app: Flask) -> None:
    global _started, _thread
    if _started:
        return
    _started = True
    import signal

    def _on_term(signum, frame):  # gunicorn installs its own handlers in workers; chain them
        _stop.set()
        if callable(previous) and previous not in (signal.SIG_DFL, signal.SIG_IGN):
            previous(signum, frame)

    try:
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not in the main thread
        pass
    _thread = threading.Thread(target=_runner, args=(app,), name="backupchecks-background", daemon=True)
    _thread.start()
