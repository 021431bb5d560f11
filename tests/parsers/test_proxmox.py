"""Proxmox VE vzdump / replication and Proxmox Backup Server job mails."""
from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.base import Message
from tests.parsers._vendor_helpers import CORPUS, assert_sample_matches, samples
from backend.app.parsers.normalize import normalize
from backend.app.parsers.registry import parse_message, parse_raw

HERE = os.path.dirname(__file__)
OWN = os.path.join(HERE, "samples")


@pytest.mark.parametrize("path", samples('proxmox_', ('pve_', 'pbs_')), ids=os.path.basename)
def test_sample_matches_expected(path):
    assert_sample_matches(path)


def test_own_samples_present():
    assert len(glob.glob(os.path.join(OWN, "proxmox_*.eml"))) >= 10


def _load(name):
    with open(os.path.join(OWN, name), "rb") as fh:
        return normalize(fh.read())


def test_vzdump_times_come_from_the_log_in_the_mail_timezone():
    r = parse_message(_load("proxmox_pve_vzdump_failed_current.eml"))
    tz = timezone(timedelta(hours=1))
    assert r.started_at == datetime(2025, 2, 3, 21, 0, 1, tzinfo=tz)
    assert r.ended_at == datetime(2025, 2, 3, 21, 4, 43, tzinfo=tz)


def test_vzdump_text_table_without_html_gives_same_objects():
    msg = _load("proxmox_pve_vzdump_failed_current.eml")
    text_only = Message(from_address=msg.from_address, subject=msg.subject, raw_subject=msg.raw_subject,
                        date=msg.date, text=msg.text, html="")
    r = parse_message(text_only)
    assert [(o.name, o.type, o.status) for o in r.objects] == [
        ("app-billing", "qemu", "Success"), ("mailrelay", "lxc", "Failed")]
    assert r.objects[1].message == "snapshot feature is not available"
    assert r.overall_status == "Failed"


def test_vzdump_recognised_by_body_when_subject_was_rewritten():
    msg = _load("proxmox_pve_vzdump_success_legacy_textonly.eml")
    msg.subject = "Backup report from the cluster"
    r = parse_message(msg)
    assert r.software == "Proxmox VE" and r.overall_status == "Success"
    assert [o.name for o in r.objects] == ["ts-gateway", "print-srv"]


def test_vzdump_subject_with_error_text_is_failed():
    msg = Message(from_address="root@pve.example.invalid",
                  subject="vzdump backup status (pve.example.invalid): backup failed: could not activate storage "
                          "'nas-nfs': storage is not online",
                  text="could not activate storage 'nas-nfs'\n", date=datetime(2025, 1, 1, 3, 0, tzinfo=timezone.utc))
    r = parse_message(msg)
    assert (r.software, r.job_name, r.overall_status) == ("Proxmox VE", "pve.example.invalid", "Failed")


def test_pbs_verify_failed_lists_groups_and_snapshots():
    body = ("\nJob ID:    v-0000aaaa-1111\nDatastore: store-x\n\nVerification failed on these snapshots/groups:\n\n"
            "    vm/150/2025-01-01T01:00:00Z\n    ct/151\n\n\nPlease visit the web interface for further details:\n")
    r = parse_message(Message(from_address="root@pbs.example.invalid", subject="Verify Datastore 'store-x' failed",
                              text=body))
    assert r.overall_status == "Failed" and r.job_name == "v-0000aaaa-1111"
    assert [(o.name, o.type) for o in r.objects] == [("vm/150/2025-01-01T01:00:00Z", "snapshot"), ("ct/151", "group")]


def test_pbs_recognised_by_body_when_forwarded_with_other_subject():
    msg = _load("proxmox_pbs_sync_local_failed.eml")
    msg.subject = "PBS problem, please check"
    r = parse_message(msg)
    assert (r.software, r.backup_type, r.job_name, r.overall_status) == (
        "Proxmox Backup Server", "Sync job", "s-7b7b2f10-0c01", "Failed")


def test_pbs_package_update_mail_is_not_a_report():
    with open(os.path.join(CORPUS, "pbs_package_updates_not_backup.eml"), "rb") as fh:
        r = parse_raw(fh.read())
    assert r.parsed and not r.is_report and r.software is None


def test_unrelated_mail_with_similar_words_is_not_taken():
    msg = Message(from_address="someone@example.invalid", subject="Pruning the garden: schedule successful",
                  text="Datastore: none\nWe talked about backups.")
    r = parse_message(msg)
    assert r.software not in ("Proxmox VE", "Proxmox Backup Server")


def test_vzdump_text_rows_with_status_like_guest_names():
    text = ("VMID       NAME                 STATUS       TIME       SIZE  FILENAME\n"
            "105        ok-proxy             ok       00:01:00     1.00GB  /mnt/dump/vzdump-lxc-105-2023_01_01-01_00_00.tar.zst\n"
            "106        err-collector        err      00:00:02     0.00MB  -\n"
            "107        VM 107               ok       00:02:00     2.00GB  /mnt/dump/vzdump-qemu-107-2023_01_01-01_01_02.vma.zst\n"
            "\nDetailed backup logs:\n\n"
            "106: 2023-01-01 01:01:00 INFO: Starting Backup of VM 106 (lxc)\n"
            "106: 2023-01-01 01:01:02 ERROR: Backup of VM 106 failed - no space left on device\n")
    r = parse_message(Message(from_address="root@pve.example.invalid",
                              subject="vzdump backup status (pve.example.invalid) : backup failed", text=text))
    assert [(o.name, o.type, o.status) for o in r.objects] == [
        ("ok-proxy", "lxc", "Success"), ("err-collector", "lxc", "Failed"), ("VM 107", "qemu", "Success")]
    assert r.objects[1].message == "no space left on device"
