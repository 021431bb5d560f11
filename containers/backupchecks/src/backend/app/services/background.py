"""Background loops (mail import, missed runs, ...) in one process across workers and containers.

Each process starts one daemon thread. The thread tries to take a leader lock
(a PostgreSQL advisory lock kept on its own connection); only the process that
holds it runs the loops. If that process dies its connection closes, the lock
frees, and another process takes over on its next try.

On SIGTERM the thread finishes the step it is in and stops (no half-written
cycle), and the process ends: under gunicorn the worker's own handler is
chained (gunicorn ends the worker and its ``worker_exit`` hook waits for the
thread); anywhere else (``python -m backend.app.main``, ``make run``) the
handler ends the server with ``SystemExit`` and an exit hook waits for the
thread, at most ``SHUTDOWN_WAIT_SECONDS``.
"""
from __future__ import annotations

import atexit
import logging
import signal
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
THREAD_NAME = "backupchecks-background"
SHUTDOWN_WAIT_SECONDS = 25.0
_stop = threading.Event()
_started = False
_thread: threading.Thread | None = None


def register_loop(name: str, step: Callable[[Flask], None], interval_seconds: Callable[[Flask], float]) -> None:
    if any(loop.name == name for loop in LOOPS):
        return
    LOOPS.append(Loop(name=name, step=step, interval_seconds=interval_seconds))


def stop() -> None:
    _stop.set()


def running() -> bool:
    """True while this process's background thread is alive."""
    return _thread is not None and _thread.is_alive()


def stop_and_wait(timeout: float = SHUTDOWN_WAIT_SECONDS) -> bool:
    """Ask the loop to stop and wait for the step it is in; True when the thread has ended."""
    _stop.set()
    thread = _thread
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(timeout)
    if thread.is_alive():
        log.warning("background loop still busy after %.0f s; stopping without it", timeout)
        return False
    return True


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


def _install_sigterm_handler() -> None:
    """SIGTERM stops the loop; the process then ends as it would have without us.

    A handler that was there before (gunicorn's worker) is called and decides. With the default
    action (end the process) the handler raises SystemExit in the main thread, so the server's
    loop ends, and the exit hook waits for the background step. An ignored SIGTERM stays ignored.
    """
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        return

    def _on_term(signum, frame):
        _stop.set()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise SystemExit(0)

    try:
        signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not in the main thread: whoever owns the main thread handles signals
        pass


def start_background_jobs(app: Flask) -> None:
    global _started, _thread
    if _started:
        return
    _started = True
    _install_sigterm_handler()
    atexit.register(stop_and_wait)
    _thread = threading.Thread(target=_runner, args=(app,), name=THREAD_NAME, daemon=True)
    _thread.start()
