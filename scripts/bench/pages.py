#!/usr/bin/env python3
"""`make bench-pages`: the morning pages at MSP size, side by side with a 10x smaller database.

1. Seeds two databases with bulk COPY (seed_scale.py): ``bench_scale_1m`` (300 customers, 3,000 jobs,
   365 days: ~1.07 M runs) and ``bench_scale_100k`` (30 customers, 300 jobs: ~107 k runs), on the
   PostgreSQL at 127.0.0.1:5432 (user postgres). With BENCH_REUSE=1 a database seeded earlier today
   (its ``<db>.json`` in $SCALE_OUT) is kept instead.
2. Counts the SQL statements of every page (PostgreSQL's statement log, read from $PG_LOG; skipped
   with a message where that file cannot be read).
3. Times every page served by gunicorn with the production config (bench_pages.py ``time``): p50, p95
   and max of 30 requests per size, KB of HTML, and the 1 M / 100 k ratio.
4. Loads Run Checks in headless Chromium (where /usr/bin/chromium exists): time to a usable page and
   DOM size.
5. Prints the table with the goal per page (p95 < 100 ms, <= 1.5x the 100 k cost, <= 300 KB) and drops
   both databases (BENCH_KEEP=1 keeps them).

BENCH_ONLY="run-checks daily" limits the pages to those whose label holds one of the words;
BENCH_REQUESTS sets the timed requests per page and size (default 30).
Figures and JSON results go to $SCALE_OUT (default: ``scale/`` in the system temp folder).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import bench_pages as bp  # noqa: E402

SHAPES = [("100k", "bench_scale_100k", 30, 300), ("1m", "bench_scale_1m", 300, 3000)]
PY = sys.executable


def _seeded_today(db: str) -> bool:
    meta = bp.OUT_DIR / f"{db}.json"
    if not meta.exists():
        return False
    try:
        import psycopg
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as c:
            exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
    except Exception:  # noqa: BLE001 - no server: seeding says why
        return False
    return bool(exists) and json.loads(meta.read_text()).get("today") == date.today().isoformat()


def _run(args: list[str]) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def _drop(db: str) -> None:
    import psycopg
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main() -> int:
    bp.OUT_DIR.mkdir(parents=True, exist_ok=True)
    reuse = os.environ.get("BENCH_REUSE") == "1"
    targets = [f"{name}={db}" for name, db, _c, _j in SHAPES]
    for name, db, customers, jobs in SHAPES:
        if reuse and _seeded_today(db):
            print(f"reusing {db} (seeded today); bringing its schema up to date", flush=True)
            env = dict(os.environ, DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
                       BACKGROUND_JOBS="false", PYTHONPATH=str(ROOT / "containers" / "backupchecks" / "src"))
            subprocess.run([PY, "-m", "flask", "--app", "backend.app", "db", "upgrade"], cwd=ROOT, env=env, check=True)
            continue
        _run([PY, str(HERE / "seed_scale.py"), "--proj", str(ROOT), "--db", db,
              "--customers", str(customers), "--jobs", str(jobs)])
    only = os.environ.get("BENCH_ONLY", "").split()
    only_args = ["--only", *only] if only else []
    requests = ["--requests", os.environ["BENCH_REQUESTS"]] if os.environ.get("BENCH_REQUESTS") else []
    count_json = bp.OUT_DIR / "count.json"
    time_json = bp.OUT_DIR / "time.json"
    try:
        if os.access(bp.PG_LOG, os.R_OK):
            _run([PY, str(HERE / "bench_pages.py"), "count", "--targets", *targets, *only_args,
                  "--out", str(count_json)])
        else:
            print(f"statement counts skipped: {bp.PG_LOG} cannot be read (set PG_LOG to the server's log)", flush=True)
            count_json.write_text(json.dumps({"pages": []}))
        _run([PY, str(HERE / "bench_pages.py"), "time", "--targets", *targets, *only_args, *requests,
              "--out", str(time_json)])
        if Path("/usr/bin/chromium").exists():
            _run([PY, str(HERE / "browser_timing.py"), *targets, "--pages", "run-checks",
                  "run-checks include reviewed", "daily-jobs backlog day", "tickets"])
        print()
        _run([PY, str(HERE / "make_table.py"), str(count_json), str(time_json)])
        browser = bp.OUT_DIR / "browser.json"
        if browser.exists():
            print("\nChromium, median of 5 loads: ms to DOMContentLoaded / load, DOM elements")
            for page, sizes in json.loads(browser.read_text()).items():
                for name, r in sizes.items():
                    print(f"  {page:<30} {name:>5}: {r['dcl']:.0f} / {r['load']:.0f} ms, {r['elements']} elements")
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            for _name, db, _c, _j in SHAPES:
                _drop(db)
            print("databases dropped (BENCH_KEEP=1 keeps them)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
