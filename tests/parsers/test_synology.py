"""Synology Hyper Backup, Active Backup for Business, USB Copy and Snapshot Replication mails."""
from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.parsers.base import Message
from tests.parsers._vendor_helpers import assert_sample_matches, samples
from backend.app.parsers.normalize import normalize
from backend.app.parsers.registry import parse_message, parse_raw

HERE = os.path.dirname(__file__)
OWN = os.path.join(HERE, "samples")
CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize("path", samples('synology_', ('syno_',)), ids=os.path.basename)
def test_sample_matches_expected(path):
    assert_sample_matches(path)


def test_own_samples_cover_languages_and_outcomes():
    names = [os.path.basename(p) for p in glob.glob(os.path.join(OWN, "synology_*.eml"))]
    for needle in ("_de", "_nl", "_en", "failed", "success", "partial"):
        assert any(needle in n for n in names), needle


def _load(name):
    with open(os.path.join(OWN, name), "rb") as fh:
        return normalize(fh.read())


def _msg(subject, text, sender="nas@example.invalid", date=datetime(2025, 3, 1, 2, 0, tzinfo=CET)):
    return Message(from_address=sender, subject=subject, raw_subject=subject, date=date, text=text)


def test_hyper_backup_times_from_start_and_duration():
    r = parse_message(_load("synology_hyperbackup_success_de_htmlonly.eml"))
    assert r.started_at == datetime(2025, 3, 5, 1, 0, 1, tzinfo=CET)
    assert r.ended_at == datetime(2025, 3, 5, 2, 3, 13, tzinfo=CET)


def test_task_name_with_failure_word_does_not_fail_a_successful_run():
    text = ("Your backup task Failed-Disk-Archive is now complete.\n\nBackup Task: Failed-Disk-Archive\n"
            "Backup Destination: usbshare1 / NAS_1.hbk\nStart Time: Sat, 01 Mar 2025 01:00:00\nDuration: 5 Minutes\n\nFrom NAS\n")
    r = parse_message(_msg("[NAS] Local folder & USB backup - Failed-Disk-Archive successful on NAS", text))
    assert (r.software, r.job_name, r.overall_status) == ("Synology Hyper Backup", "Failed-Disk-Archive", "Success")


def test_hyper_backup_partial_german():
    text = ("Ihre Datensicherungsaufgabe Server-Abzug ist teilweise abgeschlossen. Einige Dateien wurden nicht gesichert.\n\n"
            "Datensicherungsaufgabe: Server-Abzug\nDatensicherungsziel: usbshare1 / DS_1.hbk\nStartzeit: Sa, 01 Mär 2025 01:00:00\n"
            "Dauer: 2 Minuten\n\nVon DS\n")
    r = parse_message(_msg("[DS] Local folder & USB backup - Server-Abzug teilweise abgeschlossen auf DS", text))
    assert (r.job_name, r.overall_status) == ("Server-Abzug", "Warning")


def test_hyper_backup_from_subject_when_body_has_no_task_line():
    r = parse_message(_msg("[NAS9] Synology C2 Storage backup - Archive 2025 failed on NAS9",
                           "The backup on NAS9 has failed.\n\nFrom NAS9\n", sender="sns@synologynotification.com"))
    assert (r.software, r.job_name, r.overall_status) == ("Synology Hyper Backup", "Archive 2025", "Failed")


def test_abb_ambiguous_us_date_is_not_placed_in_the_future():
    r = parse_message(_load("synology_abb_vm_failed_en.eml"))
    assert r.started_at == datetime(2025, 3, 11, 1, 0, tzinfo=CET)
    assert r.ended_at == datetime(2025, 3, 11, 2, 17, tzinfo=CET)


def test_abb_devices_carry_the_task_status():
    r = parse_message(_load("synology_abb_pc_success_de.eml"))
    assert [(o.name, o.status) for o in r.objects] == [("NB-VERTRIEB-01", "Success"), ("NB-VERTRIEB-02", "Success")]


def test_non_backup_synology_mail_is_not_taken_as_backup():
    r = parse_message(_msg("[NAS] Storage Pool 1 on NAS has degraded",
                           "Storage Pool 1 on NAS has entered degraded mode.\n\nFrom NAS\n",
                           sender="sns@synologynotification.com"))
    assert r.software not in ("Synology Hyper Backup", "Synology Active Backup for Business", "Synology USB Copy",
                              "Synology Snapshot Replication")


def test_abb_italian_structure():
    r = parse_message(_msg("NAS-X Active Backup for Business - attività di backup PC-Ufficio su NAS-X completata",
                           "L'attività di backup PC-Ufficio su NAS-X è stata completata.\nOra d’inizio: 17/02/2025 10:00\n"
                           "Ora di fine: 17/02/2025 10:21\nDimensioni trasferite: 522.6 MB\nElenco dispositivi: PC-REC-01\n"))
    assert (r.software, r.job_name, r.overall_status) == ("Synology Active Backup for Business", "PC-Ufficio", "Success")
    assert [(o.name, o.status) for o in r.objects] == [("PC-REC-01", "Success")]
    assert r.started_at == datetime(2025, 2, 17, 10, 0, tzinfo=CET)


def test_abb_danish_subject_structure():
    r = parse_message(_msg("nas-y.example.invalid Active Backup for Business - backupopgave Standard-PC på LAGER er fuldført",
                           "Backupopgave Standard-PC på LAGER er fuldført.\n"))
    assert (r.job_name, r.overall_status) == ("Standard-PC", "Success")


def test_abb_devices_split_by_outcome():
    r = parse_message(_msg("NAS Active Backup for Business - Backup task Servers on NAS was partially completed",
                           "Backup task Servers on NAS was partially completed.\nSuccessful devices: SRV-A, SRV-B\n"
                           "Failed devices: SRV-C\n\nFrom NAS\n"))
    assert r.overall_status == "Warning"
    assert sorted((o.name, o.status) for o in r.objects) == [("SRV-A", "Success"), ("SRV-B", "Success"),
                                                             ("SRV-C", "Failed")]


def test_hyper_backup_sentence_only_mail_with_log_hint():
    r = parse_message(_msg("[NAS] Backup task status",
                           "Backup task Photos-Weekly on NAS was cancelled.\n\nPlease check Hyper Backup > Log.\n\nFrom NAS\n"))
    assert (r.software, r.job_name, r.overall_status) == ("Synology Hyper Backup", "Photos-Weekly", "Failed")


def test_integrity_check_without_errors_is_success_and_typed():
    text = ("The backup integrity check of task Offsite-C2 has completed. No errors were found.\n\n"
            "Backup Task: Offsite-C2\nBackup Destination: Synology C2 Storage / NAS_1.hbk\n\nFrom NAS\n")
    r = parse_message(_msg("[NAS] Synology C2 Storage backup - Offsite-C2 integrity check completed on NAS", text))
    assert (r.backup_type, r.job_name, r.overall_status) == ("Integrity check", "Offsite-C2", "Success")


def test_abb_device_names_do_not_decide_the_task_kind():
    r = parse_message(_msg("NAS Active Backup for Business - Backup task Clients on NAS has completed",
                           "Backup task Clients on NAS has completed.\nDevice list: VM-HOST-LAPTOP, SMB-PC\n\nFrom NAS\n"))
    assert r.backup_type == "PC backup task"
    assert [o.type for o in r.objects] == ["PC", "PC"]


def _dsm_mail(subject: str, body: str, sender: str = "LAB-NAS1 <sns@synologynotification.com>") -> bytes:
    return (f"From: {sender}\nTo: it@example.invalid\nSubject: {subject}\nDate: Mon, 17 Mar 2025 03:05:12 +0100\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode("utf-8")


@pytest.mark.parametrize("subject,sentence,kind,name", [
    ("[LAB-NAS1] Replication failed", "The replication of shared folder [Engineering] to LAB-NAS2 has failed.",
     "Replication task", "Engineering"),
    ("[LAB-NAS1] Snapshot failed", "Failed to take a snapshot of shared folder [Team Docs] on LAB-NAS1.",
     "Snapshot task", "Team Docs"),
    ("[LAB-NAS1] Replikation fehlgeschlagen", "Die Replikation des freigegebenen Ordners [Projekte] ist fehlgeschlagen.",
     "Replication task", "Projekte"),
    ("[LAB-NAS1] Replicatie mislukt", "De replicatie van gedeelde map [Projecten] is mislukt.",
     "Replication task", "Projecten"),
])
def test_dsm_event_sentence_without_the_package_name_is_a_snapshot_replication_failure(subject, sentence, kind, name):
    r = parse_raw(_dsm_mail(subject, f"Dear user,\n\n{sentence}\n\nFrom LAB-NAS1\n"))
    assert (r.software, r.backup_type, r.job_name, r.overall_status) == (
        "Synology Snapshot Replication", kind, name, "Failed")
    assert r.message == sentence


def test_snapshot_replication_reason_line_is_the_message_and_success_has_none():
    body = ("Dear user,\n\nThe replication of shared folder [Engineering] has failed.\n"
            "Reason: The destination server could not be reached.\n\nFrom LAB-NAS1\n")
    assert parse_raw(_dsm_mail("[LAB-NAS1] Replication", body)).message == "The destination server could not be reached."
    ok = "Dear user,\n\nThe replication of shared folder [Engineering] has been completed successfully.\n\nFrom LAB-NAS1\n"
    r = parse_raw(_dsm_mail("[LAB-NAS1] Replication", ok))
    assert (r.overall_status, r.message) == ("Success", "")


def test_a_shared_folder_sentence_outside_a_synology_mail_is_not_taken():
    body = "Hello,\n\nThe replication of shared folder [Engineering] has failed.\n"
    r = parse_raw(_dsm_mail("Replication", body, sender="monitor@example.invalid"))
    assert r.software != "Synology Snapshot Replication"
