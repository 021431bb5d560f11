"""scripts/backup-db.sh and scripts/restore-db.sh against real PostgreSQL databases: a dump of a
database with data restores into a fresh database, the app starts on it with all its data and the
users can log in; a cut-short dump is refused before anything is dropped; --keep prunes old dumps."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.pg import fresh_database

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "containers" / "backupchecks" / "src"
BACKUP, RESTORE = REPO / "scripts" / "backup-db.sh", REPO / "scripts" / "restore-db.sh"

pytestmark = pytest.mark.slow

# Builds the schema at start-up like a real installation, then adds data (or counts it).
_APP = """
import json, sys
from backend.app import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x" * 40,
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": True})
with app.app_context():
    from sqlalchemy import text
    from backend.app.extensions import db
    if sys.argv[2] == "seed":
        from tests.helpers import make_customer, make_job, make_run, make_user
        make_user("restored-admin", roles=("admin",))
        for c in range(3):
            customer = make_customer(f"Customer {c}")
            for j in range(4):
                job = make_job(customer, f"Job {c}-{j}")
                for r in range(5):
                    make_run(job, ["Success", "Failed", "Warning"][r % 3], message=f"run {r}")
        db.session.commit()
    counts = {t: db.session.execute(text(f"SELECT count(*) FROM {t}")).scalar()
              for t in ("users", "customers", "jobs", "job_runs", "alembic_version")}
    counts["head"] = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    print(json.dumps(counts))
"""


def _tools_fit(url: str) -> bool:
    """pg_dump refuses a server newer than itself."""
    import psycopg

    if not shutil.which("pg_dump") or not shutil.which("pg_restore") or not shutil.which("psql"):
        return False
    version = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout
    ours = int(re.search(r"\(PostgreSQL\)\s+(\d+)", version).group(1))
    with psycopg.connect(url) as conn:
        server = conn.info.server_version // 10000
    return ours >= server


def _app(url: str, action: str) -> dict:
    import json

    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}"}
    done = subprocess.run([sys.executable, "-c", _APP, _sa(url), action], capture_output=True, text=True,
                          env=env, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sa(url: str) -> str:
    """The app's SQLAlchemy URL for a libpq one."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def source():
    yield from fresh_database(f"backupchecks_backup_src_{os.getpid()}")


@pytest.fixture
def target():
    yield from fresh_database(f"backupchecks_backup_dst_{os.getpid()}")


def test_a_dump_restores_into_a_fresh_database_and_the_app_starts_on_it(source, target, tmp_path):
    if not _tools_fit(source):
        pytest.skip("pg_dump/pg_restore/psql missing or older than the server")
    before = _app(source, "seed")
    assert before["job_runs"] == 60 and before["users"] == 1

    made = _run(BACKUP, "--url", _sa(source), "--dir", str(tmp_path))  # the app's own URL form works too
    assert made.returncode == 0, made.stderr
    (dump,) = tmp_path.glob("backupchecks-*.dump")
    assert re.fullmatch(r"backupchecks-\d{8}T\d{6}Z\.dump", dump.name)
    assert f"wrote {dump}" in made.stdout and not list(tmp_path.glob("*.part"))

    _app(target, "count")  # the target has a schema and rows of its own: the restore replaces it
    restored = _run(RESTORE, str(dump), "--yes", "--url", target)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout

    after = _app(target, "count")  # starts the app (migrations under the lock) on the restored data
    assert after == before

    # A user of the old database logs in on the restored one.
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}"}
    login = subprocess.run([sys.executable, "-c", """
import sys
from backend.app import create_app
from tests.helpers import PASSWORD
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x" * 40,
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False, "WTF_CSRF_ENABLED": False})
c = app.test_client()
r = c.post("/auth/login", data={"username": "restored-admin", "password": PASSWORD})
print(r.status_code, r.headers.get("Location"))
""", _sa(target)], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert login.stdout.startswith("302") and "/auth/login" not in login.stdout, login.stdout + login.stderr


def test_a_cut_short_dump_is_refused_and_the_database_is_left_alone(source, target, tmp_path):
    if not _tools_fit(source):
        pytest.skip("pg_dump/pg_restore/psql missing or older than the server")
    _app(source, "seed")
    assert _run(BACKUP, "--url", source, "--dir", str(tmp_path)).returncode == 0
    (dump,) = tmp_path.glob("*.dump")
    cut = tmp_path / "cut.dump"
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    kept = _app(target, "seed")
    refused = _run(RESTORE, str(cut), "--yes", "--url", target)
    assert refused.returncode == 1
    assert "not a readable pg_dump custom-format file; the database was not touched" in refused.stderr
    assert _app(target, "count") == kept

    missing = _run(RESTORE, str(tmp_path / "nope.dump"), "--yes", "--url", target)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    asked = subprocess.run(["bash", str(RESTORE), str(dump), "--url", target], input="no\n",
                           capture_output=True, text=True, timeout=60)
    assert asked.returncode == 1 and "nothing done" in asked.stdout
    assert _app(target, "count") == kept


def test_keep_prunes_the_oldest_dumps_and_bad_options_are_explained(source, tmp_path):
    if not _tools_fit(source):
        pytest.skip("pg_dump/pg_restore/psql missing or older than the server")
    for stamp in ("20250101T020000Z", "20250102T020000Z", "20250103T020000Z"):
        (tmp_path / f"backupchecks-{stamp}.dump").write_bytes(b"old")
    made = _run(BACKUP, "--url", source, "--dir", str(tmp_path), "--keep", "2")
    assert made.returncode == 0, made.stderr
    names = sorted(p.name for p in tmp_path.glob("backupchecks-*.dump"))
    assert len(names) == 2 and names[0] == "backupchecks-20250103T020000Z.dump"
    assert "removed" in made.stdout and "20250101T020000Z" in made.stdout

    bad = _run(BACKUP, "--url", source, "--dir", str(tmp_path), "--keep", "0")
    assert bad.returncode == 2 and "--keep must be a whole number" in bad.stderr
    wrong = _run(BACKUP, "--url", source.replace("/backupchecks_backup_src", "/no_such_db"), "--dir",
                 str(tmp_path / "x"))
    assert wrong.returncode != 0 and not list((tmp_path / "x").glob("*"))  # nothing half-written kept
    assert "secret" not in wrong.stdout + wrong.stderr


def test_the_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run([shellcheck, str(BACKUP), str(RESTORE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
