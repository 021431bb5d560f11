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


# The administrator guide's alert categories by severity: only a finished job's outcome is a run; the
# informational, attention-required and non-job warning/error alerts are filed as not a report.
_NOT_JOB_RESULTS = (
    "General Information", "Database Maintenance Information", "Install Information", "Storage Information",
    "Media Information", "Tape Alert Information", "Software Update Information", "Service Start", "Service Stop",
    "License and Maintenance Information", "Media Intervention", "Media Insert", "Media Overwrite", "Media Remove",
    "Library Insert", "Install Warning", "Storage Warning", "Media Warning", "Tape Alert Warning",
    "Software Update Warning", "License and Maintenance Warning", "Catalog Error", "Storage Error", "Media Error",
    "Tape Alert Error", "Software Update Error", "Job Start",
)
_JOB_RESULTS = (
    ("Job Success", "Success"), ("Job Completed", "Success"), ("Job Completed with Exceptions", "Warning"),
    ("Job Warning", "Warning"), ("Backup Job Contains No Data", "Warning"), ("Job Failed", "Failed"),
    ("Job Cancellation", "Failed"),
)


@pytest.mark.parametrize("category", _NOT_JOB_RESULTS)
@pytest.mark.parametrize("job", ["", ' (Job: "Nightly Full")'])
def test_informational_and_device_alerts_are_not_runs_even_when_the_body_says_completed(category, job):
    body = f'(Server: "LAB-BE01"){job}\n\nThe operation completed successfully.\n'
    r = parse_raw(raw_mail(f'Backup Exec Alert: {category} (Server: "LAB-BE01"){job}', body,
                           sender="backupexec@lab-be01.example"))
    assert r.parsed and not r.is_report and r.software is None and r.job_name is None, r.reason


@pytest.mark.parametrize("category,status", _JOB_RESULTS)
def test_job_result_alerts_are_runs(category, status):
    r = parse_raw(raw_mail(f'Backup Exec Alert: {category} (Server: "LAB-BE01") (Job: "Nightly Full")',
                           '(Server: "LAB-BE01") (Job: "Nightly Full")\n', sender="backupexec@lab-be01.example"))
    assert (r.is_report, r.software, r.job_name, r.overall_status) == (True, "Veritas Backup Exec", "Nightly Full", status)


def test_job_completed_alert_takes_the_job_logs_completed_status():
    body = ('(Server: "LAB-BE01") (Job: "Nightly Full")\nJob Completion Status\n'
            "Job ended: Saturday, March 8, 2025 at 11:40:52 PM\nCompleted status: Failed\n")
    r = parse_raw(raw_mail('Backup Exec Alert: Job Completed (Server: "LAB-BE01") (Job: "Nightly Full")', body,
                           sender="backupexec@lab-be01.example"))
    assert (r.job_name, r.overall_status) == ("Nightly Full", "Failed")


def test_failure_reason_is_the_job_logs_final_error():
    body = ('(Server: "LAB-BE01") (Job: "Nightly Full")\nJob Completion Status\nCompleted status: Failed\n'
            "Final error: 0xe000fe30 - A communications failure has occurred.\nFinal error category: Resource Errors\n")
    r = parse_raw(raw_mail('Backup Exec Alert: Job Completed (Server: "LAB-BE01") (Job: "Nightly Full")', body,
                           sender="backupexec@lab-be01.example"))
    assert (r.overall_status, r.message) == ("Failed", "0xe000fe30 - A communications failure has occurred.")
