#!/usr/bin/env python3
"""Indicative browser cost of the big pages: headless Debian Chromium (Playwright) against gunicorn as in
bench_pages.py; per page N loads, Navigation Timing (response end, DOMContentLoaded end, load end) and
the number of DOM elements.

    $PROJ/.venv/bin/python browser_timing.py 100k=bench_scale_100k 1m=bench_scale_1m [--loads 5]
"""
import tempfile
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_pages as bp  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("targets", nargs="+")
ap.add_argument("--loads", type=int, default=5)
ap.add_argument("--port", type=int, default=8131)
ap.add_argument("--pages", nargs="*", default=["run-checks", "run-checks include reviewed", "daily-jobs backlog day",
                                                "tickets", "dashboard", "jobs"])
ap.add_argument("--out", default=str(bp.OUT_DIR / "browser.json"))
args = ap.parse_args()
targets = [tuple(t.split("=", 1)) for t in args.targets]
proj = Path(__file__).resolve().parents[2]
from playwright.sync_api import sync_playwright  # noqa: E402

servers = []
results = {}
try:
    for i, (name, db) in enumerate(targets):
        s = bp.Server(proj, db, args.port + i, name)
        s.start()
        servers.append(s)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for s, (name, db) in zip(servers, targets):
            meta = bp.load_meta(db)
            paths = dict(bp.urls_for(meta, bp.queue_middle_job(db)))
            ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = ctx.new_page()
            base = f"http://127.0.0.1:{s.port}"
            page.goto(base + "/auth/login")
            page.fill("input[name=username]", bp.ADMIN_USER)
            page.fill("input[name=password]", bp.ADMIN_PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_load_state("load")
            assert "/auth/login" not in page.url, f"login failed: {page.url}"
            for label in args.pages:
                rows = []
                for k in range(args.loads + 1):
                    t0 = time.perf_counter()
                    page.goto(base + paths[label], wait_until="load")
                    wall = (time.perf_counter() - t0) * 1000
                    nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                        return {resp: n.responseEnd, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                                elements: document.getElementsByTagName('*').length}; }""")
                    if k:
                        rows.append({**nav, "wall": wall})
                med = {key: round(statistics.median(r[key] for r in rows), 1) for key in ("resp", "dcl", "load", "wall")}
                med["elements"] = rows[-1]["elements"]
                results.setdefault(label, {})[name] = med
                print(f"{label:<30} {name:>5}: response end {med['resp']:>7} ms, DOMContentLoaded {med['dcl']:>7} ms, "
                      f"load {med['load']:>7} ms, {med['elements']} elements", flush=True)
            ctx.close()
        browser.close()
finally:
    for s in servers:
        s.stop()
Path(args.out).write_text(json.dumps(results, indent=1))
