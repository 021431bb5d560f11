#!/usr/bin/env python3
"""Markdown table page x size from bench_pages.py results: make_table.py count.json time-1.json [time-2.json ...]

p50 and p95 are the medians over the timing runs of each run's p50/p95 (30 requests each); max is the
largest over all runs; the 1M/100k ratio is computed within each run (the two sizes were timed back to
back) and its median over the runs is shown. Statements = SELECT/INSERT/UPDATE statements per request;
+3 more per request are BEGIN, ROLLBACK and the pool's ';' ping (shown apart when different).
"goal" = p95 under 100 ms, at most 1.5x the smaller size's p50, at most 300 KB (at the larger size).
"SQL ms in PG" = the server-side time of all statements of one request (parse+bind+execute, from
log_min_duration_statement=0 in the count pass), median of the counted requests.
"""
import json
import statistics
import sys

GOAL_P95_MS, GOAL_RATIO, GOAL_KB = 100, 1.5, 300


def goal(p95: float, ratio: float, kb: float) -> str:
    """The goal of the morning pages at the larger size: p95 under 100 ms, at most 1.5x the cost at the
    smaller size, at most 300 KB of HTML."""
    misses = [m for m, bad in ((f"p95 {p95:.0f} ms", p95 >= GOAL_P95_MS), (f"{ratio:.1f}x", ratio > GOAL_RATIO),
                               (f"{kb:.0f} KB", kb > GOAL_KB)) if bad]
    return "met" if not misses else "missed: " + ", ".join(misses)


count = json.load(open(sys.argv[1]))
runs = [json.load(open(p)) for p in sys.argv[2:]]
names = list(runs[0]["targets"])
small, big = names[0], names[-1]
cnt = {p["page"]: p["sizes"] for p in count["pages"]}
print(f"| page | URL ({big}) | " + " | ".join(f"{n} p50 / p95 / max ms" for n in names)
      + " | statements | SQL ms in PG " + " / ".join(names) + " | KB " + " / ".join(names)
      + f" | {big}/{small} p50 | {big}/{small} KB | goal |")
print("|---|---|" + "---|" * len(names) + "---|---|---|---|---|---|")
for i, page in enumerate(runs[0]["pages"]):
    label = page["page"]
    cells = []
    for n in names:
        p50 = statistics.median(r["pages"][i]["sizes"][n]["p50"] for r in runs)
        p95 = statistics.median(r["pages"][i]["sizes"][n]["p95"] for r in runs)
        mx = max(r["pages"][i]["sizes"][n]["max"] for r in runs)
        cells.append(f"{p50:.0f} / {p95:.0f} / {mx:.0f}")
    p95_big = statistics.median(r["pages"][i]["sizes"][big]["p95"] for r in runs)
    ratio = statistics.median(r["pages"][i]["sizes"][big]["p50"] / r["pages"][i]["sizes"][small]["p50"] for r in runs)
    kbs = [page["sizes"][n]["kb"] for n in names]
    c = cnt.get(label, {})
    st = []
    for n in names:
        q = c.get(n, {}).get("queries")
        tx = c.get(n, {}).get("tx")
        if q:
            extra = sorted(set(a + b for a, b in zip(tx, c[n]["pings"])))
            st.append(f"{statistics.median(q):.0f}" + ("" if extra == [3] else f" (+{extra})"))
    stt = " / ".join(dict.fromkeys(st)) if st else "?"
    statuses = set(s for r in runs for n in names for s in r["pages"][i]["sizes"][n]["status"])
    flag = "" if statuses == {200} else f" status {sorted(statuses)}"
    sqlms = " / ".join(f"{statistics.median(c[n]['server_ms']):.0f}" if n in c else "?" for n in names)
    print(f"| {label}{flag} | `{page['sizes'][big]['path']}` | " + " | ".join(cells)
          + f" | {stt} | {sqlms} | " + " / ".join(f"{k:.0f}" for k in kbs) + f" | {ratio:.1f}x | {kbs[-1] / kbs[0]:.1f}x"
          + f" | {goal(p95_big, ratio, kbs[-1])} |")
loads = [(r['pages'][i]['load_start'], r['pages'][i]['load_end']) for r in runs for i in range(len(r['pages']))]
print(f"\nload average (1 min) at the start of the series: median {statistics.median(a for a, _ in loads):.2f}, "
      f"max {max(a for a, _ in loads):.2f}; at the end: max {max(b for _, b in loads):.2f}")
for r in runs:
    print("RSS MB:", r.get("rss_mb"))
