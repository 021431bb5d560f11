"""End to end: gunicorn with 2 workers on PostgreSQL imports a fake Microsoft 365 mailbox.

The real app under the image's gunicorn configuration (APP_ENV=production, BACKGROUND_JOBS on),
its own database, environment pointed at a FakeGraph (HTTPS on 127.0.0.1, its test CA trusted via
REQUESTS_CA_BUNDLE) holding sample reports. Automatic import is switched on in system_settings
before start-up; the background loop (one process across both workers) runs the first cycle right
away. Checks: every mail imported exactly once and moved to the processed folder, known jobs' mails
became runs, /health is ok, and /, /inbox and /settings load for an admin logged in over HTTP.
Skips without PostgreSQL; fails under CI=true.
"""
from __future__ import annotations

import http.cookiejar
from html import escape as html_escape
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.pg import fresh_database

from tests.test_importer import corpus_mails
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
GUNICORN_CONF = REPO_ROOT / "containers" / "backupchecks" / "gunicorn.conf.py"
DB_NAME = f"backupchecks_e2e_import_{os.getpid()}"  # one per test process: checkouts sharing a server never collide
N_MAILS = 40
ADMIN, ADMIN_PASSWORD = "e2e-admin", "e2e-" + secrets.token_hex(12)

pytestmark = pytest.mark.slow
psycopg = pytest.importorskip("psycopg")
pytest.importorskip("gunicorn")


@pytest.fixture
def database():
    yield from fresh_database(DB_NAME)


@pytest.fixture
def fake_mailbox():
    from tests.fakes.fake_graph import FakeGraph

    mails = corpus_mails(N_MAILS, tag="e2e")
    with FakeGraph([(m.raw, m.received) for m in mails]) as fake:
        fake.throttle(nth=2, retry_after=1, method="GET", path_contains="/messages")
        yield fake, mails


def _app_env(database: str, fake, tmp_path: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "POSTGRES_", "DB_", "PYTEST_")) and k not in (
               "DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS", "CURL_CA_BUNDLE")}
    env.update(fake.env())
    env.update(
        PYTHONPATH=str(SRC),
        APP_ENV="production",
        APP_SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=database,
        APP_PORT=str(port),
        APP_INSTANCE_PATH=str(tmp_path / "instance"),
        APP_VERSION_FILE=str(REPO_ROOT / "version.txt"),
        SESSION_COOKIE_SECURE="false",   # plain HTTP to 127.0.0.1 in this test
        BACKGROUND_JOBS="true",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        GUNICORN_GRACEFUL_TIMEOUT="15",
        HOME=str(tmp_path),
    )
    return env


def _flask(env: dict, *args: str, stdin: str | None = None, cwd: Path) -> str:
    res = subprocess.run([sys.executable, "-m", "flask", "--app", "backend.app", *args], env=env, cwd=cwd,
                         input=stdin, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"flask {' '.join(args)}: {res.stdout}\n{res.stderr}"
    return res.stdout


def _prepare(env: dict, database: str, mails, cwd: Path) -> set:
    """Migrate, create the admin, switch automatic import on, and create jobs for some identities."""
    _flask(env, "db", "upgrade", cwd=cwd)
    _flask(env, "create-user", ADMIN, "--role", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n", cwd=cwd)
    script = r"""
import json, sys
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import Customer, Job
from backend.app.services.ingest import job_identity_key
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False})
with app.app_context():
    s = get_settings()
    s.auto_import_enabled, s.import_interval_minutes, s.import_batch_size = True, 1, 100
    customer = Customer(name="E2E Customer")
    db.session.add(customer)
    db.session.flush()
    for sender, job_name, software in json.load(sys.stdin):
        db.session.add(Job(customer_id=customer.id, sender=sender, job_name=job_name, software=software,
                           identity_key=job_identity_key(sender, job_name, software)))
    db.session.commit()
"""
    identities = sorted({m.identity for m in mails if m.identity})
    known = set(identities[::2])
    res = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, input=json.dumps(sorted(known)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return known


def _scalar(database: str, sql: str):
    with psycopg.connect(database, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_gunicorn_two_workers_import_every_mail_once_and_pages_load(database, fake_mailbox, tmp_path):
    fake, mails = fake_mailbox
    port = _free_port()
    env = _app_env(database, fake, tmp_path, port)
    known = _prepare(env, database, mails, tmp_path)
    expected_runs = sum(1 for m in mails if m.identity in known)
    assert 0 < expected_runs < N_MAILS

    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "backend.app:create_app()"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    output = lambda: log_path.read_text()  # noqa: E731
    base = f"http://127.0.0.1:{port}"
    try:
        # the automatic importer (one process of the two) empties the incoming folder
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, output()
            if len(fake.messages_in(fake.processed)) == N_MAILS:
                break
            time.sleep(0.3)
        assert len(fake.messages_in(fake.processed)) == N_MAILS, output()
        assert fake.messages_in(fake.incoming) == []

        # every mail exactly once
        deadline = time.monotonic() + 10
        while _scalar(database, "SELECT count(*) FROM mail_messages") < N_MAILS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _scalar(database, "SELECT count(*) FROM mail_messages") == N_MAILS
        assert _scalar(database, "SELECT count(DISTINCT internet_message_id) FROM mail_messages") == N_MAILS
        assert _scalar(database, "SELECT count(DISTINCT source_id) FROM mail_messages WHERE source = 'graph'") == N_MAILS
        assert _scalar(database, "SELECT count(*) FROM job_runs") == expected_runs
        assert _scalar(database, "SELECT count(*) FROM mail_messages WHERE state = 'inbox'") == N_MAILS - expected_runs
        # the cycle writes its counts when it ends, just after its last move: wait for that
        deadline = time.monotonic() + 10
        while (_scalar(database, "SELECT count(*) FROM import_cycles WHERE state = 'running'")
               and time.monotonic() < deadline):
            time.sleep(0.2)
        assert _scalar(database, "SELECT coalesce(sum(new), 0) FROM import_cycles") == N_MAILS
        assert _scalar(database, "SELECT count(*) FROM import_cycles WHERE state = 'failed'") == 0
        assert len(fake.moves) == N_MAILS, "each mail moved once"
        assert [r.status for r in fake.graph_requests].count(429) == 1

        with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"

        # log in over HTTP with the CSRF token, then the pages load
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        html = opener.open(f"{base}/auth/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|name="csrf-token" content="([^"]+)"', html)
        assert token, html[:500]
        form = urllib.parse.urlencode({"username": ADMIN, "password": ADMIN_PASSWORD,
                                       "csrf_token": token.group(1) or token.group(2)}).encode()
        no_redirect = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
        try:
            no_redirect.open(f"{base}/auth/login", data=form, timeout=10)
            pytest.fail("login did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302 and "/auth/login" not in exc.headers["Location"], exc.read()[:500]
        for path in ("/", "/inbox", "/settings"):
            with opener.open(f"{base}{path}", timeout=15) as resp:
                body = resp.read().decode("utf-8", "replace")
                assert resp.status == 200 and urllib.parse.urlsplit(resp.geturl()).path == path, (path, resp.geturl())
                assert ADMIN in body
        inbox = opener.open(f"{base}/inbox", timeout=15).read().decode("utf-8", "replace")
        waiting = [m for m in mails if m.identity is not None and m.identity not in known]
        assert waiting and all(html_escape(m.job_name, quote=True) in inbox for m in waiting), "Inbox lists them"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output(), output()
