#!/usr/bin/env python3
"""Where a page's time goes: the app's test client (logged in as the seeded admin) under cProfile, with
SQLAlchemy statement timing (before/after_cursor_execute) and Jinja render time apart.

    PROJ=<a clone of the project>
    $PROJ/.venv/bin/python profile_page.py bench_scale_1m "/daily-jobs?date=2026-12-02" "/run-checks" [--top 25]
"""
import tempfile
import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("db")
ap.add_argument("urls", nargs="+")
ap.add_argument("--proj", default=os.environ.get("PROJ", str(Path(__file__).resolve().parents[2])))
ap.add_argument("--top", type=int, default=22)
ap.add_argument("--repeat", type=int, default=5)
args = ap.parse_args()
assert args.db.startswith("bench_scale")
sys.path.insert(0, str(Path(args.proj) / "containers" / "backupchecks" / "src"))
os.environ.update(DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{args.db}", BACKGROUND_JOBS="false")

import flask  # noqa: E402
from sqlalchemy import event  # noqa: E402

from backend.app import create_app  # noqa: E402
from backend.app.extensions import db  # noqa: E402

app = create_app({"WTF_CSRF_ENABLED": False, "BACKGROUND_JOBS": False})
sql = {"n": 0, "s": 0.0}
render = {"s": 0.0}
with app.app_context():
    @event.listens_for(db.engine, "before_cursor_execute")
    def _b(conn, cursor, statement, params, context, executemany):
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(db.engine, "after_cursor_execute")
    def _a(conn, cursor, statement, params, context, executemany):
        sql["n"] += 1
        sql["s"] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

import flask.templating as ft  # noqa: E402
_orig = ft._render


def _timed(*a, **k):
    t0 = time.perf_counter()
    try:
        return _orig(*a, **k)
    finally:
        render["s"] += time.perf_counter() - t0


ft._render = _timed
client = app.test_client()
r = client.post("/auth/login", data={"username": "bench-admin", "password": "Scale-Test-Password-2026!"})
assert r.status_code == 302, r.status_code
for url in args.urls:
    for _ in range(2):
        client.get(url)
    sql.update(n=0, s=0.0)
    render["s"] = 0.0
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(args.repeat):
        resp = client.get(url)
    prof.disable()
    wall = (time.perf_counter() - t0) / args.repeat
    print(f"\n=== {url} [{args.db}] status {resp.status_code}, {len(resp.data) / 1024:.0f} KB; per request: "
          f"{wall * 1000:.0f} ms wall (under cProfile), SQL {sql['s'] * 1000 / args.repeat:.0f} ms in "
          f"{sql['n'] // args.repeat} statements, Jinja render {render['s'] * 1000 / args.repeat:.0f} ms")
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:6000])
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[-3000:])
