"""`python -m backend.app.main` serves the app on APP_PORT (what `make run` does)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
