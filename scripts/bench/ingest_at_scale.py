#!/usr/bin/env python3
"""Import throughput with a full database: ingest_message (parse + store + run + overrides + ticket links)
into a throw-away copy of a seeded database (CREATE DATABASE <db>_ingest_<pid> TEMPLATE <db>), with the
same corpus builder and known-job seeding as scripts/bench_import.py; compare with the empty database
figure of `make bench-import`. The copy is dropped afterwards; the seeded database is only read (as the
template of the copy).

    .venv/bin/python scripts/bench/ingest_at_scale.py bench_scale_1m [--mails 1000] [--jobs 150] [--profile]

The seeded databases (bench_scale_100k, bench_scale_1m) are made by the team's seed_scale.py. A copy
that lacks columns the models have (a database seeded before a migration) gets them added, with their
defaults, before the run. CREATE DATABASE … TEMPLATE needs the template to have no other sessions: the
script waits for that (--wait seconds). --profile prints the statements per mail as bench_import does.
"""
import argparse
import os
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("db")
ap.add_argument("--mails", type=int, default=1000)
ap.add_argument("--jobs", type=int, default=150)
ap.add_argument("--proj", default=os.environ.get("PROJ", str(Path(__file__).resolve().parents[2])),
                help="the project checkout whose code is measured (default: this repository)")
ap.add_argument("--wait", type=int, default=600, help="seconds to wait for the template to be free")
ap.add_argument("--profile", action="store_true", help="statements per mail by kind and table")
args = ap.parse_args()
assert args.db.startswith("bench_scale")
copy = f"{args.db}_ingest_{os.getpid()}"
proj = Path(args.proj)
sys.path.insert(0, str(proj / "containers" / "backupchecks" / "src"))
sys.path.insert(0, str(proj))
sys.path.insert(0, str(proj / "scripts"))
os.environ["BACKGROUND_JOBS"] = "0"
import psycopg  # noqa: E402

ADMIN = "host=127.0.0.1 user=postgres dbname=postgres"


def make_copy() -> None:
    deadline = time.monotonic() + args.wait
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{copy}"')
        t0 = time.perf_counter()
        while True:
            try:
                c.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{args.db}"')
                break
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                print(f"{args.db} has other sessions; waiting to copy it", flush=True)
                time.sleep(10)
        print(f"copied {args.db} -> {copy} in {time.perf_counter() - t0:.0f} s", flush=True)


def add_missing_columns(engine) -> None:
    """The models' columns the copy lacks (seeded before a migration), added with their defaults."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import inspect

    from backend.app.extensions import db

    with engine.begin() as conn:
        have = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in inspect(conn).get_table_names()}
        ops = Operations(MigrationContext.configure(conn))
        for table in db.metadata.sorted_tables:
            for column in table.columns:
                if table.name in have and column.name not in have[table.name]:
                    print(f"adding {table.name}.{column.name} to the copy", flush=True)
                    ops.add_column(table.name, column._copy())


make_copy()
try:
    import bench_import as bi  # noqa: E402
    from backend.app import create_app  # noqa: E402
    from backend.app.extensions import db  # noqa: E402
    from backend.app.services.ingest import ingest_message  # noqa: E402
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{copy}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False,
                      "SECRET_KEY": "bench-only-not-a-secret"})
    with app.app_context():
        add_missing_columns(db.engine)
        mails = bi.build_corpus(args.mails, identities=2 * args.jobs, tag="scale")
        # bench_import.seed_jobs names its customers "Bench customer NNN": unique in a seeded database too
        known = bi.seed_jobs(mails, args.jobs)
        matching = sum(1 for m in mails if m.identity in known)
        ingest_message(bi.build_corpus(1, 2, tag="warm", offset=10**6)[0].raw, source="warm-up", source_id="w")
        counter = bi.StatementCounter(db.engine) if args.profile else None
        start, cpu = time.perf_counter(), time.process_time()
        states = {}
        for i, m in enumerate(mails):
            st = ingest_message(m.raw, source="graph", source_id=f"scale-{i}").state
            states[st] = states.get(st, 0) + 1
        el, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"ingest_message into {args.db} copy: {len(mails)} mails in {el:.2f} s = {len(mails) / el:.0f} mails/s "
              f"({1000 * el / len(mails):.2f} ms/mail wall, {1000 * cpu / len(mails):.2f} ms/mail CPU here); "
              f"{states}; {matching} of known jobs; load {os.getloadavg()[0]:.2f}", flush=True)
        if counter is not None:
            counter.close()
            print(counter.report(len(mails), el))
        db.session.remove()
        db.engine.dispose()
finally:
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
