"""QNAP Hybrid Backup Sync notifications (Notification Center mails)."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.base import Message
from tests.parsers._vendor_helpers import assert_sample_matches, samples
from backend.app.parsers.registry import parse_message

HERE = os.path.dirname(__file__)
OWN = os.path.join(HERE, "samples")


@pytest.mark.parametrize("path", samples('qnap_', ('qnap_',)), ids=os.path.basename)
def test_sample_matches_expected(path):
    assert_sample_matches(path)


def _msg(subject, message, severity="Information"):
    text = (f"NAS Name: NAS-T\nSeverity: {severity}\nDate/Time: 2025/03/01 02:00:00\nApp Name: Hybrid Backup Sync\n"
            f"Category: Job Status\nMessage: {message}\n")
    return Message(from_address="nas-t@example.invalid", subject=subject, raw_subject=subject,
                   date=datetime(2025, 3, 1, 2, 0, 5, tzinfo=timezone(timedelta(hours=1))), text=text)


def test_event_time_in_mail_timezone():
    r = parse_message(_msg("[Info] [Hybrid Backup Sync] Notification from your device: NAS-T",
                           '[Hybrid Backup Sync] Finished Backup job: "Weekly".'))
    assert r.ended_at == datetime(2025, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=1)))


def test_completed_with_errors_is_a_warning():
    r = parse_message(_msg("[Warning] [Hybrid Backup Sync] Notification from your device: NAS-T",
                           '[Hybrid Backup Sync] Backup job "Weekly" completed with errors.', "Warning"))
    assert (r.job_name, r.overall_status) == ("Weekly", "Warning")


def test_job_name_with_failure_word_does_not_fail_success():
    r = parse_message(_msg("[Info] [Hybrid Backup Sync] Notification from your device: NAS-T",
                           '[Hybrid Backup Sync] Finished Backup job: "Error-Logs Archive".'))
    assert (r.job_name, r.overall_status) == ("Error-Logs Archive", "Success")


def test_start_event_is_not_a_result():
    r = parse_message(_msg("[Info] [Hybrid Backup Sync] Notification from your device: NAS-T",
                           '[Hybrid Backup Sync] Started Sync job: "Mirror".'))
    assert r.parsed and not r.is_report and r.overall_status is None


def test_other_qnap_notifications_are_not_taken():
    msg = Message(from_address="nas-t@example.invalid",
                  subject="[Warning] [Storage & Snapshots] Notification from your device: NAS-T",
                  text="NAS Name: NAS-T\nMessage: [Storage & Snapshots] Volume \"DataVol1\" is almost full.\n")
    assert parse_message(msg).software != "QNAP Hybrid Backup Sync"


def test_warning_severity_downgrades_a_plain_finished_message():
    r = parse_message(_msg("[Warning] [Hybrid Backup Sync] Notification from your device: NAS-T",
                           '[Hybrid Backup Sync] Finished Backup job: "Weekly".', "Warning"))
    assert r.overall_status == "Warning"


def test_forwarded_subject_keeps_severity():
    msg = _msg("[Error] [Hybrid Backup Sync] Notification from your device: NAS-T",
               '[Hybrid Backup Sync] Backup job "Weekly" ended.', "Error")
    msg.raw_subject = "FW: " + msg.subject
    msg.subject = "[Hybrid Backup Sync] Notification from your device: NAS-T"
    assert parse_message(msg).overall_status == "Failed"


def test_a_failure_or_warning_carries_its_reason_and_a_success_none():
    failed = parse_message(_msg("[Error] [Hybrid Backup Sync] Notification from your device: NAS-T",
                                '[Hybrid Backup Sync] Failed to complete Backup job: "Weekly". '
                                'Error: The destination is not reachable.', "Error"))
    assert failed.overall_status == "Failed"
    assert failed.message == 'Failed to complete Backup job: "Weekly". Error: The destination is not reachable.'
    warned = parse_message(_msg("[Warning] [Hybrid Backup Sync] Notification from your device: NAS-T",
                                '[Hybrid Backup Sync] Finished Backup job: "Weekly".', "Warning"))
    assert (warned.overall_status, warned.message) == ("Warning", 'Finished Backup job: "Weekly".')
    ok = parse_message(_msg("[Info] [Hybrid Backup Sync] Notification from your device: NAS-T",
                            '[Hybrid Backup Sync] Finished Backup job: "Weekly".'))
    assert (ok.overall_status, ok.message) == ("Success", "")
    started = parse_message(_msg("[Info] [Hybrid Backup Sync] Notification from your device: NAS-T",
                                 '[Hybrid Backup Sync] Started Sync job: "Mirror".'))
    assert started.message == ""


@pytest.mark.parametrize("label", ["Error", "Reason", "Fehler", "Fout"])
def test_reason_on_its_own_line_reaches_the_message(label):
    msg = _msg("[Error] [Hybrid Backup Sync] Notification from your device: NAS-T",
               f'[Hybrid Backup Sync] Failed to complete Backup job: "Weekly".\n{label}: Destination unreachable.', "Error")
    r = parse_message(msg)
    assert (r.job_name, r.overall_status) == ("Weekly", "Failed")
    assert r.message == f'Failed to complete Backup job: "Weekly". {label}: Destination unreachable.'


def test_a_label_line_after_the_event_is_not_taken_as_its_reason():
    msg = _msg("[Error] [Hybrid Backup Sync] Notification from your device: NAS-T",
               '[Hybrid Backup Sync] Failed to complete Backup job: "Weekly".\nSource IP: 10.0.0.9', "Error")
    assert parse_message(msg).message == 'Failed to complete Backup job: "Weekly".'


def test_severity_from_the_nas_first_subject_form():
    r = parse_message(_msg("[Warning][NAS-T] Hybrid Backup Sync", '[Hybrid Backup Sync] Finished Backup job: "Weekly".',
                           "Warning"))
    assert r.overall_status == "Warning"
