"""Duplicati result mails (send-mail module), text and JSON formats.

Format (public references: the dupReport project, which parses these mails,
and Duplicati's send-mail defaults):

* default subject ``Duplicati %OPERATIONNAME% report for %backup-name%``, e.g.
  ``Duplicati Backup report for Docs-to-B2``; many installations append
  `` - %PARSEDRESULT%`` or prefix the machine name, so the subject is only
  used for the job name when the body does not carry it;
* text body (``--send-mail-body=%RESULT%``): ``Key: value`` lines at column 0
  (``DeletedFiles: 0`` ... ``MainOperation: Backup``, ``ParsedResult:
  Success|Warning|Error|Fatal``, ``BeginTime: 5/14/2024 2:00:00 AM
  (1715644800)``, ``EndTime: ...``), nested result blocks (``CompactResults:``,
  ``DeleteResults:``, ``TestResults:`` ...) indented below them with their own
  ``ParsedResult`` lines, which must not be mistaken for the top-level one;
* the current text format (Duplicati's ``DuplicatiFormatSerializer`` and
  ``PrintSerializeObject``) lists the run's messages at column 0 as
  ``LimitedMessages: [``, ``LimitedWarnings: [``, ``LimitedErrors: [`` blocks
  (older releases: ``Messages`` / ``Warnings`` / ``Errors``), one indented
  entry per line, ``<time> - [<Level>-<Tag>-<Id>]: <message>``, entries
  separated by commas, a closing ``]`` at column 0, at most 10 entries and
  ``...``; an exception's type and message may follow an entry on its own line;
* a run that throws has ``Failed: <message>`` / ``Details: <stack>`` first
  (some templates and relays write ``Fatal: <message>``), then the result;
* with log lines wanted, a ``Log data:`` block closes the text: one log entry
  per line in the same ``<time> - [<Level>-...]: <message>`` shape;
* JSON body (``--send-mail-result-output-format=Json``; the same document
  ``--send-http-url`` posts, which relays forward as mail) starting with
  ``{"Data": {...}, "Extra": {"OperationName": ..., "backup-name": ...},
  "LogLines": [...], "Exception": "..."}``; ``Data`` holds ``ParsedResult``
  and the ``Messages`` / ``Warnings`` / ``Errors`` lists (``Limited...`` in
  some releases), ``Data`` is null and ``Exception`` set when the run threw.

ParsedResult Success → Success, Warning → Warning, Error / Fatal → Failed; a
report without one that threw (``Failed:`` / ``Fatal:`` / ``Exception``) is a
failure. The run's message (``message``) is the report's own words: the
exception message, else the first errors (for a failure) or warnings (for a
warning) from the lists, else from the log lines.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParseResult, Parser, clean_text, status_from_word, worst_status,
)
from .dates import mail_tz, strptime_any

SOFTWARE = "Duplicati"

_SUBJECT_RE = re.compile(r"\bDuplicati\s+(?P<op>[A-Za-z]+)\s+(?:report|bericht|rapport|rapporto|informe|raport)\s+"
                         r"(?:for|für|fuer|voor|pour|per|para|dla)\s+(?P<name>.+?)\s*"
                         r"(?:\s[-–:]\s*(?:Success|Warning|Error|Fatal|Unknown|Failed)\s*)?$", re.IGNORECASE)
_CUSTOM_SUBJECT_RE = re.compile(r"\b(?:report|backup|sicherung)\s+(?:for|of|für|von|voor|van)\s+(?P<name>.+?)"
                                r"(?:\s*[-–:]\s*(?:Success|Warning|Error|Fatal|Failed|Unknown)\s*)?$", re.IGNORECASE)
_TOP_FIELD_RE = re.compile(r"^(?P<k>ParsedResult|MainOperation|BeginTime|EndTime|Failed|Fatal|Version)\s*:\s*(?P<v>.*?)\s*$",
                           re.MULTILINE)
# A top-level message list: "LimitedErrors: [" at column 0 up to its "]" at column 0 (or the end).
_LIST_RE = re.compile(r"^(?:Limited)?(?P<k>Messages|Warnings|Errors)\s*:\s*\[(?P<body>.*?)(?:^\]|\Z)",
                      re.MULTILINE | re.DOTALL)
# One log entry: "2024-05-14 02:10:00 +02 - [Error-Duplicati.Library.Main.Controller-FailedOperation]: text"
_LOG_ENTRY_RE = re.compile(r"^[ \t]*(?:\d[\d/.: -]*?(?:\s*[AP]M)?(?:\s*[+-]\d{1,2}(?::?\d{2})?)?\s+-\s+)?"
                           r"\[(?P<level>Error|Warning|Information|Verbose|Profiling|DryRun|ExplicitOnly)-[^\]]*\]:\s*"
                           r"(?P<text>.*?)\s*,?\s*$", re.MULTILINE)
_LOG_DATA_RE = re.compile(r"^Log data:\s*$", re.MULTILINE)
_MAX_MESSAGES = 3
_RESULT_MARKER_RE = re.compile(r"^(?:ParsedResult|MainOperation|LimitedErrors|LimitedWarnings)\s*:", re.MULTILINE)
_EPOCH_RE = re.compile(r"\((\d{9,11})\)")
_RESULT_MAP = {"success": SUCCESS, "warning": WARNING, "error": FAILED, "fatal": FAILED, "failed": FAILED,
               "failure": FAILED}
_OPERATION_TYPES = {"backup": "Backup", "restore": "Restore", "compact": "Compact", "test": "Test",
                    "verify": "Test", "delete": "Delete", "repair": "Repair", "purge": "Purge",
                    "list": "List", "vacuum": "Vacuum"}
_DT_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S",
               "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S")


def _parse_time(value: str, msg: Message) -> Optional[datetime]:
    if not value:
        return None
    if re.search(r"\(-\d+\)|\b0001\b", value):
        return None  # an unset time ("1/1/0001 12:00:00 AM (-62135596800)")
    m = _EPOCH_RE.search(value)
    if m:
        return datetime.fromtimestamp(int(m.group(1)), tz=timezone.utc)
    v = value.strip()
    try:  # JSON format: ISO 8601 with offset, e.g. 2024-05-14T02:00:00.123+02:00 / ...Z
        iso = re.sub(r"(\.\d{6})\d+", r"\1", v.replace("Z", "+00:00"))
        dt = datetime.fromisoformat(iso)
        return dt.replace(tzinfo=mail_tz(msg)) if dt.tzinfo is None else dt
    except ValueError:
        pass
    dt = strptime_any(re.sub(r"\s*\(.*$", "", v), _DT_FORMATS)
    return dt.replace(tzinfo=mail_tz(msg)) if dt is not None else None


def _map_result(word: Optional[str]) -> Optional[str]:
    if not word:
        return None
    w = word.strip().lower()
    if w in _RESULT_MAP:
        return _RESULT_MAP[w]
    if w == "unknown":
        return None
    return status_from_word(w)


def _entry_texts(entries, level: Optional[str] = None) -> list[str]:
    """The message part of log entries ("<time> - [<Level>-...]: <text>"), of one level when given;
    an entry without that shape is taken whole (its first line)."""
    found: list[str] = []
    for entry in entries:
        entry = str(entry or "").strip()
        if not entry:
            continue
        m = _LOG_ENTRY_RE.match(entry.split("\n", 1)[0])
        if m:
            if level and m.group("level") != level:
                continue
            text = m.group("text")
        elif level:
            continue
        else:
            text = entry.split("\n", 1)[0].rstrip(",")
        text = clean_text(text)
        if text and text not in found:
            found.append(text)
    return found


def _list_entries(body: str) -> list[str]:
    """The entries of a text-format list block: each starts on an indented line (a line of its own
    at column 0, such as an exception's type and message, continues the entry before it)."""
    entries: list[str] = []
    for line in body.split("\n"):
        if not line.strip() or line.strip() == "...":
            continue
        if line[:1] in (" ", "\t") or not entries:
            entries.append(line.strip().rstrip(","))
        else:
            entries[-1] += "\n" + line.strip()
    return entries


def _joined(texts: list[str]) -> str:
    return "; ".join(texts[:_MAX_MESSAGES])


def _text_lists(text: str) -> dict[str, list[str]]:
    """The top-level Messages / Warnings / Errors lists of the text format (Limited... or not)."""
    lists: dict[str, list[str]] = {}
    for m in _LIST_RE.finditer(text):
        lists.setdefault(m.group("k"), _list_entries(m.group("body")))
    return lists


def _log_data(text: str) -> list[str]:
    """The lines of the text format's closing 'Log data:' block."""
    m = _LOG_DATA_RE.search(text)
    return text[m.end():].split("\n") if m else []


def _run_message(status: Optional[str], thrown: str, lists: dict, log_lines: list) -> str:
    """The report's own words about a failure or warning (see the module docstring)."""
    if status not in (FAILED, WARNING) and not thrown:
        return ""
    if thrown:
        return clean_text(thrown.split("\n", 1)[0])
    if status == FAILED:
        errors = _entry_texts(lists.get("Errors") or []) or _entry_texts(log_lines, "Error")
        if errors:
            return _joined(errors)
    warnings = _entry_texts(lists.get("Warnings") or []) or _entry_texts(log_lines, "Warning")
    return _joined(warnings)


# Where a JSON report starts below a banner line or a forwarder's note (mail gateways add one): the first
# line that is just "{" (pretty-printed) or that opens the report's "Data" key (Duplicati's compact JSON).
_JSON_START_RE = re.compile(r'^[ \t]*\{[ \t]*$|^[ \t]*\{\s*"(?:Data|Extra)"\s*:', re.MULTILINE)


def _json_start(text: str) -> Optional[int]:
    m = _JSON_START_RE.search(text, 0, 2400)
    return m.start() if m else None


def _json_payload(text: str) -> Optional[dict]:
    s = text.strip()
    if not s.startswith("{"):
        start_at = _json_start(s)
        if start_at is None:
            return None
        s = s[start_at:].strip()
    start = 0
    try:
        data, _ = json.JSONDecoder(strict=False).raw_decode(s)
    except ValueError:
        # trailing signature or footer after the JSON object: cut at the last closing brace
        end = s.rfind("}")
        try:
            data = json.loads(s[start:end + 1], strict=False)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


class DuplicatiReportParser(Parser):
    """Duplicati send-mail result: subject 'Duplicati <Operation> report for <backup name>'; body 'ParsedResult:
    Success|Warning|Error|Fatal' (text, top-level lines) or the JSON result format; 'Failed:' bodies are
    failures.
    """

    name = "duplicati_report"
    product = SOFTWARE
    types = ("Backup", "Restore", "Compact", "Test")
    sender_contains = ("duplicati",)
    subject_patterns = (_SUBJECT_RE.pattern,)
    body_markers = ("ParsedResult:", '"ParsedResult"', "MainOperation:")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        if _SUBJECT_RE.search(subj):
            return "subject 'Duplicati ... report for ...'"
        text = msg.text or ""
        if "duplicati" in subj.lower() or "duplicati" in msg.from_address:
            if _RESULT_MARKER_RE.search(text) or '"ParsedResult"' in text or re.search(r"^Failed:", text, re.M):
                return "Duplicati sender/subject and result fields in body"
        if text[:200].lstrip()[:1] == "{" and text.find('"ParsedResult"', 0, 20000) >= 0 and \
                text.find('"MainOperation"', 0, 20000) >= 0:
            return "Duplicati JSON result body"
        at = _json_start(text)
        if at is not None and re.match(r'\s*\{\s*"Data"\s*:', text[at:at + 400]) and '"LogLines"' in text and '"Extra"' in text and \
                ("Duplicati." in text or '"backup-name"' in text):
            return "Duplicati JSON report ({\"Data\": ..., \"Extra\": ..., \"LogLines\": ...})"
        return None

    def parse(self, msg: Message) -> ParseResult:
        subj = msg.subject
        text = (msg.text or "").replace("\r\n", "\n")
        sm = _SUBJECT_RE.search(subj)
        job = sm.group("name").strip() if sm else None
        if job is None:
            # customised subject, e.g. "[Duplicati] Backup of Docs: Warning"
            cm = _CUSTOM_SUBJECT_RE.search(subj)
            job = cm.group("name").strip() if cm else None
        op_word = sm.group("op") if sm else None

        status = None
        started = ended = None
        message = ""
        data = _json_payload(text)
        if data is not None and ("Data" in data or "Extra" in data):
            d = data.get("Data") if isinstance(data.get("Data"), dict) else {}
            extra = data.get("Extra") if isinstance(data.get("Extra"), dict) else {}
            status = _map_result(d.get("ParsedResult")) or _map_result(extra.get("ParsedResult"))
            op_word = d.get("MainOperation") or extra.get("OperationName") or op_word
            job = extra.get("backup-name") or job
            started = _parse_time(str(d.get("BeginTime") or ""), msg)
            ended = _parse_time(str(d.get("EndTime") or ""), msg)
            # The run threw: the top-level "Exception" (current releases), or the exception itself as
            # "Data" (ClassName / Message, older releases).
            thrown = str(data.get("Exception") or d.get("Exception") or (d.get("Message") if "ClassName" in d else "")
                         or "")
            if thrown and re.match(r"^[\w.]+(?:Exception|Error)\s*:\s*", thrown):
                thrown = re.sub(r"^[\w.]+(?:Exception|Error)\s*:\s*", "", thrown)
            if status is None and (thrown or d.get("Message") or not d.get("ParsedResult")):
                status = FAILED
            lists = {k: (d.get(k) or d.get("Limited" + k) or []) for k in ("Messages", "Warnings", "Errors")}
            lists = {k: v for k, v in lists.items() if isinstance(v, list)}
            log_lines = data.get("LogLines") if isinstance(data.get("LogLines"), list) else []
            message = _run_message(status, thrown, lists, log_lines)
        else:
            # Only column-0 lines are top-level.  Nested result blocks (DeleteResults, TestResults,
            # ... before the top-level ParsedResult; BackendStatistics after it, with its own
            # "ParsedResult: Success" and an unset "EndTime: 1/1/0001 ...") are indented.  When the
            # indentation was lost (HTML rendering, a forward) they all look top-level: the first
            # MainOperation is still the top-level one, the top-level result is the worst of them
            # (a nested result never hides a failure of the run) and its times span the others.
            seen: dict[str, list[str]] = {}
            for m in _TOP_FIELD_RE.finditer(text):
                seen.setdefault(m.group("k"), []).append(m.group("v"))
            fields = {k: (v[0] if k in ("MainOperation", "Failed", "Fatal") else v[-1]) for k, v in seen.items()}
            status = worst_status(*(_map_result(v) for v in seen.get("ParsedResult", [])))
            if fields.get("MainOperation"):
                op_word = fields["MainOperation"]
            thrown = fields.get("Failed") or fields.get("Fatal") or ""
            if status is None and ("Failed" in fields or "Fatal" in fields):
                status = FAILED
            begins = [t for t in (_parse_time(v, msg) for v in seen.get("BeginTime", [])) if t is not None]
            ends = [t for t in (_parse_time(v, msg) for v in seen.get("EndTime", [])) if t is not None]
            started = min(begins) if begins else None
            ended = max(ends) if ends else None
            log_data = _log_data(text)
            report = text[: _LOG_DATA_RE.search(text).start()] if log_data else text
            message = _run_message(status, thrown, _text_lists(report), log_data)

        if status is None and sm:
            tail = re.search(r"\s[-–:]\s*(Success|Warning|Error|Fatal|Failed)\s*$", subj, re.IGNORECASE)
            if tail:
                status = _map_result(tail.group(1))
                if status in (FAILED, WARNING) and not message:
                    message = _run_message(status, "", _text_lists(text), _log_data(text))

        backup_type = _OPERATION_TYPES.get((op_word or "backup").strip().lower(), (op_word or "Backup").strip())
        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=job, overall_status=status,
                           started_at=started, ended_at=ended, objects=[], message=message)


PARSERS: list[Parser] = [DuplicatiReportParser()]
