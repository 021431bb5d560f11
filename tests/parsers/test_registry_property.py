"""parse_raw never raises, whatever the bytes; what nobody understands says so."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from backend.app.parsers.base import ParseResult
from backend.app.parsers.registry import parse_raw
from tests.corpus import CORPUS

HERE = Path(__file__).resolve().parent
SAMPLE_ROOTS = (CORPUS, HERE / "samples")
SAMPLES = [p.read_bytes() for root in SAMPLE_ROOTS for p in sorted(root.rglob("*.eml"))]


def _check(result):
    assert isinstance(result, ParseResult)
    assert isinstance(result.reason, str)
    assert result.overall_status in (None, "Success", "Warning", "Failed")
    for o in result.objects:
        assert isinstance(o.name, str)
        assert o.status in (None, "Success", "Warning", "Failed")
    result.to_dict()  # serialisable for the CLI and the database


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    _check(parse_raw(raw))


@pytest.mark.slow  # over 5 s
@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_arbitrary_text_never_raises(text):
    _check(parse_raw(text))


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=200), body=st.text(max_size=2000))
def test_arbitrary_headers_and_bodies_never_raise(subject, body):
    raw = ("From: x@example.com\r\nSubject: " + subject.replace("\r", " ").replace("\n", " ")
           + "\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body)
    _check(parse_raw(raw.encode("utf-8", "surrogatepass")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(idx=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32 - 1),
       cut=st.floats(min_value=0.0, max_value=1.0), flips=st.integers(min_value=0, max_value=40))
def test_mutated_real_samples_never_raise(idx, seed, cut, flips):
    assert SAMPLES, "no samples found"
    raw = bytearray(SAMPLES[idx % len(SAMPLES)])
    rng = random.Random(seed)
    raw = raw[: max(1, int(len(raw) * cut))] if cut < 0.95 else raw
    for _ in range(flips):
        if raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    _check(parse_raw(bytes(raw)))


def test_message_no_parser_understands_is_unparsed_with_a_reason():
    raw = (b"From: someone@example.org\r\nSubject: Lunch on Friday?\r\nContent-Type: text/plain\r\n\r\n"
           b"Shall we meet at noon?\r\n")
    result = parse_raw(raw)
    assert result.parsed is False
    assert result.software is None and result.objects == []
    assert "no parser" in result.reason


def test_a_parser_that_raises_is_reported_not_propagated(monkeypatch):
    from backend.app.parsers import registry
    from backend.app.parsers.base import Parser

    class Boom(Parser):
        name = "boom"

        def matches(self, msg):
            return "always"

        def parse(self, msg):
            raise ValueError("bad table")

    monkeypatch.setattr(registry, "PARSERS", (Boom(),))
    result = registry.parse_raw(b"Subject: x\r\n\r\nbody")
    assert result.parsed is False and result.parser == "boom"
    assert "ValueError" in result.error and "bad table" in result.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(idx=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32 - 1),
       cut=st.floats(min_value=0.0, max_value=1.0), flips=st.integers(min_value=0, max_value=40))
def test_normalize_itself_never_raises_so_mutated_mail_still_reaches_the_parsers(idx, seed, cut, flips):
    from backend.app.parsers.normalize import normalize

    raw = bytearray(SAMPLES[idx % len(SAMPLES)])
    rng = random.Random(seed)
    raw = raw[: max(1, int(len(raw) * cut))] if cut < 0.95 else raw
    for _ in range(flips):
        if raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    msg = normalize(bytes(raw))
    assert isinstance(msg.text, str) and isinstance(msg.subject, str)
    result = parse_raw(bytes(raw))
    assert not result.reason.startswith("unreadable message"), result.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_normalize_never_raises_on_arbitrary_bytes(raw):
    from backend.app.parsers.normalize import normalize

    msg = normalize(b"From: a@example.com\r\nSubject: x\r\n\r\n" + raw)
    assert isinstance(msg.text, str)


def test_explain_lists_the_criteria_the_message_meets_and_the_import_leaves_it_off():
    raw = (b"From: Veeam B&R <backup@veeam.example>\r\nSubject: [Failed] SQL Tier Backup (2 objects)\r\n"
           b"Message-ID: <x@example.test>\r\n\r\nBackup job: SQL Tier Backup\r\nStart time 22:00\r\n")
    plain = parse_raw(raw)
    assert plain.match_reason and plain.evidence == []
    explained = parse_raw(raw, explain=True)
    assert explained.parser == plain.parser == "veeam"
    found = {(e.on, e.criterion): e.found for e in explained.evidence}
    assert found[("sender", "veeam")] == "backup@veeam.example"
    assert found[("body", "Start time")] == "Start time 22:00"
    assert any(on == "subject" and text == "[Failed] SQL Tier Backup (2 objects)" for (on, _), text in found.items())
    explained.to_dict()  # still serialisable
