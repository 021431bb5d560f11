"""Cross-process locks: PostgreSQL advisory locks, a file lock on SQLite.

``hold_lock`` blocks until the lock is free (migrations at start-up);
``lock_for_transaction`` holds one until the caller's transaction ends (first-run setup);
``LeaderLock`` tries without blocking and keeps the lock on its own
connection for as long as the process runs its background loop.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from typing import Iterator, Optional

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _sqlite_lock_path(engine: Engine, name: str) -> str:
    db_path = engine.url.database or ""
    base = os.path.dirname(os.path.abspath(db_path)) if db_path and db_path != ":memory:" else "/tmp"
    return os.path.join(base, f".lock-{name}")


@contextlib.contextmanager
def hold_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold a blocking cross-process lock for the duration of the block."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(name)})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                conn.commit()
    else:
        with open(_sqlite_lock_path(engine, name), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def lock_for_transaction(session, name: str) -> None:
    """Hold a blocking lock on ``name`` until ``session`` commits or rolls back.

    On PostgreSQL a transaction-level advisory lock (``pg_advisory_xact_lock``): a
    check-then-insert under it is atomic across workers and containers. SQLite (a single
    development process) has no such lock; there this does nothing."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})


class LeaderLock:
    """A non-blocking lock a process keeps while it runs a background loop."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self._conn: Optional[Connection] = None
        self._fh = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fh is not None

    def try_acquire(self) -> bool:
        if self.held:
            if self._conn is not None:
                try:  # still alive? (a dropped connection loses the lock)
                    self._conn.execute(text("SELECT 1"))
                    self._conn.commit()
                    return True
                except Exception:  # noqa: BLE001
                    self.release()
            else:
                return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(self.name)}).scalar()
                conn.commit()
            except Exception:  # noqa: BLE001
                conn.close()
                return False
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        fh = open(_sqlite_lock_path(self.engine, self.name), "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(self.name)})
                self._conn.commit()
            except Exception:  # noqa: BLE001
                pass
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None
        if self._fh is not None:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None
