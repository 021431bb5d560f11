"""Veeam: Backup & Replication job session reports, Veeam Agents, Backup for Microsoft 365.

All of these mail the same HTML "session report" layout (VBR's own notification,
reused by the agents, VB365 and community scripts such as vee-mail):

* a header row with ``<Kind> job: <Job name> (<run kind>)`` and, beside it, the
  session result (``Success`` / ``Warning`` / ``Failed``) with a description
  line underneath (``Created by ...``, ``Veeam Agent for Linux``, ``3 of 3 VMs
  processed``);
* a session date (``Tuesday, March 5, 2024 10:00:14 PM``) and a summary grid of
  label/value cells (Success n, Start time, End time, Duration, ...);
* "Details" and a table with a header row (``Name``/``VM name``, [``Type``],
  ``Status``, times, sizes, ``Details``) and one row per processed object;
  vee-mail adds a row of log lines. An agent backup policy's table lists its
  computers; its name column may read ``Computer name`` / ``Hostname`` and its
  status column ``Result`` / ``State``, and a ``Backup policy:`` header over
  ``N of M computers processed`` is an agent backup policy.

The layout is read with lxml (class names are not relied on: Outlook rewrites
them to ``x_...`` when forwarding). When only a text rendering survives (a
forward as plain text), the same structure is read from the lines. Subjects
default to ``[Result] Job name (N objects) n warnings/failed``; they are used
as a fallback only.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

from .base import Message, ParsedObject, ParseResult, Parser, clean_text, status_from_word, worst_status
from .dates import combine_date_time, parse_datetime
from .tables import row_cells

VBR = "Veeam Backup & Replication"
VAW = "Veeam Agent for Microsoft Windows"
VAL = "Veeam Agent for Linux"
VAM = "Veeam Agent for Mac"
VB365 = "Veeam Backup for Microsoft 365"

# "[Success] Daily VM Backup (3 objects)", "[Warning] X (2 VMs) 1 warning", "[Failed] X (Retry 1)"
_SUBJECT_RE = re.compile(
    r"^\[(?P<status>success|successful|warning|warnings|failed|failure|error|erfolgreich|warnung|"
    r"fehler|fehlgeschlagen|geslaagd|waarschuwing|mislukt|succes|avertissement|échec|echec|réussite)\]\s*"
    r"(?P<rest>.+)$",
    re.IGNORECASE,
)
_SUBJECT_COUNT_RE = re.compile(
    r"\s*\((?P<n>\d+)\s+(?:objects?|vms?|machines?|computers?|tapes?|shares?|servers?|items?|"
    r"hosts?|files?|workloads?|instances?|objekte?|objecten|machines)\)", re.IGNORECASE)

# "Backup job: X", "Backup Copy job: X", "Agent backup policy: X", "SureBackup job: X"
_KIND_WORDS = r"(?:job|policy|session|auftrag|richtlinie|taak|beleid|tâche|travail)"
_HEADER_RE = re.compile(
    r"^\s*(?P<kind>[A-Za-z][\w &/+\-]{0,60}?\s*" + _KIND_WORDS + r")\s*:\s*(?P<name>\S.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# Trailing run kind in the header: "(Incremental)", "(Full)", "(Retry 1)", ...; vee-mail 0.6.4 writes
# "(Incremental)" / "(Full)" or, when the agent's session does not say (v13 agents), an empty "()".
_RUN_KIND_RE = re.compile(
    r"\s*\((?:|\s+|incremental|full|active full|synthetic full|reverse(?:d)? incremental|increment|"
    r"retry\s*\d*|health check|compact|transform|inkrementell|vollständig|volledig|incrementeel|"
    r"periodic|immediate|retention|sync|transaction log|log)\)\s*$",
    re.IGNORECASE,
)
# vee-mail (github.com/grufocom/vee-mail) 0.6.x subject, RFC 2047-encoded with a trailing newline:
# "[Failed] WEB02 - Tuesday, 04 March 2025 01:30:02 (nightly-files - Incremental)", "(<job>)" without
# a backup type. The session start is in the server's locale, so only its clock time is relied on.
_VEEMAIL_SUBJECT_RE = re.compile(
    r"^\[(?:success|warning|failed)\]\s+\S+\s+-\s+.*?\d{1,2}:\d{2}:\d{2}\s+"
    r"\((?P<job>.+?)(?:\s+-\s+(?:full|incremental))?\)\s*$", re.IGNORECASE)
_SIGNATURE_WORDS = ("start time", "end time", "duration")
# The session grid's counters: "Success 3", "Warning 0", "Error 1" (cells on lines, maybe with a
# blank line between them as Outlook renders Word paragraphs, or tab-separated).
_COUNTERS_RE = re.compile(r"^[ \t]*(success|warning|error)[ \t]*(?:\n[ \t]*){0,2}\d+\b", re.MULTILINE)
_AGENT_PRODUCTS = (
    ("veeam agent for microsoft windows", VAW), ("veeam agent for windows", VAW),
    ("veeam endpoint backup", VAW), ("veeam agent for linux", VAL), ("veeam agent for mac", VAM),
    ("veeam backup for microsoft 365", VB365), ("veeam backup for microsoft office 365", VB365),
    ("veeam backup for office 365", VB365),
)
_NAME_HEADERS = ("name", "vm name", "vm", "object", "object name", "machine", "computer", "host",
                 "server", "share", "file share", "backup", "source", "naam", "objekt", "objectnaam",
                 "computer name", "host name", "hostname", "machine name", "server name", "endpoint", "workstation")
# The object table's status column; agent backup policy reports (computers) may head it otherwise.
_STATUS_HEADERS = ("status", "result", "state", "last result", "session result", "job status")
_STATUS_WORDS = {"success", "warning", "error", "failed", "pending", "in progress", "none", "skipped",
                 "successful", "succeeded", "erfolgreich", "warnung", "fehler", "geslaagd",
                 "waarschuwing", "mislukt", "fout"}
_CREATED_BY_RE = re.compile(r"^\s*(?:created by|erstellt von|aangemaakt door|gemaakt door|créé par)\b", re.I)
_LOG_LINE_RE = re.compile(r"^\s*\[[^\]]*\]\s*(?:<[^>]*>\s*)?[\w.\-]*\s*\|\s*(?P<level>[A-Z]+)\s*\|\s*(?P<msg>.*)$")


# (pattern in the header kind, backup type, default object type), first match wins. The pattern None
# stands for the agents: "agent" in the kind or an agent product (an agent policy is "Agent Backup Policy").
_KIND_TYPES = (
    (r"surebackup|sure backup", "SureBackup Job", "VM"),
    (r"files? to tape", "File to Tape Job", "File"),
    (r"tape", "Tape Job", "Backup"),
    (r"configuration", "Configuration Backup", "Server"),
    (r"cdp", "CDP Policy", "VM"),
    (None, "Agent Backup Job", "Computer"),
    (r"object storage", "Object Storage Backup Job", "Object Storage"),
    (r"(?=.*copy).*(?:file|nas|share|unstructured)", "File Share Backup Copy Job", "File Share"),
    (r"file|nas|share|unstructured", "File Share Backup Job", "File Share"),
    (r"log", "Log Backup Job", "VM"),
    (r"(?=.*copy).*vm", "VM Copy Job", "VM"),
    (r"copy", "Backup Copy Job", "VM"),
    (r"replica", "Replication Job", "VM"),
)


def _kind_rule(k: str, software: str) -> Optional[tuple[str, str]]:
    for rx, backup_type, obj_type in _KIND_TYPES:
        if rx is None:
            if "agent" in k or software in (VAW, VAL, VAM):
                return ("Agent Backup Policy" if "policy" in k else backup_type), obj_type
        elif re.search(rx, k):
            return backup_type, obj_type
    return None


def _kind_to_type(kind: str, software: str) -> tuple[str, str]:
    """(backup_type, default object type) from the header kind ("Backup Copy job")."""
    k = re.sub(r"\s+", " ", kind.lower()).strip()
    k = re.sub(r"\s*(?:job|session|auftrag|taak|tâche|travail)$", "", k).strip()
    if software == VB365:
        return ("Backup Copy Job" if "copy" in k else "Backup Job"), "User"
    found = _kind_rule(k, software)
    if found:
        return found
    if "policy" in k:
        return kind.strip().title().replace("Cdp", "CDP"), "VM"
    if k in ("backup", "sicherung", "back-up"):
        return "Backup Job", "VM"
    return (k.title() + " Job") if k else "Backup Job", "VM"


def _software_from(text: str) -> str:
    low = text.lower()
    for marker, product in _AGENT_PRODUCTS:
        if marker in low:
            return product
    return VBR


def _strip_run_kind(name: str) -> str:
    prev = None
    while prev != name:
        prev = name
        name = _RUN_KIND_RE.sub("", name).strip()
    return name


def _cell_text(el) -> str:
    return clean_text(el.text_content())


def _message_from_details(raw: str) -> str:
    """A readable object message from a Details cell or vee-mail log lines."""
    lines = [ln.strip() for ln in raw.split("\n") if ln.strip()]
    logs = [m for m in (_LOG_LINE_RE.match(ln) for ln in lines) if m]
    if logs:
        # vee-mail: keep the errors and warnings of the log (else all of it), drop footers.
        picked = [m.group("msg").strip() for m in logs if m.group("level") in ("ERR", "ERROR", "WARN", "WARNING")]
        if not picked:
            picked = [m.group("msg").strip() for m in logs]
        return clean_text(" ".join(picked))
    return clean_text(" ".join(lines))


def _details_text(el) -> str:
    """Text of an element with <br> and blocks as line breaks."""
    parts: list[str] = []
    for node in el.iter():
        if node.tag == "br":
            parts.append("\n")
        elif node.tag in ("div", "p", "li", "tr") and node is not el:
            parts.append("\n")
        if node.text and node.tag not in ("script", "style"):
            parts.append(node.text)
        if node is not el and node.tail:
            parts.append(node.tail)
    # node.tail of descendants is handled above; el.iter() includes el itself first.
    return "".join(parts)


def _looks_like_report(msg: Message) -> Optional[str]:
    head = _HEADER_RE.search(msg.text[:3000]) if msg.text else None
    subj = _SUBJECT_RE.match(msg.subject or "")
    low = msg.text[:6000].lower()
    veeam = "veeam" in msg.from_address or "veeam" in low or "veeam" in (msg.from_name or "").lower()
    if head:
        # The header must be near the top of the body, not a sentence somewhere in a newsletter.
        before = msg.text[: head.start()]
        if before.count("\n") > 12:
            head = None
    if head:
        signature = all(w in low for w in _SIGNATURE_WORDS) and len(set(_COUNTERS_RE.findall(low))) >= 2
        if signature and (subj or veeam or "details" in low):
            return f"Veeam session report ('{clean_text(head.group('kind'))}:' header with summary grid)"
        if subj and veeam:
            return "Veeam subject '[Result] ...' and session header"
    if subj and veeam and _SUBJECT_COUNT_RE.search(subj.group("rest")):
        return "Veeam subject '[Result] Job (N objects)' from a Veeam sender"
    if subj and any(p in low for p in ("veeam backup", "veeam agent")):
        return "Veeam subject '[Result] ...' and a Veeam product named in the body"
    return None


class VeeamSessionReportParser(Parser):
    """A '<Kind> job: <name>' header at the top of the body with the Veeam summary grid (Start time / End time /
    Duration), together with a '[Result] ...' subject, a Veeam sender or a Details table; or a '[Result] Job
    (N objects)' subject from a Veeam sender. Product from the description line (Veeam Agent for
    Windows/Linux, Veeam Backup for Microsoft 365), else Veeam Backup & Replication.
    """

    name = "veeam"
    product = "Veeam Backup & Replication / Veeam Agents / Veeam Backup for Microsoft 365"
    types = ("Backup Job", "Backup Copy Job", "Replication Job", "Agent Backup Job", "Agent Backup Policy",
             "File Share Backup Job", "Configuration Backup", "SureBackup Job", "Tape Job",
             "File to Tape Job", "VM Copy Job", "Object Storage Backup Job", "CDP Policy", "Log Backup Job")
    sender_contains = ("veeam",)
    subject_patterns = (_SUBJECT_RE.pattern,)
    body_markers = ("job:", "policy:", "Start time", "End time", "Duration", "Details")

    def matches(self, msg: Message) -> Optional[str]:
        return _looks_like_report(msg)

    def parse(self, msg: Message) -> ParseResult:
        info = None
        tree = msg.html_tree()
        if tree is not None:
            info = _read_html(tree)
        if info is None or not info.get("kind"):
            info = _read_text(msg.text) or info or {}
        subj = _SUBJECT_RE.match(msg.subject or "")

        description = info.get("description", "")
        software = _software_from(" ".join([description, info.get("kind", ""), msg.text[:4000]]))
        backup_type, default_obj_type = _kind_to_type(info.get("kind") or "Backup job", software)
        processed = re.search(r"\bof \d+ (\w+) processed", description, re.IGNORECASE)
        computers = bool(processed) and processed.group(1).lower() in (
            "machines", "machine", "computers", "computer", "endpoints", "servers", "workstations")
        if backup_type in ("Backup Copy Job", "Backup Job") and software == VBR and computers:
            # "2 of 2 machines processed": a copy (or backup) of agent backups holds computers.
            default_obj_type = "Computer"
        elif computers and "policy" in (info.get("kind") or "").lower() and backup_type != "CDP Policy":
            # "Backup policy: X" / "Windows backup policy: X" over "1 of 2 computers processed": the
            # Veeam Agent backup policy a backup server manages; its objects are the computers.
            backup_type, default_obj_type = "Agent Backup Policy", "Computer"
        # Object type: VB365 gives it per row; "N of N VMs processed" confirms VMs.
        objects = [ParsedObject(name=row["name"], type=row.get("type") or default_obj_type,
                                status=status_from_word(row.get("status")), message=row.get("message", ""))
                   for row in info.get("objects", [])]
        status = status_from_word(info.get("status"))
        if status is None and subj:
            status = status_from_word(subj.group("status"))
        if status is None:
            status = worst_status(*(o.status for o in objects))
        started, ended = _run_times(info, msg)
        reason = _looks_like_report(msg) or "Veeam session report"
        if info.get("session_message"):
            reason += f"; session message: {info['session_message'][:300]}"
        return ParseResult(reason=reason, software=software, backup_type=backup_type,
                           job_name=_job_name(info, subj, software) or None, overall_status=status,
                           started_at=started, ended_at=ended, objects=objects)


def _job_name(info: dict, subj: Optional[re.Match], software: str) -> str:
    """The header's job name without its run kind; else the subject's, without counts and retry.

    vee-mail's subject names the agent's job as its database has it; its header is a template that
    installations upgraded from vee-mail 0.5 still fill with "Backup Job <HOST>", so for the Linux
    agent a vee-mail subject wins over the header."""
    vm = _VEEMAIL_SUBJECT_RE.match(subj.group(0)) if subj and software == VAL else None
    if vm:
        return clean_text(vm.group("job"))
    job_name = _strip_run_kind(info.get("name") or "")
    if not job_name and subj:
        rest = _SUBJECT_COUNT_RE.split(subj.group("rest"))[0]
        job_name = _strip_run_kind(re.sub(r"\s*\(retry \d+\)\s*$", "", rest, flags=re.I)).strip()
        if software == VB365 and " - " in job_name:
            job_name = job_name.split(" - ", 1)[1]
    return job_name


def _run_times(info: dict, msg: Message):
    """(started, ended): the summary's clock times on the session date; without a session date, on
    the mail's date (the run ended before the mail was sent)."""
    tz = msg.date.tzinfo if msg.date is not None else None
    started = ended = None
    day = parse_datetime(info.get("date"), default_tz=tz) if info.get("date") else None
    summary = info.get("summary", {})
    if day is not None:
        started = combine_date_time(day, summary.get("start time")) or day
        ended = combine_date_time(day, summary.get("end time"))
        if ended is not None and ended < started:
            ended += timedelta(days=1)
    elif msg.date is not None and summary.get("start time"):
        ended = combine_date_time(msg.date, summary.get("end time"))
        if ended is not None and ended > msg.date + timedelta(minutes=5):
            ended -= timedelta(days=1)
        started = combine_date_time(msg.date, summary.get("start time"))
        if started is not None:
            limit = ended or msg.date
            if started > limit + timedelta(minutes=5):
                started -= timedelta(days=1)
    return started, ended


def _read_html(tree) -> Optional[dict]:
    """Header, status, date, summary and object rows from the session report tables."""
    info: dict = {"objects": [], "summary": {}}
    header_td = _read_header_cell(tree, info)
    if header_td is None:
        return None
    _read_status_cell(header_td, info)
    # Rows after the header, in document order.
    rows = [tr for tr in tree.iter("tr")]
    try:
        start = rows.index(next(a for a in header_td.iterancestors("tr")))
    except (StopIteration, ValueError):
        start = 0
    reader = _SessionRows(info)
    for tr in rows[start + 1:]:
        if not reader.read(tr):
            break  # past the object table (footers, signatures)
    return info


def _read_header_cell(tree, info: dict):
    """The cell with the '<Kind> job: <name>' header (kind, name and description into ``info``); None if none."""
    for td in tree.iter("td", "th"):
        if td.find(".//table") is not None:
            continue  # layout cell around nested tables
        own = clean_text(td.text or "")
        if not own:
            # Outlook wraps cell text in <p>/<span>; use the first text line of the cell.
            own = clean_text(_details_text(td).strip().split("\n")[0]) if len(td) else ""
        m = _HEADER_RE.match(own) if own and len(own) < 300 else None
        if m:
            info["kind"] = clean_text(m.group("kind"))
            info["name"] = clean_text(m.group("name"))
            texts = (clean_text(d.text_content()) for d in td.iter("div", "span", "p") if d is not td)
            info["description"] = " ".join(t for t in texts if t and not _HEADER_RE.match(t))
            return td
    return None


def _read_status_cell(header_td, info: dict) -> None:
    """The session result in the cell beside the header, and the description lines under it."""
    status_td = header_td.getnext()
    while status_td is not None and status_td.tag not in ("td", "th"):
        status_td = status_td.getnext()
    if status_td is not None:
        lines = [ln for ln in (clean_text(x) for x in _details_text(status_td).split("\n")) if ln]
        if lines:
            info["status"] = lines[0]
            info["description"] += " " + " ".join(lines[1:])


def _append_message(row: dict, message: str) -> None:
    """Add a details or log line to an object row's message."""
    if message:
        row["message"] = (row["message"] + " " + message).strip()


class _SessionRows:
    """The rows after the header, one at a time: the session date and the summary grid, then the
    object table's header row and its object rows (with vee-mail's log rows under them)."""

    def __init__(self, info: dict):
        self.info = info
        self.cols: Optional[dict] = None   # column positions once the object table's header is read
        self.in_log = False
        self.obj_table = None

    def read(self, tr) -> bool:
        """Take one row into ``info``; False once the rows have left the object table."""
        cells = row_cells(tr)
        if not cells:
            return True
        if self.obj_table is not None and next(tr.iterancestors("table"), None) is not self.obj_table:
            return False
        if tr.find(".//table") is not None:
            return True  # layout row around nested tables
        texts = [_cell_text(c) for c in cells]
        low = [t.lower().rstrip(":") for t in texts]
        if len(cells) == 1:
            self._single_cell(cells[0], texts[0], low[0])
        elif any(x in _STATUS_HEADERS for x in low) and any(x in _NAME_HEADERS for x in low):
            self._table_header(tr, low)
        elif self.cols is None:
            self._summary(cells, texts, low)
        else:
            self._object(cells, texts)
        return True

    def _single_cell(self, cell, text: str, low: str) -> None:
        info = self.info
        if not text:
            return
        if self.cols is None and "date" not in info and parse_datetime(text):
            info["date"] = text
        elif low in ("details", "log", "details:"):
            self.in_log = self.cols is not None
        elif self.cols is not None and info["objects"] and (self.in_log or _LOG_LINE_RE.match(text)):
            _append_message(info["objects"][-1], _message_from_details(_details_text(cell)))

    def _table_header(self, tr, low: list[str]) -> None:
        name_i = next(i for i, x in enumerate(low) if x in _NAME_HEADERS)
        self.cols = {"name": name_i, "status": next(i for i, x in enumerate(low) if x in _STATUS_HEADERS),
                     "type": low.index("type") if "type" in low else None,
                     "details": low.index("details") if "details" in low else None}
        self.in_log = False
        self.obj_table = next(tr.iterancestors("table"), None)

    def _summary(self, cells, texts: list[str], low: list[str]) -> None:
        """Summary grid: label, value, label, value... and, in the first row, a cell
        spanning the grid with the session's own message (job-level errors)."""
        info = self.info
        if len(texts) % 2 == 1 and texts[-1] and "session_message" not in info:
            info["session_message"] = _message_from_details(_details_text(cells[-1]))
        for i in range(0, len(texts) - 1, 2):
            label = low[i]
            if label and label not in info["summary"]:
                info["summary"][label] = texts[i + 1]

    def _object(self, cells, texts: list[str]) -> None:
        cols = self.cols
        if len(cells) <= cols["status"] or not texts[cols["name"]]:
            return
        row = {"name": texts[cols["name"]], "status": texts[cols["status"]], "message": ""}
        if cols["type"] is not None and cols["type"] < len(cells):
            row["type"] = texts[cols["type"]]
        if cols["details"] is not None and cols["details"] < len(cells):
            row["message"] = _message_from_details(_details_text(cells[cols["details"]]))
        self.info["objects"].append(row)


def _read_text(text: str) -> Optional[dict]:
    """The same structure from a text rendering (one cell per line, or tab-separated rows)."""
    if not text:
        return None
    m = _HEADER_RE.search(text[:3000])
    if not m:
        return None
    info: dict = {"kind": clean_text(m.group("kind")), "name": clean_text(m.group("name")),
                  "objects": [], "summary": {}, "description": ""}
    lines, blank_after = _text_cells(text[m.end():])
    i = _read_text_head(lines, info)
    header_at = _read_text_summary(lines, i, info)
    if header_at is None:
        _read_text_rows(text[m.end():], info)
    else:
        _read_text_objects(lines, header_at, blank_after, "\t" in text, info)
    return info


def _text_cells(text: str) -> tuple[list[str], set]:
    """The non-empty cells (lines, or tab-separated parts of lines) in order, and the indexes of the
    cells after which a blank line follows: for tab-separated rows, text after the table (a
    disclaimer, a forwarder's footer) is no row's details."""
    lines: list[str] = []
    blank_after: set = set()
    for raw in text.split("\n"):
        if not raw.strip() and lines:
            blank_after.add(len(lines) - 1)
        for cell in raw.split("\t"):
            c = clean_text(cell)
            if c:
                lines.append(c)
    return lines, blank_after


def _read_text_head(lines: list[str], info: dict) -> int:
    """Status and description: the lines before the session date. Returns the index after the date."""
    i = 0
    desc: list[str] = []
    while i < len(lines) and i < 8:
        ln = lines[i]
        if not _CREATED_BY_RE.match(ln) and re.search(r"\d{4}", ln) and parse_datetime(ln):
            info["date"] = ln
            i += 1
            break
        if "status" not in info and ln.lower() in _STATUS_WORDS:
            info["status"] = ln
        else:
            desc.append(ln)
        i += 1
    info["description"] = " ".join(desc)
    return i


def _read_text_summary(lines: list[str], start: int, info: dict) -> Optional[int]:
    """Summary grid up to the object table header; the header's index, None when there is none."""
    for j in range(start, len(lines)):
        if lines[j].lower() in _NAME_HEADERS and j + 1 < len(lines) and \
                lines[j + 1].lower() in _STATUS_HEADERS + ("type",):
            return j
        if j + 1 < len(lines):
            label = lines[j].lower().rstrip(":")
            if label in ("start time", "end time", "duration") and label not in info["summary"]:
                info["summary"][label] = lines[j + 1]
    return None


_TEXT_TABLE_END_RE = re.compile(r"^(?:backup target|.*\bvee-mail version\b.*)$", re.IGNORECASE)
_KNOWN_COLUMNS = _STATUS_HEADERS + ("type", "start time", "end time", "size", "read", "transferred", "duration",
                  "details", "heartbeat test", "ping test", "script test", "processed", "rate", "tape",
                  "media pool", "backup size", "data read")


def _read_text_objects(lines: list[str], header_at: int, blank_after: set, tabbed: bool, info: dict) -> None:
    """Object rows after the column headers (one cell per line): a row starts at a name followed by a status."""
    cols = [lines[header_at].lower()]
    j = header_at + 1
    while j < len(lines) and lines[j].lower() in _KNOWN_COLUMNS:
        cols.append(lines[j].lower())
        j += 1
    fixed = len(cols) - (1 if "details" in cols else 0)
    body = lines[j:]
    # vee-mail puts a "Backup Target" table and its version footer under the object table; in a text
    # rendering nothing else tells where the last row's details end.
    end = next((k for k, ln in enumerate(body) if _TEXT_TABLE_END_RE.match(ln)), None)
    if end is not None:
        body = body[:end]
    status_off = next((i for i, c in enumerate(cols) if c in _STATUS_HEADERS), 1)
    starts = _text_row_starts(body, status_off, fixed)
    for n, s in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(body)
        if tabbed and n + 1 == len(starts):
            # The last tab-separated row ends at the first blank line after it.
            stop = next((x + 1 for x in range(j + s, j + end) if x in blank_after), j + end)
            end = max(min(end, stop - j), min(end, s + fixed))
        info["objects"].append(_text_row(body[s:end], cols, status_off, fixed))


def _text_row_starts(body: list[str], status_off: int, fixed: int) -> list[int]:
    starts: list[int] = []
    for k in range(len(body) - status_off):
        if body[k + status_off].lower() in _STATUS_WORDS and body[k].lower() not in _STATUS_WORDS:
            if not starts or k >= starts[-1] + fixed:
                starts.append(k)
    return starts


def _text_row(chunk: list[str], cols: list[str], status_off: int, fixed: int) -> dict:
    row = {"name": chunk[0], "status": chunk[status_off], "message": ""}
    if "type" in cols:
        row["type"] = chunk[cols.index("type")] if cols.index("type") < len(chunk) else ""
    extra = chunk[fixed:]
    if "details" in cols or extra:
        extra = [e for e in extra if e.lower() != "details"]
        row["message"] = _message_from_details("\n".join(extra))
    return row


_ROW_HEADER_RE = re.compile(r"^(?:vm name|name|object|machine|computer)\s+(?P<type>type\s+)?status\b(?P<rest>.*)$",
                            re.IGNORECASE)
_ROW_RE = re.compile(
    r"^(?P<lead>.+?)\s+(?P<status>success|warning|error|failed|pending|in progress|none)\b\s*(?P<rest>.*)$",
    re.IGNORECASE)
_VALUE_TOKEN_RE = re.compile(
    r"\s*(?:\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?|\d+(?:[.,]\d+)?\s*(?:B|KB|MB|GB|TB|PB)(?:/s)?|\d+(?:[.,]\d+)?x"
    r"|passed|failed|not run|skipped|\d+%?)(?=\s|$)", re.IGNORECASE)


_VALUE_COLUMNS_RE = re.compile(
    r"\b(?:start time|end time|size|read|transferred|duration|heartbeat test|ping test|script test|"
    r"processing rate|rate|backup size|data read)\b", re.IGNORECASE)


def _read_text_rows(text: str, info: dict) -> None:
    """Object rows whose cells a mail client joined with spaces on one line each."""
    lines = [clean_text(ln) for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    try:
        h = next(i for i, ln in enumerate(lines) if _ROW_HEADER_RE.match(ln))
    except StopIteration:
        return
    hm = _ROW_HEADER_RE.match(lines[h])
    has_type = bool(hm.group("type"))
    has_details = lines[h].lower().rstrip().endswith("details")
    n_values = len(_VALUE_COLUMNS_RE.findall(hm.group("rest")))
    for ln in lines[h + 1:]:
        m = _ROW_RE.match(ln)
        if not m:
            if info["objects"] and has_details and not _ROW_HEADER_RE.match(ln):
                _append_message(info["objects"][-1], _message_from_details(ln))
                continue
            break
        lead, rest = m.group("lead"), m.group("rest")
        row = {"name": lead, "status": m.group("status"), "message": ""}
        if has_type and " " in lead:
            row["name"], row["type"] = lead.rsplit(" ", 1)
        pos = 0
        for _ in range(n_values):
            t = _VALUE_TOKEN_RE.match(rest, pos)
            if not t or t.end() == pos:
                break
            pos = t.end()
        if has_details:
            row["message"] = _message_from_details(rest[pos:])
        info["objects"].append(row)


PARSERS: list[Parser] = [VeeamSessionReportParser()]
