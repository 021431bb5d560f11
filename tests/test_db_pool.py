"""Pooled connections: one given back a moment ago is used again without a check (an import makes one
short transaction per mail), one that has been idle is checked first and replaced when it died."""
from __future__ import annotations

import psycopg
from sqlalchemy import text

from backend.app import extensions
from backend.app.extensions import PING_AFTER_IDLE_SECONDS, db


class FakeMonotonic:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_clock(monkeypatch) -> FakeMonotonic:
    """The pool's clock, from an empty pool (no connection given back on the real clock)."""
    clock = FakeMonotonic()
    monkeypatch.setattr(extensions, "_monotonic", clock)
    db.session.remove()
    db.engine.dispose()
    return clock


def backend_pid() -> int:
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    db.session.commit()  # the connection goes back to the pool
    return pid


def test_a_connection_given_back_a_moment_ago_is_not_checked(app, monkeypatch):
    clock = fake_clock(monkeypatch)
    pings = []
    dialect = db.engine.dialect
    real_ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    backend_pid()

    clock.now += PING_AFTER_IDLE_SECONDS / 2
    backend_pid()
    assert pings == []

    clock.now += PING_AFTER_IDLE_SECONDS + 1
    backend_pid()
    assert len(pings) == 1


def test_an_idle_connection_that_died_is_replaced_before_use(app, monkeypatch):
    clock = fake_clock(monkeypatch)
    first = backend_pid()
    # The database ends that connection while it waits in the pool (a restart, an idle timeout).
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))

    clock.now += PING_AFTER_IDLE_SECONDS + 1
    assert backend_pid() != first  # no error: the dead connection was replaced
