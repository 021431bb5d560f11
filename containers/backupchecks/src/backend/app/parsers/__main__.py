"""Command line for the parser registry.

``python -m backend.app.parsers FILE...``
    One JSON object per file, in input order (JSON Lines): software,
    backup_type, job_name, overall_status, objects, message, started_at, ended_at,
    parser, reason, parsed, is_report, error and file. An unreadable file gives
    a line with ``error`` set; the command itself does not fail.

``python -m backend.app.parsers --check DIR``
    Parses every ``NAME.eml`` under DIR (recursively) and compares it with
    ``NAME.expected.json`` (software, backup_type, job_name, overall_status,
    objects, and ``message`` when the expected file names it). Prints a
    readable diff per mismatch and ends with the line ``N passed, N failed``;
    exits 1 when anything failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from .registry import parse_raw

COMPARED_KEYS = ("software", "backup_type", "job_name", "overall_status", "objects")
OPTIONAL_KEYS = ("message",)   # compared only when NAME.expected.json names them
_OBJECT_KEYS = ("name", "type", "status", "message")


def result_dict(raw: bytes) -> dict:
    d = parse_raw(raw).to_dict()
    d["objects"] = [{k: o.get(k) for k in _OBJECT_KEYS} for o in d.get("objects", [])]
    return d


def _line_for(path: str) -> dict:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return {"file": path, "software": None, "backup_type": None, "job_name": None,
                "overall_status": None, "objects": [], "started_at": None, "ended_at": None,
                "parser": None, "reason": f"cannot read file: {exc.strerror or exc}", "parsed": False,
                "is_report": None, "error": f"{type(exc).__name__}: {exc}"}
    d = result_dict(raw)
    ordered = {"file": path}
    ordered.update({k: d.get(k) for k in COMPARED_KEYS + OPTIONAL_KEYS})
    ordered.update({k: d.get(k) for k in ("started_at", "ended_at", "parser", "reason", "parsed",
                                          "is_report", "error")})
    return ordered


def _fmt(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def diff(expected: dict, got: dict) -> list[str]:
    """Readable differences for the compared keys ([] when equal)."""
    out: list[str] = []
    for key in COMPARED_KEYS + tuple(k for k in OPTIONAL_KEYS if k in expected):
        exp, act = expected.get(key), got.get(key)
        if key == "objects":
            exp = [{k: o.get(k) for k in _OBJECT_KEYS} for o in (exp or [])]
            act = act or []
            if exp == act:
                continue
            out.append(f"  objects: expected {len(exp)}, got {len(act)}")
            for i in range(max(len(exp), len(act))):
                e = exp[i] if i < len(exp) else None
                a = act[i] if i < len(act) else None
                if e == a:
                    continue
                if e is None:
                    out.append(f"    [{i}] unexpected {_fmt(a)}")
                elif a is None:
                    out.append(f"    [{i}] missing    {_fmt(e)}")
                else:
                    for k in _OBJECT_KEYS:
                        if e.get(k) != a.get(k):
                            out.append(f"    [{i}] {k}: expected {_fmt(e.get(k))}, got {_fmt(a.get(k))}")
            continue
        if exp != act:
            out.append(f"  {key}: expected {_fmt(exp)}, got {_fmt(act)}")
    return out


def check(directory: str, out=sys.stdout) -> int:
    root = Path(directory)
    passed = failed = 0
    files = sorted(root.rglob("*.eml")) if root.is_dir() else []
    if not root.is_dir():
        print(f"{directory}: not a directory", file=out)
        failed += 1
    for eml in files:
        exp_path = eml.with_name(eml.name[:-4] + ".expected.json")
        rel = eml.relative_to(root) if root in eml.parents else eml
        if not exp_path.exists():
            print(f"FAIL {rel}\n  no {exp_path.name} beside it", file=out)
            failed += 1
            continue
        try:
            expected = json.loads(exp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"FAIL {rel}\n  unreadable {exp_path.name}: {exc}", file=out)
            failed += 1
            continue
        try:
            got = result_dict(eml.read_bytes())
        except OSError as exc:
            print(f"FAIL {rel}\n  cannot read: {exc}", file=out)
            failed += 1
            continue
        lines = diff(expected, got)
        if lines:
            failed += 1
            print(f"FAIL {rel} (parser: {got.get('parser')}; {got.get('reason')})", file=out)
            for ln in lines:
                print(ln, file=out)
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed", file=out)
    return 1 if failed else 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.app.parsers",
                                 description="Parse backup report mails (.eml) and print JSON Lines.")
    ap.add_argument("--check", metavar="DIR", help="compare every NAME.eml under DIR with NAME.expected.json")
    ap.add_argument("files", nargs="*", metavar="FILE", help=".eml files to parse")
    args = ap.parse_args(argv)
    if args.check:
        return check(args.check)
    if not args.files:
        ap.print_usage(sys.stderr)
        return 2
    for path in args.files:
        try:
            line = _line_for(path)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the rest
            line = {"file": path, "software": None, "backup_type": None, "job_name": None,
                    "overall_status": None, "objects": [], "started_at": None, "ended_at": None,
                    "parser": None, "reason": "error", "parsed": False, "is_report": None,
                    "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
