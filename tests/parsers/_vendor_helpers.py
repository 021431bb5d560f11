"""Shared helpers for the vendor parser tests (sample loading and comparison)."""
from __future__ import annotations

import glob
import json
import os

from backend.app.parsers.normalize import normalize
from backend.app.parsers.registry import parse_raw

from tests.corpus import CORPUS as _CORPUS

HERE = os.path.dirname(__file__)
OWN = os.path.join(HERE, "samples")
# The non-Veeam half of the sample corpus (tests/samples/emails, see tests/corpus.py).
CORPUS = str(_CORPUS / "other")
KEYS = ("software", "backup_type", "job_name", "overall_status", "objects")


def samples(own_prefix: str, corpus_prefixes: tuple[str, ...] = ()) -> list[str]:
    files = sorted(glob.glob(os.path.join(OWN, own_prefix + "*.eml")))
    for p in corpus_prefixes:
        files += sorted(glob.glob(os.path.join(CORPUS, p + "*.eml")))
    return files


def result_dict(r) -> dict:
    return {
        "software": r.software,
        "backup_type": r.backup_type,
        "job_name": r.job_name,
        "overall_status": r.overall_status,
        "objects": [dict(name=o.name, type=o.type, status=o.status, message=o.message) for o in r.objects],
    }


def expected_for(path: str) -> dict:
    with open(path[:-4] + ".expected.json", encoding="utf-8") as fh:
        expected = json.load(fh)
    return {k: expected.get(k, [] if k == "objects" else None) for k in KEYS}


def parse_file(path: str):
    with open(path, "rb") as fh:
        return parse_raw(fh.read())


def assert_sample_matches(path: str) -> None:
    """The parse of a sample file equals its NAME.expected.json (the five compared keys, and the
    result's ``message`` when the expected file names it)."""
    with open(path[:-4] + ".expected.json", encoding="utf-8") as fh:
        expected = json.load(fh)
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == {k: expected.get(k) for k in KEYS}
    if "message" in expected:
        assert result.message == expected["message"]


def load(name: str):
    with open(os.path.join(OWN, name), "rb") as fh:
        return normalize(fh.read())


def raw_mail(subject: str, body: str, sender: str = "alerts@example.com",
             date: str = "Tue, 14 May 2024 22:00:00 +0200", ctype: str = "text/plain") -> bytes:
    return (f"From: {sender}\nTo: ops@example.com\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <t.{abs(hash(subject + body)) % 10**8}@example.com>\nMIME-Version: 1.0\n"
            f"Content-Type: {ctype}; charset=\"utf-8\"\nContent-Transfer-Encoding: 8bit\n\n{body}").encode("utf-8")


def forwarded_text(subject: str, sender: str, body: str, date: str = "Tuesday, May 14, 2024 10:42 PM") -> bytes:
    """An Outlook-style inline forward (text/plain) of a report mail by a colleague."""
    fwd = (f"Please check this one.\n\n-----Original Message-----\nFrom: {sender}\nSent: {date}\n"
           f"To: it-alerts@example.com\nSubject: {subject}\n\n{body}")
    return raw_mail("FW: " + subject, fwd, sender="colleague@example.com",
                    date="Wed, 15 May 2024 08:12:00 +0200")
