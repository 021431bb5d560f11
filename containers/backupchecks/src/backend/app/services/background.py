"""Background loops (mail import, missed runs, ...) in one process across workers and containers.

Each process starts one daemon thread. The thread tries to take a leader lock
(a PostgreSQL advisory lock kept on its own connection); only the process that
holds it runs the loops. If that process dies its connection closes, the lock
frees, and another process takes over on its next try.

Where it runs: in a web process (``start_background_jobs``, from ``create_app`` unless
``BACKGROUND_JOBS`` is off), or in the worker process (``run_in_foreground``, from
``python -m backend.app.worker``: the compose stack's ``worker`` service, while its web
containers run with ``BACKGROUND_JOBS=false``). Either way the leader lock decides, so a second
worker, or a web process that still runs its runner, only stands by.

Every pass the runner writes its heartbeat (``services/heartbeat.py``): alive, leader or not,
the step under way. The worker's health check reads it.

On SIGTERM the thread finishes the step it is in and stops (no half-written
cycle), and the process ends: under gunicorn the worker's own handler is
chained (gunicorn ends the worker and its ``worker_exit`` hook waits for the
thread); in the worker process the main thread waits for the step and exits 0;
anywhere else (``python -m backend.app.main``, ``make run``) the
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
from typing import Callable, Optional

from flask import Flask

from .heartbeat import Heartbeat
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
LEADER_LOCK = "backupchecks-background"
PASS_SECONDS = 5.0  # the runner tries the lock, beats and runs what is due this often
SHUTDOWN_WAIT_SECONDS = 25.0
_stop = threading.Event()
_started = False
_thread: threading.Thread | None = None
_kind = "web"  # what the heartbeat calls this process: "web" or "worker"


def register_loop(name: str, step: Callable[[Flask], None], interval_seconds: Callable[[Flask], float]) -> None:
    if any(loop.name == name for loop in LOOPS):
        return
    LOOPS.append(Loop(name=name, step=step, interval_seconds=interval_seconds))


def stop() -> None:
    _stop.set()


def running() -> bool:
    """True while this process's background thread is alive."""
    return _thread is not None and _thread.is_alive()


def stop_and_wait(timeout: Optional[float] = SHUTDOWN_WAIT_SECONDS) -> bool:
    """Ask the loop to stop and wait for the step it is in (``None``: however long it takes);
    True when the thread has ended."""
    _stop.set()
    thread = _thread
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(timeout)
    if thread.is_alive():
        log.warning("background loop still busy after %.0f s; stopping without it", timeout or 0)
        return False
    return True


def run_due_loops(app: Flask, now: float | None = None,
                  on_step: Optional[Callable[[str], None]] = None) -> list[str]:
    """Run every loop whose time has come (one pass). Returns the names run. ``on_step(name)``
    is called before each step (the runner's heartbeat)."""
    ran = []
    now = time.monotonic() if now is None else now
    for loop in list(LOOPS):
        if _stop.is_set():
            break
        if now < loop.next_run:
            continue
        if on_step is not None:
            on_step(loop.name)
        started, ok = time.monotonic(), False
        try:
            with app.app_context():
                loop.step(app)
            ok = True
        except Exception:  # noqa: BLE001 - one failing loop never stops the others
            log.exception("background loop %s failed", loop.name)
        finally:
            _record_step(app, loop.name, ok, time.monotonic() - started)
            try:
                with app.app_context():
                    interval = float(loop.interval_seconds(app))
            except Exception:  # noqa: BLE001
                interval = 60.0
            loop.next_run = time.monotonic() + max(5.0, interval)
            ran.append(loop.name)
    return ran


def _record_step(app: Flask, name: str, ok: bool, seconds: float) -> None:
    """The step's outcome for /metrics, which the web processes read from the database."""
    from ..extensions import db
    from .metrics import record_loop_step

    with app.app_context():
        record_loop_step(db.engine, name, ok=ok, duration_seconds=seconds)


def _runner(app: Flask) -> None:
    from ..extensions import db

    with app.app_context():
        engine = db.engine
    lock = LeaderLock(engine, LEADER_LOCK)
    heartbeat = Heartbeat(engine, _kind)
    heartbeat.start()
    while not _stop.is_set():
        try:
            leader = lock.try_acquire()
            heartbeat.beat(leader=leader)
            if leader and run_due_loops(app, on_step=lambda name: heartbeat.beat(leader=True, step=name)):
                heartbeat.beat(leader=True)
        except Exception:  # noqa: BLE001
            log.exception("background runner error")
        _stop.wait(PASS_SECONDS)
    lock.release()
    heartbeat.forget()


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
    """The runner in a thread of a web process (``create_app``, unless ``BACKGROUND_JOBS`` is off)."""
    global _started, _thread
    if _started:
        return
    _started = True
    _install_sigterm_handler()
    atexit.register(stop_and_wait)
    _thread = threading.Thread(target=_runner, args=(app,), name=THREAD_NAME, daemon=True)
    _thread.start()


def run_in_foreground(app: Flask, poll_seconds: float = 0.5,
                      on_signal: Optional[Callable[[], None]] = None) -> bool:
    """The worker process: run the runner until SIGTERM or SIGINT, then let the step under way
    finish and return. True when a signal stopped it, False when the runner ended by itself.

    The signal handler only takes note (it touches no lock: the main thread may hold one when the
    signal comes); the main thread, which waits here, calls ``on_signal()``, asks the runner to
    stop and waits for it, however long the step takes. A second signal meanwhile ends the
    process at once."""
    global _started, _thread, _kind
    if _started:
        raise RuntimeError("the background runner already runs in this process")
    _started = True
    _kind = "worker"
    received: list[int] = []

    def _take_note(signum, frame):
        received.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _take_note)
    _thread = threading.Thread(target=_runner, args=(app,), name=THREAD_NAME, daemon=True)
    _thread.start()
    while not received and _thread.is_alive():
        _thread.join(poll_seconds)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    if received and on_signal is not None:
        on_signal()
    stop_and_wait(None)
    return bool(received)
