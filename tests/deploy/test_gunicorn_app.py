"""The real app under the image's gunicorn configuration, on PostgreSQL.

What the container does, without Docker: `gunicorn --config gunicorn.conf.py
"backend.app:create_app()"` with two workers and APP_ENV=production against a
fresh database. Checks: the schema is migrated exactly once, /health answers,
the first-run redirect and the version from version.txt show, exactly one
process holds the background-loop advisory lock, and SIGTERM ends everything
cleanly (exit 0, lock released).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.pg import fresh_database
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
GUNICORN_CONF = REPO_ROOT / "containers" / "backupchecks" / "gunicorn.conf.py"
VERSION = (REPO_ROOT / "version.txt").read_text().strip()
DB_NAME = f"backupchecks_gunicorn_e2e_{os.getpid()}"  # one per test process: checkouts sharing a server never collide

pytestmark = pytest.mark.slow
psycopg = pytest.importorskip("psycopg")
pytest.importorskip("gunicorn")


@pytest.fixture
def database():
    yield from fresh_database(DB_NAME)


def _advisory_locks(db_url: str, name: str = "backupchecks-background") -> int:
    """Holders of the named advisory lock (a bigint key: classid = high, objid = low 32 bits)."""
    from backend.app.services.locks import lock_key

    key = lock_key(name)
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
            (DB_NAME, high, low),
        ).fetchone()[0]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.geturl(), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode("utf-8", "replace")


def test_two_workers_on_postgresql_migrate_once_serve_and_stop_cleanly(database, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "POSTGRES_", "DB_")) and k not in (
               "DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS")}
    env.update(
        PYTHONPATH=str(SRC),
        APP_ENV="production",
        APP_SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=database,
        APP_PORT=str(port),
        APP_INSTANCE_PATH=str(tmp_path / "instance"),
        APP_VERSION_FILE=str(REPO_ROOT / "version.txt"),
        BACKGROUND_JOBS="true",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        GUNICORN_GRACEFUL_TIMEOUT="15",
        HOME=str(tmp_path),
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "backend.app:create_app()"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    output = lambda: log_path.read_text()  # noqa: E731
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        status = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, output()
            try:
                status, _, body = _get(f"{base}/health")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, output()
        assert json.loads(body)["status"] == "ok"

        # both workers have booted (and so both ran create_app) before we judge
        deadline = time.monotonic() + 30
        while output().count("database schema is up to date") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert output().count("database schema is up to date") == 2, output()
        first_revision_runs = [line for line in output().splitlines() if "Running upgrade  ->" in line]
        assert len(first_revision_runs) == 1, "the initial migration must run exactly once:\n" + output()

        status, final_url, body = _get(f"{base}/")
        assert status == 200 and final_url.endswith("/auth/setup"), (status, final_url)
        assert VERSION in body, "version.txt is shown in the page"

        # exactly one process runs the background loops (one advisory lock), steadily
        deadline = time.monotonic() + 15
        while _advisory_locks(database) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(5):
            assert _advisory_locks(database) == 1, output()
            time.sleep(0.3)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Shutting down: Master" in output()
    assert "Traceback" not in output(), output()
    assert _advisory_locks(database) == 0
    assert '"GET /health HTTP/1.1" 200' in output()
