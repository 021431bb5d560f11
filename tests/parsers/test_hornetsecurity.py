"""Hornetsecurity VM Backup (formerly Altaro VM Backup) report mails."""
from __future__ import annotations

import os

import pytest

from backend.app.parsers.registry import parse_message, parse_raw

from ._vendor_helpers import expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("hornetsecurity_", ("altaro_", "hornetsecurity_"))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status_and_both_brands():
    assert {"Success", "Warning", "Failed"} <= {expected_for(p)["overall_status"] for p in SAMPLES}
    names = " ".join(os.path.basename(p) for p in SAMPLES)
    assert "altaro_" in names and "hornetsecurity_" in names


def test_altaro_branded_mail_is_reported_under_the_current_product_name():
    r = parse_message(load("hornetsecurity_offsite_copy_failed.eml"))
    assert r.software == "Hornetsecurity VM Backup"
    assert r.backup_type == "Offsite Copy"


def test_status_falls_back_to_the_worst_vm_when_the_subject_has_none():
    html = ("<html><body><p>Host: HV-X</p><table><tr><th>Virtual Machine</th><th>Result</th><th>Notes</th></tr>"
            "<tr><td>VM-A</td><td>Success</td><td></td></tr>"
            "<tr><td>VM-B</td><td>Failed</td><td>Disk read error</td></tr></table></body></html>")
    r = parse_raw(raw_mail("Altaro VM Backup - Backup Report", html, ctype="text/html"))
    assert (r.job_name, r.overall_status) == ("HV-X", "Failed")
    assert [o.status for o in r.objects] == ["Success", "Failed"]


def test_marketing_mail_without_report_is_not_a_run():
    r = parse_raw(raw_mail("Take the next step with the Hornetsecurity stack", "Webinar invitation.",
                           sender="news@hornetsecurity.com"))
    assert r.parser != "hornetsecurity_vm_backup"


def test_release_announcement_naming_the_product_is_not_a_run():
    r = parse_raw(raw_mail("Hornetsecurity VM Backup V9.1 is now available", "Download the new version today.",
                           sender="news@hornetsecurity.com"))
    assert r.parser != "hornetsecurity_vm_backup"


def test_single_vm_notification_with_labels():
    body = ("Backup Failed\n\nVirtual Machine: FIC-SQL01\nHost: HV-FIC-09\nResult: Failed\n"
            "Error: The backup location could not be reached.\n\nAltaro VM Backup\n")
    r = parse_raw(raw_mail("Altaro VM Backup - Backup Failed", body, sender="altaro@fiction.example"))
    assert (r.job_name, r.overall_status) == ("HV-FIC-09", "Failed")
    assert [(o.name, o.type, o.status, o.message) for o in r.objects] == [
        ("FIC-SQL01", "VM", "Failed", "The backup location could not be reached.")]


def test_host_from_two_cell_html_row():
    html = ("<html><body><h2>Backup Successful</h2><table><tr><td>Host</td><td>HV-FIC-05</td></tr></table>"
            "<table><tr><th>Virtual Machine</th><th>Result</th></tr><tr><td>VM-1</td><td>Success</td></tr></table>"
            "</body></html>")
    r = parse_raw(raw_mail("Hornetsecurity VM Backup - Backup Report - Success", html, ctype="text/html"))
    assert (r.job_name, r.overall_status, [o.name for o in r.objects]) == ("HV-FIC-05", "Success", ["VM-1"])
