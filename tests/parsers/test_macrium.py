"""Macrium Reflect notification mails."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.registry import parse_message, parse_raw

from ._vendor_helpers import expected_for, load, parse_file, raw_mail, result_dict, samples

SAMPLES = samples("macrium_", ("macrium_",))


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_matches_expected(path):
    result = parse_file(path)
    assert result.parsed, result.reason
    assert result_dict(result) == expected_for(path)


def test_samples_cover_every_status_and_both_backup_kinds():
    exp = [expected_for(p) for p in SAMPLES]
    assert {"Success", "Warning", "Failed"} <= {e["overall_status"] for e in exp}
    assert {"Image backup", "File backup"} <= {e["backup_type"] for e in exp}


def test_times_from_body_in_mail_timezone():
    r = parse_message(load("macrium_backup_failed_image.eml"))
    tz = timezone(timedelta(hours=2))
    assert r.started_at == datetime(2024, 5, 16, 2, 0, 0, tzinfo=tz)
    assert r.ended_at == datetime(2024, 5, 16, 2, 14, 5, tzinfo=tz)


def test_failure_count_zero_does_not_make_a_success_fail():
    r = parse_message(load("macrium_backup_success_text.eml"))
    assert r.overall_status == "Success"


def test_without_definition_the_computer_is_the_job():
    raw = raw_mail("PC-FIC-04 Macrium Reflect - Backup Success", "Success :)\nImage of C: completed successfully.\n")
    r = parse_raw(raw)
    assert (r.software, r.job_name, r.overall_status) == ("Macrium Reflect", "PC-FIC-04", "Success")


def test_clone_is_its_own_type():
    raw = raw_mail("PC-FIC-04 Macrium Reflect - Clone Failed", "Failed :(\nClone aborted! - Read failed - 23 - CRC error\n")
    r = parse_raw(raw)
    assert (r.backup_type, r.overall_status) == ("Clone", "Failed")


def test_product_news_mail_is_not_claimed():
    r = parse_raw(raw_mail("Macrium Reflect X is here - upgrade today", "New features inside.",
                           sender="news@macrium.com"))
    assert r.parser != "macrium_reflect"


def test_labels_in_html_table_cells():
    html = ("<html><body><h2>Warning :|</h2><table>"
            "<tr><td>Computer Name</td><td>PC-FIC-05</td></tr>"
            "<tr><td>Backup Definition File</td><td>C:\\Reflect\\Daily Docs.xml</td></tr>"
            "<tr><td>Destination</td><td>E:\\Backups\\0A1B2C3D4E5F6071-00-00.mrbak</td></tr>"
            "</table></body></html>")
    r = parse_raw(raw_mail("PC-FIC-05 Macrium Reflect - Backup with Warnings", html, ctype="text/html"))
    assert (r.job_name, r.backup_type, r.overall_status) == ("Daily Docs", "File backup", "Warning")
