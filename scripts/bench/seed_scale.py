#!/usr/bin/env python3
"""Seed a Backupchecks database at MSP scale with fast bulk SQL (COPY through psycopg).

    PROJ=<a clone of the project>
    $PROJ/.venv/bin/python seed_scale.py --proj $PROJ --db bench_scale_1m   --customers 300 --jobs 3000
    $PROJ/.venv/bin/python seed_scale.py --proj $PROJ --db bench_scale_100k --customers 30  --jobs 300

What it does
1. DROP/CREATE the database (only names starting with ``bench_scale`` are accepted), then the app's own
   migrations: ``flask --app backend.app db upgrade`` (DATABASE_URL, BACKGROUND_JOBS=false).
2. ``flask --app backend.app create-user <admin> --role admin --password-stdin`` (the login for timing).
3. Drops the secondary indexes / unique constraints of the four big tables (definitions saved from
   pg_catalog), loads every table with COPY (session_replication_role=replica: no FK triggers; the
   ids are generated consistent), re-creates the indexes and constraints with the exact saved
   definitions, links tickets/remarks to runs with INSERT ... SELECT, sets the sequences, VACUUM ANALYZE
   (autovacuum is off on the shared test server; production has it on).

Shape (``--customers C --jobs J --days N``; the 10x smaller database has the same shape):
- C customers (3 % inactive), J jobs (skewed 1..~60 per customer, 2 % archived), 16 software
  profiles taken from the parser corpus (software, backup type, parser, body sizes).
- Schedules (learned_schedule JSON as the learner writes it): 80 % daily, 12 % Mon-Fri, 3 % monthly,
  5 % twice a day; evening slots 19:00-23:30 local, 20 % after midnight (00:30-04:00).
- One run per scheduled slot for N days up to the anchor (today 07:30 Europe/Amsterdam): ~88 % Success,
  ~7 % Warning, ~3 % Failed, ~2 % Missed (missed=True, missed_slot, no mail, no objects); job health
  varies (healthy / flaky / broken jobs). Objects per run ~5 on average (VMs, agents, mailboxes ...).
- Reviews: everything before yesterday 08:30 local is reviewed (by 8 operators) except ~2 % of jobs
  with a few forgotten runs of the last days; everything since is the unreviewed backlog (~J runs).
- Mail: one processed mail per real run (source graph, unique ids, parse_result with objects), plus
  ~J/60 Inbox mails a day for the last 30 days (unknown jobs, non-reports, parse errors) and some
  deleted ones. Bodies (text + HTML from the corpus) are stored for the last 30 days and the Inbox;
  raw bytes for the Inbox and the last 3 days; older rows keep raw_size/sha256 only (raw_purged_at set
  past 90 days, as the retention does). Row counts are realistic for the whole period.
- Overrides (~J/7.5: global, job, object levels; some expired/inactive); warnings of overridden jobs
  become "Success (override)" after the rule's creation.
- Tickets (~0.8 J total, ~J/12 open) and remarks (~0.4 J total, ~J/20 open), scoped to jobs (70 %),
  customers (20 %) or objects (10 %), linked to every run of their scope while open (as the importer
  does, by INSERT ... SELECT).
- Audit log: one ``job.review`` entry per job per day (what bulk review writes), plus ticket, override
  and login events; import_cycles every 15 min; report definitions and monthly report runs; news.
"""
from __future__ import annotations

import tempfile
import argparse
import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

UTC = timezone.utc
ZONE = ZoneInfo("Europe/Amsterdam")
ADMIN_USER = "bench-admin"
ADMIN_PASSWORD = "Scale-Test-Password-2026!"
BIG_TABLES = ("job_runs", "run_objects", "mail_messages", "audit_logs")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- COPY text helpers -----------------------------------------------------------------------------

def esc(v) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return "\\\\x" + v.hex()
    s = str(v)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def row(*vals) -> str:
    return "\t".join(esc(v) for v in vals) + "\n"


class Copier:
    """A COPY ... FROM STDIN on its own connection, fed in chunks."""

    def __init__(self, dsn: str, table: str, columns: list[str]):
        import psycopg
        self.conn = psycopg.connect(dsn, autocommit=False)
        self.conn.execute("SET session_replication_role = replica")
        self.conn.execute("SET synchronous_commit = off")
        self.cur = self.conn.cursor()
        self.cm = self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.cm.__enter__()
        self.buf: list[str] = []
        self.size = 0
        self.rows = 0
        self.table = table

    def add(self, line: str) -> None:
        self.buf.append(line)
        self.size += len(line)
        self.rows += 1
        if self.size > 4_000_000:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.copy.write("".join(self.buf))
            self.buf, self.size = [], 0

    def close(self) -> int:
        self.flush()
        self.cm.__exit__(None, None, None)
        self.conn.commit()
        self.conn.close()
        return self.rows


# --- corpus profiles -------------------------------------------------------------------------------

SOFTWARE_WEIGHTS = [
    ("Veeam Backup & Replication", 34), ("Veeam Agent for Microsoft Windows", 8),
    ("Veeam Backup for Microsoft 365", 7), ("Synology Hyper Backup", 8),
    ("Synology Active Backup for Business", 6), ("QNAP Hybrid Backup Sync", 4), ("Proxmox VE", 5),
    ("Proxmox Backup Server", 3), ("NAKIVO Backup & Replication", 3), ("Acronis Cyber Protect", 5),
    ("Cove Data Protection", 5), ("Veritas Backup Exec", 3), ("Macrium Reflect", 3),
    ("Hornetsecurity VM Backup", 2), ("Duplicati", 2), ("Microsoft Windows Server Backup", 2),
]
OBJ_COUNT = {  # (min, max) objects per run, by software
    "Veeam Backup & Replication": (2, 12), "Veeam Agent for Microsoft Windows": (1, 1),
    "Veeam Backup for Microsoft 365": (3, 9), "Synology Hyper Backup": (1, 4),
    "Synology Active Backup for Business": (2, 8), "QNAP Hybrid Backup Sync": (1, 3), "Proxmox VE": (2, 8),
    "Proxmox Backup Server": (1, 4), "NAKIVO Backup & Replication": (2, 10), "Acronis Cyber Protect": (1, 3),
    "Cove Data Protection": (1, 4), "Veritas Backup Exec": (1, 6), "Macrium Reflect": (1, 2),
    "Hornetsecurity VM Backup": (2, 8), "Duplicati": (1, 2), "Microsoft Windows Server Backup": (1, 3),
}
OBJ_TYPE = {"Veeam Backup for Microsoft 365": "Mailbox", "Veeam Agent for Microsoft Windows": "Computer",
            "Synology Hyper Backup": "Folder", "QNAP Hybrid Backup Sync": "Folder", "Duplicati": "Folder",
            "Cove Data Protection": "Data source", "Macrium Reflect": "Disk",
            "Microsoft Windows Server Backup": "Volume", "Acronis Cyber Protect": "Machine"}
JOB_NAMES = ["Daily VM Backup", "SQL Backup", "File Server Backup", "Exchange Online", "NAS to USB",
             "Offsite Copy", "Domain Controller", "Hyper-V Cluster", "Workstations", "Config Backup",
             "ERP Server", "Nightly Full", "Replica DR Site", "Cloud Copy", "SharePoint", "Mailboxes",
             "Webserver", "Fileshare", "Archive", "Laptops", "Terminal Servers", "Linux Servers"]
WARN_MSGS = ["Changed block tracking is disabled", "Snapshot took longer than 30 minutes",
             "Low free space on the repository (8 % left)", "1 file could not be read (in use)",
             "Retry succeeded after 1 attempt", "Quota almost reached"]
FAIL_MSGS = ["Error: The network path was not found", "Failed to create VM snapshot",
             "Authentication failed for the backup repository", "Destination disk is full",
             "Job was stopped by the user", "Timeout waiting for the agent"]
CUSTOMER_WORDS = ["Acme", "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark",
                  "Wayne", "Tyrell", "Cyberdyne", "Hooli", "Vandelay", "Wonka", "Soylent", "Gringotts",
                  "Aperture", "Oscorp", "Pied Piper", "Massive", "Dunder", "Blue Sun", "Monarch", "Nakatomi"]
CUSTOMER_KINDS = ["Logistics", "Accountants", "Dental Care", "Legal", "Bakery", "Construction", "Holding",
                  "Schools", "Retail", "Engineering", "Healthcare", "Foundation", "Transport", "Media"]


def load_profiles(proj: Path) -> dict:
    """Per software: the corpus samples (raw bytes, text, html, backup type, parser) that parse as it."""
    sys.path.insert(0, str(proj / "containers" / "backupchecks" / "src"))
    from backend.app.parsers.normalize import normalize
    from backend.app.parsers.registry import parse_message
    # The repository's own samples, plus the team's corpus beside the clone where it exists.
    files = sorted(glob.glob(str(proj / "tests" / "samples" / "emails" / "*" / "*.eml")))
    files += sorted(glob.glob(str(proj / "tests" / "parsers" / "samples" / "*.eml")))
    files += sorted(glob.glob(str(proj.parent / "shared" / "samples" / "emails" / "*" / "*.eml")))
    by_sw: dict[str, list] = {}
    other: list = []
    for f in files:
        raw = Path(f).read_bytes()
        nm = normalize(raw)
        r = parse_message(nm)
        item = {"raw": raw, "text": (nm.text or "")[:20000], "html": (nm.html or None),
                "backup_type": r.backup_type, "parser": r.parser, "reason": (r.reason or "")[:300],
                "subject": nm.subject or "", "from": nm.from_address or ""}
        if r.parsed and r.is_report and r.software:
            by_sw.setdefault(r.software, []).append(item)
        else:
            other.append(item)
    by_sw["_other"] = other
    return by_sw


# --- the seed --------------------------------------------------------------------------------------

def local_dt(d: date, minutes: int) -> datetime:
    """Local wall minutes after midnight of day d (may exceed 1440: next day) -> UTC."""
    base = datetime.combine(d, dtime(0, 0), tzinfo=ZONE)
    return (base + timedelta(minutes=minutes)).astimezone(UTC) if minutes < 1440 else \
        datetime.combine(d + timedelta(days=1), dtime(0, 0), tzinfo=ZONE).astimezone(UTC) + timedelta(minutes=minutes - 1440)


def hhmm(m: int) -> str:
    m %= 1440
    return f"{m // 60:02d}:{m % 60:02d}"


SETTINGS_SNIPPET = """
from backend.app import create_app
from backend.app.extensions import db
from backend.app.services.settings import get_settings
app = create_app({"BACKGROUND_JOBS": False})
with app.app_context():
    s = get_settings()
    s.auto_import_enabled = True   # as in a deployment that imports from its mailbox
    db.session.commit()
    print("system_settings row:", s.id, s.ui_timezone, s.daily_status_rule)
"""


def ensure_settings(proj: Path, url: str) -> None:
    """The system_settings row, as a deployment has it once an admin saved Settings (else every request
    inserts it in a savepoint and rolls back)."""
    env = dict(os.environ, DATABASE_URL=url, BACKGROUND_JOBS="false",
               PYTHONPATH=str(proj / "containers" / "backupchecks" / "src"))
    subprocess.run([str(proj / ".venv" / "bin" / "python"), "-c", SETTINGS_SNIPPET], env=env, cwd=proj, check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proj", default=os.environ.get("PROJ", str(Path(__file__).resolve().parents[2])))
    ap.add_argument("--db", required=True)
    ap.add_argument("--customers", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=3000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--anchor", default="", help="local anchor 'YYYY-MM-DD HH:MM' (default today 07:30)")
    ap.add_argument("--only-settings", action="store_true", help="only add the system_settings row")
    args = ap.parse_args(argv)
    if not args.db.startswith("bench_scale"):
        print("refusing: only databases named bench_scale* may be created or dropped", file=sys.stderr)
        return 2
    proj = Path(args.proj).resolve()
    if args.only_settings:
        ensure_settings(proj, f"postgresql+psycopg://postgres@{args.host}:5432/{args.db}")
        return 0
    t_start = time.perf_counter()
    rnd = random.Random(args.seed)
    dsn = f"host={args.host} port=5432 user=postgres dbname={args.db}"
    admin_dsn = f"host={args.host} port=5432 user=postgres dbname=postgres"
    url = f"postgresql+psycopg://postgres@{args.host}:5432/{args.db}"

    import psycopg
    with psycopg.connect(admin_dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{args.db}"')
    env = dict(os.environ, DATABASE_URL=url, BACKGROUND_JOBS="false",
               PYTHONPATH=str(proj / "containers" / "backupchecks" / "src"))
    flask = str(proj / ".venv" / "bin" / "flask")
    subprocess.run([flask, "--app", "backend.app", "db", "upgrade"], env=env, cwd=proj, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([flask, "--app", "backend.app", "create-user", ADMIN_USER, "--role", "admin",
                    "--password-stdin"], env=env, cwd=proj, check=True, input=ADMIN_PASSWORD + "\n", text=True)
    ensure_settings(proj, url)
    log(f"database {args.db} created and migrated; admin user {ADMIN_USER}; settings row")

    profiles = load_profiles(proj)
    sw_names = [s for s, _ in SOFTWARE_WEIGHTS if s in profiles]
    sw_weights = [w for s, w in SOFTWARE_WEIGHTS if s in profiles]

    # anchor: "this morning" 07:30 local
    if args.anchor:
        anchor_local = datetime.strptime(args.anchor, "%Y-%m-%d %H:%M").replace(tzinfo=ZONE)
    else:
        today = datetime.now(ZONE).date()
        anchor_local = datetime.combine(today, dtime(7, 30), tzinfo=ZONE)
    anchor = anchor_local.astimezone(UTC)
    today = anchor_local.date()
    first_day = today - timedelta(days=args.days)
    review_cutoff = datetime.combine(today - timedelta(days=1), dtime(8, 30), tzinfo=ZONE).astimezone(UTC)
    log(f"anchor {anchor_local.isoformat()} (UTC {anchor.isoformat()}), history {first_day}..{today}, "
        f"backlog since {review_cutoff.isoformat()}")

    with psycopg.connect(dsn, autocommit=True) as c:
        admin_id = c.execute("SELECT id FROM users WHERE username=%s", (ADMIN_USER,)).fetchone()[0]
        audit_base = c.execute("SELECT coalesce(max(id),0) FROM audit_logs").fetchone()[0]

    # --- users (operators who reviewed the history) ---
    users = []
    c0 = psycopg.connect(dsn, autocommit=True)
    for i in range(8):
        users.append(c0.execute(
            "INSERT INTO users (username, password_hash, roles, active_role, theme, is_active_user, created_at, updated_at)"
            " VALUES (%s, '!seeded-no-login', 'operator', 'operator', 'auto', true, %s, %s) RETURNING id",
            (f"operator{i + 1}", anchor - timedelta(days=args.days + 30), anchor)).fetchone()[0])
    reviewers = users + [admin_id]

    # --- customers ---
    C = args.customers
    names = set()
    customers = []
    for cid in range(1, C + 1):
        while True:
            n = f"{rnd.choice(CUSTOMER_WORDS)} {rnd.choice(CUSTOMER_KINDS)} {rnd.randint(1, 999)}"
            if n.lower() not in names:
                names.add(n.lower())
                break
        customers.append({"id": cid, "name": n, "active": rnd.random() > 0.03,
                          "domain": n.lower().replace(" ", "-") + ".example"})
    # jobs per customer: skewed (lognormal), summing to --jobs
    weights = [rnd.lognormvariate(0, 0.9) for _ in range(C)]
    tot = sum(weights)
    counts = [max(1, int(round(w / tot * args.jobs))) for w in weights]
    while sum(counts) > args.jobs:
        i = max(range(C), key=lambda k: counts[k])
        counts[i] -= 1
    while sum(counts) < args.jobs:
        counts[rnd.randrange(C)] += 1

    jobs = []
    jid = 0
    created_at = anchor - timedelta(days=args.days + 35)
    for cust, n in zip(customers, counts):
        used = set()
        for k in range(n):
            jid += 1
            sw = rnd.choices(sw_names, sw_weights)[0]
            prof = rnd.choice(profiles[sw])
            base = rnd.choice(JOB_NAMES)
            name = base if base not in used else f"{base} {k + 1}"
            used.add(name)
            sender = f"{sw.split()[0].lower()}@{cust['domain']}"
            r = rnd.random()
            kind = "daily" if r < 0.80 else "weekdays" if r < 0.92 else "monthly" if r < 0.95 else "twice"
            if rnd.random() < 0.8:
                slot_min = rnd.randrange(19 * 60, 23 * 60 + 31, 15)
            else:
                slot_min = 24 * 60 + rnd.randrange(30, 4 * 60 + 1, 15)  # after midnight: next local day
            health = rnd.random()
            if health < 0.70:
                p = (0.975, 0.015, 0.005, 0.005)      # healthy
            elif health < 0.92:
                p = (0.80, 0.14, 0.04, 0.02)          # flaky
            elif health < 0.985:
                p = (0.55, 0.22, 0.15, 0.08)          # troubled
            else:
                p = (0.10, 0.10, 0.40, 0.40)          # broken
            lo, hi = OBJ_COUNT.get(sw, (1, 4))
            nobj = rnd.randint(lo, hi)
            otype = OBJ_TYPE.get(sw, "VM")
            prefix = cust["name"].split()[0][:3].lower()
            objs = [f"{prefix}-{('srv' if otype in ('VM', 'Computer', 'Machine') else otype.lower().replace(' ', ''))}{i + 1:02d}"
                    for i in range(nobj)]
            archived = rnd.random() < 0.02
            jobs.append({"id": jid, "customer_id": cust["id"], "customer": cust, "software": sw,
                         "backup_type": prof["backup_type"], "parser": prof["parser"], "prof": prof,
                         "job_name": name, "sender": sender, "kind": kind, "slot": slot_min, "p": p,
                         "objs": objs, "otype": otype, "archived": archived,
                         "archived_at": anchor - timedelta(days=rnd.randint(5, 200)) if archived else None,
                         "monthdays": sorted(rnd.sample(range(1, 29), rnd.choice((1, 1, 2)))),
                         "forgotten": rnd.random() < 0.02,
                         "identity_key": "|".join(" ".join(x.split()).lower() for x in (sender, name, sw))})
    J = len(jobs)
    log(f"{C} customers, {J} jobs")

    # --- overrides (decided before the runs: they change effective statuses) ---
    overrides = []
    n_over = max(3, J * 2 // 15)
    job_override: dict[int, dict] = {}
    obj_override: dict[int, dict] = {}
    flaky = [j for j in jobs if j["p"][1] >= 0.14]
    for oid in range(1, n_over + 1):
        r = rnd.random()
        created = anchor - timedelta(days=rnd.randint(1, args.days - 5), minutes=rnd.randint(0, 1440))
        active = rnd.random() > 0.08
        until = created + timedelta(days=rnd.randint(14, 120)) if rnd.random() < 0.25 else None
        o = {"id": oid, "created": created, "active": active, "until": until, "job_id": None,
             "software": None, "backup_type": None, "pattern": None, "object": None,
             "match_status": "Warning", "match_text": None, "comment": "Known issue, accepted by customer"}
        if r < 0.06:
            o["level"] = "global"
            o["software"] = rnd.choice(sw_names)
            o["match_text"] = rnd.choice(WARN_MSGS)[:30]
        elif r < 0.76:
            o["level"] = "job"
            j = rnd.choice(flaky or jobs)
            o["job_id"] = j["id"]
            if active and j["id"] not in job_override:
                job_override[j["id"]] = o
        else:
            o["level"] = "object"
            j = rnd.choice(flaky or jobs)
            o["job_id"] = j["id"]
            o["object"] = rnd.choice(j["objs"])
            if active and j["id"] not in obj_override:
                obj_override[j["id"]] = o
        overrides.append(o)

    # --- runs, objects, mails (three COPY streams at once) ---
    run_cols = ["id", "job_id", "mail_message_id", "status", "effective_status", "override_id", "started_at",
                "ended_at", "missed", "missed_slot", "message", "reviewed_at", "reviewed_by_id", "created_at"]
    obj_cols = ["id", "job_run_id", "name", "type", "status", "effective_status", "message", "override_id"]
    mail_cols = ["id", "source", "source_id", "internet_message_id", "from_address", "subject", "received_at",
                 "imported_at", "raw", "raw_size", "raw_sha256", "raw_purged_at", "body_text", "body_html",
                 "parsed", "is_report", "parser_name", "parse_reason", "parse_error", "software", "backup_type",
                 "job_name", "overall_status", "parse_result", "state", "job_id", "deleted_at", "deleted_by_id"]
    # drop secondary indexes / unique constraints of the big tables first (re-created identically below)
    ddl_conn = psycopg.connect(dsn, autocommit=True)
    saved = ddl_conn.execute("""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)""", (list(BIG_TABLES),)).fetchall()
    idx = ddl_conn.execute("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
         WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
                        (list(BIG_TABLES),)).fetchall()
    for table, con, _ in saved:
        ddl_conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{con}"')
    for name, _ in idx:
        ddl_conn.execute(f"DROP INDEX {name}")
    log(f"dropped {len(saved)} unique constraints and {len(idx)} indexes on {', '.join(BIG_TABLES)}")
    runs_cp = Copier(dsn, "job_runs", run_cols)
    objs_cp = Copier(dsn, "run_objects", obj_cols)
    mail_cp = Copier(dsn, "mail_messages", mail_cols)

    esc_cache: dict[int, tuple[str, str]] = {}

    def bodies(prof) -> tuple[str, str]:
        key = id(prof)
        if key not in esc_cache:
            esc_cache[key] = (esc(prof["text"]), esc(prof["html"]))
        return esc_cache[key]

    raw_cache: dict[int, str] = {}

    def raw_of(prof) -> str:
        key = id(prof)
        if key not in raw_cache:
            raw_cache[key] = esc(prof["raw"])
        return raw_cache[key]

    run_id = obj_id = mail_id = 0
    status_counts = {"Success": 0, "Warning": 0, "Failed": 0, "Missed": 0}
    overridden = 0
    last_run: dict[int, tuple] = {}
    review_days: dict[int, list] = {}  # day -> [(job_id, [run ids], reviewer, when)] for the audit log
    body_from = anchor - timedelta(days=30)
    raw_from = anchor - timedelta(days=3)
    purge_before = anchor - timedelta(days=90)
    status_names = ("Success", "Warning", "Failed", "Missed")
    day = first_day - timedelta(days=1)
    while day <= today:
        for j in jobs:
            kind = j["kind"]
            wd = day.weekday()
            if kind == "weekdays" and wd >= 5:
                continue
            if kind == "monthly" and day.day not in j["monthdays"]:
                continue
            slots = [j["slot"]] if kind != "twice" else [12 * 60 + (j["slot"] % 60), j["slot"]]
            for sm in slots:
                slot = local_dt(day, sm)
                if slot > anchor - timedelta(minutes=20) or slot < local_dt(first_day, 0):
                    continue
                if j["archived"] and slot >= j["archived_at"]:
                    continue
                st = rnd.choices(status_names, j["p"])[0]
                run_id += 1
                missed = st == "Missed"
                started = slot if missed else slot + timedelta(minutes=rnd.randint(-3, 25), seconds=rnd.randint(0, 59))
                ended = None if missed else started + timedelta(minutes=rnd.randint(4, 180), seconds=rnd.randint(0, 59))
                eff, ov_id = st, None
                objs_status = []
                problems = []
                if not missed:
                    bad_n = 0 if st == "Success" else rnd.randint(1, min(2, len(j["objs"])))
                    bad = set(rnd.sample(range(len(j["objs"])), bad_n)) if bad_n else set()
                    for i, oname in enumerate(j["objs"]):
                        if i in bad:
                            ost = st
                            omsg = rnd.choice(WARN_MSGS if st == "Warning" else FAIL_MSGS)
                            problems.append(f"{oname}: {omsg}")
                        else:
                            ost, omsg = "Success", None
                        objs_status.append((oname, ost, omsg))
                    if st == "Warning":
                        o = job_override.get(j["id"])
                        if o and o["created"] <= started and (o["until"] is None or started < o["until"]):
                            eff, ov_id = "Success", o["id"]
                        else:
                            o = obj_override.get(j["id"])
                            if o and o["created"] <= started and (o["until"] is None or started < o["until"]) \
                                    and all(n == o["object"] for n, s, _ in objs_status if s != "Success"):
                                eff, ov_id = "Success", o["id"]
                status_counts[st] += 1
                if ov_id:
                    overridden += 1
                if missed:
                    message = f"No report received for the run expected at {hhmm(sm)}"
                else:
                    message = "\n".join(problems)[:2000] or None
                in_backlog = started >= review_cutoff
                forgotten = j["forgotten"] and started >= anchor - timedelta(days=6)
                if in_backlog or forgotten:
                    rev_at, rev_by = None, None
                else:
                    rev_local_day = (started.astimezone(ZONE) + timedelta(hours=6)).date()
                    rev_at = datetime.combine(rev_local_day, dtime(8, rnd.randint(30, 59)), tzinfo=ZONE).astimezone(UTC)
                    if rev_at < started:
                        rev_at = started + timedelta(hours=2)
                    rev_by = reviewers[rev_local_day.toordinal() % len(reviewers)]
                    review_days.setdefault(rev_local_day.toordinal(), []).append((j["id"], run_id, rev_by, rev_at))
                mid = None
                if not missed:
                    mail_id += 1
                    mid = mail_id
                    prof = j["prof"]
                    received = ended + timedelta(seconds=rnd.randint(20, 400))
                    imported = received + timedelta(seconds=rnd.randint(30, 900))
                    subject = f"[{st}] {j['job_name']} ({len(j['objs'])} objects)"
                    pr = json.dumps({"started_at": started.isoformat(), "ended_at": ended.isoformat(),
                                     "objects": [{"name": n, "type": j["otype"], "status": s, "message": m or ""}
                                                 for n, s, m in objs_status], "copy": False}, separators=(",", ":"))
                    if imported >= body_from:
                        btxt, bhtml = bodies(prof)
                    else:
                        btxt, bhtml = "\\N", "\\N"
                    raw_txt = raw_of(prof) if imported >= raw_from else "\\N"
                    purged = esc(imported + timedelta(days=90, hours=1)) if imported < purge_before else "\\N"
                    sha = hashlib.sha1(f"{mid}".encode()).hexdigest() + "0" * 24
                    mail_cp.add("\t".join((
                        str(mid), "graph", f"AAMkAG{mid:010d}{j['id']:06d}", f"<{mid}.{j['id']}@{j['customer']['domain']}>",
                        esc(j["sender"]), esc(subject), esc(received), esc(imported), raw_txt, str(len(prof["raw"])),
                        sha, purged, btxt, bhtml, "t", "t", esc(prof["parser"]), esc(prof["reason"]), "\\N",
                        esc(j["software"]), esc(j["backup_type"]), esc(j["job_name"]), st, esc(pr), "processed",
                        str(j["id"]), "\\N", "\\N")) + "\n")
                runs_cp.add("\t".join((
                    str(run_id), str(j["id"]), str(mid) if mid else "\\N", st, eff, str(ov_id) if ov_id else "\\N",
                    esc(started), esc(ended), "t" if missed else "f", esc(slot) if missed else "\\N", esc(message),
                    esc(rev_at), str(rev_by) if rev_by else "\\N", esc(ended or slot))) + "\n")
                for oname, ost, omsg in objs_status:
                    obj_id += 1
                    oeff, oov = ost, None
                    if ov_id and ost != "Success":
                        oeff, oov = "Success", ov_id
                    objs_cp.add(f"{obj_id}\t{run_id}\t{oname}\t{j['otype']}\t{ost}\t{oeff}\t"
                                f"{esc(omsg)}\t{oov if oov else chr(92) + 'N'}\n")
                last_run[j["id"]] = (started, eff if not ov_id else "Success")
        day += timedelta(days=1)
        if day.day == 1:
            log(f"  generated up to {day}: runs {run_id}, objects {obj_id}, mails {mail_id}")

    # Inbox mails (unknown jobs, non-reports, parse errors) for the last 30 days, and deleted ones before
    per_day = max(3, J // 60)
    inbox_n = deleted_n = 0
    others = profiles["_other"]
    all_reports = [p for s in sw_names for p in profiles[s]]
    for back in range(0, args.days):
        d = today - timedelta(days=back)
        n = per_day if back < 30 else max(1, per_day // 5)
        for k in range(n):
            mail_id += 1
            t = local_dt(d, rnd.randint(0, 1439))
            if t > anchor:
                t = anchor - timedelta(minutes=rnd.randint(5, 600))
            imported = t + timedelta(seconds=rnd.randint(30, 900))
            r = rnd.random()
            state = "inbox" if back < 30 else "deleted"
            if r < 0.6:
                prof = rnd.choice(all_reports)
                sw = next(s for s in sw_names if prof in profiles[s])
                jn = f"{rnd.choice(JOB_NAMES)} {rnd.randint(1, 50)}"
                st = rnd.choice(("Success", "Success", "Warning", "Failed"))
                fields = ("t", "t", esc(prof["parser"]), esc(prof["reason"]), "\\N", esc(sw), esc(prof["backup_type"]),
                          esc(jn), st, esc(json.dumps({"started_at": t.isoformat(), "ended_at": t.isoformat(),
                                                       "objects": [{"name": "srv01", "type": "VM", "status": st, "message": ""}],
                                                       "copy": False})))
                subject = f"[{st}] {jn}"
                sender = f"backup@newcustomer{rnd.randint(1, 400)}.example"
            elif r < 0.85:
                prof = rnd.choice(others) if others else rnd.choice(all_reports)
                fields = ("t", "f", "not_report", "not a backup report (newsletter, update notice)", "\\N",
                          "\\N", "\\N", "\\N", "\\N", "\\N")
                subject, sender = prof["subject"][:200] or "Newsletter", prof["from"] or "news@vendor.example"
            else:
                prof = rnd.choice(all_reports)
                fields = ("f", "t", "\\N", "no parser recognised this mail", "\\N", "\\N", "\\N", "\\N", "\\N", "\\N")
                subject, sender = "FW: " + (prof["subject"][:200] or "backup"), "it@customer.example"
            btxt, bhtml = bodies(prof)
            keep = state == "inbox"
            mail_cp.add("\t".join((
                str(mail_id), "graph", f"AAMkIN{mail_id:010d}", f"<in{mail_id}@mail.example>", esc(sender), esc(subject),
                esc(t), esc(imported), raw_of(prof) if keep else "\\N", str(len(prof["raw"])),
                hashlib.sha1(f"in{mail_id}".encode()).hexdigest() + "0" * 24, "\\N",
                btxt if keep else "\\N", bhtml if keep else "\\N", *fields, state, "\\N",
                esc(imported + timedelta(days=2)) if state == "deleted" else "\\N",
                str(admin_id) if state == "deleted" else "\\N")) + "\n")
            if state == "inbox":
                inbox_n += 1
            else:
                deleted_n += 1

    n_runs, n_objs, n_mail = runs_cp.close(), objs_cp.close(), mail_cp.close()
    log(f"loaded job_runs {n_runs}, run_objects {n_objs}, mail_messages {n_mail} "
        f"(inbox {inbox_n}, deleted {deleted_n}); statuses {status_counts}, overridden {overridden}")

    # --- small tables on one connection ---
    c = psycopg.connect(dsn, autocommit=False)
    c.execute("SET session_replication_role = replica")
    cur = c.cursor()

    def copy_rows(table, cols, rows):
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            buf = []
            for r in rows:
                buf.append(row(*r))
                if len(buf) >= 20000:
                    cp.write("".join(buf))
                    buf = []
            if buf:
                cp.write("".join(buf))

    t0 = anchor - timedelta(days=args.days + 40)
    copy_rows("customers", ["id", "name", "active", "created_at", "updated_at"],
              [(cu["id"], cu["name"], cu["active"], t0, t0) for cu in customers])

    def learned(j):
        wds = list(range(7)) if j["kind"] in ("daily", "twice") else [0, 1, 2, 3, 4] if j["kind"] == "weekdays" else None
        first = j["slot"] if j["kind"] != "twice" else 12 * 60 + (j["slot"] % 60)
        s = {"kind": "daily" if j["kind"] in ("daily", "twice") else "weekly" if j["kind"] == "weekdays" else "monthly"}
        if wds is not None:
            s["weekdays"] = wds
        else:
            s["monthdays"] = j["monthdays"]
        s.update({"time": hhmm(first), "window_start": hhmm(first - 3), "window_end": hhmm(first + 20),
                  "grace_minutes": 120, "occurrences": 42 if wds else 3,
                  "observed_from": (today - timedelta(days=42)).isoformat(),
                  "observed_to": (today - timedelta(days=1)).isoformat(),
                  "reason": "Ran on 42 of 42 expected days in the last 42 days."})
        return s

    job_rows = []
    for j in jobs:
        ls = learned(j)
        nxt_slot = local_dt(today, j["slot"]) if j["slot"] >= 0 else None
        lr = last_run.get(j["id"])
        job_rows.append((j["id"], j["customer_id"], j["sender"], j["job_name"], j["software"], j["backup_type"],
                         j["identity_key"], j["archived"], j["archived_at"], ls["kind"], json.dumps(ls),
                         anchor - timedelta(hours=3), None,
                         None if j["archived"] else nxt_slot + timedelta(minutes=120),
                         None if j["archived"] else nxt_slot, lr[0] if lr else None, lr[1] if lr else None,
                         created_at, anchor))
    copy_rows("jobs", ["id", "customer_id", "sender", "job_name", "software", "backup_type", "identity_key", "archived",
                       "archived_at", "schedule_kind", "learned_schedule", "learned_at", "manual_schedule",
                       "next_expected_at", "next_expected_slot", "last_run_at", "last_status", "created_at",
                       "updated_at"], job_rows)
    copy_rows("overrides", ["id", "level", "software", "backup_type", "job_name_pattern", "job_id", "object_name",
                            "match_status", "match_text", "match_mode", "valid_from", "valid_until",
                            "treat_as_success", "comment", "active", "created_by_id", "created_at", "updated_at"],
              [(o["id"], o["level"], o["software"], o["backup_type"], o["pattern"], o["job_id"], o["object"],
                o["match_status"], o["match_text"], "contains", o["created"], o["until"], True, o["comment"],
                o["active"], rnd.choice(reviewers), o["created"], o["created"]) for o in overrides])

    # tickets and remarks
    def items(n_total, n_open, prefix):
        out, scopes = [], []
        sid = 0
        for i in range(1, n_total + 1):
            is_open = i > n_total - n_open
            if is_open:
                age = rnd.choice([rnd.randint(1, 30), rnd.randint(1, 60), rnd.randint(30, 200)])
            else:
                age = rnd.randint(8, args.days - 1)
            af = anchor - timedelta(days=age, minutes=rnd.randint(0, 1440))
            res = None if is_open else min(anchor - timedelta(hours=2), af + timedelta(days=rnd.randint(1, 14)))
            out.append((i, af, res))
            r = rnd.random()
            j = rnd.choice(jobs)
            sid += 1
            if r < 0.7:
                scopes.append((sid, i, "job", None, j["id"], None))
            elif r < 0.9:
                scopes.append((sid, i, "customer", j["customer_id"], None, None))
            else:
                scopes.append((sid, i, "object", None, j["id"], rnd.choice(j["objs"])))
        return out, scopes

    n_t_total, n_t_open = max(20, J * 4 // 5), max(5, J // 12)
    n_r_total, n_r_open = max(10, J * 2 // 5), max(3, J // 20)
    tk, tk_scopes = items(n_t_total, n_t_open, "T")
    rm, rm_scopes = items(n_r_total, n_r_open, "R")
    copy_rows("tickets", ["id", "code", "description", "active_from", "created_by_id", "resolved_at", "resolved_by_id",
                          "resolution_note", "created_at", "updated_at"],
              [(i, f"T2026{i:06d}", "Backup fails since the NAS firmware update; vendor case opened.", af,
                rnd.choice(reviewers), res, rnd.choice(reviewers) if res else None, "Fixed." if res else None, af,
                res or af) for i, af, res in tk])
    copy_rows("ticket_scopes", ["id", "ticket_id", "scope_type", "customer_id", "job_id", "object_name"], tk_scopes)
    copy_rows("remarks", ["id", "body", "active_from", "created_by_id", "resolved_at", "resolved_by_id",
                          "resolution_note", "created_at", "updated_at"],
              [(i, "Customer is migrating this server; expect warnings until the move is done.", af,
                rnd.choice(reviewers), res, rnd.choice(reviewers) if res else None, None, af, res or af)
               for i, af, res in rm])
    copy_rows("remark_scopes", ["id", "remark_id", "scope_type", "customer_id", "job_id", "object_name"], rm_scopes)

    # audit log: one job.review entry per job per review morning (as bulk review writes), plus others
    def audit_rows():
        aid = audit_base
        uname = {uid: f"operator{k + 1}" for k, uid in enumerate(users)}
        uname[admin_id] = ADMIN_USER
        for dord in sorted(review_days):
            for job_id, rid, by, at in review_days[dord]:
                aid += 1
                yield (aid, at, by, uname[by], "job.review", "job", str(job_id),
                       f"1 run of job {job_id} marked reviewed (bulk)", None,
                       json.dumps({"count": 1, "run_ids": [rid], "bulk": True}), "10.0.0.15")
        for i, af, res in tk:
            aid += 1
            yield (aid, af, admin_id, ADMIN_USER, "ticket.created", "ticket", str(i), f"Created ticket T2026{i:06d}",
                   None, json.dumps({"code": f"T2026{i:06d}"}), "10.0.0.15")
        for o in overrides:
            aid += 1
            yield (aid, o["created"], admin_id, ADMIN_USER, "override.create", "override", str(o["id"]),
                   f"Created override #{o['id']}", None, json.dumps({"level": o["level"]}), "10.0.0.15")
        for k in range(args.days * 9):
            aid += 1
            at = anchor - timedelta(days=k / 9)
            u = reviewers[k % len(reviewers)]
            yield (aid, at, u, uname[u], "login", "user", str(u), f"{uname[u]} logged in", None, None, "10.0.0.15")
    copy_rows("audit_logs", ["id", "created_at", "user_id", "username", "event", "target_type", "target_id", "summary",
                             "before", "after", "ip_address"], audit_rows())

    # import cycles every 15 minutes
    cyc = []
    t = anchor - timedelta(days=args.days)
    i = 0
    per_cycle = max(1, (J + per_day) // 96)
    while t < anchor:
        i += 1
        n = rnd.randint(0, per_cycle * 3) if t.astimezone(ZONE).hour in range(19, 24) or t.astimezone(ZONE).hour < 6 else rnd.randint(0, 2)
        cyc.append((i, "auto", t, t + timedelta(seconds=2 + n // 20), "done", n, n, 0, max(0, n - 1), min(1, n), 0))
        t += timedelta(minutes=15)
    copy_rows("import_cycles", ["id", "trigger", "started_at", "finished_at", "state", "fetched", "new", "duplicates",
                                "auto_processed", "to_inbox", "failed"], cyc)

    # reports: definitions and monthly runs (small PDF blobs)
    n_def = max(3, C // 10)
    copy_rows("report_definitions", ["id", "name", "all_customers", "customer_ids", "period", "content",
                                     "intro_markdown", "schedule", "schedule_day", "schedule_time", "recipients",
                                     "next_delivery_at", "created_by_id", "created_at", "updated_at"],
              [(i, f"Monthly report {customers[i % C]['name']}", i == 1,
                None if i == 1 else json.dumps([customers[i % C]["id"]]), "last_month", None, "", "monthly", 1,
                "07:00", f"it@{customers[i % C]['domain']}", anchor + timedelta(days=20), admin_id, t0, t0)
               for i in range(1, n_def + 1)])
    rr = []
    rid = 0
    pdf = b"%PDF-1.4\n" + bytes(rnd.getrandbits(8) for _ in range(60000))
    for m in range(12):
        for dfn in range(1, n_def + 1):
            rid += 1
            at = anchor - timedelta(days=30 * m + 2)
            rr.append((rid, dfn, "scheduled", "pdf", "done", 100, 100, at - timedelta(days=30), at,
                       f"report-{dfn}-{m}.pdf", "application/pdf", pdf if m < 3 else None, len(pdf), at,
                       at + timedelta(seconds=20), "sent", 1, at + timedelta(minutes=1)))
    copy_rows("report_runs", ["id", "definition_id", "trigger", "fmt", "state", "progress", "total", "period_start",
                              "period_end", "filename", "content_type", "data", "size", "created_at", "finished_at",
                              "delivery_state", "delivery_attempts", "delivered_at"], rr)
    copy_rows("news_items", ["id", "title", "body", "visible_from", "visible_until", "created_by_id", "created_at",
                             "updated_at"],
              [(i, f"News {i}", "Maintenance window on **Saturday** 22:00-23:00.", anchor - timedelta(days=i * 10),
                None if i < 3 else anchor - timedelta(days=i), admin_id, anchor - timedelta(days=i * 10),
                anchor - timedelta(days=i * 10)) for i in range(1, 6)])
    c.commit()
    c.close()
    log("small tables loaded")

    # --- indexes and constraints back, ticket/remark links, sequences, statistics ---
    t1 = time.perf_counter()
    ddl_conn.execute("SET maintenance_work_mem = '512MB'")
    for name, ddl in idx:
        ddl_conn.execute(ddl)
    for table, con, definition in saved:
        ddl_conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{con}" {definition}')
    log(f"re-created {len(idx)} indexes and {len(saved)} unique constraints in {time.perf_counter() - t1:.0f} s")
    for kind, link, fk in (("tickets", "ticket_job_runs", "ticket_id"), ("remarks", "remark_job_runs", "remark_id")):
        scope = "ticket_scopes" if kind == "tickets" else "remark_scopes"
        n = ddl_conn.execute(f"""
            INSERT INTO {link} ({fk}, job_run_id, linked_at)
            SELECT DISTINCT t.id, r.id, coalesce(r.ended_at, r.started_at)
              FROM {kind} t JOIN {scope} s ON s.{fk} = t.id
              JOIN jobs j ON (s.scope_type = 'customer' AND j.customer_id = s.customer_id)
                          OR (s.scope_type IN ('job', 'object') AND j.id = s.job_id)
              JOIN job_runs r ON r.job_id = j.id AND r.started_at >= t.active_from
                              AND r.started_at < coalesce(t.resolved_at, %s)
             WHERE s.scope_type <> 'object' OR EXISTS (
                   SELECT 1 FROM run_objects o WHERE o.job_run_id = r.id AND lower(o.name) = lower(s.object_name))
        """, (anchor + timedelta(hours=1),)).rowcount
        log(f"{link}: {n} links")
    seqs = ddl_conn.execute("""
        SELECT s.relname, t.relname, a.attname FROM pg_class s
          JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'
          JOIN pg_class t ON t.oid = d.refobjid
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         WHERE s.relkind = 'S'""").fetchall()
    for seq, table, col in seqs:
        ddl_conn.execute(f"SELECT setval('{seq}', coalesce((SELECT max({col}) FROM {table}), 0) + 1, false)")
    t1 = time.perf_counter()
    ddl_conn.execute("VACUUM (ANALYZE)")
    log(f"VACUUM ANALYZE in {time.perf_counter() - t1:.0f} s")
    sizes = ddl_conn.execute("""
        SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables
         ORDER BY pg_total_relation_size(relid) DESC LIMIT 12""").fetchall()
    for r in sizes:
        log(f"  {r[0]:<22} {r[1]:>10} rows {r[2]:>10}")
    db_size = ddl_conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    unrev = ddl_conn.execute("SELECT count(*), count(DISTINCT job_id) FROM job_runs WHERE reviewed_at IS NULL").fetchone()
    log(f"database {args.db}: {db_size}; unreviewed runs {unrev[0]} of {unrev[1]} jobs; "
        f"total {time.perf_counter() - t_start:.0f} s")
    meta = {"db": args.db, "anchor_local": anchor_local.isoformat(), "backlog_day": (today - timedelta(days=1)).isoformat(),
            "today": today.isoformat(), "customers": C, "jobs": J, "runs": n_runs, "objects": n_objs, "mails": n_mail,
            "inbox": inbox_n, "unreviewed": unrev[0], "db_size": db_size,
            "sample_job": next(j["id"] for j in jobs if j["kind"] == "daily" and not j["archived"] and len(j["objs"]) >= 5),
            "seed_seconds": round(time.perf_counter() - t_start)}
    ddl_conn.close()
    out = Path(os.environ.get("SCALE_OUT", str(Path(tempfile.gettempdir()) / "scale"))) / f"{args.db}.json"
    out.write_text(json.dumps(meta, indent=2))
    log(f"meta -> {out}: {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
