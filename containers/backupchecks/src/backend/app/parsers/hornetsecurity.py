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
    FAILED, SUCCESS, WARNING, Message, ParsedObject, Parser, ParseResult, first_label, vendor_status,
    worst_status,
)
from .tables import cell_at, column_index, html_label_text, row_texts, split_columns

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


# Result words (lower case), warnings first.
_STATUS_RULES = (
    (WARNING, re.compile(r"warn")),
    (FAILED, re.compile(r"fail|error|fehl|mislukt|abort|cancel")),
    (SUCCESS, re.compile(r"success|succeeded|completed|ok\b|erfolgreich|geslaagd")),
)


class HornetsecurityVMBackupParser(Parser):
    """Hornetsecurity VM Backup / Altaro VM Backup reports: recognised by product name in sender, subject or
    body; host from the subject '(HOST)' or 'Host:' line, one VM object per result-table row.
    """

    name = "hornetsecurity_vm_backup"
    product = SOFTWARE
    types = ("Backup", "Offsite Copy")
    sender_contains = ("altaro", "hornetsecurity")
    subject_patterns = (r"Altaro\s+VM\s+Backup", r"Hornetsecurity\s+VM\s+Backup", r"VM\s+Backup\s*-\s*Backup\s+Report")
    body_markers = ("Altaro VM Backup", "Hornetsecurity VM Backup")

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
        status = vendor_status(tail, _STATUS_RULES, lower=True) if re.search(
            r"warn|fail|error|success|succeeded|completed|erfolgreich|fehl|mislukt|geslaagd", tail, re.IGNORECASE
        ) else None
        if status is None:
            head = re.search(r"^\s*(?:backup|offsite copy)?\s*(success\w*|warning\w*|fail\w*|error\w*)\s*$",
                             text, re.IGNORECASE | re.MULTILINE)
            if head:
                status = vendor_status(head.group(1), _STATUS_RULES, lower=True)
        status = worst_status(status, *(o.status for o in objects))

        return ParseResult(software=SOFTWARE, backup_type=first_label(subj.lower(), _TYPE_WORDS, "Backup"),
                           job_name=host, overall_status=status, objects=objects)

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
                header = [t.lower().rstrip(":") for t in row_texts(hrow)]
                vm_i, st_i = column_index(header, _VM_HEADERS), column_index(header, _STATUS_HEADERS)
                if vm_i is not None and st_i is not None:
                    msg_i = column_index(header, _MSG_HEADERS)
                    start = k + 1
                    break
            if vm_i is None or st_i is None:
                continue
            for row in rows[start:]:
                cells = row_texts(row)
                if len(cells) <= max(vm_i, st_i):
                    continue
                name = cells[vm_i]
                if not name:
                    continue
                status = vendor_status(cells[st_i], _STATUS_RULES, lower=True) if cells[st_i] else None
                message = cell_at(cells, msg_i)
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
            cols = [c.lower() for c in split_columns(ln) if c]
            if cols and cols[0] in _VM_HEADERS and any(c in _STATUS_HEADERS for c in cols):
                header_idx = i
                header = cols
                break
        if header_idx is None:
            return out
        st_i = column_index(header, _STATUS_HEADERS)
        msg_i = column_index(header, _MSG_HEADERS)
        for ln in lines[header_idx + 1:]:
            if not ln.strip():
                if out:
                    break
                continue
            cols = split_columns(ln)
            if len(cols) <= st_i:
                break
            status = vendor_status(cols[st_i], _STATUS_RULES, lower=True)
            if status is None:
                break
            message = cell_at(cols, msg_i)
            out.append(ParsedObject(name=cols[0], type="VM", status=status, message=message))
        return out


    @staticmethod
    def _object_from_labels(text: str) -> list[ParsedObject]:
        """Single-VM notifications: 'Virtual Machine: X' / 'Result: Y' / 'Error: ...' lines."""
        vm = _VM_LINE_RE.search(text)
        res = _RESULT_LINE_RE.search(text)
        if not vm or not res:
            return []
        status = vendor_status(res.group(1), _STATUS_RULES, lower=True)
        if status is None:
            return []
        em = _DETAIL_LINE_RE.search(text)
        return [ParsedObject(name=vm.group(1).strip(), type="VM", status=status,
                             message=em.group(1).strip() if em and status != SUCCESS else "")]


PARSERS: list[Parser] = [HornetsecurityVMBackupParser()]
