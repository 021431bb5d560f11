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

from .base import FAILED, SUCCESS, WARNING, Message, ParseResult, Parser, status_from_word, parse_with_formats, html_label_text

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


def _tail_status(tail: str) -> Optional[str]:
    t = tail.lower()
    if re.search(r"warn|with errors|mit fehlern|met fouten", t):
        return WARNING
    if re.search(r"fail|error|abort|cancel|skipped|fehl|mislukt|échec|echec|erreur", t):
        return FAILED
    if re.search(r"success|succeeded|completed|erfolgreich|geslaagd|réussi|reussi|voltooid", t):
        return SUCCESS
    return status_from_word(tail)


def _definition_name(value: str) -> str:
    v = value.strip().strip("'\"")
    # 'C:\\Users\\x\\Documents\\Reflect\\Daily Image.xml' -> 'Daily Image'
    v = re.split(r"[\\/]", v)[-1]
    v = re.sub(r"\.xml$", "", v, flags=re.IGNORECASE)
    return v.strip()




class MacriumReflectParser(Parser):
    name = "macrium_reflect"
    product = SOFTWARE
    types = ("Image backup", "File backup", "Clone")
    sender_contains = ("macrium",)
    subject_patterns = (r"Macrium\s+Reflect\s*-\s*(?:Backup|Clone)",)
    body_markers = ("Macrium Reflect", "Success :)", "Failed :(", "Warning :|")
    description = ("Macrium Reflect notification: subject '<computer> Macrium Reflect - Backup Success | "
                   "Backup Failed | Backup with Warnings', body 'Success :)' / 'Failed :(' / 'Warning :|' with "
                   "'Computer Name:' and 'Backup definition:'; the definition is the job.")

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
        subj = msg.subject
        text = msg.text or ""
        sm = _SUBJECT_RE.match(subj)
        tail = sm.group("tail") if sm else subj

        status = None
        fm = _FACE_RE.search(text)
        if fm:
            status = {":)": SUCCESS, ":|": WARNING, ":(": FAILED}[fm.group("face")]
        tstatus = _tail_status(tail)
        if status is None:
            status = tstatus
        elif tstatus is not None and tstatus != status:
            # the subject names the outcome explicitly; trust the worse of the two
            order = {SUCCESS: 0, WARNING: 1, FAILED: 2}
            status = status if order[status] >= order[tstatus] else tstatus
        if status is None and _FAIL_BODY_RE.search(text):
            status = FAILED

        # HTML bodies may put label and value in two table cells; read those rows too.
        cells = html_label_text(msg)
        if cells:
            text = text + "\n" + cells
        definition = None
        dm = _LABEL_RE["definition"].search(text)
        if dm:
            value = dm.group("v")
            if re.search(r"[\\/]", value) and not value.lower().endswith(".xml"):
                # A plain-text client wrapped the path: the next line ends the file name.
                nxt = text[dm.end():].lstrip("\r").split("\n", 2)
                if len(nxt) > 1 and nxt[1].strip().lower().endswith(".xml") and ":" not in nxt[1]:
                    value = value + " " + nxt[1].strip()
            definition = _definition_name(value)
        if not definition and sm and sm.group("definition"):
            definition = sm.group("definition").strip()
        computer = None
        cm = _LABEL_RE["computer"].search(text)
        if cm:
            computer = cm.group("v").strip()
        elif sm and sm.group("computer"):
            computer = sm.group("computer").strip()

        if re.search(r"\bclone\b", tail, re.IGNORECASE):
            backup_type = "Clone"
        elif _FILE_BACKUP_RE.search(text) or re.search(r"file\s*(?:and|&)\s*folder", tail, re.IGNORECASE):
            backup_type = "File backup"
        else:
            backup_type = "Image backup"

        started = ended = None
        m = _LABEL_RE["start"].search(text)
        if m:
            started = _parse_dt(m.group("v"), msg)
        m = _LABEL_RE["end"].search(text)
        if m:
            ended = _parse_dt(m.group("v"), msg)

        return ParseResult(
            software=SOFTWARE,
            backup_type=backup_type,
            job_name=definition or computer,
            overall_status=status,
            started_at=started,
            ended_at=ended,
            objects=[],
        )


PARSERS: list[Parser] = [MacriumReflectParser()]
