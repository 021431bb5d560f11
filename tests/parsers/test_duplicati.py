"""Duplicati send-mail result reports (text and JSON)."""
from __future__ import annotations

import html
import os
from datetime import datetime, timezone

import pytest

from backend.app.parsers.registry import parse_message, parse_raw

from backend.app.parsers.normalize import normalize

from ._vendor_helpers import OWN, expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("duplicati_", ("duplicati_",))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status():
    assert {"Success", "Warning", "Failed"} <= {expected_for(p)["overall_status"] for p in SAMPLES}


def test_nested_results_do_not_override_top_level_result():
    r = parse_message(load("duplicati_backup_warning_nested_results.eml"))
    assert r.overall_status == "Warning"
    assert r.backup_type == "Backup"  # not the nested 'MainOperation: Delete' / 'Test'


def test_times_come_from_the_epoch_in_the_report():
    r = parse_message(load("duplicati_backup_warning_nested_results.eml"))
    assert r.started_at == datetime(2024, 5, 14, 23, 0, 0, tzinfo=timezone.utc)
    assert r.ended_at == datetime(2024, 5, 14, 23, 14, 2, tzinfo=timezone.utc)


def test_json_times():
    r = parse_message(load("duplicati_backup_success_json.eml"))
    assert r.started_at.astimezone(timezone.utc).replace(microsecond=0) == datetime(2024, 5, 18, 2, 0, 0,
                                                                                    tzinfo=timezone.utc)


def test_html_rendering_without_indentation_still_uses_top_level_result():
    with open(os.path.join(OWN, "duplicati_backup_warning_nested_results.eml"), "rb") as fh:
        body = normalize(fh.read()).text
    assert "    ParsedResult: Success" in body  # the nested result is there, indented
    flat = "<html><body>" + "".join(f"<p>{html.escape(ln.strip())}</p>" for ln in body.splitlines()) + "</body></html>"
    r = parse_raw(raw_mail("Duplicati Backup report for Office-Share-to-S3", flat, ctype="text/html"))
    assert (r.job_name, r.overall_status, r.backup_type) == ("Office-Share-to-S3", "Warning", "Backup")


def test_restore_report_type():
    body = "MainOperation: Restore\nParsedResult: Success\nEndTime: 5/20/2024 9:00:00 AM (1716195600)\n"
    r = parse_raw(raw_mail("Duplicati Restore report for Docs", body))
    assert (r.backup_type, r.job_name, r.overall_status) == ("Restore", "Docs", "Success")


def test_forwarded_text_report():
    from ._vendor_helpers import forwarded_text
    body = "MainOperation: Backup\nParsedResult: Error\nEndTime: 5/20/2024 9:00:00 AM (1716195600)\n"
    r = parse_raw(forwarded_text("Duplicati Backup report for Docs", "duplicati@nas.example", body))
    assert (r.software, r.job_name, r.overall_status) == ("Duplicati", "Docs", "Failed")


def test_customised_subject_still_gives_the_backup_name():
    body = "MainOperation: Backup\nParsedResult: Warning\n"
    r = parse_raw(raw_mail("[Duplicati] Backup of Family Photos: Warning", body, sender="duplicati@nas.example"))
    assert (r.job_name, r.overall_status) == ("Family Photos", "Warning")


def test_german_subject_template():
    body = "MainOperation: Backup\nParsedResult: Success\n"
    r = parse_raw(raw_mail("Duplicati Backup Bericht für Buchhaltung", body))
    assert (r.software, r.job_name, r.overall_status) == ("Duplicati", "Buchhaltung", "Success")


def test_error_line_comes_from_the_top_level_limited_errors_not_nested_or_messages():
    body = ("MainOperation: Backup\nParsedResult: Error\n"
            "LimitedMessages: [\n    2025-03-11 02:00:00 +01 - [Information-Duplicati.Library.Main.Controller-"
            "StartingOperation]: The operation Backup has started\n]\n"
            "LimitedErrors: [\n    2025-03-11 02:06:30 +01 - [Error-Duplicati.Library.Main.Operation.Backup."
            "BackendUploader-UploadFailed]: Upload failed after 5 attempts\n"
            "System.Net.Http.HttpRequestException: 507 (Insufficient Storage).\n]\n"
            "BackendStatistics:\n    ParsedResult: Success\n    LimitedErrors: [\n        nested, not ours\n    ]\n")
    r = parse_raw(raw_mail("Duplicati Backup report for Docs", body))
    assert (r.overall_status, r.message) == ("Failed", "Upload failed after 5 attempts")


def test_log_data_block_gives_the_error_line_when_the_lists_are_empty():
    body = ("MainOperation: Backup\nParsedResult: Error\nLimitedWarnings: []\nLimitedErrors: []\n\nLog data:\n"
            "2025-03-11 02:00:09 +01 - [Information-Duplicati.Library.Main.Controller-StartingOperation]: started\n"
            "2025-03-11 02:06:30 +01 - [Error-Duplicati.Library.Main.Controller-FailedOperation]: "
            "The operation Backup has failed with error: Disk full\n")
    r = parse_raw(raw_mail("Duplicati Backup report for Docs", body))
    assert r.message == "The operation Backup has failed with error: Disk full"


def test_fatal_line_is_a_failure_with_its_message():
    body = "Fatal: Could not find the database for this backup\nMainOperation: Backup\n"
    r = parse_raw(raw_mail("Duplicati Backup report for Docs", body))
    assert (r.overall_status, r.message) == ("Failed", "Could not find the database for this backup")


def test_success_has_no_message_even_with_information_lines():
    body = ("MainOperation: Backup\nParsedResult: Success\nLimitedMessages: [\n    2025-03-11 02:00:00 +01 - "
            "[Information-Duplicati.Library.Main.Controller-StartingOperation]: The operation Backup has started\n]\n")
    r = parse_raw(raw_mail("Duplicati Backup report for Docs", body))
    assert (r.overall_status, r.message) == ("Success", "")


def test_json_limited_lists_and_top_level_exception():
    doc = ('{"Data": {"MainOperation": "Backup", "ParsedResult": "Error", "LimitedErrors": '
           '["2025-03-11 02:06:30 +01 - [Error-Duplicati.Library.Main.Operation.BackupHandler-FatalError]: Fatal error"]},'
           ' "Extra": {"OperationName": "Backup", "backup-name": "Docs"}, "LogLines": [], "Exception": null}')
    r = parse_raw(raw_mail("Duplicati Backup report for Docs", doc))
    assert (r.job_name, r.overall_status, r.message) == ("Docs", "Failed", "Fatal error")
    doc = ('{"Data": null, "Extra": {"OperationName": "Backup", "backup-name": "Docs"}, "LogLines": [], '
           '"Exception": "System.IO.IOException: The disk is full\\n   at Duplicati.Library.Main.Controller.Run()"}')
    r = parse_raw(raw_mail("Backup status", doc, sender="relay@example.invalid"))
    assert (r.software, r.job_name, r.overall_status, r.message) == ("Duplicati", "Docs", "Failed", "The disk is full")
