"""Cove Data Protection (N-able Backup Manager) session mails."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.cove import cove_status
from backend.app.parsers.registry import parse_message, parse_raw

from ._vendor_helpers import expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("cove_", ("cove_",))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status_and_german():
    assert {"Success", "Warning", "Failed"} <= {expected_for(p)["overall_status"] for p in SAMPLES}
    assert any(p.endswith("_de.eml") for p in SAMPLES)


@pytest.mark.parametrize("word,status", [
    ("Completed", "Success"), ("Completed with errors", "Warning"), ("Failed", "Failed"),
    ("Aborted", "Failed"), ("InProcess", "Warning"), ("In process", "Warning"), ("Over quota", "Failed"),
    ("Abgeschlossen", "Success"), ("Abgeschlossen mit Fehlern", "Warning"), ("Fehlgeschlagen", "Failed"),
    ("Voltooid", "Success"), ("Voltooid met fouten", "Warning"), ("Mislukt", "Failed"),
])
def test_session_status_words(word, status):
    assert cove_status(word) == status


def test_session_times_use_the_offset_in_the_report():
    r = parse_message(load("cove_backup_completed_success.eml"))
    tz = timezone(timedelta(hours=2))
    assert r.started_at == datetime(2024, 5, 15, 23, 0, tzinfo=tz)
    assert r.ended_at == datetime(2024, 5, 15, 23, 40, tzinfo=tz)


def test_a_generic_backup_completed_mail_from_elsewhere_is_not_claimed():
    r = parse_raw(raw_mail("Backup completed - fileserver (home)", "All good.", sender="root@nas.example"))
    assert r.parser != "cove_backup_session"
