"""The JSON API under the image's gunicorn (two worker processes) on PostgreSQL: the rate limit is
one count per token across the workers (kept in the database), and docs/api-examples.sh works
against the running instance."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from tests.clock import TEST_NOW
from tests.deploy.pg import fresh_database
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
GUNICORN_CONF = REPO_ROOT / "containers" / "backupchecks" / "gunicorn.conf.py"
SCRIPT = REPO_ROOT / "docs" / "api-examples.sh"
DB_NAME = f"backupchecks_api_gunicorn_{os.getpid()}"
LIMIT = 10

pytestmark = pytest.mark.slow
pytest.importorskip("psycopg")
pytest.importorskip("gunicorn")


@pytest.fixture
def database():
    yield from fresh_database(DB_NAME)


def _get(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _seed(database: str) -> tuple[str, str]:
    """An operator with a read-write token, a customer with a job and a failed run the night before
    TEST_NOW, written through the app's own models and token service (a second app on the same
    database); returns (token, the day to ask failures since)."""
    from backend.app import create_app
    from backend.app.extensions import db
    from backend.app.models import Customer, Job, JobRun, User
    from backend.app.services.api_tokens import create_token

    from sqlalchemy.engine import make_url

    url = make_url(database).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RUN_MIGRATIONS": False, "BACKGROUND_JOBS": False,
                      "SECRET_KEY": secrets.token_hex(32), "TESTING": True})
    with app.app_context():
        user = User(username="ops-script", password_hash="!", is_active_user=True)
        user.role_list = ["operator"]
        customer = Customer(name="Northwind Demo")
        db.session.add_all([user, customer])
        db.session.flush()
        job = Job(customer_id=customer.id, sender="veeam@northwind.test", job_name="Daily VM Backup",
                  software="Veeam", identity_key="veeam@northwind.test|daily vm backup|veeam")
        db.session.add(job)
        db.session.flush()
        started = TEST_NOW - timedelta(hours=10)
        db.session.add(JobRun(job_id=job.id, status="Failed", effective_status="Failed", started_at=started,
                              message="vm01: disk full"))
        secret = create_token(user, "examples").secret
        db.session.commit()
        db.engine.dispose()
    return secret, (TEST_NOW - timedelta(days=1)).date().isoformat()


def test_the_rate_limit_is_shared_by_the_workers_and_the_examples_work(database, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "POSTGRES_", "DB_", "BACKUPCHECKS_")) and k not in (
               "DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS")}
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=secrets.token_hex(32),
               DATABASE_URL=database, APP_PORT=str(port), APP_INSTANCE_PATH=str(tmp_path / "instance"),
               BACKGROUND_JOBS="false", GUNICORN_WORKERS="2", GUNICORN_THREADS="2", GUNICORN_KEEPALIVE="0",
               GUNICORN_GRACEFUL_TIMEOUT="10", HOME=str(tmp_path), API_RATE_LIMIT_PER_MINUTE=str(LIMIT))
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                                 "backend.app:create_app()"], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    output = log_path.read_text
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while output().count("database schema is up to date") < 2:  # both workers have booted
            assert proc.poll() is None and time.monotonic() < deadline, output()
            time.sleep(0.2)
        token, since = _seed(database)

        # The examples script against the running instance (3 requests of this token's minute).
        if shutil.which("curl") and shutil.which("jq"):
            script_env = dict(env, BACKUPCHECKS_URL=base, BACKUPCHECKS_TOKEN=token, BACKUPCHECKS_SINCE=since)
            result = subprocess.run(["bash", str(SCRIPT)], env=script_env, capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Northwind Demo" in result.stdout and "vm01: disk full" in result.stdout
            assert "Marked run 1 reviewed." in result.stdout
            used = 3
        else:
            used = 0

        # Start in a fresh minute when this one has little time left (the server's clock says so).
        status, headers = _get(f"{base}/api/v1/customers", token)
        assert status == 200, output()
        used += 1
        if int(headers["X-RateLimit-Reset"]) < 20:
            time.sleep(int(headers["X-RateLimit-Reset"]) + 1)
            used = 0
        # Thirty requests on fresh connections, in parallel, to whichever worker: one count for the token.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _get(f"{base}/api/v1/customers", token), range(30)))
        statuses = [s for s, _ in answers]
        assert statuses.count(200) == LIMIT - used, statuses
        assert statuses.count(429) == 30 - (LIMIT - used), statuses
        assert all(h.get("Retry-After") for s, h in answers if s == 429)
        assert json.loads(urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=10).read())["openapi"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output(), output()
    assert token not in output()
