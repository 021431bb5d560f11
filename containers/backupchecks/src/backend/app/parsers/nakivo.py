"""NAKIVO Backup & Replication job notifications (backup, replication, backup copy, ...).

NAKIVO mails a job report after each run (subject such as
``NAKIVO Backup & Replication: Job "<name>" completed successfully`` /
``... failed`` / ``... completed with warnings``). The HTML report has a
property/value table (Job name, Job type, Status, Started, Finished, ...) and a
table of items with a Status column whose first column names the item kind
(VM, Instance, Physical machine, Account, ...). Public copies of this mail are
rare, so the parser reads the tables by their header words, not by position,
and falls back to the subject for job name and status.
"""
from __future__ import annotations

import re
from datetime import timezone
from typing import Optional

from .base import (FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser, clean_text,
                   status_from_word, parse_datetime, worst_status)

SOFTWARE = "NAKIVO Backup & Replication"

_NAKIVO_RE = re.compile(r"NAKIVO", re.IGNORECASE)
_SUBJ_JOB_RES = (
    re.compile(r"\bJob\s+[\"“'«](?P<job>[^\"”'»]+)[\"”'»]\s*(?P<rest>.*)$", re.IGNORECASE),
    re.compile(r"[\"“«](?P<job>[^\"”»]+)[\"”»]\s*(?P<rest>.*)$"),
    re.compile(r"\bJob(?:\s+report)?\s*:\s*(?P<job>.+?)\s*(?:\s[-–|]\s*(?P<rest>.*))?$", re.IGNORECASE),
)


def _subject_job(subject: str):
    for rx in _SUBJ_JOB_RES:
        m = rx.search(subject)
        if m:
            return clean_text(m.group("job")), (m.group("rest") or "")
    return None, ""
_KEYS = {
    "job": ("job name", "job", "name of job", "jobname", "auftragsname", "taaknaam", "job-name"),
    "type": ("job type", "type", "auftragstyp", "jobtyp", "taaktype", "jobtype"),
    "status": ("status", "job status", "result", "job result", "state", "ergebnis", "resultaat"),
    "start": ("started", "start", "start time", "started at", "job started", "gestartet", "gestart", "starttijd",
              "startzeit"),
    "end": ("finished", "end", "end time", "finished at", "completed", "job finished", "beendet", "voltooid",
            "eindtijd", "endzeit", "ended"),
}
_ITEM_KINDS = {
    "vm": "VM", "vms": "VM", "virtual machine": "VM", "virtual machines": "VM", "source vm": "VM",
    "instance": "Instance", "ec2 instance": "Instance", "instances": "Instance",
    "physical machine": "Physical machine", "machine": "Physical machine", "server": "Physical machine",
    "account": "Account", "mailbox": "Mailbox", "item": "Item", "items": "Item", "object": "Object",
    "source": "Source", "backup": "Backup", "share": "Share", "file share": "Share", "host": "Host",
    "workload": "Workload", "workloads": "Workload", "site": "Site", "onedrive": "OneDrive",
}
_MSG_COLS = ("message", "details", "detail", "error", "reason", "description", "info", "warnings", "notes")


_ST_WARN = re.compile(r"partial|with (?:warning|error|exception)|warning|skipped|teilweise|gedeeltelijk", re.IGNORECASE)
_ST_FAIL = re.compile(r"fail|\berror|\berr\b|stopped|gestoppt|gestopt|cancel|abort|interrupted|timed out|not run|"
                      r"fehlgeschlagen|mislukt", re.IGNORECASE)
_ST_OK = re.compile(r"success|succeeded|complete|\bok\b|finished|\bdone\b|erfolgreich|geslaagd|voltooid",
                    re.IGNORECASE)


def _status(word: Optional[str]) -> Optional[str]:
    """Status words as NAKIVO writes them (Successful, Failed, Stopped, ... with warnings)."""
    if not word:
        return None
    if _ST_WARN.search(word):
        return WARNING
    if _ST_FAIL.search(word):
        return FAILED
    if _ST_OK.search(word):
        return SUCCESS
    return status_from_word(word)


def _key(label: str) -> Optional[str]:
    lab = clean_text(label).lower().rstrip(":").strip()
    for key, names in _KEYS.items():
        if lab in names:
            return key
    return None


def _when(value: Optional[str], msg: Message):
    if not value or value.strip() in ("-", "n/a", "N/A"):
        return None
    v = re.sub(r"[()]", " ", value)
    v = re.sub(r"\s+at\s+", " ", v, flags=re.IGNORECASE)
    tz = msg.date.tzinfo if msg.date is not None and msg.date.tzinfo is not None else timezone.utc
    return parse_datetime(v, default_tz=tz)


def _short_row(cells, header) -> bool:
    """A tab row that no longer belongs to the items table (fewer cells than a status column needs)."""
    return len(cells) <= header.index("status")


def _cells(row) -> list[str]:
    return [" ".join(c.text_content().split()) for c in row if c.tag in ("td", "th")]


class NakivoParser(Parser):
    name = "nakivo"
    product = SOFTWARE
    types = ("Backup", "Replication", "Backup copy")
    sender_contains = ("nakivo",)
    subject_patterns = (r"NAKIVO",)
    body_markers = ("NAKIVO Backup & Replication",)
    description = ("NAKIVO Backup & Replication job report: 'NAKIVO' in sender, subject or body together with a "
                   "job report (Job \"<name>\" in the subject, or Job name/Status properties in the body).")

    def matches(self, msg: Message) -> Optional[str]:
        named = (_NAKIVO_RE.search(msg.subject) or "nakivo" in msg.from_address or "nakivo" in msg.from_name.lower()
                 or "NAKIVO Backup" in msg.text or "NAKIVO Backup" in msg.html)
        if not named:
            return None
        if _subject_job(msg.subject)[0]:
            return "NAKIVO job notification subject"
        low = msg.text.lower()
        if ("job name" in low or "job report" in low) and "status" in low:
            return "NAKIVO job report body"
        return None

    def parse(self, msg: Message) -> ParseResult:
        props: dict[str, str] = {}
        objects: list[ParsedObject] = []
        tree = msg.html_tree()
        if tree is not None:
            for table in tree.iter("table"):
                rows = [r for r in table.iter("tr")]
                if not rows:
                    continue
                header = [h.lower() for h in _cells(rows[0])]
                if "status" in header and header and header[0] in _ITEM_KINDS:
                    objects.extend(self._items(rows, header))
                    continue
                for r in rows:
                    c = _cells(r)
                    if len(c) >= 2:
                        k = _key(c[0])
                        if k and k not in props and c[1]:
                            props[k] = c[1]
        if not props or not objects:
            self._from_text(msg.text, props, objects)
        subj_job, subj_rest = _subject_job(msg.subject)
        job = props.get("job") or subj_job
        status = _status(props.get("status"))
        if status is None and subj_job:
            status = _status(subj_rest.replace(subj_job, " "))
        if status is None:
            status = worst_status(*(o.status for o in objects))
        backup_type = props.get("type") or self._type_from(msg.subject + " " + msg.text[:500])
        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=job, overall_status=status,
                           started_at=_when(props.get("start"), msg), ended_at=_when(props.get("end"), msg),
                           objects=objects)

    @staticmethod
    def _type_from(text: str) -> str:
        low = text.lower()
        if "backup copy" in low:
            return "Backup copy"
        if "replication" in low.replace("backup & replication", ""):
            return "Replication"
        return "Backup"

    @staticmethod
    def _items(rows, header) -> list[ParsedObject]:
        kind = _ITEM_KINDS[header[0]]
        si = header.index("status")
        mi = next((i for i, h in enumerate(header) if h in _MSG_COLS), None)
        out = []
        for r in rows[1:]:
            c = _cells(r)
            if len(c) <= si or not c[0]:
                continue
            message = c[mi] if mi is not None and mi < len(c) else ""
            if message in ("-", "—", "n/a", "N/A"):
                message = ""
            out.append(ParsedObject(name=c[0], type=kind, status=_status(c[si]), message=message))
        return out

    @staticmethod
    def _from_text(text: str, props: dict, objects: list) -> None:
        lines = text.splitlines()
        header = None
        for line in lines:
            if "\t" in line:
                cells = [clean_text(x) for x in line.split("\t")]
                cells = [x for x in cells if x != ""] if cells and cells[-1] == "" else cells
                low = [x.lower() for x in cells]
                if "status" in low and low and low[0] in _ITEM_KINDS:
                    header = low
                    continue
                if header and not _short_row(cells, header):
                    if cells[0]:
                        mi = next((i for i, h in enumerate(header) if h in _MSG_COLS), None)
                        msg = cells[mi] if mi is not None and mi < len(cells) else ""
                        objects.append(ParsedObject(name=cells[0], type=_ITEM_KINDS[header[0]],
                                                    status=_status(cells[header.index("status")]),
                                                    message="" if msg in ("-", "—") else msg))
                    continue
                if len(cells) >= 2:
                    k = _key(cells[0])
                    if k and k not in props and cells[1]:
                        props[k] = cells[1]
                    continue
            else:
                header = None if line.strip() == "" else header
            m = re.match(r"^\s*([A-Za-z][A-Za-z \-]{1,25}):\s+(.+?)\s*$", line)
            if m:
                k = _key(m.group(1))
                if k and k not in props:
                    props[k] = m.group(2)


PARSERS: list[Parser] = [NakivoParser()]
