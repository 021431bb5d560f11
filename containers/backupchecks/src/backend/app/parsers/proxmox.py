"""Proxmox VE (vzdump) and Proxmox Backup Server job notifications.

Formats (from the public sources of pve-manager and proxmox-backup):

* Proxmox VE vzdump, notification-system templates (PVE >= 8.1):
  subject ``vzdump backup status (<fqdn>): backup successful`` /
  ``backup failed`` (optionally ``: <error>``); body "Details" with a guest
  table (VMID, Name, Status ok/err, Time, Size, Filename), then the logs
  (``<vmid>: <YYYY-MM-DD HH:MM:SS> INFO: ...``).
* Proxmox VE vzdump, legacy sendmail report (before 2023-08): subject
  ``vzdump backup status (<host>) : backup ...``; text table
  ``VMID NAME STATUS TIME SIZE FILENAME`` (names cut at 20 characters) and an
  HTML table with OK / FAILED and the error message in a colspan cell.
* Proxmox VE storage replication failure: ``Replication Job: '<id>' failed``.
* Proxmox Backup Server: garbage collection, verification, prune, sync and
  tape backup jobs; subjects such as ``Garbage Collect Datastore 'X' successful``,
  ``Verify Datastore 'X' failed``, ``Pruning datastore 'X' successful``,
  ``Sync remote 'R' datastore 'S' successful``, ``Sync local datastore 'S' failed``,
  ``Tape Backup 'job' datastore 'X' successful``; bodies with ``Job ID:`` /
  ``Datastore:`` lines and a closing ``... successful.`` / ``... failed: <error>``.

Proxmox mails that are not job reports (package updates, certificate
renewal, tape load requests, test notifications) are recognised here as
"not a report".
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Optional

from .base import FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser, worst_status
from .dates import mail_tz
from .tables import row_cells

PVE = "Proxmox VE"
PBS = "Proxmox Backup Server"

# --------------------------------------------------------------------------- helpers

_LOG_TS_RE = re.compile(r"^\s*(?:\d+|[\w.-]+):\s+(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s+(?:INFO|ERROR|WARN|WARNING|TASK)",
                        re.MULTILINE)


def _parse_local(value: str, fmt: str, msg: Message) -> Optional[datetime]:
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=mail_tz(msg))
    except ValueError:
        return None


def _ok_failed(word: str) -> Optional[str]:
    w = (word or "").strip().lower()
    if w in ("successful", "success", "ok"):
        return SUCCESS
    if w.startswith("fail") or w in ("err", "error", "todo", "aborted"):
        return FAILED
    if w.startswith("warn"):
        return WARNING
    return None


# --------------------------------------------------------------------------- PVE vzdump

_VZDUMP_SUBJECT_RE = re.compile(r"vzdump backup status\s*\(([^)]*)\)\s*:\s*backup (successful|failed)",
                                re.IGNORECASE)
_VZDUMP_BODY_RE = re.compile(r"^\s*VMID\s+NAME\s+STATUS\s+TIME\s+SIZE\s+FILENAME\s*$", re.IGNORECASE | re.MULTILINE)
_ROW_RE = re.compile(
    r"^\s*(\d{2,})\s+(\S.*?)\s+(ok|err|error|todo|failed|aborted)(?=\s|$)(?:\s+(.*))?$", re.IGNORECASE)
_START_RE = re.compile(r"^(\d+):\s+\S+ \S+\s+INFO: Starting Backup of VM \d+ \((qemu|lxc|openvz)\)", re.MULTILINE)
_GUEST_ERR_RE = re.compile(r"^(\d+):\s+\S+ \S+\s+ERROR: Backup of VM \d+ failed - (.*?)\s*$", re.MULTILINE)
_ANY_ERR_RE = re.compile(r"^(\d+):\s+\S+ \S+\s+ERROR: (.*?)\s*$", re.MULTILINE)
_NO_LOG_RE = re.compile(r"^(\d+): (no log available|Could not open log file)", re.MULTILINE)


def _guest_type(vmid: str, filename: str, types: dict) -> str:
    if vmid in types:
        return types[vmid]
    f = filename or ""
    if f.startswith("vm/") or "vzdump-qemu-" in f:
        return "qemu"
    if f.startswith("ct/") or "vzdump-lxc-" in f:
        return "lxc"
    if "vzdump-openvz-" in f:
        return "openvz"
    return "guest"


def _vzdump_rows_html(msg: Message) -> Optional[list[tuple[str, str, str, str, str]]]:
    """(vmid, name, status word, filename, html message) from the HTML guest table."""
    tree = msg.html_tree()
    if tree is None:
        return None
    for table in tree.iter("table"):
        rows = [r for r in table.iter("tr")]
        if not rows:
            continue
        header = [c.text_content().strip().lower() for c in row_cells(rows[0])]
        if "vmid" not in header or "status" not in header:
            continue
        idx = {h: i for i, h in enumerate(header)}
        out = []
        for r in rows[1:]:
            cells = row_cells(r)
            texts = [c.text_content().strip() for c in cells]
            if not texts or not texts[0].isdigit():
                continue  # TOTAL row and the like

            def cell(key: str) -> str:
                i = idx.get(key)
                return texts[i] if i is not None and i < len(texts) else ""

            status = cell("status")
            extra = ""
            # legacy HTML: failed row has a colspan cell with the error after TIME
            if _ok_failed(status) == FAILED and len(texts) > idx.get("time", 99) + 1:
                spans = [c for c in cells if c.get("colspan")]
                if spans:
                    extra = spans[-1].text_content().strip()
            out.append((texts[0], cell("name"), status, cell("filename"), extra))
        return out
    return None


def _vzdump_rows_text(text: str) -> list[tuple[str, str, str, str, str]]:
    out = []
    m = _VZDUMP_BODY_RE.search(text)
    if not m:
        return out
    for line in text[m.end():].splitlines():
        if not line.strip():
            if out:
                break
            continue
        if line.lstrip().lower().startswith(("total", "detailed backup logs", "logs")):
            break
        rm = _ROW_RE.match(line.replace("\t", "  "))
        if not rm:
            continue
        rest = (rm.group(4) or "").split()
        filename = rest[-1] if rest and ("/" in rest[-1] or ":" in rest[-1]) else ""
        out.append((rm.group(1), rm.group(2).strip(), rm.group(3), filename, ""))
    return out


class ProxmoxVzdumpParser(Parser):
    """Subject 'vzdump backup status (<host>): backup successful|failed' (current and legacy format), or a vzdump
    guest table (VMID/NAME/STATUS) with vzdump logs in the body.
    """

    name = "proxmox_vzdump"
    product = PVE
    types = ("vzdump",)
    sender_contains = ()
    subject_patterns = (r"vzdump backup status\s*\(",)
    body_markers = ("Detailed backup logs:", "INFO: Starting Backup of VM")

    def matches(self, msg: Message) -> Optional[str]:
        if _VZDUMP_SUBJECT_RE.search(msg.subject):
            return "subject is a vzdump backup status"
        body = msg.text
        if "Starting Backup of VM" in body and _VZDUMP_BODY_RE.search(body):
            return "body has a vzdump guest table and logs"
        return None

    def parse(self, msg: Message) -> ParseResult:
        sm = _VZDUMP_SUBJECT_RE.search(msg.subject)
        host = sm.group(1).strip() if sm else None
        subject_status = _ok_failed(sm.group(2)) if sm else None
        logs = msg.text  # text part, or the text of the HTML part (logs are in its <pre>)
        types = {m.group(1): m.group(2) for m in _START_RE.finditer(logs)}
        errors: dict[str, str] = {}
        for m in _ANY_ERR_RE.finditer(logs):
            errors.setdefault(m.group(1), m.group(2))
        for m in _GUEST_ERR_RE.finditer(logs):
            errors[m.group(1)] = m.group(2)  # the summary line wins
        for m in _NO_LOG_RE.finditer(logs):
            errors.setdefault(m.group(1), m.group(2))

        rows = _vzdump_rows_html(msg)
        if not rows:
            rows = _vzdump_rows_text(msg.text)
        objects = []
        for vmid, name, status_word, filename, html_msg in rows:
            st = _ok_failed(status_word) or FAILED
            message = ""
            if st != SUCCESS:
                message = errors.get(vmid) or html_msg or ("aborted" if status_word.lower() == "todo" else "")
            objects.append(ParsedObject(name=name or f"VM {vmid}", type=_guest_type(vmid, filename, types),
                                        status=st, message=message))
        overall = worst_status(subject_status, *(o.status for o in objects))
        if overall is None:
            overall = FAILED if errors else None
        stamps = _LOG_TS_RE.findall(logs)
        started = _parse_local(stamps[0], "%Y-%m-%d %H:%M:%S", msg) if stamps else None
        ended = _parse_local(stamps[-1], "%Y-%m-%d %H:%M:%S", msg) if stamps else None
        if not host:
            host = msg.from_address.split("@")[-1] or None
        return ParseResult(software=PVE, backup_type="vzdump", job_name=host, overall_status=overall,
                           started_at=started, ended_at=ended, objects=objects)


# --------------------------------------------------------------------------- PVE replication

_REPL_SUBJECT_RE = re.compile(r"^Replication Job:\s*'?([^'\s]+)'?\s+failed", re.IGNORECASE)
_REPL_BODY_RE = re.compile(r"Replication job '?([^'\s]+)'? with target '([^']*)'.*?failed!", re.IGNORECASE)
_REPL_ERR_RE = re.compile(r"^Error:\s*\n(.+?)\s*$", re.MULTILINE | re.DOTALL)


class ProxmoxReplicationParser(Parser):
    """Proxmox VE storage replication failure: subject "Replication Job: '<id>' failed"."""

    name = "proxmox_replication"
    product = PVE
    types = ("Replication job",)
    subject_patterns = (r"^Replication Job:\s*'?\S+'?\s+failed",)
    body_markers = ("with target", "failed!")

    def matches(self, msg: Message) -> Optional[str]:
        if _REPL_SUBJECT_RE.search(msg.subject):
            return "subject is a Proxmox replication job failure"
        if "Replication job" in msg.text and _REPL_BODY_RE.search(msg.text):
            return "body is a Proxmox replication job failure"
        return None

    def parse(self, msg: Message) -> ParseResult:
        sm = _REPL_SUBJECT_RE.search(msg.subject)
        bm = _REPL_BODY_RE.search(msg.text)
        job = sm.group(1) if sm else (bm.group(1) if bm else None)
        objects = []
        if bm:
            em = _REPL_ERR_RE.search(msg.text)
            err = em.group(1).strip().splitlines()[0].strip() if em else ""
            objects.append(ParsedObject(name=bm.group(2), type="target", status=FAILED, message=err))
        return ParseResult(software=PVE, backup_type="Replication job", job_name=job,
                           overall_status=FAILED, objects=objects)


# --------------------------------------------------------------------------- PBS

# One row per PBS job kind: (kind, backup type, subject pattern, the word of the body's closing line).
_PBS_KINDS = (
    ("gc", "Garbage collection", r"^Garbage Collect Datastore '([^']+)' (successful|failed)", "Garbage collection"),
    ("verify", "Verification job", r"^Verify Datastore '([^']+)' (successful|failed)", "Verification"),
    ("prune", "Prune job", r"^Prun(?:e|ing) datastore '([^']+)' (successful|failed)", "Pruning"),
    ("sync", "Sync job", r"^Sync\b.*?datastore '([^']+)'.*?\b(successful|failed)", "Synchronization"),
    ("tape", "Tape backup job", r"^Tape Backup\b.*?datastore '([^']+)' (successful|failed)", "Tape Backup"),
)
_PBS_SUBJECTS = tuple((kind, re.compile(subject, re.IGNORECASE)) for kind, _, subject, _ in _PBS_KINDS)
# The closing line of the body: "Verification successful." / "Pruning failed: <error>".
_PBS_BODY_END = tuple((kind, re.compile(r"^" + word + r" (successful|failed)\b[.:]?\s*(.*)$", re.MULTILINE))
                      for kind, _, _, word in _PBS_KINDS)
_PBS_TYPES = {kind: backup_type for kind, backup_type, _, _ in _PBS_KINDS}
_FIELD_RE = re.compile(r"^\s*(Job ID|Datastore|Task ID|Remote|Remote Store|Local Source Store|Tape Pool|Tape Drive)"
                       r":[ \t]*(.*?)\s*$", re.MULTILINE)
_TAPE_ID_RE = re.compile(r"^Tape Backup '([^']+)' datastore", re.IGNORECASE)
_UPID_TIME_RE = re.compile(r"UPID:[^:]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+:([0-9A-Fa-f]{8}):")
_SNAPSHOT_RE = re.compile(r"^\s*((?:ns/[^\s/]+/)*(?:vm|ct|host)/[^\s/]+(?:/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)?)\s*$")


def _block_after(text: str, heading: str) -> list[str]:
    """Non-empty lines after a heading line up to the next blank-line-separated non-list section."""
    i = text.find(heading)
    if i < 0:
        return []
    out = []
    for line in text[i + len(heading):].splitlines()[1:]:
        s = line.strip()
        if not s:
            if out:
                # a blank line ends the list unless more snapshot lines follow
                continue
            continue
        if _SNAPSHOT_RE.match(s):
            out.append(s)
        else:
            if out:
                break
            if s.lower().startswith(("duration", "used tapes", "tape backup", "please visit")):
                break
    return out


class ProxmoxBackupServerParser(Parser):
    """Proxmox Backup Server job notifications (garbage collection, verify, prune, sync, tape backup): subject
    like "Verify Datastore 'X' failed", or the closing line of the body ("Verification successful." / "...
    failed: <error>") next to a 'Datastore:' line.
    """

    name = "proxmox_backup_server"
    product = PBS
    types = tuple(_PBS_TYPES.values())
    subject_patterns = tuple(p.pattern for _, p in _PBS_SUBJECTS)
    body_markers = ("Garbage collection successful.", "Verification successful.", "Pruning successful.",
                    "Synchronization successful.", "Tape Backup successful.")

    def _kind(self, msg: Message):
        subj = msg.subject
        if subj[:1] in ("G", "V", "P", "S", "T", "g", "v", "p", "s", "t"):
            for kind, rx in _PBS_SUBJECTS:
                m = rx.search(subj)
                if m:
                    return kind, m, None
        text = msg.text
        if "Datastore:" in text:
            for kind, rx in _PBS_BODY_END:
                m = rx.search(text)
                if m:
                    return kind, None, m
        return None, None, None

    def matches(self, msg: Message) -> Optional[str]:
        kind, sm, bm = self._kind(msg)
        if kind is None:
            return None
        if sm:
            return f"subject is a Proxmox Backup Server {_PBS_TYPES[kind].lower()} notification"
        return f"body is a Proxmox Backup Server {_PBS_TYPES[kind].lower()} notification"

    def parse(self, msg: Message) -> ParseResult:
        kind, sm, bm = self._kind(msg)
        if kind is None:
            return ParseResult(parsed=False, reason="not a Proxmox Backup Server job notification")
        text = msg.text
        fields: dict[str, str] = {}
        for m in _FIELD_RE.finditer(text):
            fields.setdefault(m.group(1), m.group(2))
        if bm is None:
            for k, rx in _PBS_BODY_END:
                if k == kind:
                    bm = rx.search(text)
        status = None
        if sm:
            status = _ok_failed(sm.group(2))
        if bm:
            status = worst_status(status, _ok_failed(bm.group(1)))
        if "Verification failed on these snapshots" in text:
            status = FAILED
        datastore = fields.get("Datastore") or (sm.group(1) if sm else None)
        job_id = fields.get("Job ID") or None
        if kind == "tape" and not job_id and sm:
            tm = _TAPE_ID_RE.search(msg.subject)
            job_id = tm.group(1) if tm else None
        job = datastore if kind == "gc" else (job_id or datastore)

        objects: list[ParsedObject] = []
        if kind == "verify":
            for snap in _block_after(text, "Verification failed on these snapshots/groups:"):
                objects.append(ParsedObject(name=snap, type="snapshot" if re.search(r"/\d{4}-", snap) else "group",
                                            status=FAILED, message="verification failed"))
        elif kind == "tape":
            for snap in _block_after(text, "Snapshots included:"):
                objects.append(ParsedObject(name=snap, type="snapshot", status=SUCCESS, message=""))
        started = None
        um = _UPID_TIME_RE.search(fields.get("Task ID", ""))
        if um:
            try:
                started = datetime.fromtimestamp(int(um.group(1), 16), tz=timezone.utc)
                if msg.date is not None and msg.date.tzinfo is not None:
                    started = started.astimezone(msg.date.tzinfo)
            except (ValueError, OverflowError, OSError):
                started = None
            if started is not None and msg.date is not None and msg.date.tzinfo is not None and started > msg.date:
                started = None  # a task cannot start after its report was sent
        return ParseResult(software=PBS, backup_type=_PBS_TYPES[kind], job_name=job, overall_status=status,
                           started_at=started, objects=objects)


# --------------------------------------------------------------------------- not reports

_NOT_REPORT_SUBJECTS = re.compile(
    r"^(?:New software packages available \(|Could not renew certificate|Load Media '.*' request|"
    r"Test notification$)", re.IGNORECASE)
_PROXMOX_HINT = ("proxmox", ":8006/", ":8007/", "pbsServerAdministration", "notification target")


class ProxmoxNotReportParser(Parser):
    """Proxmox VE / Backup Server notifications that are not job reports (package updates, certificate renewal,
    tape load requests, test notifications): subject and a Proxmox marker in the body or sender.
    """

    name = "proxmox_not_report"
    product = "Proxmox (not a report)"
    types = ()
    subject_patterns = (_NOT_REPORT_SUBJECTS.pattern,)
    body_markers = _PROXMOX_HINT

    def matches(self, msg: Message) -> Optional[str]:
        if not _NOT_REPORT_SUBJECTS.search(msg.subject):
            return None
        hay = msg.text + " " + msg.from_name
        if any(h.lower() in hay.lower() for h in _PROXMOX_HINT):
            return "Proxmox notification that is not a job report"
        return None

    def parse(self, msg: Message) -> ParseResult:
        return ParseResult(software=None, backup_type=None, job_name=None, overall_status=None,
                           objects=[], parsed=True, is_report=False,
                           reason="Proxmox notification that is not a backup job report")


PARSERS: list[Parser] = [
    ProxmoxVzdumpParser(),
    ProxmoxBackupServerParser(),
    ProxmoxReplicationParser(),
    ProxmoxNotReportParser(),
]
