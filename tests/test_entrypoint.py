"""`python -m backend.app.main` serves the app on APP_HOST:APP_PORT (what `make run` does),
and stops cleanly on Ctrl+C or SIGTERM."""
import os
import signal
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


def start_server(tmp_path, port: int, **env_vars) -> subprocess.Popen:
    """The entry point on SQLite in tmp_path; returns once /health answers on APP_HOST."""
    env = dict(os.environ, PYTHONPATH=str(SRC), APP_PORT=str(port), APP_INSTANCE_PATH=str(tmp_path), **env_vars)
    for var in ("DATABASE_URL", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT"):
        if var not in env_vars:
            env.pop(var, None)  # the embedded default: SQLite in the instance folder
    if "APP_HOST" not in env_vars:
        env.pop("APP_HOST", None)
    # A shell that starts a job in the background makes it ignore Ctrl+C; a terminal does not.
    proc = subprocess.Popen([sys.executable, "-m", "backend.app.main"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    host = env_vars.get("APP_HOST", "127.0.0.1")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as r:
                assert r.status == 200
            return proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stdout.read().decode()[-2000:])
            assert time.monotonic() < deadline, "the app did not start within 60 s"
            time.sleep(0.3)


def stop_server(proc: subprocess.Popen, sig: signal.Signals) -> str:
    """Send ``sig``; the process must exit by itself (status 0) within 30 s (a background step that
    is under way finishes first; the machine may be busy). Returns its output."""
    proc.send_signal(sig)
    try:
        status = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        status = None
        proc.kill()
        proc.wait()
    output = proc.stdout.read().decode()
    assert status == 0, f"exit status {status}; output:\n{output[-3000:]}"
    return output


def test_module_entry_point_serves_setup_on_app_port(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port, BACKGROUND_JOBS="0")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:  # follows to /auth/setup
            assert r.url.endswith("/auth/setup") and "Create the first admin" in r.read().decode()
        assert (tmp_path / "backupchecks.sqlite3").exists()
    finally:
        stop_server(proc, signal.SIGTERM)


def test_sigterm_stops_the_server_after_the_background_loop(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port, BACKGROUND_JOBS="1")  # as with `make run`

    output = stop_server(proc, signal.SIGTERM)

    assert f"on http://127.0.0.1:{port}/ (Ctrl+C stops it)" in output  # this machine only, by default
    assert "the background loop finishes its current step first" in output
    assert output.rstrip().endswith("Backupchecks stopped.")


def test_app_host_chooses_the_address_and_ctrl_c_stops_the_server(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port, APP_HOST="127.0.0.2")
    try:
        with pytest.raises(OSError):  # not on 127.0.0.1 any more
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        output = stop_server(proc, signal.SIGINT)

    assert f"on http://127.0.0.2:{port}/" in output and "Backupchecks stopped." in output


@pytest.fixture
def pg_database():
    from tests.deploy.pg import fresh_database

    yield from fresh_database(f"backupchecks_entry_{os.getpid()}")


def test_on_postgresql_sigterm_frees_the_leader_lock(tmp_path, pg_database):
    """On PostgreSQL the background loop holds an advisory lock; after SIGTERM nobody holds it."""
    import psycopg

    proc = start_server(tmp_path, free_port(), BACKGROUND_JOBS="1", DATABASE_URL=pg_database)
    time.sleep(1.0)  # the background thread takes the leader lock
    output = stop_server(proc, signal.SIGTERM)
    assert "Traceback" not in output, output
    with psycopg.connect(pg_database) as conn:
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]
    assert held == 0
