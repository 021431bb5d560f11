"""Cove Data Protection (formerly N-able Backup / SolarWinds Backup) session mails.

The Backup Manager on a device mails a report per backup session (and,
optionally, a periodic "backup dashboard"), in the language chosen in its
general preferences.  No public copy of the mail template was found (the
corpus sample is a reconstruction), so the parser works from the product's
documented vocabulary rather than a fixed layout:

* session statuses (as in the Backup Manager, the console and the event log):
  ``Completed`` → Success, ``Completed with errors`` / ``Completed with
  warnings`` → Warning, ``Failed`` / ``Aborted`` / ``Interrupted`` /
  ``Over quota`` / ``Not started`` → Failed, ``In process`` / ``InProcess``
  (still running) → Warning; German and Dutch equivalents through
  ``status_from_word``;
* the device is the job: a ``Device`` / ``Device name`` (``Gerät``,
  ``Apparaat``) row or line, else the subject ``<status> - <device>
  (<customer>)``;
* each row of the data-source table (``Data source`` / ``Datenquelle`` /
  ``Gegevensbron`` with a status column) becomes an object of type
  ``Data source``; a non-zero error count is added to the message
  (``Completed with errors (3 errors)``).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParsedObject, Parser, ParseResult, vendor_status, worst_status,
)
from .dates import mail_tz, strptime_any
from .tables import cell_at, column_index, label_value_rows, row_texts, split_columns
from .texttables import label_lines

SOFTWARE = "Cove Data Protection"

_SENDER_HINTS = ("backupmanager", "backup-manager", "cove", "n-able", "solarwinds", "iaso", "mspbackups")
_SENDER_RE = re.compile(r"backupmanager|backup-manager|backup\.manager|\bcove\b|covedataprotection|n-able|"
                        r"solarwinds|iaso|mspbackups")
_COVE_SOURCES_RE = re.compile(r"^\s*(?:Files and Folders|System State|MS SQL|MS Exchange|VMware|Hyper-V|"
                              r"Network shares|Dateien und Ordner|Systemstatus|Bestanden en mappen|Systeemstatus)\b",
                              re.IGNORECASE | re.MULTILINE)
_BODY_HINTS_RE = re.compile(r"backup manager|cove data protection|n-able|solarwinds backup|data sources?\b|"
                            r"datenquellen?|gegevensbronnen?", re.IGNORECASE)
_SUBJECT_RE = re.compile(
    r"^\s*(?:\[?backup manager\]?\s*[-:]?\s*)?"
    r"(?P<kind>backup|restore|sicherung|back-up|datensicherung|wiederherstellung|herstel)\s+"
    r"(?P<status>completed with errors|completed with warnings|completed|failed|aborted|interrupted|in ?process|"
    r"in progress|over quota|not started|abgeschlossen mit fehlern|abgeschlossen mit warnungen|abgeschlossen|"
    r"fehlgeschlagen|abgebrochen|unterbrochen|wird ausgeführt|voltooid met fouten|voltooid met waarschuwingen|"
    r"voltooid|mislukt|afgebroken|onderbroken|bezig)\s*[-–:]\s*(?P<device>[^()]+?)\s*(?:\((?P<customer>[^()]*)\))?\s*$",
    re.IGNORECASE)
_STATUS_LINE_RE = re.compile(
    r"^\s*(?:backup[\s-]*status|session\s+status|status|sicherungsstatus|back-upstatus)\s*:\s*(?P<v>\S.*?)\s*$",
    re.IGNORECASE | re.MULTILINE)
_DEVICE_KEYS = ("device", "device name", "gerät", "gerätename", "geraet", "apparaat", "apparaatnaam", "computer",
                "computer name")
_END_KEYS = ("session end", "end time", "finished", "sitzungsende", "endzeit", "einde sessie", "eindtijd")
_START_KEYS = ("session start", "start time", "started", "sitzungsbeginn", "startzeit", "begin sessie",
               "starttijd")
_SOURCE_HEADERS = ("data source", "datasource", "data sources", "datenquelle", "gegevensbron", "source", "quelle",
                   "bron", "plugin")
_STATUS_HEADERS = ("status", "last session status", "session status", "zustand", "staat", "result")
_ERROR_HEADERS = ("errors", "error", "fehler", "fouten", "errors count")
_KV_LINE_RE = re.compile(r"^\s*(?P<k>[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß ]{1,30}?)\s*(?::|\t)\s*(?P<v>\S.*?)\s*$",
                         re.MULTILINE)
_DT_RE = re.compile(r"(?P<dt>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?|\d{1,2}[./-]\d{1,2}[./-]\d{4}\s+"
                    r"\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?)\s*(?:\((?:UTC|GMT)\s*(?P<off>[+-]\d{1,2}(?::?\d{2})?)?\))?",
                    re.IGNORECASE)


# Session statuses (lower case): still running and "with errors" are warnings.
_STATUS_RULES = (
    (WARNING, re.compile(r"in ?process|in progress|running|wird ausgeführt|läuft|bezig|in uitvoering")),
    (WARNING, re.compile(r"with (?:errors|warnings)|mit (?:fehlern|warnungen)|met (?:fouten|waarschuwingen)")),
    (FAILED, re.compile(r"fail|abort|interrupt|over ?quota|not ?started|no ?selection|fehlgeschlagen|abgebrochen|"
                        r"unterbrochen|mislukt|afgebroken|onderbroken|kontingent")),
    (SUCCESS, re.compile(r"^(?:completed|success|successful|abgeschlossen|erfolgreich|voltooid|geslaagd)\b")),
)


def cove_status(word: str) -> Optional[str]:
    """Cove session status word (EN/DE/NL) → Success / Warning / Failed."""
    w = re.sub(r"\s+", " ", (word or "")).strip().lower()
    if not w:
        return None
    return vendor_status(w, _STATUS_RULES)


_DT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
               "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
               "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p")


def _parse_dt(value: str, msg: Message) -> Optional[datetime]:
    m = _DT_RE.search(value or "")
    if not m:
        return None
    raw = m.group("dt").replace("T", " ")
    dt = strptime_any(raw, _DT_FORMATS)
    if dt is None:
        return None
    off = m.group("off")
    if off:
        sign = -1 if off.startswith("-") else 1
        digits = off[1:].replace(":", "")
        hours = int(digits[:-2] or 0) if len(digits) > 2 else int(digits)
        minutes = int(digits[-2:]) if len(digits) > 2 else 0
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    elif "(utc)" in value.lower() or "(gmt)" in value.lower():
        tz = timezone.utc
    else:
        tz = mail_tz(msg)
    return dt.replace(tzinfo=tz)


def _error_suffix(count: Optional[int]) -> str:
    if not count:
        return ""
    return f" ({count} error{'s' if count != 1 else ''})"


class CoveSessionParser(Parser):
    """Cove Data Protection / N-able Backup Manager session report: subject '<Backup status> - <device>
    (<customer>)' or a 'Backup status:' line plus a Device row; one 'Data source' object per row of the
    data-source table.
    """

    name = "cove_backup_session"
    product = SOFTWARE
    types = ("Backup", "Restore")
    sender_contains = _SENDER_HINTS
    subject_patterns = (_SUBJECT_RE.pattern,)
    body_markers = ("Backup Manager", "Data sources", "Cove Data Protection")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        sender_hit = bool(_SENDER_RE.search(msg.from_address)) or "backup manager" in msg.from_name.lower()
        if _SUBJECT_RE.match(subj):
            if sender_hit:
                return "Backup Manager sender and session subject"
            if _BODY_HINTS_RE.search((msg.text or "")[:4000]):
                return "session subject and Backup Manager body"
            return None
        text = msg.text or ""
        if ("status" in text[:3000].lower() or "Status" in text[:3000]) and _STATUS_LINE_RE.search(text[:3000]):
            if sender_hit and _BODY_HINTS_RE.search(text):
                return "Backup Manager sender and status line"
            if _COVE_SOURCES_RE.search(text) and _BODY_HINTS_RE.search(text):
                return "status line and Cove data-source table"
        return None

    def parse(self, msg: Message) -> ParseResult:
        subj = msg.subject
        text = msg.text or ""
        sm = _SUBJECT_RE.match(subj)
        kv = self._key_values(msg)

        device = next((kv[k] for k in _DEVICE_KEYS if kv.get(k)), None)
        if not device and sm:
            device = sm.group("device").strip()

        objects = self._sources(msg)

        status = None
        lm = _STATUS_LINE_RE.search(text)
        if lm:
            status = cove_status(lm.group("v"))
        if status is None and sm:
            status = cove_status(sm.group("status"))
        if status is None:
            status = worst_status(*(o.status for o in objects))

        kind = (sm.group("kind").lower() if sm else "backup")
        backup_type = "Restore" if kind in ("restore", "wiederherstellung", "herstel") else "Backup"

        started = next((_parse_dt(kv[k], msg) for k in _START_KEYS if kv.get(k)), None)
        ended = next((_parse_dt(kv[k], msg) for k in _END_KEYS if kv.get(k)), None)

        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=device, overall_status=status,
                           started_at=started, ended_at=ended, objects=objects)

    @staticmethod
    def _key_values(msg: Message) -> dict[str, str]:
        """'Label: value' pairs from two-cell table rows and from text lines (first wins)."""
        kv: dict[str, str] = {}
        tree = msg.html_tree()
        if tree is not None:
            for k, v in label_value_rows(tree):
                k = k.lower().rstrip(":").strip()
                if k and v and len(k) <= 40:
                    kv.setdefault(k, v)
        for m in _KV_LINE_RE.finditer(msg.text or ""):
            kv.setdefault(m.group("k").strip().lower(), m.group("v").strip())
        # Forwarded as text with one cell per line: "Session end" / "2024-05-16 13:05".
        for k, v in label_lines(msg.text or "", _START_KEYS + _END_KEYS + _DEVICE_KEYS).items():
            kv.setdefault(k, v)
        return kv

    @staticmethod
    def _sources(msg: Message) -> list[ParsedObject]:
        tree = msg.html_tree()
        rows = _source_rows_html(tree) if tree is not None else []
        return _source_objects(rows or _source_rows_text(msg.text or ""))


def _is_source_header(header: list[str]) -> bool:
    return bool(header) and header[0] in _SOURCE_HEADERS and any(h in _STATUS_HEADERS for h in header)


def _source_rows_html(tree) -> list[list[str]]:
    """The data-source table (header row lower-cased, then the rows below it) from the HTML."""
    for table in tree.iter("table"):
        trs = list(table.iter("tr"))
        for i, tr in enumerate(trs):
            header = [t.lower() for t in row_texts(tr)]
            if _is_source_header(header):
                return [header] + [row_texts(r) for r in trs[i + 1:]]
    return []


def _source_rows_text(text: str) -> list[list[str]]:
    """The same table from a text rendering: columns split on tabs, runs of spaces or '|'."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        low = [c.lower() for c in split_columns(ln) if c]
        if _is_source_header(low):
            rows = [low]
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    if len(rows) > 1:
                        break
                    continue
                rows.append(split_columns(nxt))
            return rows
    return []


def _source_objects(rows: list[list[str]]) -> list[ParsedObject]:
    """One 'Data source' object per row with a status; a non-zero error count goes into the message."""
    if not rows:
        return []
    header = rows[0]
    st_i = column_index(header, _STATUS_HEADERS)
    err_i = column_index(header, _ERROR_HEADERS)
    out: list[ParsedObject] = []
    for cells in rows[1:]:
        if len(cells) <= st_i or not cells[0]:
            continue
        word = cells[st_i]
        status = cove_status(word)
        if status is None:
            continue
        m = re.match(r"\s*(\d+)", cell_at(cells, err_i))
        errors = int(m.group(1)) if m else None
        message = f"{word}{_error_suffix(errors)}" if status != SUCCESS or errors else ""
        out.append(ParsedObject(name=cells[0], type="Data source", status=status, message=message))
    return out


PARSERS: list[Parser] = [CoveSessionParser()]
