"""Upgrading an installation: a database at the first released schema (the initial migration, the
oldest a real installation can have) with data in it is brought to head by two app processes that
start at the same moment (migrations under the advisory lock); every row is still there, the user
logs in; and every migration downgrades and upgrades again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.deploy.forkserver import ForkServer
from tests.deploy.pg import fresh_database

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "containers" / "backupchecks" / "src"
FIRST = "6b124269984d"  # the initial schema of the first release
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)

pytestmark = pytest.mark.slow

_SCRIPT = """
import json, sys
from backend.app import create_app
action, url = sys.argv[1], sys.argv[2]
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x" * 40,
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": action == "start", "WTF_CSRF_ENABLED": False})
with app.app_context():
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text
    from backend.app.extensions import db
    if action == "upgrade":
        upgrade(revision=sys.argv[3])
    elif action == "downgrade":
        downgrade(revision=sys.argv[3])
    elif action == "hash":
        from backend.app.services.accounts import hash_password
        print(json.dumps(hash_password(sys.argv[3])))
        sys.exit(0)
    elif action == "login":
        r = app.test_client().post("/auth/login", data={"username": sys.argv[3], "password": sys.argv[4]})
        print(json.dumps([r.status_code, r.headers.get("Location")]))
        sys.exit(0)
    print(json.dumps(db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()))
"""


def _env():
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}"}


def _sa(url):
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


_FORKS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def fork_server():
    """The one-step app processes are forked from one interpreter that imported the app once
    (tests/deploy/forkserver.py); the two that start at the same moment are plain processes."""
    with ForkServer(_env(), REPO) as server:
        _FORKS["server"] = server
        yield server
        _FORKS.clear()


def _app(action, url, *args):
    done = _FORKS["server"].run(_SCRIPT, _env(), REPO, (action, _sa(url), *args), timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(SRC / "backend" / "app" / "migrations"))
    (head,) = ScriptDirectory.from_config(cfg).get_heads()
    return head


def _insert(conn, table: str, values: dict) -> int:
    """Insert a row at the old schema: the given values, and a plain value for every other NOT NULL
    column without a default (so the test does not depend on that schema's every column)."""
    present = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                          (table,))}
    cols = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                        "AND is_nullable = 'NO' AND column_default IS NULL", (table,)).fetchall()
    row = {k: v for k, v in values.items() if k in present or k in ("status", "message")}
    for name, kind in cols:
        if name in row or name == "id":
            continue
        row[name] = {"boolean": False, "integer": 0, "json": json.dumps(None), "text": "",
                     "timestamp with time zone": T0}.get(kind, "")
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks}) RETURNING id", list(row.values())).fetchone()[0]


@pytest.fixture
def database():
    yield from fresh_database(f"backupchecks_upgrade_{os.getpid()}")


def test_two_processes_upgrade_a_first_release_database_and_keep_every_row(database):
    import psycopg

    assert _app("upgrade", database, FIRST) == FIRST
    password_hash = _app("hash", database, "Upgrade-Pass-2026!")
    with psycopg.connect(database, autocommit=True) as conn:
        user = _insert(conn, "users", {"username": "veteran", "password_hash": password_hash, "roles": "admin",
                                       "theme": "auto", "is_active_user": True, "created_at": T0, "updated_at": T0})
        customers = [_insert(conn, "customers", {"name": f"Customer {i}", "active": True, "created_at": T0,
                                                 "updated_at": T0}) for i in range(3)]
        jobs, runs = [], []
        for c in customers:
            for j in range(2):
                job = _insert(conn, "jobs", {"customer_id": c, "sender": "backup@example.test",
                                             "job_name": f"Job {c}-{j}", "software": "Veeam Backup & Replication",
                                             "identity_key": f"k{c}-{j}", "archived": False, "schedule_kind": "auto",
                                             "created_at": T0, "updated_at": T0})
                jobs.append(job)
                for r in range(4):
                    runs.append(_insert(conn, "job_runs", {
                        "job_id": job, "status": ["Success", "Failed", "Warning", "Success"][r],
                        "started_at": T0 + timedelta(days=r), "message": f"run {r} of job {job}",
                        "created_at": T0, "updated_at": T0}))
        mail = _insert(conn, "mail_messages", {"source": "graph", "from_address": "backup@example.test",
                                               "subject": "Backup job: Job 1-0 (Failed)", "imported_at": T0,
                                               "parsed": True, "is_report": True, "raw": b"Subject: x\r\n\r\nbody"})

    # Two app processes start at once on the old database: one migrates, the other waits for the lock.
    procs = [subprocess.Popen([sys.executable, "-c", _SCRIPT, "start", _sa(database)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
        assert json.loads(out.strip().splitlines()[-1]) == _head()

    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 6
        assert conn.execute("SELECT id, status, message FROM job_runs ORDER BY id").fetchall() == [
            (run, ["Success", "Failed", "Warning", "Success"][i % 4], f"run {i % 4} of job {jobs[i // 4]}")
            for i, run in enumerate(runs)]
        assert conn.execute("SELECT subject, raw FROM mail_messages WHERE id = %s", (mail,)).fetchone() == (
            "Backup job: Job 1-0 (Failed)", b"Subject: x\r\n\r\nbody")
        assert conn.execute("SELECT username FROM users WHERE id = %s", (user,)).fetchone() == ("veteran",)
    status, location = _app("login", database, "veteran", "Upgrade-Pass-2026!")
    assert status == 302 and "/auth/login" not in (location or "")


def test_every_migration_downgrades_and_upgrades_again(database):
    head = _head()
    assert _app("upgrade", database, "head") == head
    assert _app("downgrade", database, FIRST) == FIRST
    assert _app("upgrade", database, "head") == head
