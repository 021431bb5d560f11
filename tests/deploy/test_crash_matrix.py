"""Crash tests with real processes: SIGKILL a loop at every step, restart it, check the end state.

Each case: a fresh PostgreSQL database (a copy of a migrated template made once per test process),
a child ``python -c`` that creates the app and runs one import cycle (or one loop step) with
``BACKUPCHECKS_CRASH_AT`` naming the step (``services/faults.py``: the child SIGKILLs itself
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

from tests.deploy.pg import admin_conninfo, fresh_database
from tests.test_importer import corpus_mails

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
TEMPLATE = f"backupchecks_crash_tpl_{os.getpid()}"
N_MAILS = 4
SECRET = secrets.token_hex(32)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash_matrix")]
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
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=SECRET, DATABASE_URL=database,
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


def _run(script: str, env: dict, cwd: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(env)
    if crash_at:
        env["BACKUPCHECKS_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def _crash_then_finish(script: str, env: dict, cwd: Path, crash_at: str) -> dict:
    crashed = _run(script, env, cwd, crash_at)
    assert crashed.returncode == -9, f"expected SIGKILL at {crash_at}: rc={crashed.returncode}\n" \
                                     f"{crashed.stdout}\n{crashed.stderr}"
    clean = _run(script, env, cwd)
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
