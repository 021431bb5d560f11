"""Hornetsecurity VM Backup (formerly Altaro VM Backup) notification mails.

No public copy of this product's mail template was found (see the corpus
sample's format_source: reconstructed, low confidence), so this parser is
deliberately tolerant and keys on the product names rather than on layout:

* recognised by the product name (``Altaro VM Backup``, ``Hornetsecurity VM
  Backup``, ``VM Backup`` report subjects) in sender, subject or body;
* the host (the job) comes from the subject's trailing ``(HOST)``, else a
  ``Host:`` / ``Hyper-V Host:`` / ``Server:`` line;
* each row of a table whose header names the virtual machine and its
  result/status becomes a ``VM`` object; a notes / details / error column
  gives the message;
* the overall status comes from the subject (``Backup Report - Warning``,
  ``Backup Successful``, ``Backup Failed``) and otherwise from the worst VM.
"""
from __future__ import annotations

import re
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser, status_from_word,
    worst_status, html_label_text,
)

SOFTWARE = "Hornetsecurity VM Backup"

_PRODUCT_RE = re.compile(r"altaro\s+vm\s+backup|hornetsecurity\s+vm\s+backup|altaro", re.IGNORECASE)
_REPORT_WORDS_RE = re.compile(r"report|bericht|rapport|success|successful|warning|fail|error|erfolgreich|warnung|"
                              r"fehlgeschlagen|geslaagd|mislukt|completed", re.IGNORECASE)
_VM_TABLE_RE = re.compile(r"^\s*(?:virtual machine|vm name|virtuelle maschine|virtuele machine)\b.*"
                          r"(?:result|status|ergebnis|resultaat)", re.IGNORECASE | re.MULTILINE)
_VM_LINE_RE = re.compile(r"^\s*(?:virtual machine|vm name|vm|virtuelle maschine|virtuele machine)\s*(?::|\t)\s*(\S.*?)\s*$",
                         re.IGNORECASE | re.MULTILINE)
_RESULT_LINE_RE = re.compile(r"^\s*(?:result|status|ergebnis|resultaat)\s*(?::|\t)\s*(\S.*?)\s*$",
                             re.IGNORECASE | re.MULTILINE)
_DETAIL_LINE_RE = re.compile(r"^\s*(?:error|errors|details?|notes?|message|reason|fehler|hinweise|foutmelding)\s*"
                             r"(?::|\t)\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_HOST_SUBJECT_RE = re.compile(r"\(([^()]+)\)\s*$")
_HOST_LINE_RE = re.compile(r"^\s*(?:Hyper-V\s+Host|VMware\s+Host|Host|Server|Host\s*name)\s*:\s*(\S.*?)\s*$",
                           re.IGNORECASE | re.MULTILINE)
_VM_HEADERS = ("virtual machine", "vm name", "vm", "virtuelle maschine", "virtuele machine", "machine")
_STATUS_HEADERS = ("result", "status", "ergebnis", "resultaat", "state", "outcome")
_MSG_HEADERS = ("notes", "note", "details", "detail", "message", "error", "errors", "warning", "warnings",
                "remarks", "hinweise", "bemerkungen", "opmerkingen", "fehler", "meldung")
_TYPE_WORDS = (
    ("offsite copy", "Offsite Copy"), ("offsite", "Offsite Copy"), ("verification", "Backup Verification"),
    ("sandbox", "Backup Verification"), ("restore", "Restore"), ("seed", "Seed to Disk"),
)


def _cell_text(cell) -> str:
    return re.sub(r"\s+", " ", cell.text_content() or "").strip()




def _status_word(word: str) -> Optional[str]:
    w = word.lower()
    if re.search(r"warn", w):
        return WARNING
    if re.search(r"fail|error|fehl|mislukt|abort|cancel", w):
        return FAILED
    if re.search(r"success|succeeded|completed|ok\b|erfolgreich|geslaagd", w):
        return SUCCESS
    return status_from_word(word)


class HornetsecurityVMBackupParser(Parser):
    name = "hornetsecurity_vm_backup"
    product = SOFTWARE
    types = ("Backup", "Offsite Copy")
    sender_contains = ("altaro", "hornetsecurity")
    subject_patterns = (r"Altaro\s+VM\s+Backup", r"Hornetsecurity\s+VM\s+Backup", r"VM\s+Backup\s*-\s*Backup\s+Report")
    body_markers = ("Altaro VM Backup", "Hornetsecurity VM Backup")
    description = ("Hornetsecurity VM Backup / Altaro VM Backup reports: recognised by product name in sender, "
                   "subject or body; host from the subject '(HOST)' or 'Host:' line, one VM object per "
                   "result-table row.")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        named = bool(re.search(r"(?:altaro|hornetsecurity)\s+vm\s+backup", subj, re.IGNORECASE))
        sender = ("altaro" in msg.from_address or "altaro" in msg.from_name.lower()
                  or "vm backup" in msg.from_name.lower())
        vm_subject = bool(re.search(r"\bVM\s+Backup\b", subj, re.IGNORECASE))
        if not (named or sender or vm_subject):
            return None
        reportish = bool(_REPORT_WORDS_RE.search(subj)) or bool(_VM_TABLE_RE.search(msg.text or ""))
        if not reportish:
            return None
        if named:
            return "subject names Altaro/Hornetsecurity VM Backup and reports a result"
        if sender:
            return "sender is Altaro / VM Backup and the mail reports a result"
        if _PRODUCT_RE.search((msg.text or "")[:5000]):
            return "subject 'VM Backup' and body names Altaro/Hornetsecurity"
        return None

    def parse(self, msg: Message) -> ParseResult:
        subj = msg.subject
        text = msg.text or ""
        host = None
        hm = _HOST_SUBJECT_RE.search(subj)
        if hm:
            host = hm.group(1).strip()
        if not host:
            lm = _HOST_LINE_RE.search(text) or _HOST_LINE_RE.search(html_label_text(msg))
            if lm:
                host = lm.group(1).strip()

        objects = self._objects_from_html(msg) or self._objects_from_text(text) or self._object_from_labels(text)

        # Status from the subject words after the product name.
        tail = re.sub(r"(?:altaro|hornetsecurity)?\s*VM\s+Backup", " ", subj, flags=re.IGNORECASE)
        tail = _HOST_SUBJECT_RE.sub("", tail)
        status = _status_word(tail) if re.search(
            r"warn|fail|error|success|succeeded|completed|erfolgreich|fehl|mislukt|geslaagd", tail, re.IGNORECASE
        ) else None
        if status is None:
            head = re.search(r"^\s*(?:backup|offsite copy)?\s*(success\w*|warning\w*|fail\w*|error\w*)\s*$",
                             text, re.IGNORECASE | re.MULTILINE)
            if head:
                status = _status_word(head.group(1))
        obj_worst = worst_status(*(o.status for o in objects))
        if status is None or (obj_worst is not None and obj_worst != status and
                              {SUCCESS: 0, WARNING: 1, FAILED: 2}[obj_worst] > {SUCCESS: 0, WARNING: 1, FAILED: 2}[status]):
            status = obj_worst or status

        backup_type = "Backup"
        low = subj.lower()
        for word, label in _TYPE_WORDS:
            if word in low:
                backup_type = label
                break

        return ParseResult(
            software=SOFTWARE,
            backup_type=backup_type,
            job_name=host,
            overall_status=status,
            objects=objects,
        )

    @staticmethod
    def _objects_from_html(msg: Message) -> list[ParsedObject]:
        tree = msg.html_tree()
        if tree is None:
            return []
        out: list[ParsedObject] = []
        for table in tree.iter("table"):
            rows = [r for r in table.iter("tr")]
            if not rows:
                continue
            vm_i = st_i = msg_i = None
            start = 0
            for k, hrow in enumerate(rows[:4]):  # a title row may precede the header row
                header = [_cell_text(c).lower().rstrip(":") for c in hrow if c.tag in ("th", "td")]
                vm_i = next((i for i, h in enumerate(header) if h in _VM_HEADERS), None)
                st_i = next((i for i, h in enumerate(header) if h in _STATUS_HEADERS), None)
                if vm_i is not None and st_i is not None:
                    msg_i = next((i for i, h in enumerate(header) if h in _MSG_HEADERS), None)
                    start = k + 1
                    break
            if vm_i is None or st_i is None:
                continue
            for row in rows[start:]:
                cells = [_cell_text(c) for c in row if c.tag in ("th", "td")]
                if len(cells) <= max(vm_i, st_i):
                    continue
                name = cells[vm_i]
                if not name:
                    continue
                status = _status_word(cells[st_i]) if cells[st_i] else None
                message = cells[msg_i] if msg_i is not None and msg_i < len(cells) else ""
                out.append(ParsedObject(name=name, type="VM", status=status, message=message))
            if out:
                break
        return out

    @staticmethod
    def _objects_from_text(text: str) -> list[ParsedObject]:
        """Text-only variant: 'VM: NAME - Result: Success - Notes: ...' style or tab-separated rows."""
        out: list[ParsedObject] = []
        lines = text.splitlines()
        header_idx = None
        for i, ln in enumerate(lines):
            cols = [c.strip().lower() for c in re.split(r"\t+|\s{2,}|\s*\|\s*", ln.strip()) if c.strip()]
            if cols and cols[0] in _VM_HEADERS and any(c in _STATUS_HEADERS for c in cols):
                header_idx = i
                header = cols
                break
        if header_idx is None:
            return out
        st_i = next(i for i, h in enumerate(header) if h in _STATUS_HEADERS)
        msg_i = next((i for i, h in enumerate(header) if h in _MSG_HEADERS), None)
        for ln in lines[header_idx + 1:]:
            if not ln.strip():
                if out:
                    break
                continue
            cols = [c.strip() for c in re.split(r"\t+|\s{2,}|\s*\|\s*", ln.strip())]
            if len(cols) <= st_i:
                break
            status = _status_word(cols[st_i])
            if status is None:
                break
            message = cols[msg_i] if msg_i is not None and msg_i < len(cols) else ""
            out.append(ParsedObject(name=cols[0], type="VM", status=status, message=message))
        return out


    @staticmethod
    def _object_from_labels(text: str) -> list[ParsedObject]:
        """Single-VM notifications: 'Virtual Machine: X' / 'Result: Y' / 'Error: ...' lines."""
        vm = _VM_LINE_RE.search(text)
        res = _RESULT_LINE_RE.search(text)
        if not vm or not res:
            return []
        status = _status_word(res.group(1))
        if status is None:
            return []
        em = _DETAIL_LINE_RE.search(text)
        return [ParsedObject(name=vm.group(1).strip(), type="VM", status=status,
                             message=em.group(1).strip() if em and status != SUCCESS else "")]


PARSERS: list[Parser] = [HornetsecurityVMBackupParser()]
