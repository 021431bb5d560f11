"""Acronis Cyber Protect (Cloud) alert mails."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.registry import parse_message, parse_raw

from ._vendor_helpers import CORPUS, expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("acronis_", ("acronis_",))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status_and_german():
    statuses = {expected_for(p)["overall_status"] for p in SAMPLES}
    assert {"Success", "Warning", "Failed"} <= statuses
    assert any("_de" in os.path.basename(p) for p in SAMPLES)


def test_times_from_report_in_mail_timezone():
    with open(os.path.join(CORPUS, "acronis_backup_failed.eml"), "rb") as fh:
        r = parse_raw(fh.read())
    tz = timezone(timedelta(hours=2))
    assert r.started_at == datetime(2024, 5, 14, 23, 0, 1, tzinfo=tz)
    assert r.ended_at == datetime(2024, 5, 14, 23, 3, 40, tzinfo=tz)


def test_plan_name_with_parentheses_and_group_with_account_number():
    r = parse_message(load("acronis_backup_succeeded_en.eml"))
    assert r.job_name == "Workstations daily (2)"
    assert r.objects[0].name == "WS-HFL-03"


def test_forwarded_subject_prefix_is_ignored():
    raw = raw_mail("FW: BACKUP FAILED (group: Some Partner > Fictive Corp)(backup account: fc)(machine: PC-7)"
                   "(plan: Office PCs)", "Backup failed\nPC-7\nThe backup location is full.\nShow details\n",
                   sender="helpdesk@example.com")
    r = parse_raw(raw)
    assert (r.software, r.job_name, r.overall_status) == ("Acronis Cyber Protect", "Office PCs", "Failed")
    assert r.objects[0].message == "The backup location is full."


def test_daily_status_report_is_not_a_backup_run():
    r = parse_message(load("acronis_daily_status_report_not_backup.eml"))
    assert r.parsed and not r.is_report
    assert r.overall_status is None


def test_unrelated_acronis_mail_is_not_claimed():
    raw = raw_mail("Your Acronis Cyber Protect Cloud licence renews soon",
                   "Dear partner, your subscription renews on June 1.", sender="no-reply@acronis.com")
    r = parse_raw(raw)
    assert r.parser != "acronis_alert"


def test_older_notification_with_quoted_task_and_machine():
    raw = raw_mail("Acronis Backup: Task 'Nightly SRV01' failed on machine 'SRV01'",
                   "Task 'Nightly SRV01' failed.\nError: The backup location is not available.\n",
                   sender="backup@corp.example")
    r = parse_raw(raw)
    assert (r.software, r.job_name, r.overall_status) == ("Acronis Cyber Protect", "Nightly SRV01", "Failed")
    assert [(o.name, o.status, o.message) for o in r.objects] == [
        ("SRV01", "Failed", "The backup location is not available.")]


def test_forwarded_alert_keeps_original_subject():
    from ._vendor_helpers import forwarded_text
    raw = forwarded_text("BACKUP SUCCEEDED WITH WARNINGS (group: Fictive Corp)(backup account: fc)(machine: SRV-9)"
                         "(plan: Servers)", "Acronis Cyber Protect Cloud <noreply-eu2@cloud.acronis.com>",
                         "Backup succeeded with warnings\nSRV-9\nSome files were skipped.\nShow details\n")
    r = parse_raw(raw)
    assert (r.job_name, r.overall_status) == ("Servers", "Warning")
    assert r.objects[0].message == "Some files were skipped."


def test_reason_found_when_body_spells_the_workload_differently():
    raw = raw_mail("BACKUP FAILED (group: Fictive Corp)(backup account: fc)(machine: SRV-9)(plan: Servers)",
                   "Backup failed\nsrv-9.fictive.local\nThe backup location is full.\nShow details\n",
                   sender="noreply-eu2@cloud.acronis.com")
    r = parse_raw(raw)
    assert r.objects[0].message == "The backup location is full."


def test_alert_date_line_gives_the_end_time():
    r = parse_message(load("acronis_backup_succeeded_en.eml"))
    assert r.ended_at == datetime(2024, 5, 15, 1, 12, 31, tzinfo=timezone(timedelta(hours=2)))


def test_dutch_subject_parts_are_understood():
    raw = raw_mail("BACK-UP MISLUKT (groep: Fictief Partner > Voorbeeld BV)(machine: WS-01)(plan: Werkstations)",
                   "Back-up mislukt\nWS-01\nDe back-uplocatie is niet bereikbaar.\n", sender="noreply@cloud.acronis.com")
    r = parse_raw(raw)
    assert (r.job_name, r.overall_status, r.objects[0].name) == ("Werkstations", "Failed", "WS-01")
