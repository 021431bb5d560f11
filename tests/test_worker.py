"""The runner's heartbeat and the worker's health check (`python -m backend.app.worker --check`),
in this process on the test database. Ages are set with the database's clock (``now() - …``),
which is also the clock the heartbeat and the check use.

The worker as a real process, next to two web processes: tests/deploy/test_scale_out.py."""
from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import text

from backend.app.extensions import db
from backend.app.services import background
from backend.app.services.heartbeat import STALE_AFTER_SECONDS, Heartbeat, beats, health


def _age(seconds: int, hostname: str | None = None) -> None:
    """Make the heartbeat rows (of one host) ``seconds`` old."""
    where = " WHERE hostname = :h" if hostname else ""
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE worker_heartbeats SET beat_at = now() - make_interval(secs => :s)" + where),
                     {"s": seconds, "h": hostname})


def _insert(hostname: str, pid: int, *, leader: bool, kind: str = "worker", age: int = 0) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO worker_heartbeats (hostname, pid, kind, started_at, beat_at, leader) "
                          "VALUES (:h, :p, :k, now(), now() - make_interval(secs => :a), :l)"),
                     {"h": hostname, "p": pid, "k": kind, "a": age, "l": leader})


def test_a_fresh_heartbeat_is_healthy_a_stale_one_is_not_and_a_stopped_runner_leaves_none(app):
    host = socket.gethostname()
    heartbeat = Heartbeat(db.engine, "worker")
    heartbeat.start()
    assert health(db.engine, host) == (False, f"no background runner on {host} has written a heartbeat "
                                              "(not started yet, or stopped)")

    heartbeat.beat(leader=True)
    ok, message = health(db.engine, host)
    assert ok and re.search(r"^worker process \d+ on .+ runs the background loops, last heartbeat \d+ s ago$",
                            message), message

    _age(STALE_AFTER_SECONDS + 30)
    ok, message = health(db.engine, host)
    assert not ok and "stale" in message, message

    heartbeat.beat(leader=True)
    heartbeat.forget()
    assert beats(db.engine) == []


def test_a_long_step_keeps_the_runner_healthy_for_a_while_but_not_for_ever(app):
    host = socket.gethostname()
    heartbeat = Heartbeat(db.engine, "worker")
    heartbeat.beat(leader=True, step="mail-import")
    _age(10 * 60)  # an import of a big batch for ten minutes
    ok, message = health(db.engine, host)
    assert ok and re.search(r"runs the background loops, in step mail-import for 6\d\d s$", message), message

    _age(31 * 60)  # stuck
    assert health(db.engine, host)[0] is False


def test_a_standby_runner_is_healthy_and_says_which_process_runs_the_loops(app):
    host = socket.gethostname()
    Heartbeat(db.engine, "worker").beat(leader=False)
    _insert("other-container", 7, leader=True)
    ok, message = health(db.engine, host)
    assert ok, message
    assert "stands by (another process runs the loops)" in message
    assert message.endswith("the loops run in worker process 7 on other-container")

    _age(STALE_AFTER_SECONDS + 30, "other-container")
    ok, message = health(db.engine, host)
    assert ok and message.endswith("no process has run the loops recently"), message
    # another host's heartbeat never makes this host healthy
    assert health(db.engine, "no-runner-here")[0] is False


def test_start_replaces_the_own_row_and_deletes_rows_left_for_a_day(app):
    host = socket.gethostname()
    heartbeat = Heartbeat(db.engine, "worker")
    heartbeat.beat(leader=True, step="reports")
    _insert("crashed-container", 8, leader=False, age=25 * 3600)
    _insert("recent-container", 9, leader=False, age=3600)
    heartbeat.start()
    assert [(b.hostname, b.pid) for b in beats(db.engine)] == [("recent-container", 9)]
    heartbeat.beat(leader=False)
    assert [(b.hostname, b.kind, b.leader, b.step) for b in beats(db.engine, host)] == [(host, "worker", False, None)]


def test_a_heartbeat_that_cannot_be_written_never_stops_the_runner(app, caplog):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none", poolclass=NullPool)
    heartbeat = Heartbeat(dead, "worker")
    with caplog.at_level("WARNING", logger="backend.app.services.heartbeat"):
        heartbeat.beat(leader=True)
        heartbeat.beat(leader=True)
    assert [r.getMessage() for r in caplog.records] == ["background heartbeat not written: OperationalError"]


def test_the_runner_beats_before_each_step(app, monkeypatch):
    ran = []
    loops = [background.Loop("first", lambda a: ran.append("first"), lambda a: 60.0),
             background.Loop("second", lambda a: ran.append("second"), lambda a: 60.0)]
    monkeypatch.setattr(background, "LOOPS", loops)
    assert background.run_due_loops(app, on_step=lambda name: ran.append(f"beat {name}")) == ["first", "second"]
    assert ran == ["beat first", "first", "beat second", "second"]


@pytest.fixture
def check_env(app):
    from sqlalchemy.engine import make_url

    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=False)
    return {"DATABASE_URL": url}


def test_the_health_check_command_exits_0_only_while_this_host_has_a_fresh_heartbeat(app, check_env, capsys):
    from backend.app.worker import check

    assert check(check_env) == 1
    assert capsys.readouterr().out.startswith("unhealthy: no background runner on ")

    Heartbeat(db.engine, "worker").beat(leader=True)
    assert check(check_env) == 0
    assert capsys.readouterr().out.startswith("healthy: worker process ")

    _age(STALE_AFTER_SECONDS + 30)
    assert check(check_env) == 1


def test_the_health_check_without_a_database_is_unhealthy(capsys):
    from backend.app.worker import check

    assert check({}) == 1
    assert capsys.readouterr().out == "unhealthy: no database configured (DATABASE_URL, or POSTGRES_*/DB_*)\n"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert check({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/none"}) == 1
    assert capsys.readouterr().out == "unhealthy: the database did not answer (OperationalError)\n"
