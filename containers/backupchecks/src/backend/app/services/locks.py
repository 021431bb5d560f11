"""Cross-process locks: PostgreSQL advisory locks.

``hold_lock`` blocks until the lock is free (migrations at start-up);
``lock_for_transaction`` holds one until the caller's transaction ends (first-run setup);
``LeaderLock`` tries without blocking and keeps the lock on its own
connection for as long as the process runs its background loop.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator, Optional

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def hold_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold a blocking cross-process lock for the duration of the block."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(name)})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
            conn.commit()


def lock_for_transaction(session, name: str) -> None:
    """Hold a blocking lock on ``name`` until ``session`` commits or rolls back: a
    transaction-level advisory lock (``pg_advisory_xact_lock``), so a check-then-insert under it
    is atomic across workers and containers."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})


class LeaderLock:
    """A non-blocking lock a process keeps while it runs a background loop."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self._conn: Optional[Connection] = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            try:  # still alive? (a dropped connection loses the lock)
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception:  # noqa: BLE001
                self.release()
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
