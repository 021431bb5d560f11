"""Macrium Reflect backup notification mails (image, file & folder, clone).

Format (public references: a monitoring tool calibrated on a real fleet and
Macrium's own email-settings documentation; see the corpus sample's
format_source): the default subject is

    <COMPUTER>[ (<definition>)] Macrium Reflect - Backup Success
    <COMPUTER> Macrium Reflect - Backup Failed | Backup Failure
    <COMPUTER> Macrium Reflect - Backup with Warnings

and the body starts with ``Success :)`` / ``Failed :(`` / ``Warning :|``
followed by ``Computer Name:`` and ``Backup definition:`` lines and the
backup log (``Backup aborted! - Write operation failed - ...``).  Macrium
evaluates its status variable to the English literals Success / Warning /
Failure; cancelled and skipped backups arrive as Failure mails.  Image
backups write ``.mrimg`` files, file and folder backups ``.mrbak`` files, so
the backup type comes from the body (default: image backup).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from .base import FAILED, SUCCESS, WARNING, Message, Parser, ParseResult, first_group, vendor_status, worst_status
from .dates import parse_with_formats
from .tables import html_label_text

SOFTWARE = "Macrium Reflect"

_SUBJECT_RE = re.compile(
    r"^(?:(?P<computer>[^\s()]+)\s*(?:\((?P<definition>[^)]*)\))?\s+)?Macrium\s+Reflect\b\s*[-–:]?\s*(?P<tail>.*)$",
    re.IGNORECASE)
_SUBJECT_STATUS_RE = re.compile(r"Macrium\s+Reflect\s*[-–:]\s*(?:Back-?up|Clone|Image|File|Sicherung|Klon|Sauvegarde|Kloon)",
                                re.IGNORECASE)
_FACE_RE = re.compile(r"^\s*(?P<word>Success|Succeeded|Warning|Warnings|Failed|Failure|Error)\s*(?P<face>:\)|:\(|:\|)",
                      re.IGNORECASE | re.MULTILINE)
_LABEL_RE = {
    "computer": re.compile(r"^\s*(?:Computer\s*Name|Computer|Computername|Computername|Machine|Rechnername)\s*(?::|\t)\s*"
                           r"(?P<v>\S.*?)\s*$", re.IGNORECASE | re.MULTILINE),
    "definition": re.compile(r"^\s*(?:Backup\s+definition(?:\s+file)?|Definition(?:\s+file)?|"
                             r"Sicherungsdefinition|Back-updefinitie)\s*(?:[:=]|\t)\s*(?P<v>\S.*?)\s*$",
                             re.IGNORECASE | re.MULTILINE),
    "type": re.compile(r"^\s*(?:Backup\s*Type|Backup-Typ|Sicherungstyp)\s*(?::|\t)\s*(?P<v>\S.*?)\s*$",
                       re.IGNORECASE | re.MULTILINE),
    "start": re.compile(r"^\s*(?:Start\s*Time|Started|Backup\s+started|Startzeit)\s*(?::|\t)\s*(?P<v>\S.*?)\s*$",
                        re.IGNORECASE | re.MULTILINE),
    "end": re.compile(r"^\s*(?:End\s*Time|Finished|Completed|Backup\s+completed|Endzeit)\s*(?::|\t)\s*(?P<v>\d.*?)\s*$",
                      re.IGNORECASE | re.MULTILINE),
}
_FILE_BACKUP_RE = re.compile(r"\.mrbak\b|file\s*(?:and|&)\s*folder|file\s+backup|datei-?\s*und\s*ordner",
                             re.IGNORECASE)
_FAIL_BODY_RE = re.compile(r"backup\s+aborted|clone\s+aborted|backup\s+failed|backup\s+cancell?ed|"
                           r"operation\s+failed|failed\s*:\(", re.IGNORECASE)
_DT_FORMATS = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S",
)


def _parse_dt(value: str, msg: Message) -> Optional[datetime]:
    return parse_with_formats(value, _DT_FORMATS, msg)


# The subject's result words (lower case); cancelled and skipped backups are failures.
_TAIL_RULES = (
    (WARNING, re.compile(r"warn|with errors|mit fehlern|met fouten")),
    (FAILED, re.compile(r"fail|error|abort|cancel|skipped|fehl|mislukt|échec|echec|erreur")),
    (SUCCESS, re.compile(r"success|succeeded|completed|erfolgreich|geslaagd|réussi|reussi|voltooid")),
)


def _definition_name(value: str) -> str:
    v = value.strip().strip("'\"")
    # 'C:\\Users\\x\\Documents\\Reflect\\Daily Image.xml' -> 'Daily Image'
    v = re.split(r"[\\/]", v)[-1]
    v = re.sub(r"\.xml$", "", v, flags=re.IGNORECASE)
    return v.strip()


class MacriumReflectParser(Parser):
    """Macrium Reflect notification: subject '<computer> Macrium Reflect - Backup Success | Backup Failed |
    Backup with Warnings', body 'Success :)' / 'Failed :(' / 'Warning :|' with 'Computer Name:' and 'Backup
    definition:'; the definition is the job.
    """

    name = "macrium_reflect"
    product = SOFTWARE
    types = ("Image backup", "File backup", "Clone")
    sender_contains = ("macrium",)
    subject_patterns = (r"Macrium\s+Reflect\s*-\s*(?:Backup|Clone)",)
    body_markers = ("Macrium Reflect", "Success :)", "Failed :(", "Warning :|")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        low = subj.lower()
        if "macrium" in low:
            if "image guardian" in low or "site manager" in low:
                return None
            if _SUBJECT_STATUS_RE.search(subj):
                return "subject '... Macrium Reflect - Backup <status>'"
        if "macrium" in low or "macrium" in msg.from_address or "macrium" in msg.from_name.lower():
            if _FACE_RE.search(msg.text or ""):
                return "Macrium subject/sender and body status line"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text or ""
        sm = _SUBJECT_RE.match(msg.subject)
        tail = sm.group("tail") if sm else msg.subject
        status = _status(text, tail)
        # HTML bodies may put label and value in two table cells; read those rows too.
        cells = html_label_text(msg)
        if cells:
            text = text + "\n" + cells
        definition = _definition(text)
        if not definition and sm and sm.group("definition"):
            definition = sm.group("definition").strip()
        computer = first_group(_LABEL_RE["computer"], text, "v")
        if computer is not None:
            computer = computer.strip()
        elif sm and sm.group("computer"):
            computer = sm.group("computer").strip()

        if re.search(r"\bclone\b", tail, re.IGNORECASE):
            backup_type = "Clone"
        elif _FILE_BACKUP_RE.search(text) or re.search(r"file\s*(?:and|&)\s*folder", tail, re.IGNORECASE):
            backup_type = "File backup"
        else:
            backup_type = "Image backup"
        started = _parse_dt(first_group(_LABEL_RE["start"], text, "v"), msg)
        ended = _parse_dt(first_group(_LABEL_RE["end"], text, "v"), msg)
        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=definition or computer,
                           overall_status=status, started_at=started, ended_at=ended, objects=[])


def _status(text: str, tail: str) -> Optional[str]:
    """The body's face line (":)", ":|", ":("), the subject's words, else a failure sentence in the body."""
    fm = _FACE_RE.search(text)
    status = {":)": SUCCESS, ":|": WARNING, ":(": FAILED}[fm.group("face")] if fm else None
    # the subject names the outcome explicitly; trust the worse of the two
    status = worst_status(status, vendor_status(tail, _TAIL_RULES, lower=True))
    if status is None and _FAIL_BODY_RE.search(text):
        status = FAILED
    return status


def _definition(text: str) -> Optional[str]:
    """The backup definition's name from its label line (a path wrapped by a plain-text client joined)."""
    dm = _LABEL_RE["definition"].search(text)
    if not dm:
        return None
    value = dm.group("v")
    if re.search(r"[\\/]", value) and not value.lower().endswith(".xml"):
        # A plain-text client wrapped the path: the next line ends the file name.
        nxt = text[dm.end():].lstrip("\r").split("\n", 2)
        if len(nxt) > 1 and nxt[1].strip().lower().endswith(".xml") and ":" not in nxt[1]:
            value = value + " " + nxt[1].strip()
    return _definition_name(value)


PARSERS: list[Parser] = [MacriumReflectParser()]
