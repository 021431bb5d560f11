"""Scaled out as the compose stack runs it, without Docker: two web processes and a worker on one database.

Two real gunicorn servers under the image's configuration (one worker each, BACKGROUND_JOBS=false,
as the stack's web service) on loopback ports, and `python -m backend.app.worker` (the stack's
worker service), all APP_ENV=production against one fresh PostgreSQL database; the mailbox is a
FakeGraph (HTTPS on 127.0.0.1, its test CA trusted through REQUESTS_CA_BUNDLE) holding sample
reports, with a job for every report's identity and automatic import switched on.

- While only the web processes run, nothing touches the mailbox, writes an import cycle or a
  heartbeat, or holds the background lock: they never start the loops. (A runner writes its first
  heartbeat as soon as its thread starts, before the first request; the checks come after a login
  and pages on both.)
- The worker imports every mail exactly once: one stored mail and one move per mail, one run per
  report, no mail with two runs. Both web processes show the same runs to one session that logged
  in on the first only (signed-cookie sessions: no sticky sessions needed).
- What the worker did (mails, runs, import cycles, the loops' last success) shows in /metrics on
  both web processes alike: it is read from the database.
- SIGTERM stops the worker (exit 0, its heartbeat and lock gone) and then the web processes.

And two workers: one runs the loops, the other stands by. SIGTERM on the first while it is inside
an import cycle (its first mailbox request held by the fake until the worker has said it is
stopping) lets the cycle finish (every mail imported, the cycle "done") before it exits 0; the
second then takes over, and stops on SIGTERM within seconds.

Waiting uses deadlines (time.monotonic) only to give up; nothing asserts a duration.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.deploy.pg import fresh_database
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
GUNICORN_CONF = REPO_ROOT / "containers" / "backupchecks" / "gunicorn.conf.py"
DB_NAME = f"backupchecks_scale_out_{os.getpid()}"  # one per test process: checkouts sharing a server never collide
N_MAILS = 20
ADMIN, ADMIN_PASSWORD = "scale-admin", "scale-" + secrets.token_hex(12)

pytestmark = pytest.mark.slow
psycopg = pytest.importorskip("psycopg")
pytest.importorskip("gunicorn")
requests = pytest.importorskip("requests")


@pytest.fixture
def database():
    yield from fresh_database(DB_NAME)


@pytest.fixture
def mails():
    from tests.test_importer import corpus_mails

    return corpus_mails(N_MAILS, tag="scale")


@pytest.fixture
def fake(mails):
    from tests.fakes.fake_graph import FakeGraph

    with FakeGraph([(m.raw, m.received) for m in mails]) as graph:
        yield graph


def _env(database: str, fake, tmp_path: Path, secret_key: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "POSTGRES_", "DB_", "PYTEST_")) and k not in (
               "DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS", "CURL_CA_BUNDLE")}
    env.update(fake.env())
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=secret_key, DATABASE_URL=database,
               APP_INSTANCE_PATH=str(tmp_path / "instance"), APP_VERSION_FILE=str(REPO_ROOT / "version.txt"),
               SESSION_COOKIE_SECURE="false",  # plain HTTP to 127.0.0.1 in this test
               HOME=str(tmp_path), **extra)
    return env


PREPARE = r"""
import json, sys
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import Customer, Job
from backend.app.services import accounts
from backend.app.services.ingest import job_identity_key
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False})  # migrates the empty database
with app.app_context():
    data = json.load(sys.stdin)
    accounts.create_user(data["admin"], data["password"], ["admin"])
    s = get_settings()
    s.auto_import_enabled, s.import_interval_minutes, s.import_batch_size = True, 1, 100
    customer = Customer(name="Scale-out Customer")
    db.session.add(customer)
    db.session.flush()
    for sender, job_name, software in data["identities"]:
        db.session.add(Job(customer_id=customer.id, sender=sender, job_name=job_name, software=software,
                           identity_key=job_identity_key(sender, job_name, software)))
    db.session.commit()
"""


def _prepare(env: dict, mails, cwd: Path) -> int:
    """Migrate, create the admin, switch automatic import on, a job for every report's identity.
    Returns the number of mails that become runs."""
    identities = sorted({m.identity for m in mails if m.identity})
    data = {"admin": ADMIN, "password": ADMIN_PASSWORD, "identities": identities}
    res = subprocess.run([sys.executable, "-c", PREPARE], env=env, cwd=cwd, input=json.dumps(data),
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    return sum(1 for m in mails if m.identity)


def _scalar(database: str, sql: str, *params):
    with psycopg.connect(database, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _rows(database: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(database, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def _background_lock_holders(database: str) -> int:
    from backend.app.services.background import LEADER_LOCK
    from backend.app.services.locks import lock_key

    key = lock_key(LEADER_LOCK)
    return _scalar(database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                             "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                             "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                   (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)


def _wait_for(what: str, condition, procs: list, timeout: float = 90, logs=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for proc in procs:
            assert proc.poll() is None, f"a process ended while waiting for {what}:\n{logs()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}:\n{logs()}"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Processes:
    """The processes a test started, each logging to its own file; all stopped at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(args, cwd=self.tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, proc, log_path))
        return proc

    def web(self, name: str, env: dict, port: int) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                                 "backend.app:create_app()"],
                          dict(env, APP_PORT=str(port), BACKGROUND_JOBS="false", GUNICORN_WORKERS="1",
                               GUNICORN_THREADS="2", GUNICORN_GRACEFUL_TIMEOUT="10"))

    def worker(self, name: str, env: dict) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "backend.app.worker"], env)

    def log(self, name: str) -> str:
        return next(path for n, _, path in self.started if n == name).read_text()

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{path.read_text()[-4000:]}" for name, _, path in self.started)

    def stop(self, proc: subprocess.Popen, timeout: float) -> int:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within {timeout} s of SIGTERM:\n{self.logs()}")

    def kill_all(self) -> None:
        for _, proc, _ in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.kill_all()


def _login(session, base: str) -> None:
    page = session.get(f"{base}/auth/login", timeout=30)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert token, page.text[:500]
    r = session.post(f"{base}/auth/login", data={"username": ADMIN, "password": ADMIN_PASSWORD,
                                                 "csrf_token": token.group(1)}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/auth/login" not in r.headers["Location"], (r.status_code, r.text[:500])


def _runs_shown(session, base: str, job_ids: list[int]) -> set[int]:
    """The run ids the job pages of ``base`` show (each history row carries data-run)."""
    shown = set()
    for job_id in job_ids:
        r = session.get(f"{base}/jobs/{job_id}", timeout=30, allow_redirects=False)
        assert r.status_code == 200, (base, job_id, r.status_code)
        assert ADMIN in r.text  # logged in here too, with the cookie the other process made
        shown |= {int(i) for i in re.findall(r'data-run="(\d+)"', r.text)}
    return shown


def _metrics(base: str, token: str) -> dict:
    """{(sample name, sorted labels): value} of one scrape of /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    r = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.status_code
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def test_two_web_processes_and_a_worker_import_every_mail_once_and_show_the_same_runs(
        database, mails, fake, tmp_path, processes):
    metrics_token = secrets.token_hex(16)
    env = _env(database, fake, tmp_path, secrets.token_hex(32), METRICS_TOKEN=metrics_token)
    expected_runs = _prepare(env, mails, tmp_path)
    assert 0 < expected_runs <= N_MAILS

    ports = _free_port(), _free_port()
    webs = [processes.web(f"web{i}", env, port) for i, port in enumerate(ports)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for base in bases:
        _wait_for(f"{base}/health", lambda: _answers(f"{base}/health"), webs, logs=processes.logs)

    session = requests.Session()
    _login(session, bases[0])
    for base in bases:  # the one login is good on both: the session is a signed cookie
        r = session.get(f"{base}/", timeout=30)
        assert r.status_code == 200 and r.url == f"{base}/" and ADMIN in r.text, (base, r.url)

    # the web processes never start the loops
    assert fake.requests == [], "a web process talked to the mailbox"
    assert _scalar(database, "SELECT count(*) FROM worker_heartbeats") == 0
    assert _scalar(database, "SELECT count(*) FROM import_cycles") == 0
    assert _background_lock_holders(database) == 0

    worker = processes.worker("worker", env)
    _wait_for("the worker to import every mail",
              lambda: len(fake.messages_in(fake.processed)) == N_MAILS
              and _scalar(database, "SELECT count(*) FROM import_cycles WHERE state <> 'running'") >= 1,
              webs + [worker], logs=processes.logs)

    # exactly once
    assert fake.messages_in(fake.incoming) == []
    assert len(fake.moves) == N_MAILS, "each mail moved once"
    assert len({old for old, _ in fake.moves}) == N_MAILS
    assert _scalar(database, "SELECT count(*) FROM mail_messages") == N_MAILS
    assert _scalar(database, "SELECT count(DISTINCT internet_message_id) FROM mail_messages") == N_MAILS
    assert sorted(r[0] for r in _rows(database, "SELECT internet_message_id FROM mail_messages")) == \
        sorted(m.message_id for m in mails)
    assert _scalar(database, "SELECT coalesce(sum(new), 0) FROM import_cycles") == N_MAILS
    assert _scalar(database, "SELECT coalesce(sum(duplicates), 0) FROM import_cycles") == 0
    assert _scalar(database, "SELECT count(*) FROM import_cycles WHERE state = 'failed'") == 0
    assert _scalar(database, "SELECT count(*) FROM job_runs WHERE NOT missed") == expected_runs
    assert _scalar(database, "SELECT count(DISTINCT mail_message_id) FROM job_runs WHERE NOT missed") == expected_runs
    assert _scalar(database, "SELECT count(*) FROM (SELECT mail_message_id FROM job_runs "
                             "GROUP BY mail_message_id HAVING count(*) > 1) twice") == 0
    assert _scalar(database, "SELECT count(*) FROM mail_messages WHERE state = 'processed'") == expected_runs

    # only the worker runs the loops
    assert _rows(database, "SELECT pid, kind, leader FROM worker_heartbeats") == [(worker.pid, "worker", True)]
    assert _background_lock_holders(database) == 1

    # both web processes show the same runs, to the session that logged in on the first
    run_ids = {r[0] for r in _rows(database, "SELECT id FROM job_runs WHERE NOT missed")}
    job_ids = sorted({r[0] for r in _rows(database, "SELECT job_id FROM job_runs")})
    shown = [_runs_shown(session, base, job_ids) for base in bases]
    assert shown[0] == shown[1] == run_ids

    # what the worker did shows in /metrics on either web process (read from the database)
    scraped = [_metrics(base, metrics_token) for base in bases]
    for m in scraped:
        assert m[("backupchecks_mail_messages", (("state", "processed"),))] == expected_runs
        assert m[("backupchecks_import_mails_total", (("outcome", "processed"),))] == expected_runs
        assert sum(v for (name, labels), v in m.items() if name == "backupchecks_import_mails_total") == N_MAILS
        assert m[("backupchecks_background_loop_last_success_timestamp_seconds", (("loop", "mail-import"),))] > 0
        assert m[("backupchecks_import_cycle_duration_seconds_count", (("state", "done"), ("trigger", "auto")))] >= 1
    stable = [{k: v for k, v in m.items() if k[0] in ("backupchecks_mail_messages", "backupchecks_job_runs",
                                                      "backupchecks_import_mails_total")} for m in scraped]
    assert stable[0] == stable[1]

    # SIGTERM: the worker finishes and leaves nothing behind; then the web processes stop
    assert processes.stop(worker, timeout=20) == 0, processes.logs()
    assert processes.log("worker").rstrip().endswith("Backupchecks worker stopped."), processes.logs()
    assert _scalar(database, "SELECT count(*) FROM worker_heartbeats") == 0
    assert _background_lock_holders(database) == 0
    for web in webs:
        assert web.poll() is None, processes.logs()
    assert _scalar(database, "SELECT count(*) FROM worker_heartbeats") == 0, "a web process started a runner"
    for web in webs:
        assert processes.stop(web, timeout=30) == 0, processes.logs()
    assert "Traceback" not in processes.logs(), processes.logs()


def test_a_second_worker_stands_by_and_takes_over_when_the_first_stops_after_its_step(
        database, mails, fake, tmp_path, processes):
    env = _env(database, fake, tmp_path, secrets.token_hex(32))
    expected_runs = _prepare(env, mails, tmp_path)
    # The first listing of the mailbox is held until the test lets it go (then a 429 the client
    # retries at once): the leader stays inside its import cycle until then.
    held = fake.fail(429, nth=1, method="GET", path_contains="/messages", retry_after="0", hold=threading.Event())

    workers = {proc.pid: proc for proc in (processes.worker("worker-a", env), processes.worker("worker-b", env))}

    def importing_with_a_standby():
        rows = _rows(database, "SELECT pid, leader, step FROM worker_heartbeats ORDER BY pid")
        leading = [pid for pid, leader, step in rows if leader and step == "mail-import"]
        standing_by = [pid for pid, leader, _ in rows if not leader]
        return (held.seen == 1 and len(rows) == 2 and len(leading) == 1 and len(standing_by) == 1
                and (leading[0], standing_by[0]))

    leader_pid, standby_pid = _wait_for("one worker inside its import cycle, the other standing by",
                                        importing_with_a_standby, list(workers.values()), logs=processes.logs)
    leader, standby = workers[leader_pid], workers[standby_pid]
    leader_log = "worker-a" if processes.log("worker-a").count(f"(process {leader_pid})") else "worker-b"

    # SIGTERM in the middle of the cycle: it is noted, the cycle finishes, then the worker exits 0
    leader.send_signal(signal.SIGTERM)
    _wait_for("the leader to take note of SIGTERM",
              lambda: "Stopping: the background loop finishes the step it is in" in processes.log(leader_log),
              [], timeout=30, logs=processes.logs)
    assert fake.moves == [] and leader.poll() is None
    held.hold.set()
    try:
        assert leader.wait(timeout=90) == 0, processes.logs()
    except subprocess.TimeoutExpired:
        pytest.fail(f"the leader did not exit after its step:\n{processes.logs()}")
    assert len(fake.messages_in(fake.processed)) == N_MAILS and len(fake.moves) == N_MAILS
    cycles = _rows(database, "SELECT state, fetched, new, error FROM import_cycles ORDER BY id")
    assert cycles[0] == ("done", N_MAILS, N_MAILS, None), cycles
    assert _scalar(database, "SELECT count(*) FROM mail_messages") == N_MAILS
    assert _scalar(database, "SELECT count(*) FROM job_runs WHERE NOT missed") == expected_runs

    # the standby takes over, and on SIGTERM it stops within seconds
    _wait_for("the standby to take over",
              lambda: _rows(database, "SELECT pid, leader FROM worker_heartbeats") == [(standby_pid, True)],
              [standby], timeout=30, logs=processes.logs)
    assert processes.stop(standby, timeout=10) == 0, processes.logs()
    assert _scalar(database, "SELECT count(*) FROM worker_heartbeats") == 0
    assert _background_lock_holders(database) == 0
    assert _scalar(database, "SELECT count(*) FROM mail_messages") == N_MAILS
    assert _scalar(database, "SELECT coalesce(sum(new), 0) FROM import_cycles") == N_MAILS
    assert _scalar(database, "SELECT count(*) FROM import_cycles WHERE state = 'failed'") == 0
    for name in ("worker-a", "worker-b"):
        assert processes.log(name).rstrip().endswith("Backupchecks worker stopped."), processes.logs()
    assert "Traceback" not in processes.logs(), processes.logs()
