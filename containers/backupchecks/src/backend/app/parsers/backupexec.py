"""Veritas Backup Exec job alert notifications.

Format (public references: mail filters and monitoring tools quoting real
mails, and the Backup Exec administrator guide's alert categories):

    Subject: Backup Exec Alert: <category> (Server: "BE01") (Job: "Nightly Full")

with categories such as ``Job Success``, ``Job Completed``, ``Job Completed
with Exceptions``, ``Job Warning``, ``Backup Job Contains No Data``,
``Job Failed``, ``Job Failure``, ``Job Cancellation`` / ``Job Canceled`` and
``Job Start``.  The body repeats ``(Server: "X") (Job: "Y")`` followed by the
outcome: ``Completed Successfully.``, ``The job completed successfully.
However, the following conditions were encountered: ...`` (exceptions: a
warning), ``<job> -- The job failed with the following error: ...`` or ``The
job was canceled because ...``.  When the job log is included, ``Job
Completion Status`` / ``Completed status: Successful | Completed with
exceptions | Failed | Canceled | Missed`` is used as well.

The job log's ``Job Completion Status`` is a heading with ``Job ended: ...``
and ``Completed status: ...`` on the lines below it; the status is read from
the same line as its label only.

Status: success → Success; exceptions / warning / no data → Warning;
failed / cancellation / canceled / missed → Failed; a "Job Completed" alert
takes the job log's completed status.  The run's message is the job log's
``Final error: ...``, else the alert's ``The job failed with the following
error: ...``, ``The job was canceled because ...`` or the conditions listed
after ``However, the following conditions were encountered:``.  Alerts that
are not about a finished job are recognised with ``is_report=False`` (the
not-a-report path): the guide's informational ones (Job Start, General
Information, Database Maintenance / Install / Storage / Media / Tape Alert /
Software Update / License and Maintenance Information, Service Start/Stop),
the attention-required ones (Media Insert / Overwrite / Remove / Intervention,
Library Insert) and the device, install and licence warnings and errors.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParseResult, Parser, clean_text, first_group, first_label, status_from_word,
    status_from_rules,
)
from .dates import parse_with_formats

SOFTWARE = "Veritas Backup Exec"

_ALERT_RE = re.compile(r"^\s*(?:Backup Exec|BackupExec)\s+(?:Alert|Warnung|Waarschuwing|Alerte|Melding|Benachrichtigung)"
                       r"\s*:\s*(?P<category>[^(]*?)\s*(?=\(|$)", re.IGNORECASE)
# Greedy up to the last '")' so a job name with quotes or parentheses stays whole.
_JOB_RE = re.compile(r"\(\s*(?:Job|Auftrag|Taak|Tâche|Trabajo)\s*:\s*\"(?P<job>.*)\"\s*\)", re.IGNORECASE)
# The status on the same line: the job log's "Job Completion Status" is a heading of its own, with
# "Job ended: ..." and "Completed status: ..." on the lines under it.
_COMPLETION_RE = re.compile(
    r"(?:Job completion status|Completed status|Job status|Auftragsabschlussstatus|Abschlussstatus)[ \t]*:?[ \t]*"
    r"(?P<status>[A-Za-zäöüÄÖÜ][A-Za-zäöüÄÖÜ ,]*)", re.IGNORECASE)
# The body's outcome sentences; exceptions first ("completed successfully. However, ...").
_BODY_RULES = (
    (WARNING, re.compile(r"however,\s+the\s+following\s+conditions\s+were\s+encountered|"
                         r"completed\s+with\s+exceptions|mit\s+ausnahmen|met\s+uitzonderingen", re.IGNORECASE)),
    (FAILED, re.compile(r"the\s+job\s+failed|job\s+failed|fehlgeschlagen|mislukt|"
                        r"the\s+job\s+was\s+cancel+ed|job\s+was\s+cancel+ed|abgebrochen|geannuleerd|"
                        r"\bmissed\b", re.IGNORECASE)),
    (SUCCESS, re.compile(r"completed\s+successfully|erfolgreich\s+abgeschlossen|is\s+voltooid|"
                         r"met\s+succes\s+voltooid", re.IGNORECASE)),
)
# The report's own reason for a failure or warning: the job log's "Final error", else the alert's sentence.
_REASON_RES = (
    re.compile(r"^[ \t]*Final error\s*:\s*(?P<r>\S.*?)\s*$", re.IGNORECASE | re.MULTILINE),
    re.compile(r"the job failed with the following error\s*:\s*(?P<r>\S.*?)\s*$", re.IGNORECASE | re.MULTILINE),
    re.compile(r"(?P<r>the job was cancel+ed\b.*?)\s*$", re.IGNORECASE | re.MULTILINE),
    re.compile(r"the following conditions were encountered\s*:\s*(?P<r>\S[\s\S]*?)\s*(?:\n\s*\n|$)", re.IGNORECASE),
)
_JOB_TYPES = (
    ("duplicate", "Duplicate"), ("restore", "Restore"), ("verify", "Verify"),
    ("database maintenance", "Database Maintenance"), ("inventory", "Inventory"),
)
_TIME_RE = {
    "start": re.compile(r"^\s*(?:Job started|Start time|Started)\s*:?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE),
    "end": re.compile(r"^\s*(?:Job ended|End time|Ended|Completed)\s*:?\s*(\S.+?)\s*$", re.IGNORECASE | re.MULTILINE),
}
_DT_FORMATS = (
    "%A, %B %d, %Y %I:%M:%S %p", "%A, %B %d, %Y at %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S",
)


def _parse_dt(value: str, msg: Message) -> Optional[datetime]:
    return parse_with_formats(value, _DT_FORMATS, msg)


def _category_and_job(subject: str, text: str) -> tuple[str, Optional[str]]:
    """The alert category from the subject ('' when it is not an alert subject), the job name from the
    subject's or the body's (Job: "...") part."""
    m = _ALERT_RE.match(subject)
    jm = _JOB_RE.search(subject) or _JOB_RE.search(text)
    return (m.group("category").strip() if m else ""), (jm.group("job").strip() if jm else None)


def _category_status(category: str) -> tuple[Optional[str], bool]:
    """(status, is_job_result) for an alert category."""
    c = category.lower().strip()
    if not c:
        return None, True
    if re.search(r"job start|auftragsstart|taak start", c):
        return None, False
    if re.search(r"exception|ausnahme|uitzondering", c):
        return WARNING, True
    if re.search(r"contains no data|keine daten|geen gegevens", c):
        return WARNING, True
    if re.search(r"cancel|abbruch|abgebrochen|annul", c):
        return FAILED, True
    if re.search(r"fail|error|fehl|mislukt|fout|missed", c):
        return FAILED, c.startswith(("job", "backup", "auftrag", "taak", "sdr", "database maintenance"))
    if re.search(r"warn|waarschuw", c):
        return WARNING, c.startswith(("job", "backup", "auftrag", "taak"))
    if re.search(r"success|completed|erfolgreich|abgeschlossen|geslaagd|voltooid", c):
        return SUCCESS, True
    return None, False


class BackupExecAlertParser(Parser):
    """Backup Exec alert mails: subject 'Backup Exec Alert: <category> (Server: "X") (Job: "Y")'; the category
    and the body ('Completed Successfully', 'However, the following conditions were encountered', 'The job
    failed', 'canceled') give the status.
    """

    name = "backupexec_alert"
    product = SOFTWARE
    types = ("Backup", "Duplicate", "Restore", "Verify")
    sender_contains = ("backupexec", "backup.exec")
    subject_patterns = (r"^\s*Backup\s*Exec\s+Alert\s*:",)
    body_markers = ("Backup Exec",)

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        if _ALERT_RE.match(subj):
            return "subject starts with 'Backup Exec Alert:'"
        if "(server:" in subj.lower() and _JOB_RE.search(subj) and (
                "backup exec" in msg.text.lower() or "backupexec" in msg.from_address):
            return "subject has (Server: \"..\") (Job: \"..\") and mentions Backup Exec"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text or ""
        category, job = _category_and_job(msg.subject, text)
        status, is_job = _category_status(category)
        if not is_job or (job is None and status is None):
            return ParseResult(software=None, backup_type=None, job_name=None, overall_status=None,
                               is_report=False,
                               reason=f"Backup Exec alert '{category or msg.subject}' is not a job result")

        body_status = None
        for cm in _COMPLETION_RE.finditer(text):
            body_status = status_from_word(cm.group("status"))
            if re.match(r"\s*(?:cancel|missed)", cm.group("status"), re.IGNORECASE):
                body_status = FAILED
            if body_status is not None:
                break
        if body_status is None:
            body_status = status_from_rules(text, _BODY_RULES)
        # The category is authoritative, but a body that says "however, the following
        # conditions were encountered" under a generic "Job Completed" is a warning.
        if status is None:
            status = body_status
        elif status == SUCCESS and body_status in (WARNING, FAILED):
            status = body_status

        backup_type = first_label(category.lower(), _JOB_TYPES, "Backup")
        reason = ""
        if status in (FAILED, WARNING):
            reason = next((clean_text(m.group("r")) for m in (rx.search(text) for rx in _REASON_RES) if m), "")
        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=job, overall_status=status, message=reason,
                           started_at=_parse_dt(first_group(_TIME_RE["start"], text), msg),
                           ended_at=_parse_dt(first_group(_TIME_RE["end"], text), msg), objects=[])


PARSERS: list[Parser] = [BackupExecAlertParser()]
