"""Veritas Backup Exec alert mails."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.registry import parse_message, parse_raw

from ._vendor_helpers import expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("backupexec_", ("backupexec_",))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status():
    assert {"Success", "Warning", "Failed"} <= {expected_for(p)["overall_status"] for p in SAMPLES}


def test_exceptions_body_under_generic_completed_category_is_a_warning():
    raw = raw_mail('Backup Exec Alert: Job Completed (Server: "BE9") (Job: "Files")',
                   '(Server: "BE9") (Job: "Files") The job completed successfully.  However, the following '
                   'conditions were encountered:\nV-79-57344-33967 - The directory is not accessible.\n')
    r = parse_raw(raw)
    assert (r.job_name, r.overall_status) == ("Files", "Warning")


def test_job_name_with_quotes_and_parentheses_is_kept_whole():
    raw = raw_mail('Backup Exec Alert: Job Failed (Server: "BE9") (Job: "SQL "prod" (nightly)")',
                   'SQL "prod" (nightly) -- The job failed with the following error: Access is denied.')
    r = parse_raw(raw)
    assert r.job_name == 'SQL "prod" (nightly)'
    assert r.overall_status == "Failed"


def test_job_end_time_from_job_log_in_mail_timezone():
    r = parse_message(load("backupexec_job_completed_status.eml"))
    assert r.ended_at == datetime(2024, 5, 31, 23, 58, 12, tzinfo=timezone(timedelta(hours=2)))


def test_media_alert_is_not_a_job_run():
    raw = raw_mail('Backup Exec Alert: Media Warning (Server: "BE9")',
                   '(Server: "BE9") Media in drive is write-protected.')
    r = parse_raw(raw)
    assert r.parsed and not r.is_report and r.overall_status is None


def test_forwarded_copy_is_parsed_like_the_original():
    from ._vendor_helpers import forwarded_text
    raw = forwarded_text('Backup Exec Alert: Job Failed (Server: "BE9") (Job: "Nightly Full")', "Backup Exec <be@example.com>",
                         '(Server: "BE9") (Job: "Nightly Full") Nightly Full -- The job failed with the following error: '
                         'The media is write-protected.\n')
    r = parse_raw(raw)
    assert (r.software, r.job_name, r.overall_status) == ("Veritas Backup Exec", "Nightly Full", "Failed")
