"""Crash tests with real processes: SIGKILL a loop at every step, restart it, check the end state.

Each case: a fresh PostgreSQL database (a copy of a migrated template made once per test process),
a child process (forked from one that imported the app once, tests/deploy/forkserver.py) that
creates the app and runs one import cycle (or one loop step) with ``BACKUPCHECKS_CRASH_AT`` naming the step (``services/faults.py``: the child SIGKILLs itself
there), which must die by SIGKILL; then a clean child that finishes the work; then the end state:
every mail stored once, moved once, its run created once (Graph on the fake Graph in this process,
IMAP on a private Dovecot). Skips without PostgreSQL; fails under CI=true.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.forkserver import ForkServer
from tests.deploy.pg import admin_conninfo, fresh_database
from tests.test_importer import corpus_mails

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
TEMPLATE = f"backupchecks_crash_tpl_{os.getpid()}"
N_MAILS = 4
SECRET = secrets.token_hex(32)
ENCRYPTION_KEY = __import__("base64").urlsafe_b64encode(secrets.token_bytes(32)).decode()  # a Fernet key

pytestmark = pytest.mark.slow  # over 5 s a case (two app processes each); the cases spread over the workers
psycopg = pytest.importorskip("psycopg")

MAILS = corpus_mails(N_MAILS, tag="crash")
IDENTITIES = sorted({m.identity for m in MAILS if m.identity})
EXPECTED_RUNS = sum(1 for m in MAILS if m.identity)

PREPARE = r"""
import json, sys
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import Customer, Job
from backend.app.services.ingest import job_identity_key
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False})  # migrates the empty database
with app.app_context():
    s = get_settings()
    s.auto_import_enabled, s.import_batch_size = True, 100
    customer = Customer(name="Crash Customer")
    db.session.add(customer)
    db.session.flush()
    for sender, job_name, software in json.load(sys.stdin):
        db.session.add(Job(customer_id=customer.id, sender=sender, job_name=job_name, software=software,
                           identity_key=job_identity_key(sender, job_name, software)))
    db.session.commit()
"""

IMPORT = r"""
import json, os
from backend.app import create_app
from backend.app.services.importer import imap_config, mail_source_kind, run_import_cycle
extra = json.loads(os.environ.get("CRASH_TEST_CONFIG") or "{}")
use_move = extra.pop("use_move", None)
app = create_app({"BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False, **extra})
with app.app_context():
    source = None
    if mail_source_kind() == "imap":
        from backend.app.mail.imap import ImapMailSource
        source = ImapMailSource(imap_config(), use_move=use_move)
    cycle = run_import_cycle(source, trigger="auto")
    print(json.dumps({"state": cycle.state, "fetched": cycle.fetched, "new": cycle.new,
                      "duplicates": cycle.duplicates, "error": cycle.error}))
"""


def _base_env(database: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "IMAP_", "POSTGRES_", "DB_", "PYTEST_", "BACKUPCHECKS_CRASH"))
           and k not in ("DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS",
                         "CURL_CA_BUNDLE", "MAIL_SOURCE")}
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=SECRET, APP_ENCRYPTION_KEY=ENCRYPTION_KEY,
               DATABASE_URL=database,
               APP_INSTANCE_PATH=str(tmp_path / "instance"), APP_VERSION_FILE=str(REPO_ROOT / "version.txt"),
               HOME=str(tmp_path))
    return env


def _admin(sql: str) -> None:
    with psycopg.connect(admin_conninfo(), autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A migrated database with a job for every report's identity, copied for each case."""
    gen = fresh_database(TEMPLATE)
    url = next(gen)
    tmp = tmp_path_factory.mktemp("crash-template")
    res = subprocess.run([sys.executable, "-c", PREPARE], env=_base_env(url, tmp), cwd=tmp,
                         input=json.dumps(IDENTITIES), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    yield url
    next(gen, None)  # drops it


@pytest.fixture
def database(template):
    from sqlalchemy.engine import make_url

    name = f"backupchecks_crash_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    yield make_url(template).set(database=name).render_as_string(hide_password=False)
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_FORKS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def fork_server(tmp_path_factory):
    """The children are forked from one interpreter that imported the app once (tests/deploy/forkserver.py):
    each still a process of its own with its own environment, killed by its own SIGKILL."""
    tmp = tmp_path_factory.mktemp("crash-forkserver")
    with ForkServer(_base_env(os.environ["TEST_DATABASE_URL"], tmp), tmp) as server:
        _FORKS["server"] = server
        yield server
        _FORKS.clear()


def _run(script: str, env: dict, cwd: Path, crash_at: str | None = None, args: tuple = ()) -> subprocess.CompletedProcess:
    env = dict(env)
    if crash_at:
        env["BACKUPCHECKS_CRASH_AT"] = crash_at
    return _FORKS["server"].run(script, env, cwd, args, timeout=60)


def _ok(script: str, env: dict, cwd: Path, args: tuple = ()) -> str:
    res = _run(script, env, cwd, args=args)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _crash_then_finish(script: str, env: dict, cwd: Path, crash_at: str, args: tuple = (),
                       clean_args: tuple | None = None) -> dict:
    crashed = _run(script, env, cwd, crash_at, args)
    assert crashed.returncode == -9, f"expected SIGKILL at {crash_at}: rc={crashed.returncode}\n" \
                                     f"{crashed.stdout}\n{crashed.stderr}"
    clean = _run(script, env, cwd, args=args if clean_args is None else clean_args)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Traceback" not in clean.stderr, clean.stderr
    return json.loads(clean.stdout.strip().splitlines()[-1])


def _rows(database: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(database, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _assert_each_mail_stored_once_with_its_run(database: str) -> None:
    per_message = dict(_rows(database, "SELECT internet_message_id, count(*) FROM mail_messages "
                                       "GROUP BY internet_message_id"))
    assert per_message == {m.message_id: 1 for m in MAILS}, per_message
    dup_sources = _rows(database, "SELECT source_id FROM mail_messages GROUP BY source_id HAVING count(*) > 1")
    assert dup_sources == []
    runs = dict(_rows(database, "SELECT m.internet_message_id, count(r.id) FROM mail_messages m "
                                "LEFT JOIN job_runs r ON r.mail_message_id = m.id GROUP BY m.internet_message_id"))
    assert runs == {m.message_id: (1 if m.identity else 0) for m in MAILS}, runs
    assert _rows(database, "SELECT count(*) FROM job_runs")[0][0] == EXPECTED_RUNS
    # the cut-off cycle is recorded as interrupted, not left "running"
    assert _rows(database, "SELECT count(*) FROM import_cycles WHERE state = 'running'")[0][0] == 0


# --- Graph ------------------------------------------------------------------------------------

GRAPH_POINTS = [
    "importer.after_list",
    "importer.after_fetch",          # the first mail fetched, nothing stored
    "importer.after_fetch:3",        # two mails done, the third fetched
    "ingest.before_commit",          # stored and its run made, not committed
    "ingest.before_commit:2",
    "importer.after_commit",         # committed, not moved
    "importer.after_commit:4",       # the last mail committed, not moved
    "importer.after_move",           # moved (its id changed), the row still has the old id
    "importer.after_move:2",
]


@pytest.fixture
def fake_mailbox():
    from tests.fakes.fake_graph import FakeGraph

    with FakeGraph([(m.raw, m.received) for m in MAILS]) as fake:
        yield fake


@pytest.mark.parametrize("crash_at", GRAPH_POINTS)
def test_graph_import_killed_at_a_step_then_restarted_stores_and_moves_each_mail_once(
        crash_at, database, fake_mailbox, tmp_path):
    fake = fake_mailbox
    env = {**_base_env(database, tmp_path), **fake.env()}
    result = _crash_then_finish(IMPORT, env, tmp_path, crash_at)
    assert result["state"] == "done", result

    _assert_each_mail_stored_once_with_its_run(database)
    assert fake.messages_in(fake.incoming) == []
    processed = sorted(m.internet_message_id for m in fake.messages_in(fake.processed))
    assert processed == sorted(m.message_id for m in MAILS), "each mail once in Processed"
    moved = [old for old, _new in fake.moves]
    assert len(moved) == len(set(moved)) == N_MAILS, "each mail moved once"
    # the rows follow the moved ids, except a crash between the move and that update leaves the
    # old id on its row (the mail is out of the incoming folder, so nothing can import it again)
    current = {m.id for m in fake.messages_in(fake.processed)}
    stored = {sid for (sid,) in _rows(database, "SELECT source_id FROM mail_messages")}
    stale = stored - current
    assert len(stale) <= (1 if crash_at.startswith("importer.after_move") else 0), stale


# --- IMAP -------------------------------------------------------------------------------------

IMAP_POINTS = [
    ("importer.after_commit", None),      # committed, not moved (MOVE)
    ("importer.after_commit:3", None),
    ("importer.after_move", None),        # MOVE done, the cycle not finished
    ("imap.after_copy", False),           # during the move without MOVE: copied, not yet expunged
    ("imap.after_copy:2", False),
]


@pytest.mark.parametrize("crash_at,use_move", IMAP_POINTS)
def test_imap_import_killed_at_a_step_then_restarted_stores_and_moves_each_mail_once(
        crash_at, use_move, database, dovecot, tmp_path):
    processed = "Processed"
    dovecot.create(processed)
    dovecot.deliver([m.raw for m in MAILS])
    env = _base_env(database, tmp_path)
    env.update(MAIL_SOURCE="imap", IMAP_HOST="127.0.0.1", IMAP_PORT=str(dovecot.ssl_port), IMAP_TLS="ssl",
               IMAP_USER=dovecot.user, IMAP_PASSWORD=dovecot.password, IMAP_FOLDER="INBOX",
               IMAP_PROCESSED_FOLDER=processed,
               CRASH_TEST_CONFIG=json.dumps({"IMAP_CLIENT_OPTIONS": {"ca_file": dovecot.tls.ca_bundle, "timeout": 10},
                                             "use_move": use_move}))
    result = _crash_then_finish(IMPORT, env, tmp_path, crash_at)
    assert result["state"] == "done", result

    _assert_each_mail_stored_once_with_its_run(database)
    assert dovecot.messages("INBOX") == []
    import re
    in_processed = sorted(re.search(rb"(?mi)^Message-ID:\s*(\S+)", raw).group(1).decode()
                          for raw in dovecot.messages(processed))
    assert in_processed == sorted(m.message_id for m in MAILS), "each mail once in Processed"


# --- The loops: missed runs, the notification sender, report delivery -------------------------

AMS = "Europe/Amsterdam"
SCHEDULED_AT = "2026-10-10T10:00:00+00:00"   # the jobs get a daily 22:00 schedule (Amsterdam) here
MISSED_NOW = "2026-10-13T10:00:00+00:00"     # 10, 11 and 12 October have no run: 3 missed runs a job
MISSED_PER_JOB = 3

SETUP_LOOPS = r"""
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import Job, NotificationChannel
from backend.app.services.schedules import recompute_job_schedule
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False})
with app.app_context():
    zone = ZoneInfo("Europe/Amsterdam")
    get_settings().ui_timezone = "Europe/Amsterdam"
    for job in Job.query.order_by(Job.id).all():
        job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 60}
        recompute_job_schedule(job, datetime.fromisoformat(sys.argv[1]), zone)
    if sys.argv[2]:
        db.session.add(NotificationChannel(name="Crash hook", kind="webhook", target_url=sys.argv[2],
                                           on_missed=True, on_failed=True))
    db.session.commit()
"""

LOOP = r"""
import json, sys
from datetime import datetime
from zoneinfo import ZoneInfo
from backend.app import create_app
app = create_app({"BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False})
step, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
with app.app_context():
    if step == "missed":
        from backend.app.services.missed_runs import detect_missed_runs
        out = detect_missed_runs(now, ZoneInfo("Europe/Amsterdam"))
    elif step == "notify":
        from backend.app.services.notifications.sender import send_due
        out = send_due(now, timeout=5)
    else:
        from backend.app.services.reports import run_loop_step
        out = run_loop_step(now)
print(json.dumps(out, default=str))
"""


def _missed_rows(database: str) -> list[tuple]:
    return _rows(database, "SELECT job_id, missed_slot, count(*) FROM job_runs WHERE missed GROUP BY 1, 2")


@pytest.mark.parametrize("crash_at", ["missed_runs.after_claim", "missed_runs.after_claim:3",
                                      "missed_runs.before_commit", "missed_runs.after_commit"])
def test_missed_run_loop_killed_at_a_step_then_restarted_creates_each_missed_run_once(crash_at, database, tmp_path):
    env = _base_env(database, tmp_path)
    _ok(SETUP_LOOPS, env, tmp_path, (SCHEDULED_AT, ""))
    jobs = len(IDENTITIES)
    _crash_then_finish(LOOP, env, tmp_path, crash_at, ("missed", MISSED_NOW))
    rows = _missed_rows(database)
    assert all(n == 1 for _job, _slot, n in rows), rows
    assert len(rows) == jobs * MISSED_PER_JOB, rows
    # the claim moved every job on exactly past its last decided slot: a later pass adds nothing
    assert json.loads(_ok(LOOP, env, tmp_path, ("missed", MISSED_NOW)).splitlines()[-1]) == 0
    assert len(_missed_rows(database)) == jobs * MISSED_PER_JOB


@pytest.fixture
def hook():
    """A webhook receiver on loopback that records every body it is sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@pytest.mark.parametrize("crash_at", ["notifications.after_claim", "notifications.after_deliver",
                                      "notifications.after_deliver:3"])
def test_notification_sender_killed_at_a_step_then_restarted_delivers_at_least_once(crash_at, database, hook,
                                                                                     tmp_path):
    """At-least-once: a sender killed between the delivery and recording it sends that message again
    once its claim expired (the receiver sees it twice); every outbox row ends 'sent' exactly once."""
    from datetime import timedelta

    url, received = hook
    env = _base_env(database, tmp_path)
    _ok(SETUP_LOOPS, env, tmp_path, (SCHEDULED_AT, url))
    _ok(LOOP, env, tmp_path, ("missed", MISSED_NOW))          # queues one 'missed' event per missed run
    rows = _rows(database, "SELECT count(*) FROM notification_outbox WHERE state = 'pending'")[0][0]
    assert rows == len(IDENTITIES) * MISSED_PER_JOB
    # the children's clock (this process's may be frozen by the test clock): just after the rows were queued
    now = _rows(database, "SELECT max(next_attempt_at) FROM notification_outbox")[0][0] + timedelta(seconds=1)
    later = now + timedelta(hours=1)                           # the dead sender's claims have expired
    _crash_then_finish(LOOP, env, tmp_path, crash_at, ("notify", now.isoformat()),
                       clean_args=("notify", later.isoformat()))
    states = _rows(database, "SELECT state, attempts, count(*) FROM notification_outbox GROUP BY 1, 2")
    assert states == [("sent", 1, rows)], states
    from collections import Counter
    per_body = Counter(received)
    assert len(per_body) == rows, "every message arrived"
    twice = [b for b, n in per_body.items() if n > 1]
    assert all(n <= 2 for n in per_body.values()), per_body
    assert len(twice) == (1 if crash_at.startswith("notifications.after_deliver") else 0), twice


REPORT_DUE = "2026-11-01T06:00:00+00:00"

SETUP_REPORT = r"""
import sys
from datetime import datetime
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import ReportDefinition
from backend.app.services import reports as svc
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False})
with app.app_context():
    get_settings().ui_timezone = "Europe/Amsterdam"
    db.session.add(ReportDefinition(name="Crash report", all_customers=True, period="last_month",
                                    content={k: True for k in svc.CONTENT_KEYS}, schedule="monthly", schedule_day=1,
                                    schedule_time="07:00", recipients="it@crash.example",
                                    next_delivery_at=datetime.fromisoformat(sys.argv[1])))
    db.session.commit()
"""


@pytest.mark.parametrize("crash_at", ["reports.after_queue", "reports.during_generate", "reports.after_generate",
                                      "reports.after_send"])
def test_report_loop_killed_at_a_step_then_restarted_mails_the_report(crash_at, database, fake_mailbox, tmp_path):
    """The scheduled report is generated and mailed: once, or twice when the sender died between
    sending and recording it (at-least-once); its run ends 'sent' and the schedule moved on once."""
    from datetime import datetime, timedelta

    fake = fake_mailbox
    env = {**_base_env(database, tmp_path), **fake.env()}
    _ok(SETUP_REPORT, env, tmp_path, (REPORT_DUE,))
    due = datetime.fromisoformat(REPORT_DUE)
    now, later = due + timedelta(minutes=1), due + timedelta(minutes=45)   # past the lease and a stale generation
    _crash_then_finish(LOOP, env, tmp_path, crash_at, ("reports", now.isoformat()),
                       clean_args=("reports", later.isoformat()))
    runs = _rows(database, "SELECT state, delivery_state FROM report_runs")
    assert runs == [("done", "sent")], runs
    assert _rows(database, "SELECT next_delivery_at FROM report_definitions")[0][0] > due + timedelta(days=20)
    sent = [m for m in fake.sent_mail if m.to == ["it@crash.example"]]
    assert 1 <= len(sent) <= (2 if crash_at == "reports.after_send" else 1), len(sent)
