"""`python -m backend.app.main` serves the app on APP_PORT (what `make run` does)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "containers/backupchecks/src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_entry_point_serves_setup_on_app_port(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(SRC), APP_PORT=str(port), APP_INSTANCE_PATH=str(tmp_path),
               BACKGROUND_JOBS="0")
    for var in ("DATABASE_URL", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT"):
        env.pop(var, None)  # the embedded default: SQLite in the instance folder
    proc = subprocess.Popen([sys.executable, "-m", "backend.app.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.time() < deadline, "the app did not start within 60 s"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:  # follows to /auth/setup
            assert r.url.endswith("/auth/setup") and "Create the first admin" in r.read().decode()
        assert (tmp_path / "backupchecks.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serve(env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(env, PYTHONPATH=str(SRC), APP_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "backend.app.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(200):  # up to ~60 s to start (first start migrates)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                assert r.status == 200
            return proc, port
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the app did not start within 60 s")


def _stops_on_sigterm(proc: subprocess.Popen, port: int) -> str:
    import signal

    time.sleep(1.0)  # the background thread has taken the leader lock and runs its loops
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("SIGTERM did not stop the server within 10 s")
    output = proc.stdout.read().decode()
    assert code == 0, output
    assert "Traceback" not in output, output
    with pytest.raises(OSError):  # nothing listens any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    return output


def _base_env(tmp_path) -> dict:
    env = dict(os.environ, APP_INSTANCE_PATH=str(tmp_path), BACKGROUND_JOBS="1")
    for var in ("DATABASE_URL", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT"):
        env.pop(var, None)
    return env


def test_make_run_server_stops_on_sigterm_with_background_jobs(tmp_path):
    """What `make run` starts (embedded default database, background loops on) ends on `kill PID`."""
    proc, port = _serve(_base_env(tmp_path))
    output = _stops_on_sigterm(proc, port)
    assert "waiting for the background step" in output


@pytest.fixture
def pg_database():
    from tests.deploy.pg import fresh_database

    yield from fresh_database(f"backupchecks_entry_{os.getpid()}")


def test_server_on_postgresql_stops_on_sigterm_and_frees_the_leader_lock(tmp_path, pg_database):
    import psycopg

    env = dict(_base_env(tmp_path), DATABASE_URL=pg_database)
    proc, port = _serve(env)
    _stops_on_sigterm(proc, port)
    with psycopg.connect(pg_database) as conn:
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]
    assert held == 0
