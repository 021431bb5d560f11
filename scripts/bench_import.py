#!/usr/bin/env python3
"""Import throughput on PostgreSQL: mails per second through the whole pipeline.

    python scripts/bench_import.py [--mails 2000] [--jobs 300] [--graph-mails 300] [--database-url URL] [--profile]

1. Creates its own database (``backupchecks_bench`` on BENCH_DATABASE_URL / --database-url's server,
   else on the local PostgreSQL when it answers, else on a throw-away embedded one: bench_db.py),
   migrated to head, and seeds ``--jobs`` known jobs.
2. Builds ``--mails`` mails from the sample corpus (tests/samples/emails, a copy of the team's
   shared corpus): each with a unique Message-ID, 2 x jobs identities (varied job names or senders), about
   half of the mails belonging to a known job.
3. Pushes them through ``ingest_message`` (normalise + parse + store + match + run with objects,
   overrides, tickets; one commit per mail, as the importer does) and prints mails per second.
4. Runs ``run_import_cycle`` against a FakeGraph (HTTPS on 127.0.0.1: list, MIME download and move
   per mail) holding ``--graph-mails`` further mails and prints that figure too.

With --profile the ingest run is instrumented (so its mails/s is lower than without): it prints the
SQL statements per mail by kind and table (SELECT/INSERT/UPDATE/DELETE on mail_messages, job_runs, ...,
plus SAVEPOINT/RELEASE and the commits) with their total time, and the Python functions that take the
most time (cProfile, own time and cumulative).

The database is dropped afterwards unless --keep is given. Exits 1 when a mail was lost or stored
twice.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "containers" / "backupchecks" / "src"))
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("BACKGROUND_JOBS", "0")

from bench_db import bench_server  # noqa: E402  (scripts/ is on sys.path when run as a script)


def recreate_database(url: str, drop_only: bool = False) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{u.database}"')


def build_corpus(n: int, identities: int, tag: str, offset: int = 0):
    """``n`` mails cycling through ``identities`` (sample x variant) identities, unique Message-IDs."""
    from tests.test_importer import _base_results, build_mail

    per_sample = len(_base_results())
    variants = max(1, -(-identities // per_sample))
    mails = []
    for i in range(offset, offset + n):
        variant = (i // per_sample) % variants
        mails.append(build_mail(i, tag=tag, variant=variant))
    return mails


def seed_jobs(mails, jobs: int) -> set:
    from backend.app.extensions import db
    from backend.app.models import Customer, Job
    from backend.app.services.ingest import job_identity_key

    identities = sorted({m.identity for m in mails if m.identity})
    known = set(identities[::2][:jobs])
    customers = [Customer(name=f"Bench customer {i:03d}") for i in range(max(1, len(known) // 10))]
    db.session.add_all(customers)
    db.session.flush()
    for i, (sender, job_name, software) in enumerate(sorted(known)):
        db.session.add(Job(customer_id=customers[i % len(customers)].id, sender=sender, job_name=job_name,
                           software=software, identity_key=job_identity_key(sender, job_name, software)))
    db.session.commit()
    return known


def count(model) -> int:
    from sqlalchemy import func, select

    from backend.app.extensions import db
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def bench_ingest(mails, profiler=None) -> tuple[float, Counter]:
    from backend.app.services.ingest import ingest_message

    states: Counter = Counter()
    if profiler is not None:
        profiler.enable()
    start, cpu = time.perf_counter(), time.process_time()
    for i, m in enumerate(mails):
        states[ingest_message(m.raw, source="graph", source_id=f"bench-{i}").state] += 1
    states["_cpu"] = time.process_time() - cpu
    elapsed = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    return elapsed, states


# --- --profile: statements per mail and the Python side --------------------------------------

_SQL_KIND = re.compile(r"^\s*(\w+)", re.S)
_SQL_TABLE = {
    "SELECT": re.compile(r"\bFROM\s+\"?(\w+)", re.I),
    "INSERT": re.compile(r"^\s*INSERT\s+INTO\s+\"?(\w+)", re.I),
    "UPDATE": re.compile(r"^\s*UPDATE\s+\"?(\w+)", re.I),
    "DELETE": re.compile(r"^\s*DELETE\s+FROM\s+\"?(\w+)", re.I),
}


def statement_label(statement: str) -> str:
    """'SELECT job_runs', 'INSERT run_objects', 'SAVEPOINT', ... for one SQL statement."""
    m = _SQL_KIND.match(statement)
    kind = m.group(1).upper() if m else "?"
    if kind == "WITH":
        # data-modifying WITH clauses (e.g. the ticket and remark links in one statement)
        written = re.findall(r"\bINSERT\s+INTO\s+\"?(\w+)", statement, re.I)
        if written:
            return "INSERT " + "+".join(dict.fromkeys(written)) + " (one statement)"
        kind = "SELECT"
    rx = _SQL_TABLE.get(kind)
    t = rx.search(statement) if rx else None
    return f"{kind} {t.group(1)}" if t else kind


class StatementCounter:
    """Counts and times every statement the engine sends (before/after_cursor_execute), plus the
    commits and the pool's checkouts (each a pre-ping round trip with pool_pre_ping)."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.engine, self.event = engine, event
        self.count: Counter = Counter()
        self.seconds: Counter = Counter()
        self.rows: Counter = Counter()   # executemany: parameter sets sent in one statement
        self._start: dict = {}
        self._hooks = [(engine, "before_cursor_execute", self._before),
                       (engine, "after_cursor_execute", self._after),
                       (engine.pool, "checkout", self._checkout)]
        for target, name, fn in self._hooks:
            event.listen(target, name, fn)
        # The engine has no event after a COMMIT: the dialect's do_commit is timed instead.
        dialect = engine.dialect
        self._do_commit = dialect.do_commit

        def timed_commit(dbapi_connection):
            t = time.perf_counter()
            try:
                return self._do_commit(dbapi_connection)
            finally:
                self.count["COMMIT"] += 1
                self.seconds["COMMIT"] += time.perf_counter() - t
        dialect.do_commit = timed_commit

    def close(self):
        for target, name, fn in self._hooks:
            self.event.remove(target, name, fn)
        del self.engine.dialect.do_commit  # back to the class's method

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._start[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        label = statement_label(statement)
        self.count[label] += 1
        self.seconds[label] += time.perf_counter() - self._start.pop(id(cursor), time.perf_counter())
        self.rows[label] += len(parameters) if executemany and parameters else 1

    def _checkout(self, dbapi_conn, record, proxy):
        self.count["(pool checkout)"] += 1

    def report(self, mails: int, elapsed: float) -> str:
        stmts = sum(v for k, v in self.count.items() if k != "COMMIT" and not k.startswith("("))
        stmt_time = sum(v for k, v in self.seconds.items() if k != "COMMIT")
        lines = [f"statements per mail: {stmts / mails:.2f} (+ {self.count['COMMIT'] / mails:.2f} commits, "
                 f"{self.count['(pool checkout)'] / mails:.2f} pool checkouts); time in statements "
                 f"{1000 * stmt_time / mails:.2f} ms/mail + commits {1000 * self.seconds['COMMIT'] / mails:.2f} "
                 f"ms/mail, of {1000 * elapsed / mails:.2f} ms/mail wall",
                 f"  {'statement':<54} {'per mail':>9} {'rows/stmt':>9} {'ms/mail':>9} {'ms/stmt':>8}"]
        for label, n in sorted(self.count.items(), key=lambda kv: (-self.seconds[kv[0]], -kv[1])):
            if label.startswith("("):
                continue
            rows = f"{self.rows[label] / n:.1f}" if label != "COMMIT" else "-"
            lines.append(f"  {label:<54} {n / mails:>9.2f} {rows:>9} "
                         f"{1000 * self.seconds[label] / mails:>9.3f} {1000 * self.seconds[label] / n:>8.3f}")
        return "\n".join(lines)


def profile_report(profiler, top: int = 25) -> str:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"top {top} Python functions by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"top {top} by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(top)
    # print_stats' header names the profile file and the totals; keep the tables
    return "\n".join(line for line in out.getvalue().splitlines()
                     if line.strip() and not line.lstrip().startswith(("Ordered by", "List reduced")))


def bench_graph(app, mails) -> tuple[float, object]:
    from backend.app.mail import graph as graph_module
    from backend.app.services.importer import run_import_cycle
    from tests.fakes.fake_graph import FakeGraph

    with FakeGraph([(m.raw, m.received) for m in mails]) as fake:
        os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_bundle
        os.environ.pop("CURL_CA_BUNDLE", None)
        graph_module.reset_token_cache()
        app.config["GRAPH_ENV_OVERRIDES"] = {
            "graph_tenant_id": fake.tenant_id, "graph_client_id": fake.client_id,
            "graph_client_secret": fake.client_secret, "graph_mailbox": fake.mailbox,
            "graph_incoming_folder": fake.incoming, "graph_processed_folder": fake.processed}
        app.config["GRAPH_AUTHORITY_HOST"] = fake.authority_host
        app.config["GRAPH_API_BASE"] = fake.api_base
        app.config["GRAPH_CLIENT_OPTIONS"] = {"page_size": 100, "timeout": 30}
        start = time.perf_counter()
        cycle = run_import_cycle(trigger="cli", batch_size=len(mails))
        elapsed = time.perf_counter() - start
        moved = len(fake.messages_in(fake.processed))
    cycle.moved = moved
    return elapsed, cycle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mails", type=int, default=2000, help="mails through ingest_message (default 2000)")
    ap.add_argument("--jobs", type=int, default=300, help="known jobs to seed (default 300)")
    ap.add_argument("--graph-mails", type=int, default=300, help="mails through run_import_cycle + FakeGraph")
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    ap.add_argument("--profile", action="store_true",
                    help="instrument the ingest run: statements per mail by kind and table with their time, "
                         "and the top Python functions (the mails/s figure is then lower)")
    ap.add_argument("--profile-out", metavar="FILE",
                    help="with --profile: also write the raw cProfile data here (python -m pstats FILE)")
    args = ap.parse_args(argv)
    with bench_server(args.database_url) as url:
        return run(args, url)


def run(args, url: str) -> int:
    if not url.startswith("postgresql"):
        print("bench_import needs PostgreSQL (--database-url postgresql://...)", file=sys.stderr)
        return 2

    import logging
    logging.basicConfig(level=logging.WARNING)
    try:
        recreate_database(url)
    except Exception as exc:  # noqa: BLE001
        print(f"cannot create the bench database: {exc}", file=sys.stderr)
        return 2
    from backend.app import create_app
    from backend.app.extensions import db
    from backend.app.models import JobRun, MailMessage, RunObject

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": True,
                      "SECRET_KEY": "bench-only-not-a-secret"})
    ok = True
    try:
        with app.app_context():
            t0 = time.perf_counter()
            mails = build_corpus(args.mails, identities=2 * args.jobs, tag="bench")
            graph_mails = build_corpus(args.graph_mails, identities=2 * args.jobs, tag="bench-graph",
                                       offset=args.mails)
            known = seed_jobs(mails + graph_mails, args.jobs)
            matching = sum(1 for m in mails if m.identity in known)
            print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
                  f"(wall-clock figures drop under load)")
            print(f"corpus: {len(mails)} + {len(graph_mails)} mails from {len({m.sender for m in mails})} "
                  f"senders, {len({m.identity for m in mails if m.identity})} job identities, "
                  f"{len(known)} known jobs, {matching} mails of known jobs "
                  f"(built in {time.perf_counter() - t0:.1f} s)")

            # warm-up (imports, regex compilation, connection pool) on a throw-away mail
            from backend.app.services.ingest import ingest_message
            ingest_message(build_corpus(1, 2, tag="warm", offset=10**6)[0].raw, source="warm-up", source_id="w")
            db.session.execute(db.delete(MailMessage).where(MailMessage.source == "warm-up"))
            db.session.commit()

            counter = profiler = None
            if args.profile:
                import cProfile
                counter, profiler = StatementCounter(db.engine), cProfile.Profile()
            elapsed, states = bench_ingest(mails, profiler)
            if counter is not None:
                counter.close()
            stored = count(MailMessage)
            runs, objects = count(JobRun), count(RunObject)
            rate = len(mails) / elapsed
            cpu = states.pop("_cpu")
            print(f"ingest_message (parse + store + run, PostgreSQL): {len(mails)} mails in {elapsed:.2f} s "
                  f"= {rate:.0f} mails/s ({1000 * elapsed / len(mails):.2f} ms/mail wall, "
                  f"{1000 * cpu / len(mails):.2f} ms/mail CPU in this process); "
                  f"processed={states['processed']} inbox={states['inbox']} duplicate={states['duplicate']}; "
                  f"runs={runs} run_objects={objects}")
            if stored != len(mails) or states["processed"] != matching or runs != matching:
                print(f"MISMATCH: stored={stored} expected {len(mails)}, runs={runs} expected {matching}",
                      file=sys.stderr)
                ok = False
            if counter is not None:
                print("\n--profile (the figure above is instrumented):")
                print(counter.report(len(mails), elapsed))
                print(profile_report(profiler))
                if args.profile_out:
                    profiler.dump_stats(args.profile_out)
                    print(f"cProfile data written to {args.profile_out}")
                print()

            if args.graph_mails:
                elapsed, cycle = bench_graph(app, graph_mails)
                rate = cycle.new / elapsed if elapsed else 0.0
                print(f"run_import_cycle via FakeGraph (HTTPS list + MIME + move): {cycle.fetched} fetched, "
                      f"{cycle.new} new, {cycle.auto_processed} became runs, {cycle.to_inbox} to the Inbox, "
                      f"{cycle.failed} failed, {cycle.moved} moved in {elapsed:.2f} s = {rate:.0f} mails/s")
                if cycle.new != len(graph_mails) or cycle.moved != len(graph_mails) or cycle.failed:
                    print("MISMATCH in the Graph cycle", file=sys.stderr)
                    ok = False
            total = count(MailMessage)
            distinct = db.session.execute(
                db.select(db.func.count(db.distinct(MailMessage.internet_message_id)))).scalar_one()
            if total != distinct or total != len(mails) + len(graph_mails):
                print(f"MISMATCH: {total} rows, {distinct} distinct Message-IDs", file=sys.stderr)
                ok = False
            db.session.remove()
        with app.app_context():
            db.engine.dispose()
    finally:
        if not args.keep:
            recreate_database(url, drop_only=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
