#!/usr/bin/env python3
"""Soak: a simulated week of Backupchecks at high speed (``make soak``).

    python scripts/soak.py          # SOAK_DAYS (7), SOAK_MAILS_PER_DAY (3000), SOAK_JOBS (300), SOAK_SEED

1. Creates its own database (``backupchecks_soak`` on SOAK_DATABASE_URL's server, else the local
   PostgreSQL on 127.0.0.1:5432 when it answers, else a throw-away embedded one, as the bench
   targets do) and drops it at the end (SOAK_KEEP=1 keeps it).
2. Seeds ~50 customers and SOAK_JOBS jobs, each with a daily schedule set by hand, built from the
   repository's sample reports (tests/samples/emails) whose run time is the mail's Date (one sender
   variant per job).
3. Drives a simulated clock (time-machine) through the days in 15-minute ticks. Every tick the fake
   Graph (tests/fakes/fake_graph.py, HTTPS on loopback) receives the mails due by then and the
   registered background loops are stepped through ``run_due_loops``: mail import, missed runs,
   notifications (a NOTIFY_URLS channel to tests/fakes/receiver.py) and the digest (SMTP to
   tests/fakes/smtp.py). Each simulated morning an operator reviews the failed and warning runs
   (services/review.py).
4. Mix per day: mostly success, some warnings and failures (by job), some jobs silent for a day
   (-> missed runs), some jobs' mails delivered the next morning (late), a few mails resent
   (duplicates), a few mails no parser reads and a few reports of unknown jobs (-> Inbox).
5. Checks at the end and prints one line per check with its figures; exit 0 only when all pass.
"""
from __future__ import annotations

import os
import random
import re
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "containers" / "backupchecks" / "src"))
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))
os.environ.setdefault("BACKGROUND_JOBS", "0")

from bench_db import bench_server  # noqa: E402

DAYS = int(os.environ.get("SOAK_DAYS", "7"))
MAILS_PER_DAY = int(os.environ.get("SOAK_MAILS_PER_DAY", "3000"))
JOBS = int(os.environ.get("SOAK_JOBS", "300"))
CUSTOMERS = 50
SEED = int(os.environ.get("SOAK_SEED", "21"))
TICK = timedelta(minutes=15)
RETENTION_DAYS = 3
START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday, simulated
P_SILENT, P_LATE, P_DUP = 0.03, 0.02, 0.003
UNPARSEABLE_PER_DAY, UNKNOWN_PER_DAY = 8, 6
MEMORY_GROWTH_LIMIT = 0.30
# Sample reports whose run time is the mail's Date (no start time inside the report)
TEMPLATES = {
    "Success": ["backupexec_job_success.eml", "qnap_hbs_success_en.eml"],  # pbs_gc: the time is in its task id
    "Warning": ["altaro_backup_warning.eml", "cove_backup_completed_errors.eml"],
    "Failed": ["pbs_verify_failed.eml", "qnap_hbs_failed_de.eml"],
}

_DATE_RE = re.compile(rb"(?mi)^Date:[^\n]*\n(?:[ \t][^\n]*\n)*")


def recreate_database(url: str, drop_only: bool = False) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{u.database}"')


TRACEMALLOC = os.environ.get("SOAK_TRACEMALLOC") == "1"
_SRC = str(REPO_ROOT / "containers" / "backupchecks" / "src")


def _owner(frames) -> str:
    """Who made an allocation: the innermost frame in the app's code (app) or in the soak's harness
    (tests/, scripts/: the fake Graph, receiver, SMTP, the plan); else the library that did (other)."""
    for fr in frames:  # most recent call first
        name = fr.filename
        if name.startswith(_SRC):
            return "app"
        if name.startswith(str(REPO_ROOT / "tests")) or name.startswith(str(REPO_ROOT / "scripts")):
            return "harness"
    return "other"


def tracemalloc_report(first, last, first_day: int, last_day: int) -> None:
    """SOAK_TRACEMALLOC=1: what grew between two end-of-day snapshots, by owner and by site."""
    import tracemalloc

    stats = last.compare_to(first, "traceback")
    by_owner: Counter = Counter()
    by_site: Counter = Counter()
    counts: Counter = Counter()
    where: dict = {}
    for st in stats:
        owner = _owner(list(reversed(st.traceback)))
        by_owner[owner] += st.size_diff
        # the site: the innermost frame of the repository when there is one, else the innermost frame
        frames = list(reversed(st.traceback))
        site = next((f for f in frames if f.filename.startswith(str(REPO_ROOT))), frames[0])
        key = (owner, site.filename.replace(str(REPO_ROOT) + "/", ""), site.lineno)
        by_site[key] += st.size_diff
        counts[key] += st.count_diff
        where.setdefault(key, frames[0])
    print(f"tracemalloc: growth from day {first_day} to day {last_day}: " + ", ".join(
        f"{k} {v / 1e6:+.2f} MB" for k, v in by_owner.most_common()), flush=True)
    for (owner, fname, line), size in by_site.most_common(15):
        inner = where[(owner, fname, line)]
        print(f"  {size / 1e6:+7.2f} MB {counts[(owner, fname, line)]:+8d} blocks  [{owner}] {fname}:{line}"
              f"  (allocated in {inner.filename.rsplit('/', 2)[-2:]}:{inner.lineno})", flush=True)
    tracemalloc.stop()


def gc_counts() -> Counter:
    import gc

    return Counter(type(o).__name__ for o in gc.get_objects())


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def with_date(raw: bytes, when: datetime) -> bytes:
    from email.utils import format_datetime

    crlf = b"\r\n" in raw[:2000]
    line = b"Date: " + format_datetime(when).encode() + (b"\r\n" if crlf else b"\n")
    head_end = raw.find(b"\r\n\r\n" if crlf else b"\n\n")
    head, body = raw[:head_end + 1], raw[head_end + 1:]
    head = _DATE_RE.sub(lambda m: line, head, count=1) if _DATE_RE.search(head) else line + head
    return head + body


@dataclass
class SoakJob:
    index: int
    raw: bytes          # the template with this job's sender
    status: str
    identity: tuple
    minute: int         # schedule time, minutes after local midnight
    customer: int


@dataclass
class Planned:
    deliver_at: datetime
    raw: bytes
    message_id: str
    kind: str           # report | duplicate | unparseable | unknown


class Plan:
    """Every mail of the simulation, decided up front from the seed (so the checks know what to expect)."""

    def __init__(self, rng: random.Random, zone):
        from tests.test_importer import _parse, _vary_sender, _with_message_id
        from tests.corpus import CORPUS

        self.zone, self.rng = zone, rng
        self._with_id = _with_message_id
        templates = {}
        for status, names in TEMPLATES.items():
            for name in names:
                raw = (CORPUS / name).read_bytes() if (CORPUS / name).exists() else next(CORPUS.glob(f"**/{name}")).read_bytes()
                nm, res = _parse(raw)
                templates[name] = (raw, nm.from_address, res)
        self.jobs: list[SoakJob] = []
        for i in range(JOBS):
            r = rng.random()
            status = "Success" if r < 0.80 else "Warning" if r < 0.92 else "Failed"
            name = TEMPLATES[status][i % len(TEMPLATES[status])]
            raw, sender, res = templates[name]
            raw = _vary_sender(raw, sender, 1000 + i)
            nm, res2 = _parse(raw)
            assert res2.overall_status == status and res2.job_name == res.job_name, name
            self.jobs.append(SoakJob(i, raw, status, (nm.from_address, res2.job_name, res2.software),
                                     rng.randrange(0, 20 * 60), i % CUSTOMERS))
        self.unknown_templates = [templates[n] for n in TEMPLATES["Success"]]
        self.per_job = max(1, round(MAILS_PER_DAY / JOBS))
        self.mails: list[Planned] = []
        self.silent: list[tuple[int, date]] = []
        self.late: list[tuple[int, date]] = []
        self.counts: Counter = Counter()
        self._n = 0
        for d in range(DAYS):
            self._day(START.date() + timedelta(days=d))
        self.mails.sort(key=lambda m: m.deliver_at)

    def slot(self, job: SoakJob, day: date) -> datetime:
        from backend.app.services.schedules.slots import local_to_utc
        from datetime import time as dtime
        return local_to_utc(day, dtime(job.minute // 60, job.minute % 60), self.zone)

    def _mid(self, kind: str) -> str:
        self._n += 1
        return f"<soak-{self._n:07d}.{kind}@soak.backupchecks.test>"

    def _day(self, day: date) -> None:
        from tests.fakes.fake_graph import make_mime

        rng = self.rng
        for job in self.jobs:
            r = rng.random()
            if r < P_SILENT:
                self.silent.append((job.index, day))
                continue
            late = r < P_SILENT + P_LATE
            if late:
                self.late.append((job.index, day))
            slot = self.slot(job, day)
            for k in range(self.per_job):
                sent = slot + timedelta(minutes=2 * k, seconds=rng.randrange(60))
                deliver = (datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
                           + timedelta(hours=7, minutes=rng.randrange(60))) if late else sent + timedelta(seconds=30)
                mid = self._mid("r")
                raw = self._with_id(with_date(job.raw, sent), mid)
                self.mails.append(Planned(deliver, raw, mid, "report"))
                self.counts["report"] += 1
                if rng.random() < P_DUP:
                    self.mails.append(Planned(deliver + timedelta(minutes=40), raw, mid, "duplicate"))
                    self.counts["duplicate"] += 1
        base = datetime.combine(day, datetime.min.time(), timezone.utc)
        for _ in range(UNPARSEABLE_PER_DAY):
            at = base + timedelta(minutes=rng.randrange(24 * 60))
            mid = self._mid("u")
            self.mails.append(Planned(at, make_mime(f"Out of office: re {mid[1:12]}", sender="someone@other.example",
                                                   date=at, message_id=mid), mid, "unparseable"))
            self.counts["unparseable"] += 1
        for _ in range(UNKNOWN_PER_DAY):
            raw, sender, _res = rng.choice(self.unknown_templates)
            at = base + timedelta(minutes=rng.randrange(24 * 60))
            mid = self._mid("x")
            from tests.test_importer import _vary_sender
            raw = self._with_id(with_date(_vary_sender(raw, sender, 900000 + self._n), at), mid)
            self.mails.append(Planned(at, raw, mid, "unknown"))
            self.counts["unknown"] += 1


def table_sizes(db) -> dict:
    rows = db.session.execute(db.text(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC")).all()
    return {name: size for name, size in rows}


def main() -> int:
    with bench_server(os.environ.get("SOAK_DATABASE_URL")) as url:
        url = url.rsplit("/", 1)[0] + "/" + os.environ.get("SOAK_DB_NAME", "backupchecks_soak")
        try:
            recreate_database(url)
        except Exception as exc:  # noqa: BLE001
            print(f"cannot create the soak database: {exc}", file=sys.stderr)
            return 2
        try:
            return run(url)
        finally:
            if os.environ.get("SOAK_KEEP") != "1":
                recreate_database(url, drop_only=True)


def run(url: str) -> int:  # noqa: C901 - one script, read top to bottom
    import logging

    import time_machine

    logging.basicConfig(level=logging.ERROR)
    wall0 = time.perf_counter()
    traveller = time_machine.travel(START, tick=False)
    _TRAVELLER["c"] = traveller.start()
    try:
        return _run(url, wall0)
    finally:
        traveller.stop()


def _run(url: str, wall0: float) -> int:  # noqa: C901
    import time_machine  # noqa: F401

    from backend.app import create_app
    from backend.app.extensions import db
    from backend.app.mail import graph as graph_module
    from backend.app.models import (Customer, DigestDelivery, Job, JobRun, MailMessage, NotificationOutbox, User,
                                    utcnow)
    from backend.app.services import background, review
    from backend.app.services.accounts import hash_password
    from backend.app.services.schedules.store import set_manual_schedule
    from backend.app.services.schedules.slots import grace_of
    from backend.app.services.schedules.manual import effective_schedule
    from backend.app.services.settings import get_settings
    from backend.app.services.timezones import ui_zone
    from tests.fakes.fake_graph import FakeGraph
    from tests.fakes.receiver import Receiver
    from tests.fakes.smtp import FakeSMTP

    receiver = Receiver().__enter__()
    smtp = FakeSMTP().start()
    fake = FakeGraph([]).start()
    os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_bundle
    os.environ["SSL_CERT_FILE"] = smtp.ca_bundle
    os.environ.pop("CURL_CA_BUNDLE", None)
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": True,
        "SECRET_KEY": "soak-only-not-a-secret", "NOTIFY_URLS": [f"json://127.0.0.1:{receiver.port}/soak"],
        "SMTP_ENV_OVERRIDES": {},
        "GRAPH_ENV_OVERRIDES": {"graph_tenant_id": fake.tenant_id, "graph_client_id": fake.client_id,
                                "graph_client_secret": fake.client_secret, "graph_mailbox": fake.mailbox,
                                "graph_incoming_folder": fake.incoming, "graph_processed_folder": fake.processed},
        "GRAPH_AUTHORITY_HOST": fake.authority_host, "GRAPH_API_BASE": fake.api_base,
        "GRAPH_CLIENT_OPTIONS": {"page_size": 100, "timeout": 30},
    })
    graph_module.reset_token_cache()
    rng = random.Random(SEED)
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, text: str) -> None:
        checks.append((bool(ok), text))

    with app.app_context():
        zone = ui_zone()
        t0 = time.perf_counter()
        plan = Plan(rng, zone)
        s = get_settings()
        s.auto_import_enabled = True
        s.import_interval_minutes = 15
        s.import_batch_size = 1000
        s.keep_raw_mails, s.raw_retention_days = True, RETENTION_DAYS
        s.smtp_host, s.smtp_port, s.smtp_security = smtp.host, smtp.port, "starttls"
        s.smtp_username, s.smtp_password, s.smtp_from = None, None, "digest@msp.example"
        s.digest_enabled, s.digest_time, s.digest_transport = True, "08:00", "smtp"
        s.digest_recipients = "noc@msp.example, lead@msp.example"
        operator = User(username="soak-operator", password_hash=hash_password("soak-only-password"))
        operator.role_list = ["operator"]
        operator.active_role = "operator"
        db.session.add(operator)
        customers = [Customer(name=f"Soak customer {i:02d}") for i in range(CUSTOMERS)]
        db.session.add_all(customers)
        db.session.flush()
        grace = {}
        for sj in plan.jobs:
            sender, job_name, software = sj.identity
            job = Job(customer_id=customers[sj.customer].id, sender=sender, job_name=job_name, software=software,
                      identity_key="|".join(x.strip().lower() for x in sj.identity))
            db.session.add(job)
            db.session.flush()
            set_manual_schedule(job, {"kind": "weekdays", "weekdays": list(range(7)),
                                      "time": f"{sj.minute // 60:02d}:{sj.minute % 60:02d}"}, operator, now=utcnow())
            grace[sj.index] = grace_of(effective_schedule(job))
        from backend.app.models import ReportDefinition
        from backend.app.services.reports.definitions import next_delivery
        report = ReportDefinition(name="Soak weekly report", all_customers=False,
                                  customer_ids=[c.id for c in customers[:5]], period="last_7_days",
                                  schedule="weekly", schedule_day=0, schedule_time="07:00",
                                  recipients="customer@soak.example", created_by_id=operator.id)
        db.session.add(report)
        db.session.flush()
        report.next_delivery_at = next_delivery(report, utcnow(), zone)
        db.session.commit()
        operator_id = operator.id
        print(f"soak: {DAYS} simulated days from {START:%Y-%m-%d}, {len(plan.jobs)} jobs for {CUSTOMERS} customers, "
              f"{len(plan.mails)} mails planned ({dict(plan.counts)}); {len(plan.silent)} silent job-days, "
              f"{len(plan.late)} late job-days; zone {zone}; planned in {time.perf_counter() - t0:.1f} s", flush=True)

    wanted = {"mail-import", "missed-runs", "notifications", "digest", "reports"}
    for loop in background.LOOPS:
        loop.next_run = 0.0 if loop.name in wanted else float("inf")

    # The harness counts what the checks need and keeps nothing per mail, so the process's memory is
    # the app's: the fake Graph forgets the processed folder's messages and its request records, the
    # receiver its requests (kept, they add about 3 KB per mail: most of the growth a run showed).
    harness = Counter()

    def step_loops():
        for loop in background.LOOPS:
            loop.next_run = 0.0 if loop.name in wanted else float("inf")
        ran = background.run_due_loops(app)
        harness["processed"] += fake.forget(fake.processed)
        with receiver._lock:
            harness["notified"] += len(receiver.requests)
            receiver.requests.clear()
        return ran

    end = START + timedelta(days=DAYS, hours=12)
    now, i = START, 0
    memory, sizes, rows_per_day, raw_bytes = [], [], [], []
    snapshots, gc_types = {}, {}
    steps: Counter = Counter()
    reviewed_total = 0
    review_day, review_mornings = None, 0
    while now <= end:
        time_machine_move(now)
        while i < len(plan.mails) and plan.mails[i].deliver_at <= now:
            m = plan.mails[i]
            fake.add_message(m.raw, received=m.deliver_at)
            i += 1
        steps.update(step_loops())
        local = now.astimezone(zone)
        if local.hour == 9 and review_day != local.date():  # the operator's morning review
            review_day, review_mornings = local.date(), review_mornings + 1
            with app.app_context():
                actor = db.session.get(User, operator_id)
                runs = db.session.execute(db.select(JobRun.job_id, JobRun.id).where(
                    JobRun.reviewed_at.is_(None), JobRun.missed.is_(False),
                    JobRun.status.in_(("Failed", "Warning")))).all()
                by_job = defaultdict(list)
                for job_id, run_id in runs:
                    by_job[job_id].append(run_id)
                for job_id, ids in by_job.items():
                    reviewed_total += review.mark_job_reviewed(db.session.get(Job, job_id), actor, ids)
                db.session.remove()
        if now.hour == 23 and now.minute == 45:  # end of a simulated (UTC) day
            with app.app_context():
                sizes.append(table_sizes(db))
                rows_per_day.append(db.session.execute(db.select(db.func.count()).select_from(MailMessage)).scalar_one())
                raw_bytes.append(db.session.execute(db.select(db.func.coalesce(
                    db.func.sum(db.func.octet_length(MailMessage.raw)), 0))).scalar_one())
                db.session.remove()
            memory.append(rss_mb())
            day_n = len(memory)
            if TRACEMALLOC:
                # traced from the end of day 2 on (tracing slows the process several times): what is
                # still allocated at the end of a later day is what that day added and kept
                import gc
                import tracemalloc
                gc.collect()
                if day_n == 2:
                    tracemalloc.start(int(os.environ.get("SOAK_TRACEMALLOC_FRAMES", "10")))
                if day_n >= 2:
                    snapshots[day_n] = tracemalloc.take_snapshot()
                    if day_n > 3:  # keep day 2 and the latest
                        snapshots.pop(day_n - 1, None)
                gc_types[day_n] = gc_counts()
                if day_n > 2:
                    grew = (gc_types[day_n] - gc_types[2]).most_common(10)
                    print(f"  day {day_n}: objects grown since day 2 by type: {grew}; traced "
                          f"{tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB", flush=True)
            print(f"  day {day_n}: {i} mails delivered, RSS {memory[-1]:.0f} MB, database "
                  f"{sum(sizes[-1].values()) / 1e6:.1f} MB (mail_messages {sizes[-1].get('mail_messages', 0) / 1e6:.1f} MB), "
                  f"{time.perf_counter() - wall0:.0f} s wall", flush=True)
        now += TICK
    if TRACEMALLOC and len(snapshots) >= 2:
        last_day = max(snapshots)
        tracemalloc_report(snapshots[2], snapshots[last_day], 2, last_day)
        snapshots.clear()
    # drain: what was delivered last is imported and sent
    for _ in range(3):
        steps.update(step_loops())

    # ---------------------------------------------------------------------------------- checks
    with app.app_context():
        q = lambda stmt: db.session.execute(stmt).scalar_one()  # noqa: E731
        count = lambda model, *w: q(db.select(db.func.count()).select_from(model).where(*w))  # noqa: E731
        sent = len(plan.mails)
        dups = plan.counts["duplicate"]
        unique = sent - dups
        incoming = len(fake.messages_in(fake.incoming))
        processed_folder = harness["processed"] + len(fake.messages_in(fake.processed))
        rows = count(MailMessage)
        distinct = q(db.select(db.func.count(db.distinct(MailMessage.internet_message_id))))
        check(incoming == 0 and processed_folder == sent,
              f"every mail moved: {sent} delivered to the fake Graph, {incoming} left in incoming, "
              f"{processed_folder} in processed")
        check(rows == unique and distinct == unique,
              f"mail_messages rows = unique mails: {rows} rows, {distinct} distinct Message-IDs, "
              f"{unique} unique mails ({sent} sent - {dups} duplicates)")
        cyc = db.session.execute(db.text(
            "SELECT coalesce(sum(new),0), coalesce(sum(duplicates),0), coalesce(sum(failed),0), count(*) "
            "FROM import_cycles")).one()
        check(cyc[0] == unique and cyc[2] == 0,
              f"import cycles: {cyc[3]} cycles, new {cyc[0]} (= {unique} unique), duplicates {cyc[1]} "
              f"(resent {dups}), failed {cyc[2]}")
        inbox_expected = plan.counts["unparseable"] + plan.counts["unknown"]
        inbox = count(MailMessage, MailMessage.state == "inbox")
        processed = count(MailMessage, MailMessage.state == "processed")
        check(inbox == inbox_expected and processed == plan.counts["report"],
              f"Inbox = unparseable + unknown job: {inbox} (expected {plan.counts['unparseable']} + "
              f"{plan.counts['unknown']}); processed {processed} (reports {plan.counts['report']})")
        real_runs = count(JobRun, JobRun.missed.is_(False))
        per_mail = q(db.select(db.func.count(db.distinct(JobRun.mail_message_id))).where(JobRun.missed.is_(False)))
        check(real_runs == per_mail == plan.counts["report"],
              f"one run per report mail: {real_runs} runs, {per_mail} distinct mails, {plan.counts['report']} reports")
        job_ids = dict(db.session.execute(db.select(Job.identity_key, Job.id)).all())
        key_of = {sj.index: "|".join(x.strip().lower() for x in sj.identity) for sj in plan.jobs}
        expected = set()
        for j, day in plan.silent:
            # a slot before the schedule was set (day 1's first minutes in UTC) is no missed run
            if START < plan.slot(plan.jobs[j], day) and plan.slot(plan.jobs[j], day) + grace[j] <= end:
                expected.add((job_ids[key_of[j]], plan.slot(plan.jobs[j], day)))
        last = START.date() + timedelta(days=DAYS)  # no mails on the half day after the week
        for sj in plan.jobs:
            for day in (last, last + timedelta(days=1)):
                if plan.slot(sj, day) + grace[sj.index] <= end:
                    expected.add((job_ids[key_of[sj.index]], plan.slot(sj, day)))
        got = {(job_id, slot) for job_id, slot in db.session.execute(
            db.select(JobRun.job_id, JobRun.missed_slot).where(JobRun.missed.is_(True))).all()}
        missed = count(JobRun, JobRun.missed.is_(True))
        extra, lacking = sorted(got - expected)[:3], sorted(expected - got)[:3]
        check(missed == len(expected) and got == expected,
              f"missed runs: {missed} created, expected {len(expected)} (silent job-days whose deadline passed, "
              f"incl. the half day after the week); {len(plan.late)} late job-days reconciled"
              + (f"; unexpected {extra}, lacking {lacking}" if got != expected else ""))
        out_states = dict(db.session.execute(db.text(
            "SELECT state, count(*) FROM notification_outbox GROUP BY state")).all())
        sent_rows = out_states.get("sent", 0)
        check(harness["notified"] == sent_rows and sent_rows > 0
              and not set(out_states) - {"sent"},
              f"notifications once per event: receiver got {harness['notified']}, outbox sent {sent_rows}, "
              f"states {out_states}")
        digests = Counter((m.message["Subject"], tuple(sorted(a.lower() for a in m.rcpt_tos))) for m in smtp.messages)
        recipients = 2
        per_address = Counter(a.lower() for m in smtp.messages for a in m.rcpt_tos)
        drows = dict(db.session.execute(db.text("SELECT state, count(*) FROM digest_deliveries GROUP BY state")).all())
        digest_days = q(db.select(db.func.count(db.distinct(DigestDelivery.day))))
        sent_days = q(db.select(db.func.count(db.distinct(DigestDelivery.day))).where(DigestDelivery.state == "sent"))
        digest_rows = q(db.select(db.func.count()).select_from(DigestDelivery))
        mornings = (end.astimezone(zone).date() - START.astimezone(zone).date()).days + 1
        check(max(digests.values(), default=0) == 1 and set(per_address.values()) == {sent_days}
              and len(per_address) == recipients and drows.get("sent", 0) == len(smtp.messages)
              and digest_rows == recipients * digest_days and digest_days >= mornings - 1,
              f"digests one per day per address: {len(smtp.messages)} mails, per address {dict(per_address)}; "
              f"{digest_days} digest days of {mornings} simulated mornings ({sent_days} sent, the others all clear: "
              f"skipped), rows {drows}; no (subject, recipient) twice: {max(digests.values(), default=0) == 1}")
        from backend.app.models import ReportRun
        from backend.app.services.schedules.slots import local_to_utc
        from datetime import time as dtime
        mondays = [START.date() + timedelta(days=d) for d in range(DAYS + 2)]
        due = [d for d in mondays if d.weekday() == 0 and START < local_to_utc(d, dtime(7, 0), zone) <= end]
        rep = db.session.execute(db.select(ReportRun.state, ReportRun.delivery_state, ReportRun.size)
                                 .where(ReportRun.trigger == "scheduled")).all()
        report_mails = [m for m in fake.sent_mail if "Soak weekly report" in str(getattr(m, "subject", m))]
        check(len(rep) == len(due) and all(r.state == "done" and r.delivery_state == "sent" for r in rep)
              and len(report_mails) == len(due),
              f"scheduled report (weekly, Monday 07:00): {len(rep)} generated for {len(due)} due, states "
              f"{[(r.state, r.delivery_state, r.size) for r in rep]}, {len(report_mails)} mailed through Graph")
        tasks = dict(db.session.execute(db.text(
            "SELECT state, count(*) FROM background_tasks GROUP BY state")).all()) if _has_table(db, "background_tasks") else {}
        busy = {k: v for k, v in tasks.items() if k in ("queued", "running")}
        check(not busy and not background.running(),
              f"no background task left running: tasks {tasks or '{}'}, runner thread alive {background.running()}")
        from backend.app.models import BackgroundLoopStats, ImportCycleStats
        loop_rows = {r.loop: (r.steps_total, r.failures_total)
                     for r in db.session.execute(db.select(BackgroundLoopStats)).scalars()}
        stats_new = q(db.select(db.func.coalesce(db.func.sum(ImportCycleStats.new_total), 0)))
        check(all(loop_rows.get(name, (0, 0)) == (n, 0) for name, n in steps.items()) and stats_new == unique,
              f"loop and import totals in the database (services/metrics): steps/failures {loop_rows}, "
              f"import new_total {stats_new} (= {unique} unique)")
        check(reviewed_total > 0,
              f"operator reviews: {reviewed_total} failed/warning runs reviewed over {review_mornings} mornings")
        loop_steps = dict(steps)
        raw_kept = count(MailMessage, MailMessage.raw.is_not(None))
        cutoff = utcnow() - timedelta(days=RETENTION_DAYS)
        old_raw = count(MailMessage, MailMessage.raw.is_not(None), MailMessage.imported_at < cutoff)
        check(old_raw == 0,
              f"raw-mail retention {RETENTION_DAYS} days: {raw_kept} raw copies kept, {old_raw} older than the "
              f"retention at the last import")
        # database size: the raw copies level off at about RETENTION_DAYS days' worth once the retention
        # purges; the parsed data (rows, runs) keeps growing, as it should.
        mm = [sz.get("mail_messages", 0) for sz in sizes]
        if len(raw_bytes) > RETENTION_DAYS:
            plateau = raw_bytes[RETENTION_DAYS - 1]
            check(max(raw_bytes[RETENTION_DAYS - 1:]) <= 1.15 * plateau,
                  f"database size follows retention: raw mails kept per day "
                  f"{', '.join(f'{x / 1e6:.1f}' for x in raw_bytes)} MB (levels off at {RETENTION_DAYS} days' worth, "
                  f"{plateau / 1e6:.1f} MB, +15 % allowed); mail_messages table "
                  f"{', '.join(f'{x / 1e6:.1f}' for x in mm)} MB, database "
                  f"{', '.join(f'{sum(sz.values()) / 1e6:.1f}' for sz in sizes)} MB")
        if len(memory) > 2:
            base = memory[1]
            growth = (max(memory[2:]) - base) / base
            check(growth <= MEMORY_GROWTH_LIMIT,
                  f"memory: RSS first {memory[0]:.0f} MB, day 2 {base:.0f} MB, last {memory[-1]:.0f} MB, "
                  f"max {max(memory):.0f} MB; growth after day 2 {100 * growth:.0f} % (limit {100 * MEMORY_GROWTH_LIMIT:.0f} %)")
        print(f"loop steps: {loop_steps}")
        print("largest tables at the end: " + ", ".join(
            f"{k} {v / 1e6:.1f} MB" for k, v in list(sizes[-1].items())[:8]) if sizes else "")
        db.session.remove()
        db.engine.dispose()

    fake.stop()
    smtp.stop()
    receiver.__exit__(None, None, None)
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    failed = sum(1 for ok, _ in checks if not ok)
    print(f"\nsoak: {len(checks) - failed}/{len(checks)} checks passed in {time.perf_counter() - wall0:.0f} s wall")
    return 0 if failed == 0 else 1


def _has_table(db, name: str) -> bool:
    return bool(db.session.execute(db.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one())


_TRAVELLER = {}


def time_machine_move(when: datetime) -> None:
    """Move the simulated clock (the traveller started in ``run``)."""
    _TRAVELLER["c"].move_to(when, tick=False)


if __name__ == "__main__":
    sys.exit(main())
