"""NAKIVO Backup & Replication job report mails."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from backend.app.parsers.base import Message
from tests.parsers._vendor_helpers import assert_sample_matches, samples
from backend.app.parsers.normalize import normalize
from backend.app.parsers.registry import parse_message

HERE = os.path.dirname(__file__)
OWN = os.path.join(HERE, "samples")


@pytest.mark.parametrize("path", samples('nakivo_', ('nakivo_',)), ids=os.path.basename)
def test_sample_matches_expected(path):
    assert_sample_matches(path)


def test_report_times_keep_the_zone_written_in_the_report():
    with open(os.path.join(OWN, "nakivo_replication_failed.eml"), "rb") as fh:
        r = parse_message(normalize(fh.read()))
    assert r.started_at == datetime(2025, 3, 18, 1, 0, tzinfo=timezone.utc)
    assert r.ended_at == datetime(2025, 3, 18, 2, 22, 4, tzinfo=timezone.utc)


def test_subject_gives_job_and_status_when_body_has_no_table():
    msg = Message(from_address="nbr@example.invalid", subject='NAKIVO Backup & Replication: Job "Nightly M365" failed',
                  text="The job could not be completed. See the NAKIVO Backup & Replication web interface.")
    r = parse_message(msg)
    assert (r.software, r.job_name, r.overall_status) == ("NAKIVO Backup & Replication", "Nightly M365", "Failed")


def test_mail_without_nakivo_is_not_taken():
    msg = Message(from_address="backup@example.invalid", subject='Job "Nightly" completed successfully',
                  text="Job name: Nightly\nStatus: Successful\n")
    assert parse_message(msg).software != "NAKIVO Backup & Replication"


@pytest.mark.parametrize("subject,job,status", [
    ('NAKIVO Backup & Replication: Job "Daily VMs" completed with warnings', "Daily VMs", "Warning"),
    ('[NAKIVO] "File Share Copy" job failed', "File Share Copy", "Failed"),
    ("NAKIVO job report: EC2-Nightly - Successful", "EC2-Nightly", "Success"),
])
def test_subject_forms(subject, job, status):
    r = parse_message(Message(from_address="nbr@example.invalid", subject=subject, text="See the attached report."))
    assert (r.job_name, r.overall_status) == (job, status)
