"""Heartbeats of the processes that run the background runner (``services/background.py``).

On every pass (every few seconds) and at the start of every loop step, the runner writes its
process's row in ``worker_heartbeats`` (host name + process id) with the *database's* clock, so
the clocks of the containers never matter: whether it holds the leader lock (runs the loops) or
stands by, and the step it is in. A process that stops cleanly deletes its row; rows that a
killed process left behind are deleted a day later by the next runner that starts.

``health`` is what the worker container's health check (``python -m backend.app.worker
--check``) asks: is a runner on this host alive? Healthy while one of the host's rows was
written within ``STALE_AFTER_SECONDS``, or a step is under way that started less than
``STEP_LIMIT_SECONDS`` ago (an import of a big batch, scheduled reports being generated, keep
the runner in one step for minutes).

Only SQLAlchemy is imported here: the health check runs this without starting the app. Writing
uses short transactions of its own on the engine, never the caller's session, and a failure (the
database away, the table not there yet) is logged once and never stops the runner.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

STALE_AFTER_SECONDS = 60
STEP_LIMIT_SECONDS = 30 * 60
FORGET_AFTER_SECONDS = 24 * 3600


def identity() -> tuple[str, int]:
    """This process: (host name, process id). In a container the host name is the container's."""
    return socket.gethostname(), os.getpid()


class Heartbeat:
    """The heartbeat row of this process's runner."""

    def __init__(self, engine: Engine, kind: str):
        self.engine = engine
        self.kind = kind
        self.hostname, self.pid = identity()
        self._failing = False

    def start(self) -> None:
        """A fresh row for this process (a restarted container may reuse a host name and process
        id), and rows nobody wrote for a day deleted."""
        self._write("DELETE FROM worker_heartbeats WHERE (hostname = :hostname AND pid = :pid) "
                    "OR beat_at < now() - make_interval(secs => :forget)", forget=FORGET_AFTER_SECONDS)

    def beat(self, *, leader: bool, step: Optional[str] = None) -> None:
        self._write(
            "INSERT INTO worker_heartbeats (hostname, pid, kind, started_at, beat_at, leader, step) "
            "VALUES (:hostname, :pid, :kind, now(), now(), :leader, :step) "
            "ON CONFLICT (hostname, pid) DO UPDATE SET kind = excluded.kind, beat_at = now(), "
            "leader = excluded.leader, step = excluded.step",
            kind=self.kind, leader=leader, step=step)

    def forget(self) -> None:
        """This process stops: its row goes."""
        self._write("DELETE FROM worker_heartbeats WHERE hostname = :hostname AND pid = :pid")

    def _write(self, sql: str, **params) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text(sql), {"hostname": self.hostname, "pid": self.pid, **params})
        except Exception as exc:  # noqa: BLE001 - a heartbeat never stops the runner
            if not self._failing:
                log.warning("background heartbeat not written: %s", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("background heartbeat written again")
        self._failing = False


@dataclass(frozen=True)
class Beat:
    hostname: str
    pid: int
    kind: str
    leader: bool
    step: Optional[str]
    age_seconds: float   # since its last heartbeat, by the database's clock

    @property
    def alive(self) -> bool:
        return self.age_seconds <= STALE_AFTER_SECONDS or (
            self.step is not None and self.age_seconds <= STEP_LIMIT_SECONDS)

    def describe(self) -> str:
        who = f"{self.kind} process {self.pid} on {self.hostname}"
        if self.step and self.leader:
            return f"{who} runs the background loops, in step {self.step} for {self.age_seconds:.0f} s"
        doing = "runs the background loops" if self.leader else "stands by (another process runs the loops)"
        return f"{who} {doing}, last heartbeat {self.age_seconds:.0f} s ago"


def beats(engine: Engine, hostname: Optional[str] = None) -> list[Beat]:
    """The heartbeat rows (of one host), most recent first."""
    sql = ("SELECT hostname, pid, kind, leader, step, extract(epoch FROM now() - beat_at) "
           "FROM worker_heartbeats" + (" WHERE hostname = :hostname" if hostname is not None else "")
           + " ORDER BY beat_at DESC, pid")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"hostname": hostname}).all()
    return [Beat(h, pid, kind, bool(leader), step, max(0.0, float(age))) for h, pid, kind, leader, step, age in rows]


def health(engine: Engine, hostname: str) -> tuple[bool, str]:
    """(healthy, one line saying why) for the runner(s) on ``hostname``."""
    mine = beats(engine, hostname)
    if not mine:
        return False, f"no background runner on {hostname} has written a heartbeat (not started yet, or stopped)"
    alive = [b for b in mine if b.alive]
    if not alive:
        return False, f"{mine[0].describe()}: stale (more than {STALE_AFTER_SECONDS} s)"
    best = next((b for b in alive if b.leader), alive[0])
    message = best.describe()
    if not best.leader:
        leaders = [b for b in beats(engine) if b.leader and b.alive]
        message += (f"; the loops run in {leaders[0].kind} process {leaders[0].pid} on {leaders[0].hostname}"
                    if leaders else "; no process has run the loops recently")
    return True, message
