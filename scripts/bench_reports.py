#!/usr/bin/env python3
"""Report speed: a one-month PDF for 100 customers and 1,000 jobs on PostgreSQL.

    python scripts/bench_reports.py [--customers 100] [--jobs 1000] [--database-url URL] [--out FILE]

Creates a scratch database (``backupchecks_bench`` on BENCH_DATABASE_URL / --database-url's
server, else on the local PostgreSQL on 127.0.0.1:5432 when it answers, else on a throw-away
embedded one: bench_db.py), migrates it
to head, seeds last calendar month (one run per job per day: mostly successes, some
warnings, failures, overrides and missed runs, plus tickets), then times what a
user waits for: loading the figures and rendering the PDF (and the CSV). Prints the
figures; exits 1 when the PDF takes longer than --max seconds (default 60).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "containers" / "backupchecks" / "src"))
os.environ.setdefault("BACKGROUND_JOBS", "0")

from bench_db import bench_server  # noqa: E402  (scripts/ is on sys.path when run as a script)


def recreate_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{u.database}"')


def seed(n_customers: int, n_jobs: int, today: date, rng: random.Random) -> int:
    from sqlalchemy import insert

    from backend.app.extensions import db
    from backend.app.models import Customer, Job, JobRun, Override, Ticket, TicketScope
    from backend.app.services.reports import period_days
    from backend.app.services.settings import get_settings, ui_zone
    from backend.app.services.timezones import day_bounds_utc

    s = get_settings()
    s.company_name = "Contoso IT Services"
    db.session.commit()
    zone = ui_zone()
    first, last = period_days("last_month", today)
    now = datetime.now(timezone.utc)
    db.session.execute(insert(Customer), [{"id": i + 1, "name": f"Customer {i + 1:03d} B.V.", "active": True,
                                           "created_at": now, "updated_at": now} for i in range(n_customers)])
    jobs = []
    for j in range(n_jobs):
        cid = j % n_customers + 1
        jobs.append({"id": j + 1, "customer_id": cid, "job_name": f"Job {j + 1:04d} {rng.choice(['VM', 'SQL', 'Files', 'Exchange'])}",
                     "software": rng.choice(["Veeam Backup & Replication", "Synology Active Backup", "Acronis"]),
                     "sender": f"backup{cid}@customer.example", "backup_type": "Backup Job",
                     "identity_key": f"backup{cid}@customer.example|job {j + 1}|x", "schedule_kind": "daily",
                     "archived": False, "created_at": now, "updated_at": now})
    db.session.execute(insert(Job), jobs)
    db.session.execute(insert(Override), [{"id": 1, "level": "global", "match_status": "Warning",
                                           "match_text": "retry", "comment": "Retries are expected",
                                           "treat_as_success": True, "active": True, "created_at": now,
                                           "updated_at": now}])
    runs = []
    day = first
    while day <= last:
        start = day_bounds_utc(day, zone)[0]
        for job in jobs:
            status = rng.choices(["Success", "Warning", "Failed", "Missed"], [88, 6, 4, 2])[0]
            at = start + timedelta(hours=20, minutes=rng.randint(0, 180))
            row = {"job_id": job["id"], "status": status, "effective_status": status, "started_at": at,
                   "missed": status == "Missed", "missed_slot": at if status == "Missed" else None,
                   "message": None, "override_id": None, "created_at": now}
            if status == "Warning" and rng.random() < 0.3:
                row.update(effective_status="Success", override_id=1, message="1 retry needed")
            elif status == "Failed":
                row["message"] = rng.choice(["Error: the network path was not found.",
                                             "Failed to create snapshot: disk full on the repository.",
                                             "Job ended with an error: VSS writer timed out."])
            elif status == "Missed":
                row["message"] = "No report received for the run expected at 22:00"
            runs.append(row)
        day += timedelta(days=1)
    for i in range(0, len(runs), 5000):
        db.session.execute(insert(JobRun), runs[i:i + 5000])
    for c in range(1, n_customers + 1, 7):
        t = Ticket(code=f"T{c:05d}", description="Repository almost full, disks ordered",
                   active_from=day_bounds_utc(first, zone)[0] + timedelta(days=3))
        t.scopes = [TicketScope(scope_type="customer", customer_id=c)]
        db.session.add(t)
    db.session.commit()
    return len(runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--out", default="/tmp/backupchecks-bench-report.pdf", help="where the PDF is written")
    ap.add_argument("--max", type=float, default=60.0, help="fail when the PDF takes longer (seconds)")
    args = ap.parse_args(argv)
    with bench_server(args.database_url) as url:
        args.database_url = url
        return run(args)


def run(args) -> int:
    if not args.database_url.startswith("postgresql"):
        print("the benchmark runs on PostgreSQL: give --database-url postgresql+psycopg://...", file=sys.stderr)
        return 2
    try:
        recreate_database(args.database_url)
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL does not answer at {args.database_url.split('@')[-1]}: {exc}", file=sys.stderr)
        return 2

    from backend.app import create_app
    from backend.app.extensions import db
    from backend.app.models import ReportDefinition
    from backend.app.services import reports

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "RUN_MIGRATIONS": True, "BACKGROUND_JOBS": False,
                      "SECRET_KEY": "bench-only-secret-key-xxxxxxxxxxxxxxxx", "TESTING": True})
    today = date.today()
    with app.app_context():
        t0 = time.perf_counter()
        n_runs = seed(args.customers, args.jobs, today, random.Random(42))
        print(f"seeded {args.customers} customers, {args.jobs} jobs, {n_runs} runs of last month "
              f"in {time.perf_counter() - t0:.1f} s")
        defn = ReportDefinition(name="Monthly backup report", all_customers=True, period="last_month",
                                content={k: True for k in reports.CONTENT_KEYS},
                                intro_markdown="Dear customer,\n\nThis report shows **every backup** of last month.")
        db.session.add(defn)
        db.session.commit()
        db.session.expire_all()

        t0 = time.perf_counter()
        data = reports.build_report(defn, today=today)
        t_data = time.perf_counter() - t0
        t0 = time.perf_counter()
        pdf = reports.render_pdf(data)
        t_pdf = time.perf_counter() - t0
        t0 = time.perf_counter()
        csv_bytes = reports.render_csv(data)
        t_csv = time.perf_counter() - t0
        Path(args.out).write_bytes(pdf)
        pages = pdf.count(b"/Type /Page\n") or pdf.count(b"/Type /Page")
        print(f"figures: {t_data:.2f} s ({data.total} runs, {data.job_count} jobs, {len(data.customers)} customers)")
        print(f"PDF:     {t_pdf:.2f} s render, {len(pdf) / 1024:.0f} KB, ~{pages} pages -> {args.out}")
        print(f"CSV:     {t_csv:.2f} s, {len(csv_bytes) / 1024:.0f} KB")
        total = t_data + t_pdf
        print(f"one-month PDF for {args.customers} customers and {args.jobs} jobs: {total:.2f} s "
              f"(figures + PDF, PostgreSQL)")
        db.session.remove()
    return 1 if total > args.max else 0


if __name__ == "__main__":
    sys.exit(main())
