#!/usr/bin/env python3
"""Parser throughput: parse the sample corpus from memory, repeatedly, in one process.

    python scripts/bench_parsers.py [--rounds N] [--top K]

Reads every .eml of the sample corpus (tests/samples/emails, a copy of the
team's shared corpus) and tests/parsers/samples once, then runs ``parse_raw`` over all of
them for a fixed number of rounds. Prints messages per second on one core
(CPU time of this process, so other load on the machine does not skew it;
wall-clock figures are printed too) and the slowest parsers (mean
milliseconds per message, by the parser that handled it). Exits 1 when
throughput is below --min (default 1000 msgs/s).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "containers" / "backupchecks" / "src"))

from backend.app.parsers.registry import parse_raw  # noqa: E402

ROOTS = (REPO_ROOT / "tests" / "samples" / "emails", REPO_ROOT / "tests" / "parsers" / "samples")


def load() -> list[tuple[str, bytes]]:
    out = []
    for root in ROOTS:
        if root.is_dir():
            out += [(p.name, p.read_bytes()) for p in sorted(root.rglob("*.eml"))]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--min", type=float, default=1000.0, help="fail below this many messages per second")
    args = ap.parse_args(argv)
    corpus = load()
    if not corpus:
        print("no samples found", file=sys.stderr)
        return 2
    for _, raw in corpus:  # warm-up: imports, regex compilation, lazy caches
        parse_raw(raw)
    per_parser: dict[str, list[float]] = defaultdict(list)
    per_file: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    cpu_start = time.process_time()
    total_start = clock()
    round_times = []
    for _ in range(args.rounds):
        r0 = clock()
        for name, raw in corpus:
            t0 = clock()
            result = parse_raw(raw)
            dt = clock() - t0
            per_parser[result.parser or "(none)"].append(dt)
            per_file[name] += dt
        round_times.append(clock() - r0)
    elapsed = clock() - total_start
    cpu = time.process_time() - cpu_start
    n = len(corpus) * args.rounds
    rate = n / cpu if cpu > 0 else float("inf")
    print(f"{len(corpus)} messages x {args.rounds} rounds = {n} parses: {rate:,.0f} messages/s "
          f"on one core (CPU time {cpu:.2f} s)")
    best = len(corpus) / min(round_times)
    print(f"wall clock: {n / elapsed:,.0f} messages/s overall, best round {best:,.0f} messages/s "
          f"(lower when other processes share the CPU)")
    print(f"slowest parsers (mean ms per message):")
    ranked = sorted(per_parser.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), reverse=True)
    for parser, times in ranked[: args.top]:
        print(f"  {parser:40s} {1000 * sum(times) / len(times):7.3f} ms  ({len(times) // args.rounds} samples)")
    print("slowest messages (mean ms):")
    for name, total in sorted(per_file.items(), key=lambda kv: kv[1], reverse=True)[:5]:
        print(f"  {name:60s} {1000 * total / args.rounds:7.3f} ms")
    if rate < args.min:
        print(f"below the target of {args.min:,.0f} messages/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
