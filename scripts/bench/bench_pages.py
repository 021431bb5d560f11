#!/usr/bin/env python3
"""Time Backupchecks' morning pages served as in production (gunicorn + the project's config), and
count the SQL statements each request sends (PostgreSQL statement log of the target database only).

    PROJ=<a clone of the project>
    $PROJ/.venv/bin/python bench_pages.py --proj $PROJ time  --targets 100k=bench_scale_100k 1m=bench_scale_1m
    $PROJ/.venv/bin/python bench_pages.py --proj $PROJ count --targets 100k=bench_scale_100k 1m=bench_scale_1m
    $PROJ/.venv/bin/python bench_pages.py --proj $PROJ explain --targets 1m=bench_scale_1m --from count.json --url /daily-jobs...

Serving: ``gunicorn --config containers/backupchecks/gunicorn.conf.py "backend.app:create_app()"`` from the
clone's venv with APP_ENV=production, a random APP_SECRET_KEY, BACKGROUND_JOBS=false, GUNICORN_WORKERS=2
(gthread, 4 threads each, the config's defaults), one server per database, bound to 127.0.0.1 only
(``--bind`` on the command line overrides the config's 0.0.0.0). Logged in as the seeded admin through
/auth/login with its csrf_token; the session cookie (Secure in production) is sent by hand over http.

time:  for each URL, wait until the 1-minute load is <= --max-load (up to --load-wait s; the load is
       recorded either way), then per target --warmup requests and --requests timed sequential requests
       on one keep-alive connection (the targets back to back, so size ratios come from one run).
       Records p50/p95 (nearest rank)/max/min ms, response KB, status, gunicorn's own %(M)s time.
       At the end: VmRSS of every gunicorn worker.
count: ALTER DATABASE <db> SET log_statement='all' and log_min_duration_statement=0 (reset afterwards),
       a fresh gunicorn, then per URL 1 warm-up + --count-requests requests; the server log lines of
       that database written during each request are parsed: statements (BEGIN/COMMIT/ROLLBACK/
       SAVEPOINT/RELEASE and the pool's ';' ping reported apart), server time (parse+bind+execute)
       and the slowest statements with their parameters (kept for ``explain``).
explain: EXPLAIN (ANALYZE, BUFFERS) of the N slowest statements of one URL from a count result.
"""
from __future__ import annotations

import tempfile
import argparse
import http.client
import json
import math
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import date, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

PG_LOG = os.environ.get("PG_LOG", "/var/log/postgresql/postgresql-15-main.log")
ADMIN_USER = "bench-admin"
ADMIN_PASSWORD = "Scale-Test-Password-2026!"
OUT_DIR = Path(os.environ.get("SCALE_OUT", str(Path(tempfile.gettempdir()) / "scale")))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_load(max_load: float, max_wait: float) -> tuple[float, float]:
    """(load when the wait started, load when it ended); waits while load > max_load, at most max_wait s."""
    first = load1()
    t0 = time.time()
    while load1() > max_load and time.time() - t0 < max_wait:
        time.sleep(10)
    return first, load1()


# --- HTTP client with manual cookies ------------------------------------------------------------

class Client:
    def __init__(self, port: int, ua: str = "scale-bench/1"):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.ua = ua

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        hdrs = {"User-Agent": self.ua, "Accept": "text/html", "Accept-Encoding": "identity"}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                elapsed = time.perf_counter() - t0
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        for value in resp.msg.get_all("Set-Cookie") or []:
            c = SimpleCookie()
            c.load(value)
            for k, morsel in c.items():
                if morsel.value == "" or "expires=thu, 01 jan 1970" in value.lower():
                    self.cookies.pop(k, None)
                else:
                    self.cookies[k] = morsel.value
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, resp, data, elapsed

    def login(self, user: str, password: str) -> None:
        status, _, html, _ = self.request("GET", "/auth/login")
        m = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', html) or \
            re.search(rb'value="([^"]+)"[^>]*name="csrf_token"', html)
        if status != 200 or not m:
            raise RuntimeError(f"login page: status {status}, csrf token {'found' if m else 'missing'}")
        body = urllib.parse.urlencode({"csrf_token": m.group(1).decode(), "username": user,
                                       "password": password}).encode()
        status, resp, data, _ = self.request("POST", "/auth/login", body=body,
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise RuntimeError(f"login failed: status {status}: {data[:300]!r}")
        status, _, data, _ = self.request("GET", "/")
        if status != 200 or b"/auth/logout" not in data and b"logout" not in data.lower():
            raise RuntimeError(f"after login / answered {status}")


# --- gunicorn -----------------------------------------------------------------------------------------

class Server:
    def __init__(self, proj: Path, db: str, port: int, name: str):
        self.proj, self.db, self.port, self.name = proj, db, port, name
        self.proc: subprocess.Popen | None = None
        self.logfile = OUT_DIR / f"gunicorn-{name}.log"

    def start(self) -> None:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.db}",
            "APP_ENV": "production", "APP_SECRET_KEY": secrets.token_hex(32), "BACKGROUND_JOBS": "false",
            "APP_PORT": str(self.port), "GUNICORN_WORKERS": "2",
            "PYTHONPATH": str(self.proj / "containers" / "backupchecks" / "src"),
            "APP_INSTANCE_PATH": str(OUT_DIR / f"instance-{self.name}"),
            "APP_VERSION_FILE": str(self.proj / "version.txt"),
        })
        for k in ("GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_MAX_REQUESTS"):
            env.pop(k, None)
        cmd = [str(self.proj / ".venv" / "bin" / "gunicorn"), "--config",
               str(self.proj / "containers" / "backupchecks" / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{self.port}", "backend.app:create_app()"]
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.proj, env=env, stdout=self.log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                if r.status == 200 and len(self.workers()) >= 2:
                    log(f"gunicorn {self.name} ({self.db}) up on :{self.port}, master {self.proc.pid}, "
                        f"workers {self.workers()}")
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited; see {self.logfile}")
            time.sleep(1)
        raise RuntimeError(f"gunicorn {self.name} did not answer /health")

    def workers(self) -> list[int]:
        out = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if self.proc and int(fields[1]) == self.proc.pid:
                    out.append(int(p.name))
        return sorted(out)

    def rss_mb(self) -> dict[int, float]:
        out = {}
        for pid in self.workers() + ([self.proc.pid] if self.proc else []):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[pid] = round(int(line.split()[1]) / 1024, 1)
            except OSError:
                pass
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # the master we started; it stops its workers
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
        if getattr(self, "log_fh", None):
            self.log_fh.close()


# --- URLs ---------------------------------------------------------------------------------------------

def urls_for(meta: dict, queue_job: int | None = None) -> list[tuple[str, str]]:
    """(label, path) of the morning pages and their page-2/filter variants."""
    backlog, today, job = meta["backlog_day"], meta["today"], meta["sample_job"]
    out = [
        ("dashboard", "/"),
        ("daily-jobs backlog day", f"/daily-jobs?date={backlog}"),
        ("daily-jobs backlog p2", f"/daily-jobs?date={backlog}&page=2"),
        ("daily-jobs backlog failed", f"/daily-jobs?date={backlog}&status=failed"),
        ("daily-jobs today", f"/daily-jobs?date={today}"),
        ("run-checks", "/run-checks"),
        ("run-checks include reviewed", "/run-checks?include_reviewed=1"),
        ("inbox", "/inbox"),
        ("inbox p2", "/inbox?page=2"),
        ("jobs", "/jobs"),
        ("jobs p2", "/jobs?page=2"),
        ("jobs sort=status", "/jobs?sort=status"),
        ("job detail", f"/jobs/{job}"),
        ("job detail p2", f"/jobs/{job}?page=2"),
        ("customers", "/customers"),
        ("tickets", "/tickets"),
        ("tickets remarks", "/tickets?tab=remarks"),
        ("overrides", "/overrides"),
        ("audit-log", "/audit-log"),
        ("audit-log p2", "/audit-log?page=2"),
        ("reports", "/reports"),
    ]
    if queue_job:
        out.insert(6, ("run-checks job in queue", f"/run-checks?job={queue_job}"))
    return out


def queue_middle_job(db: str) -> int | None:
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}") as c:
        r = c.execute("SELECT job_id FROM job_runs WHERE reviewed_at IS NULL GROUP BY job_id "
                      "ORDER BY job_id OFFSET (SELECT count(DISTINCT job_id)/2 FROM job_runs WHERE reviewed_at IS NULL) "
                      "LIMIT 1").fetchone()
    return r[0] if r else None


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


# --- statement log parsing ------------------------------------------------------------------------------

ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] (\S*)@(\S*) (LOG|DETAIL|STATEMENT|ERROR|WARNING|HINT|CONTEXT|FATAL):  (.*)$")
TX = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def parse_log(text: str, db: str) -> list[dict]:
    """Statements of ``db`` in a chunk of the server log, in order, with server time and parameters."""
    entries: list[list] = []
    for line in text.splitlines():
        m = ENTRY.match(line)
        if m:
            entries.append([m.group(1), m.group(3), m.group(4), m.group(5)])
        elif entries:
            entries[-1][3] += "\n" + line
    stmts: list[dict] = []
    pending_phase: dict[str, float] = {}
    last_by_pid: dict[str, dict] = {}
    prev_kind: dict[str, str] = {}
    for pid, edb, kind, msg in entries:
        if edb != db:
            continue
        if kind == "LOG":
            prev_kind[pid] = "stmt" if msg.startswith(("statement: ", "execute ")) else "other"
        if kind == "LOG" and (msg.startswith("statement: ") or msg.startswith("execute ")):
            sql = msg.split(": ", 1)[1] if msg.startswith("statement: ") else msg.split(": ", 1)[1]
            st = {"pid": pid, "sql": sql, "params": None, "ms": pending_phase.pop(pid, 0.0),
                  "proto": "simple" if msg.startswith("statement: ") else "extended"}
            stmts.append(st)
            last_by_pid[pid] = st
        elif kind == "DETAIL" and msg.startswith("parameters: ") and prev_kind.get(pid) == "stmt":
            last_by_pid[pid]["params"] = msg[len("parameters: "):]  # (a DETAIL after a bind line is skipped)
        elif kind == "LOG" and msg.startswith("duration: "):
            m = re.match(r"duration: ([\d.]+) ms(.*)", msg, re.S)
            ms, rest = float(m.group(1)), m.group(2).strip()
            if rest.startswith(("parse ", "bind ")):
                pending_phase[pid] = pending_phase.get(pid, 0.0) + ms
            elif pid in last_by_pid:
                last_by_pid[pid]["ms"] += ms
    for st in stmts:
        head = st["sql"].lstrip().split(None, 1)[0].upper().rstrip(";") if st["sql"].strip() else ""
        st["class"] = "ping" if st["sql"].strip() in (";", "") else "tx" if head in TX else "query"
    return stmts


def substitute(sql: str, params: str | None) -> str:
    if not params:
        return sql
    values = dict(re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", params))
    for n in sorted(values, key=int, reverse=True):
        sql = re.sub(rf"\${n}(?!\d)", lambda _m, v=values[n]: v, sql)
    return sql


# --- modes ---------------------------------------------------------------------------------------------

def start_servers(proj, targets, base_port):
    servers = []
    for i, (name, db) in enumerate(targets):
        s = Server(proj, db, base_port + i, name)
        s.start()
        servers.append(s)
    clients = {}
    for s in servers:
        c = Client(s.port)
        c.login(ADMIN_USER, ADMIN_PASSWORD)
        clients[s.name] = c
    return servers, clients


def load_meta(db: str) -> dict:
    return json.loads((OUT_DIR / f"{db}.json").read_text())


def mode_time(args, proj, targets):
    metas = {name: load_meta(db) for name, db in targets}
    qjobs = {name: queue_middle_job(db) for name, db in targets}
    servers, clients = start_servers(proj, targets, args.port)
    results = {"mode": "time", "requests": args.requests, "warmup": args.warmup, "targets": dict(targets),
               "cpus": os.cpu_count(), "pages": []}
    try:
        labels = [lbl for lbl, _ in urls_for(metas[targets[0][0]], 1)]
        if args.only:
            labels = [lbl for lbl in labels if any(o in lbl for o in args.only)]
        for label in labels:
            lb, la = wait_for_load(args.max_load, args.load_wait)
            entry = {"page": label, "load_before_wait": lb, "load_start": la, "sizes": {}}
            for name, _db in targets:
                path = dict(urls_for(metas[name], qjobs[name]))[label]
                c = clients[name]
                for _ in range(args.warmup):
                    c.request("GET", path)
                times, sizes, statuses = [], set(), set()
                for _ in range(args.requests):
                    status, _, data, el = c.request("GET", path)
                    times.append(el * 1000)
                    sizes.add(len(data))
                    statuses.add(status)
                entry["sizes"][name] = {
                    "path": path, "status": sorted(statuses), "n": len(times),
                    "p50": round(statistics.median(times), 1), "p95": round(pct(times, 0.95), 1),
                    "max": round(max(times), 1), "min": round(min(times), 1),
                    "kb": round(max(sizes) / 1024, 1), "kb_min": round(min(sizes) / 1024, 1),
                    "times": [round(t, 1) for t in times]}
                log(f"{label:<30} {name:>5}: p50 {entry['sizes'][name]['p50']:>8} ms  p95 "
                    f"{entry['sizes'][name]['p95']:>8}  max {entry['sizes'][name]['max']:>8}  "
                    f"{entry['sizes'][name]['kb']:>7} KB  status {sorted(statuses)}  load {load1():.2f}")
            entry["load_end"] = load1()
            results["pages"].append(entry)
        results["rss_mb"] = {s.name: s.rss_mb() for s in servers}
        log(f"RSS (MB) {results['rss_mb']}")
    finally:
        for s in servers:
            s.stop()
    out = Path(args.out or OUT_DIR / f"time-{time.strftime('%H%M%S')}.json")
    out.write_text(json.dumps(results, indent=1))
    log(f"-> {out}")


def mode_count(args, proj, targets):
    import psycopg
    metas = {name: load_meta(db) for name, db in targets}
    qjobs = {name: queue_middle_job(db) for name, db in targets}
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        for _, db in targets:
            assert db.startswith("bench_scale")
            c.execute(f'ALTER DATABASE "{db}" SET log_statement = \'all\'')
            c.execute(f'ALTER DATABASE "{db}" SET log_min_duration_statement = 0')
    results = {"mode": "count", "targets": dict(targets), "pages": []}
    servers = []
    try:
        servers, clients = start_servers(proj, targets, args.port)
        labels = [lbl for lbl, _ in urls_for(metas[targets[0][0]], 1)]
        if args.only:
            labels = [lbl for lbl in labels if any(o in lbl for o in args.only)]
        for label in labels:
            entry = {"page": label, "sizes": {}}
            for name, db in targets:
                path = dict(urls_for(metas[name], qjobs[name]))[label]
                c = clients[name]
                c.request("GET", path)
                time.sleep(0.3)
                per = []
                for _ in range(args.count_requests):
                    with open(PG_LOG, "rb") as fh:
                        fh.seek(0, 2)
                        start = fh.tell()
                    status, _, data, el = c.request("GET", path)
                    time.sleep(0.4)
                    with open(PG_LOG, "rb") as fh:
                        fh.seek(start)
                        chunk = fh.read().decode("utf-8", "replace")
                    stmts = parse_log(chunk, db)
                    q = [s for s in stmts if s["class"] == "query"]
                    per.append({"status": status, "ms_client": round(el * 1000, 1), "queries": len(q),
                                "tx": sum(1 for s in stmts if s["class"] == "tx"),
                                "pings": sum(1 for s in stmts if s["class"] == "ping"),
                                "server_ms": round(sum(s["ms"] for s in stmts), 1),
                                "top": sorted(({"ms": round(s["ms"], 2), "sql": s["sql"], "params": s["params"]}
                                               for s in q), key=lambda s: -s["ms"])[:5],
                                "all": [[round(s["ms"], 2), " ".join(s["sql"].split())[:140]] for s in stmts]})
                e = {"path": path, "runs": per, "queries": [p["queries"] for p in per],
                     "tx": [p["tx"] for p in per], "pings": [p["pings"] for p in per],
                     "server_ms": [p["server_ms"] for p in per]}
                entry["sizes"][name] = e
                top = per[-1]["top"][0] if per[-1]["top"] else {"ms": 0, "sql": ""}
                log(f"{label:<30} {name:>5}: queries {e['queries']} tx {e['tx']} pings {e['pings']} "
                    f"server {e['server_ms']} ms; slowest {top['ms']} ms: {' '.join(top['sql'].split())[:90]}")
            results["pages"].append(entry)
    finally:
        for s in servers:
            s.stop()
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            for _, db in targets:
                c.execute(f'ALTER DATABASE "{db}" RESET log_statement')
                c.execute(f'ALTER DATABASE "{db}" RESET log_min_duration_statement')
    out = Path(args.out or OUT_DIR / f"count-{time.strftime('%H%M%S')}.json")
    out.write_text(json.dumps(results, indent=1))
    log(f"-> {out}")


def mode_explain(args, proj, targets):
    import psycopg
    data = json.loads(Path(args.source).read_text())
    name, db = targets[0]
    out_lines = []
    for entry in data["pages"]:
        if args.url and not any(u == entry["page"] for u in args.url):
            continue
        e = entry["sizes"].get(name)
        if not e:
            continue
        top = e["runs"][-1]["top"][:args.top]
        for st in top:
            sql = substitute(st["sql"], st["params"])
            with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}") as c:
                c.execute("SET TIME ZONE 'UTC'")
                plan = c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
                c.rollback()
            out_lines.append(f"### {entry['page']} [{name}] logged {st['ms']} ms\n```sql\n{sql}\n```\n```\n"
                             + "\n".join(r[0] for r in plan) + "\n```\n")
    text = "\n".join(out_lines)
    out = Path(args.out or OUT_DIR / f"explain-{name}.md")
    out.write_text(text)
    log(f"-> {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("time", "count", "explain"))
    ap.add_argument("--proj", default=os.environ.get("PROJ", str(Path(__file__).resolve().parents[2])))
    ap.add_argument("--targets", nargs="+", required=True, help="NAME=DATABASE ...")
    ap.add_argument("--port", type=int, default=8101)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--count-requests", type=int, default=2)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--load-wait", type=float, default=120)
    ap.add_argument("--only", nargs="*", help="page labels containing one of these words")
    ap.add_argument("--out")
    ap.add_argument("--source", help="explain: the count JSON")
    ap.add_argument("--url", nargs="*", help="explain: page labels")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args(argv)
    targets = [tuple(t.split("=", 1)) for t in args.targets]
    for _, db in targets:
        if not db.startswith("bench_scale"):
            print("only bench_scale* databases", file=sys.stderr)
            return 2
    proj = Path(args.proj).resolve()
    {"time": mode_time, "count": mode_count, "explain": mode_explain}[args.mode](args, proj, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
