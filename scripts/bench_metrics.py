#!/usr/bin/env python3
"""What a Prometheus scrape of /metrics costs the database: the time of the collector's queries.

    python scripts/bench_metrics.py [--runs 20000] [--mails 20000] [--outbox 5000] [--scrapes 30] [--database-url URL]

Creates its own database (``backupchecks_bench_metrics`` on BENCH_DATABASE_URL / --database-url's
server, else the local PostgreSQL when it answers, else a throw-away embedded one: bench_db.py),
migrated to head; seeds jobs, runs, mails, notification messages and loop/import totals with
``generate_series`` (VACUUM ANALYZE after, as autovacuum would); then scrapes ``/metrics`` through
the app ``--scrapes`` times with the bearer token and prints the median and the slowest time of the
database part (``backupchecks_metrics_database_seconds``) and of the whole request, and each
query's plan with its time. The database is dropped afterwards unless --keep is given.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "containers" / "backupchecks" / "src"))
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("BACKGROUND_JOBS", "0")

from bench_db import bench_server  # noqa: E402
from bench_import import recreate_database  # noqa: E402

TOKEN = "bench-metrics-token"

SEED = [
    "INSERT INTO customers (name, active, created_at, updated_at) "
    "SELECT 'Customer ' || i, true, now(), now() FROM generate_series(1, 100) i",
    "INSERT INTO jobs (customer_id, sender, job_name, software, identity_key, archived, schedule_kind, "
    "created_at, updated_at) SELECT 1 + i % 100, 'backup@example.test', 'Job ' || i, 'Veeam', 'job-' || i, "
    "false, 'daily', now(), now() FROM generate_series(1, 1000) i",
    "INSERT INTO mail_messages (source, source_id, from_address, subject, imported_at, parsed, is_report, state) "
    "SELECT 'graph', 'm' || i, 'backup@example.test', 'Report ' || i, now() - make_interval(mins => i), true, "
    "true, (ARRAY['processed','processed','processed','inbox','ignored','error','deleted'])[1 + i % 7] "
    "FROM generate_series(1, :mails) i",
    "INSERT INTO job_runs (job_id, status, effective_status, started_at, missed, missed_slot, reviewed_at, created_at) "
    "SELECT 1 + i % 1000, s, s, now() - make_interval(mins => i), s = 'Missed', "
    "CASE WHEN s = 'Missed' THEN now() - make_interval(mins => i) END, "
    "CASE WHEN i % 10 <> 0 THEN now() END, now() "
    "FROM generate_series(1, :runs) i, "
    "LATERAL (SELECT (ARRAY['Success','Success','Success','Success','Warning','Failed','Missed'])[1 + i % 7] s) x",
    "INSERT INTO notification_channels (name, kind, target_url, enabled, on_failed, on_missed, on_warning, "
    "on_recovery, created_at, updated_at) VALUES ('ops', 'webhook', 'x', true, true, true, false, true, now(), now())",
    "INSERT INTO notification_outbox (channel_id, event_key, event, payload, state, attempts, next_attempt_at, "
    "created_at) SELECT 1, 'run:' || i, 'failed', '{}', (ARRAY['sent','sent','sent','failed','given_up','pending'])"
    "[1 + i % 6], 1, now(), now() FROM generate_series(1, :outbox) i",
    "INSERT INTO background_loop_stats (loop, steps_total, failures_total, duration_seconds_total, last_step_at, "
    "last_success_at, last_duration_seconds) SELECT l, 1000, 3, 120.5, now(), now(), 0.2 "
    "FROM unnest(ARRAY['mail-import','missed-runs','notifications','reports','autotask_poll','markdown-rerender']) l",
    "INSERT INTO import_cycle_stats (trigger, state, cycles_total, duration_seconds_total, fetched_total, new_total, "
    "duplicates_total, auto_processed_total, to_inbox_total, failed_total, last_finished_at, last_duration_seconds) "
    "VALUES ('auto', 'done', 5000, 9000, 20000, 19000, 1000, 15000, 4000, 10, now(), 1.5), "
    "('manual', 'done', 20, 40, 100, 90, 10, 80, 10, 0, now(), 2.0), "
    "('auto', 'failed', 30, 60, 0, 0, 0, 0, 0, 30, now(), 2.0)",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--mails", type=int, default=20000)
    ap.add_argument("--outbox", type=int, default=5000)
    ap.add_argument("--scrapes", type=int, default=30)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = ap.parse_args(argv)
    with bench_server(args.database_url) as url:
        from sqlalchemy.engine import make_url
        url = make_url(url).set(database="backupchecks_bench_metrics").render_as_string(hide_password=False)
        return run(args, url)


def run(args, url: str) -> int:
    import logging
    logging.basicConfig(level=logging.WARNING)
    recreate_database(url)
    from prometheus_client.parser import text_string_to_metric_families
    from sqlalchemy import text

    from backend.app import create_app
    from backend.app.extensions import db
    from backend.app.services.metrics.collector import QUERIES

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": True,
                      "SECRET_KEY": "bench-only-not-a-secret", "METRICS_TOKEN": TOKEN})
    try:
        with app.app_context():
            t0 = time.perf_counter()
            for sql in SEED:
                db.session.execute(text(sql), {"runs": args.runs, "mails": args.mails, "outbox": args.outbox})
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            print(f"seeded {args.runs} runs, {args.mails} mails, {args.outbox} notification messages "
                  f"in {time.perf_counter() - t0:.1f} s")
        client = app.test_client()
        db_times, request_times = [], []
        for _ in range(args.scrapes):
            t = time.perf_counter()
            r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            request_times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.status_code
            for family in text_string_to_metric_families(r.get_data(as_text=True)):
                if family.name == "backupchecks_metrics_database_seconds":
                    db_times.append(family.samples[0].value)
        print(f"scrape, database part: median {statistics.median(db_times) * 1000:.1f} ms, "
              f"slowest {max(db_times) * 1000:.1f} ms ({args.scrapes} scrapes)")
        print(f"scrape, whole request: median {statistics.median(request_times) * 1000:.1f} ms, "
              f"slowest {max(request_times) * 1000:.1f} ms")
        with app.app_context():
            for key, sql in QUERIES.items():
                plan = db.session.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + sql)).scalars().all()
                print(f"-- {key}: " + " | ".join(line.strip() for line in plan if line.strip()
                                                   and not line.strip().startswith(("Planning", "Buffers"))))
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not args.keep:
            recreate_database(url, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
