"""The sample corpus is the regression suite: every sample parses as its expected.json says.

Samples live in ``tests/samples/emails`` (a copy of the shared corpus; see tests/corpus.py)
and in ``tests/parsers/samples``;
each ``NAME.eml`` has a
``NAME.expected.json`` with software, backup_type, job_name, overall_status
and objects (name, type, status, message), compared exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.app.parsers.registry import parse_raw
from tests.corpus import CORPUS

HERE = Path(__file__).resolve().parent
LOCAL = HERE / "samples"
KEYS = ("software", "backup_type", "job_name", "overall_status", "objects")
OBJECT_KEYS = ("name", "type", "status", "message")


def _samples() -> list[Path]:
    found: list[Path] = []
    for root in (CORPUS, LOCAL):
        found += sorted(root.rglob("*.eml"))
    return found


SAMPLES = _samples()


def _id(path: Path) -> str:
    return ("corpus/" if CORPUS in path.parents else "local/") + path.name


def test_the_corpus_is_there():
    assert any(LOCAL in p.parents for p in SAMPLES), "tests/parsers/samples has no .eml files"
    assert any(CORPUS in p.parents for p in SAMPLES), "tests/samples/emails has no .eml files"


@pytest.mark.parametrize("eml", SAMPLES, ids=[_id(p) for p in SAMPLES])
def test_sample_parses_as_expected(eml: Path):
    expected = json.loads(eml.with_name(eml.name[:-4] + ".expected.json").read_text(encoding="utf-8"))
    result = parse_raw(eml.read_bytes())
    got = result.to_dict()
    got["objects"] = [{k: o[k] for k in OBJECT_KEYS} for o in got["objects"]]
    want = {k: expected[k] for k in KEYS}
    want["objects"] = [{k: o.get(k) for k in OBJECT_KEYS} for o in want["objects"]]
    assert {k: got[k] for k in KEYS} == want, f"{result.parser}: {result.reason}"
    if "message" in expected:  # the report's own reason, where the expected file names it
        assert got["message"] == expected["message"]
    if expected["software"] is None:
        # Not a report: recognised as such (filed away), not left "unparsed" in the Inbox.
        assert result.parsed and not result.is_report, result.reason
    else:
        assert result.parsed and result.is_report
        for stamp in (result.started_at, result.ended_at):
            assert stamp is None or stamp.tzinfo is not None, "report times must be timezone-aware"
