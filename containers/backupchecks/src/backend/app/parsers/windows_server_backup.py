"""Microsoft Windows Server Backup: the reports administrators script around it.

Windows Server Backup mails nothing itself; what arrives are scripts:

* the widely copied "Windows Backup Mail Report" PowerShell script (jocha.se
  and its many copies): subject ``Successful Backup on SERVER`` / ``Failed
  Backup on SERVER``, an HTML summary table (``Backup Result:``, ``Start time
  last backup:``, ``End time last backup:``, ``Error Message (if
  applicable):``) and a table of items (``Name``, ``Status``, ``Size``) built
  from ``Get-WBJob`` (volume states ``Completed``, ``Failed``, ...). When the
  script itself fails it sends ``The backup script failed to run!``;
* scheduled tasks that mail the output of ``wbadmin start backup`` /
  ``wbadmin get status`` or the event-log text of the backup events ("The
  backup operation has finished successfully.", "Summary of the backup
  operation: ... The backup of volume (C:) completed successfully."), also in
  German and Dutch, and ``Get-WBSummary`` output (``LastBackupResultHR : 0``).
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser, clean_text, status_from_word,
    status_from_rules, worst_status,
)
from .dates import mail_tz, parse_datetime
from .tables import label_value_rows, row_texts

SOFTWARE = "Microsoft Windows Server Backup"
BACKUP_TYPE = "Windows Server Backup"

_SCRIPT_SUBJECT_RE = re.compile(r"^(?P<result>successful|success|failed|failure|warning)\s+backup\s+on\s+"
                                r"(?P<host>[^\s]+)\s*$", re.IGNORECASE)
_REPORT_FOR_RE = re.compile(r"backup report for\s+(?P<host>[A-Za-z0-9][\w.-]*)", re.IGNORECASE)

# wbadmin / event log sentences (EN, DE, NL) by the outcome they report, worst first.
_OP_RULES = (
    (FAILED, re.compile(
        r"the backup operation (?:that started at .{0,80}? )?(?:has failed|failed|stopped before completing)"
        r"|der sicherungsvorgang .{0,80}?(?:ist fehlgeschlagen|wurde vor dem abschluss beendet)"
        r"|de back-?upbewerking .{0,80}?(?:is mislukt|is gestopt voordat)",
        re.IGNORECASE)),
    (WARNING, re.compile(
        r"the backup operation (?:completed|has completed|finished) with (?:warnings|errors)"
        r"|der sicherungsvorgang wurde mit (?:warnungen|fehlern) abgeschlossen"
        r"|de back-?upbewerking is voltooid met (?:waarschuwingen|fouten)",
        re.IGNORECASE)),
    (SUCCESS, re.compile(
        r"the backup operation (?:successfully completed|has finished successfully|completed successfully|"
        r"has completed\.)"
        r"|der sicherungsvorgang wurde erfolgreich (?:abgeschlossen|beendet)"
        r"|de back-?upbewerking is (?:voltooid|geslaagd|met succes voltooid)",
        re.IGNORECASE)),
)
_VOLUME_RE = re.compile(
    r"(?:the )?backup of (?:the )?volume\s+\(?(?P<en>[^()\n]+?)\)?\s+(?P<en_res>completed successfully|"
    r"successfully completed|failed|completed with warnings|was stopped|did not complete)"
    r"|die sicherung des volumes?\s+\(?(?P<de>[^()\n]+?)\)?\s+(?P<de_res>wurde erfolgreich abgeschlossen|"
    r"ist fehlgeschlagen|wurde mit warnungen abgeschlossen)"
    r"|de back-?up van volume\s+\(?(?P<nl>[^()\n]+?)\)?\s+(?P<nl_res>is voltooid|is geslaagd|is mislukt|"
    r"is voltooid met waarschuwingen)",
    re.IGNORECASE)
# Event log texts specific enough on their own (Microsoft-Windows-Backup events 4 and 5/8/9/...).
_EVENT_ONLY_RE = re.compile(
    r"the backup operation has finished successfully"
    r"|the backup operation that started at\s*['‘’\"]?[^'’\"\n]{6,60}['’\"]?\s*has failed", re.IGNORECASE)
_HR_RE = re.compile(r"LastBackupResultHR\s*:\s*(?P<hr>-?\w+)", re.IGNORECASE)
# Every sentence or field this parser reads contains one of these (cheap pre-check).
_CHEAP_KEYS = ("backup operation", "sicherungsvorgang", "back-upbewerking", "backupbewerking",
               "lastbackupresulthr", "backup of volume", "sicherung des volume", "back-up van volume")
_WB_MARKERS = ("windows server backup", "wbadmin", "windows-sicherung", "windows server-back-up",
               "get-wbsummary", "lastbackupresulthr", "summary of the backup operation",
               "zusammenfassung des sicherungsvorgangs", "samenvatting van de back-upbewerking")


def _label_values_html(tree) -> dict:
    """'Label:' -> value from two-cell rows."""
    out: dict = {}
    for label, value in label_value_rows(tree):
        label = label.rstrip(":").lower()
        if label and label not in out:
            out[label] = value
    return out


def _label_values_text(text: str) -> dict:
    out: dict = {}
    lines = [ln.strip() for ln in text.split("\n")]
    for i, ln in enumerate(lines):
        m = re.match(r"^(?P<label>[^:\t]{3,60}):\s*(?P<value>.*)$", ln)
        if not m:
            continue
        label = m.group("label").strip().lower()
        value = m.group("value").strip()
        if not value and i + 1 < len(lines) and not re.match(r"^[^:\t]{3,60}:\s*$", lines[i + 1] or ""):
            value = lines[i + 1]
        out.setdefault(label, value)
    return out


def _item_status(word: str) -> Optional[str]:
    w = (word or "").strip().lower()
    if w in ("completed", "complete", "succeeded", "success", "successful"):
        return SUCCESS
    if w in ("completedwithwarnings", "completed with warnings", "partial", "partiallysucceeded"):
        return WARNING
    if w in ("failed", "error", "aborted", "stopped", "cancelled", "canceled"):
        return FAILED
    return status_from_word(word)


def _host_from(msg: Message) -> Optional[str]:
    m = _SCRIPT_SUBJECT_RE.match(msg.subject or "")
    if m:
        return m.group("host")
    m = _REPORT_FOR_RE.search(msg.text[:2000])
    if m:
        return m.group("host")
    m = re.search(r"(?:\bon|\bfor|\bfrom|\bauf|\bop|\bvan|[-:|])\s+(?P<host>[A-Za-z0-9][\w.-]{0,62})\s*\)?\s*$",
                  msg.subject or "", re.IGNORECASE)
    if m and not status_from_word(m.group("host")):
        return m.group("host")
    m = re.search(r"^\s*(?:computer(?:name)?|server|host(?:name)?|machine)\s*[:=]\s*(?P<host>[\w.-]+)",
                  msg.text, re.IGNORECASE | re.MULTILINE)
    if m:
        return m.group("host")
    return None


class WsbScriptReportParser(Parser):
    """'Backup Result:' with 'Start time last backup:' or 'Last Successful Backup:' in the body, or the subject
    'Successful/Failed Backup on SERVER' with such a body or the script's own failure notice.
    """

    name = "windows_server_backup_script"
    product = "Microsoft Windows Server Backup (Windows Backup Mail Report script)"
    types = (BACKUP_TYPE,)
    subject_patterns = (_SCRIPT_SUBJECT_RE.pattern,)
    body_markers = ("Backup Result:", "Start time last backup:", "Last Successful Backup:",
                    "The backup script failed to run!")

    def matches(self, msg: Message) -> Optional[str]:
        low = msg.text[:5000].lower()
        if "backup result:" in low and ("start time last backup" in low or "last successful backup" in low):
            return "Windows Backup Mail Report summary ('Backup Result:' table)"
        if _SCRIPT_SUBJECT_RE.match(msg.subject or "") and "the backup script failed to run" in low:
            return "Windows Backup Mail Report script failure notice"
        return None

    def parse(self, msg: Message) -> ParseResult:
        tz = mail_tz(msg)
        tree = msg.html_tree()
        fields = _label_values_html(tree) if tree is not None else {}
        if "backup result" not in fields:
            fields = {**_label_values_text(msg.text), **fields}
        objects = _objects_from_html(tree) if tree is not None else _objects_from_text(msg.text)
        error_msg = clean_text(fields.get("error message (if applicable)", ""))
        result_word = fields.get("backup result", "")
        status = _item_status(result_word) if result_word else None
        sm = _SCRIPT_SUBJECT_RE.match(msg.subject or "")
        if status is None and sm:
            status = _item_status(sm.group("result"))
        if status is None and "the backup script failed to run" in msg.text.lower():
            status = FAILED
        if status is None:
            status = worst_status(*(o.status for o in objects))
        if error_msg:
            for o in objects:
                if o.status in (FAILED, WARNING) and not o.message:
                    o.message = error_msg
        started = parse_datetime(fields.get("start time last backup"), default_tz=tz, near=msg.date)
        ended = parse_datetime(fields.get("end time last backup"), default_tz=tz, near=msg.date)
        if started and ended and ended < started:
            ended = ended + timedelta(days=1) if (started - ended) < timedelta(days=1) else ended
        reason = ""
        if error_msg and status == FAILED:
            reason = f"backup failed: {error_msg[:200]}"
        return ParseResult(software=SOFTWARE, backup_type=BACKUP_TYPE, job_name=_host_from(msg),
                           overall_status=status, started_at=started, ended_at=ended, objects=objects,
                           reason=reason)


def _objects_from_html(tree) -> list[ParsedObject]:
    """Items (volumes) from every table with a Name and a Status column."""
    objects: list[ParsedObject] = []
    for table in tree.iter("table"):
        rows = list(table.iter("tr"))
        # The header row is usually the first; in a table rebuilt from a text
        # rendering other rows may precede it.
        hi = next((x for x, r in enumerate(rows[:12]) if {"name", "status"} <= {t.lower() for t in row_texts(r)}),
                  None)
        if hi is None:
            continue
        head = [t.lower() for t in row_texts(rows[hi])]
        ni, si = head.index("name"), head.index("status")
        for r in rows[hi + 1:]:
            cells = row_texts(r)
            if len(cells) > max(ni, si) and cells[ni]:
                objects.append(ParsedObject(cells[ni], "Volume", _item_status(cells[si]), ""))
    return objects


def _objects_from_text(text: str) -> list[ParsedObject]:
    """Items from a text rendering of the items table ("C:  Completed  118 GB")."""
    objects: list[ParsedObject] = []
    lines = [ln.strip() for ln in text.split("\n")]
    try:
        start = next(i for i, ln in enumerate(lines) if re.match(r"^name\s+status\b", ln, re.IGNORECASE))
    except StopIteration:
        return objects
    for ln in lines[start + 1:]:
        if not ln:
            continue
        m = re.match(r"^(?P<name>.+?)\s+(?P<status>Completed|CompletedWithWarnings|Failed|Unknown|InProgress|"
                     r"Succeeded|Success|Error)\b", ln, re.IGNORECASE)
        if not m:
            break
        objects.append(ParsedObject(m.group("name").strip(), "Volume", _item_status(m.group("status")), ""))
    return objects


class WbadminOutputParser(Parser):
    """Text of wbadmin or the Windows Server Backup event log in the body ('The backup operation successfully
    completed', 'Summary of the backup operation', 'LastBackupResultHR'; English, German, Dutch) together with
    a mention of Windows Server Backup / wbadmin or per-volume results.
    """

    name = "windows_server_backup_wbadmin"
    product = "Microsoft Windows Server Backup (wbadmin / event log output)"
    types = (BACKUP_TYPE,)
    body_markers = _WB_MARKERS

    def matches(self, msg: Message) -> Optional[str]:
        text = msg.text[:20000]
        low = text.lower()
        if not any(k in low for k in _CHEAP_KEYS):
            return None
        marker = next((m for m in _WB_MARKERS if m in low), None)
        # the first sentence found, success first (the reason quotes it)
        op = next((m for m in (rx.search(text) for _, rx in reversed(_OP_RULES)) if m), None)
        if _HR_RE.search(text) and marker:
            return "Get-WBSummary output (LastBackupResultHR)"
        if op and (marker or _VOLUME_RE.search(text) or "windows" in (msg.subject or "").lower()):
            return f"Windows Server Backup result text ('{op.group(0)[:60]}')"
        ev = _EVENT_ONLY_RE.search(text)
        if ev:
            return f"Windows Server Backup event text ('{ev.group(0)[:60]}')"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text
        tz = mail_tz(msg)
        objects: list[ParsedObject] = []
        seen = set()
        for m in _VOLUME_RE.finditer(text):
            name = clean_text(m.group("en") or m.group("de") or m.group("nl"))
            res = (m.group("en_res") or m.group("de_res") or m.group("nl_res") or "").lower()
            if "warn" in res:
                st = WARNING
            elif any(w in res for w in ("fail", "fehl", "mislukt", "stopped", "not complete")):
                st = FAILED
            else:
                st = SUCCESS
            if name.lower() in seen:
                continue
            seen.add(name.lower())
            objects.append(ParsedObject(name, "Volume", st, ""))
        status = status_from_rules(text, _OP_RULES)
        hr = _HR_RE.search(text)
        if status is None and hr:
            status = SUCCESS if hr.group("hr") in ("0", "0x0", "0x00000000") else FAILED
        status = worst_status(status, *(o.status for o in objects)) if objects else status
        if status is None:
            status = status_from_word(msg.subject)
        started = None
        m = re.search(r"(?:backup operation that started at|started at|gestartet um|gestart om)\s*['‘’\"]?"
                      r"(?P<t>[^'’\"\n]{6,60})", text, re.IGNORECASE)
        if m:
            started = parse_datetime(m.group("t"), default_tz=tz, near=msg.date)
        errors = re.findall(r"(?:error code|fehlercode|foutcode)\s*['\"]?(0x[0-9a-fA-F]{8})['\"]?[^\n]*", text,
                            re.IGNORECASE)
        reason = f"error code {errors[0]}" if errors else ""
        return ParseResult(software=SOFTWARE, backup_type=BACKUP_TYPE, job_name=_host_from(msg),
                           overall_status=status, started_at=started, objects=objects, reason=reason)


PARSERS: list[Parser] = [WsbScriptReportParser(), WbadminOutputParser()]
