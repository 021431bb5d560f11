"""Acronis Cyber Protect / Cyber Protect Cloud / Acronis Backup alert mails.

Format (established from public references, see the corpus sample's
format_source): the management console sends one alert mail per plan run and
workload, subject

    BACKUP SUCCEEDED | BACKUP SUCCEEDED WITH WARNINGS | BACKUP FAILED |
    BACKUP DID NOT START
    (group: <partner> > <customer>)(backup account: a | resource: r)
    (machine: M)(plan: P)

German white-label consoles write ``(Gruppe: ...)(Backup-Konto: ...)
(Maschine: ...)(Plan: ...)`` with ``erfolgreich`` / ``mit Warnungen`` /
``fehlgeschlagen``; Dutch ``(groep: ...)(machine: ...)(plan: ...)``.  Plan
names and group names may themselves contain parentheses, so the subject is
split on balanced parentheses.  The body repeats the status ("Backup failed"),
the workload name, the reason and "Show details", optionally followed by
Plan / Started / Finished lines.

The daily status report ("DAILY STATUS REPORT ON ... (Critical: n, ...)") is
recognised but is not a backup run (``is_report=False``).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser,
    status_from_word, parse_with_formats,
)

SOFTWARE = "Acronis Cyber Protect"

# Keys of the parenthesised subject parts, per language (lower case).
_GROUP_KEYS = {"group", "gruppe", "groep", "groupe", "grupo", "gruppo"}
_MACHINE_KEYS = {"machine", "maschine", "computer", "rechner", "ordinateur", "máquina", "macchina",
                 "workload", "arbeitslast"}
_RESOURCE_KEYS = {"resource", "ressource", "bron", "recurso", "risorsa"}
_PLAN_KEYS = {"plan", "protection plan", "schutzplan", "backup plan", "backup-plan", "plano", "piano",
              "beschermingsplan"}

# Subject: status words then at least one "(key: value)" with a known key.
_SUBJECT_RE = re.compile(
    r"^\s*[^()]{3,80}?\s*\(\s*(?:group|gruppe|groep|groupe|grupo|gruppo|machine|maschine|plan|resource|ressource)\s*:",
    re.IGNORECASE,
)
_DAILY_RE = re.compile(
    r"^\s*(?:daily status report|täglicher statusbericht|statusbericht|dagelijks statusrapport|"
    r"rapport d'état quotidien|weekly status report|monthly status report)",
    re.IGNORECASE,
)

_WARN_RE = re.compile(r"warn|waarschuw|avertissement|advertencia|avvis", re.IGNORECASE)
_FAIL_RE = re.compile(
    r"fail|fehlgeschlagen|fehler|mislukt|échec|echec|error|fout|did not start|not started|"
    r"nicht gestartet|niet gestart|missed|verpasst|gemist|canceled|cancelled|abgebrochen|geannuleerd",
    re.IGNORECASE,
)
_OK_RE = re.compile(r"succe|erfolgreich|geslaagd|gelukt|réussi|reussi|voltooid|abgeschlossen|completed|ok\b",
                    re.IGNORECASE)

_DETAILS_RE = re.compile(
    r"^(?:show details|details anzeigen|details weergeven|details tonen|afficher les détails|"
    r"view details|manage data protection|plan|plan-name|plan name|started|finished|start|ende|end|"
    r"gestartet|beendet|this is an automatic|dies ist eine automatische|dit is een automatische|"
    r"backup-dauer|duration|dauer|duur|device|gerät|apparaat|where to back up|speicherort|group|gruppe|"
    r"groep|account|konto|date|datum|view in web console|in der web-konsole|if you have any questions)\b",
    re.IGNORECASE,
)
_TIME_LINE_RE = {
    "start": re.compile(r"^\s*(?:started|start time|start|gestartet|startzeit|gestart|begonnen|début)\s*:?\s+(.+?)\s*$",
                        re.IGNORECASE | re.MULTILINE),
    "end": re.compile(r"^\s*(?:finished|completed|end time|end|beendet|endzeit|ende|voltooid|beëindigd|fin)\s*:?\s+"
                      r"(\d.+?)\s*$", re.IGNORECASE | re.MULTILINE),
}
_SEVERITY_WORDS = {"critical", "error", "warning", "information", "kritisch", "fehler", "warnung",
                   "kritiek", "fout", "waarschuwing", "informatie"}
_DATE_LINE_RE = re.compile(r"^\s*(?:date and time|date & time|datum und uhrzeit|datum en tijd)\s*:?\s+(.+?)\s*$",
                           re.IGNORECASE | re.MULTILINE)
_PLAN_LINE_RE = re.compile(r"^\s*(?:plan-name|plan name|planname|schutzplan|plan)\s*:?\s+(.+?)\s*$",
                           re.IGNORECASE | re.MULTILINE)

_DT_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p",
    "%d %b %Y %H:%M:%S", "%d %B %Y %H:%M:%S",
)


def _parse_dt(value: str, msg: Message) -> Optional[datetime]:
    value = re.sub(r"\s+", " ", value or "").strip()
    value = re.sub(r"\s*\((?:UTC|GMT)?[^)]*\)\s*$", "", value)
    return parse_with_formats(value, _DT_FORMATS, msg)


def split_parenthesised(subject: str) -> tuple[str, list[tuple[str, str]]]:
    """Split 'HEAD (k: v)(k2: v (x))' into ('HEAD', [('k', 'v'), ('k2', 'v (x)')]).

    Only top-level parenthesised groups that look like 'key: value' are returned;
    nested parentheses stay inside the value.
    """
    head_end = None
    parts: list[tuple[str, str]] = []
    depth = 0
    start = -1
    for i, ch in enumerate(subject):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
            if depth == 0 and start >= 0:
                inner = subject[start + 1:i]
                m = re.match(r"\s*([^:()]{1,40}?)\s*:\s*(.*)$", inner, re.DOTALL)
                if m:
                    if head_end is None:
                        head_end = start
                    parts.append((m.group(1).strip().lower(), re.sub(r"\s+", " ", m.group(2)).strip()))
    head = subject[:head_end] if head_end is not None else subject
    return head.strip(), parts


def _status_from_words(words: str) -> Optional[str]:
    if _WARN_RE.search(words):
        return WARNING
    if _FAIL_RE.search(words):
        return FAILED
    if _OK_RE.search(words):
        return SUCCESS
    return status_from_word(words)


def _backup_type(head: str) -> str:
    h = head.strip().lower()
    if re.match(r"^(?:backup|back-up|sicherung|sauvegarde|copia)", h):
        return "Backup"
    for word, label in (("replicat", "Replication"), ("validat", "Validation"), ("replikat", "Replication"),
                        ("validier", "Validation"), ("restore", "Recovery"), ("recover", "Recovery"),
                        ("wiederherstell", "Recovery")):
        if word in h:
            return label
    return "Backup"


class AcronisAlertParser(Parser):
    name = "acronis_alert"
    product = SOFTWARE
    types = ("Backup",)
    sender_contains = ("acronis",)
    subject_patterns = (
        r"^(?:backup|back-up|sicherung)\b[^()]*\((?:group|gruppe|groep)\s*:",
        r"\((?:machine|maschine|resource|ressource)\s*:[^)]*\)\s*\(plan\s*:",
    )
    body_markers = ("Acronis Cyber Protect", "Acronis Backup")
    description = ("Acronis Cyber Protect (Cloud) alert per plan run: subject '<STATUS> (group: ...)"
                   "(machine|resource: ...)(plan: ...)' in English, German or Dutch; the machine or "
                   "resource becomes the object, the plan the job.")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        if "(" not in subj:
            return None
        if _DAILY_RE.match(subj) and ("acronis" in msg.from_address or re.search(r"\((?:group|gruppe|groep)\s*:",
                                                                                subj, re.IGNORECASE)):
            return "Acronis daily status report subject"
        if not _SUBJECT_RE.match(subj):
            return None
        head, parts = split_parenthesised(subj)
        keys = {k for k, _ in parts}
        if not keys & (_PLAN_KEYS | _MACHINE_KEYS | _RESOURCE_KEYS):
            return None
        if "acronis" in msg.from_address:
            return "sender contains 'acronis' and subject has Acronis alert parts"
        if keys & _GROUP_KEYS and keys & _PLAN_KEYS:
            return "subject has Acronis alert parts (group, plan)"
        if "acronis" in msg.text.lower() or "acronis" in msg.html.lower():
            return "subject has Acronis alert parts and body mentions Acronis"
        return None

    def parse(self, msg: Message) -> ParseResult:
        subj = msg.subject
        if _DAILY_RE.match(subj):
            return ParseResult(software=None, backup_type=None, is_report=False,
                               reason="Acronis daily status report (alert digest, not a backup run)")
        head, parts = split_parenthesised(subj)
        def pick(keys: set[str]) -> Optional[str]:
            for k, v in parts:
                if k in keys and v:
                    return v
            return None

        plan = pick(_PLAN_KEYS)
        machine = pick(_MACHINE_KEYS)
        resource = pick(_RESOURCE_KEYS)
        status = _status_from_words(head)

        text = msg.text or ""
        if not plan:
            m = _PLAN_LINE_RE.search(text)
            if m:
                plan = m.group(1)
        obj_name = machine or resource
        obj_type = "Machine" if machine else "Resource"
        objects: list[ParsedObject] = []
        if obj_name:
            message = "" if status == SUCCESS else self._reason(text, obj_name, head)
            objects.append(ParsedObject(name=obj_name, type=obj_type, status=status, message=message))

        started = ended = None
        m = _TIME_LINE_RE["start"].search(text)
        if m:
            started = _parse_dt(m.group(1), msg)
        m = _TIME_LINE_RE["end"].search(text)
        if m:
            ended = _parse_dt(m.group(1), msg)
        if ended is None:
            m = _DATE_LINE_RE.search(text)
            if m:
                ended = _parse_dt(m.group(1), msg)

        return ParseResult(
            software=SOFTWARE,
            backup_type=_backup_type(head),
            job_name=plan or obj_name,
            overall_status=status,
            started_at=started,
            ended_at=ended,
            objects=objects,
        )

    @staticmethod
    def _reason(text: str, obj_name: str, head: str) -> str:
        """The failure/warning reason: the lines after the workload name, up to 'Show details'."""
        lines = [ln.strip() for ln in text.splitlines()]
        target = obj_name.strip().lower()
        idx = None
        for i, ln in enumerate(lines):
            if ln.lower() == target:
                idx = i
                break
        if idx is None:
            # The body may spell the workload differently (FQDN vs short name): take the
            # line after the status heading ("Backup failed") as the workload instead.
            heading = re.sub(r"\s+", " ", head).strip().lower()
            for i, ln in enumerate(lines):
                if heading and ln.lower() == heading:
                    j = i + 1
                    while j < len(lines) and not lines[j]:
                        j += 1
                    idx = j if j < len(lines) else None
                    break
        if idx is None:
            return ""
        out: list[str] = []
        for ln in lines[idx + 1:]:
            if not ln:
                if out:
                    break
                continue
            if ln.lower() in _SEVERITY_WORDS:
                continue
            if _DETAILS_RE.match(ln):
                break
            out.append(ln)
        return " ".join(out).strip()


_QUOTED_PLAN_RE = re.compile(
    r"(?:backup\s+plan|protection\s+plan|plan|task|activity|sicherungsplan|schutzplan|aufgabe|taak)\s*"
    r"[:]?\s*['\"\u2018\u201c\u201e](?P<name>[^'\"\u2019\u201d\u201c]{1,120})['\"\u2019\u201d\u201c]",
    re.IGNORECASE)
_QUOTED_MACHINE_RE = re.compile(
    r"(?:machine|maschine|computer|rechner)\s*[:]?\s*['\"\u2018\u201c\u201e](?P<name>[^'\"\u2019\u201d\u201c]{1,80})"
    r"['\"\u2019\u201d\u201c]", re.IGNORECASE)
_LEGACY_STATUS_RE = re.compile(
    r"succe|erfolgreich|fail|fehlgeschlagen|warn|error|fehler|mislukt|geslaagd|completed|abgeschlossen|"
    r"did not start|cancel", re.IGNORECASE)


class AcronisNotificationParser(Parser):
    """Older / on-premises Acronis notifications without the '(key: value)' subject parts.

    Acronis Backup (& Recovery) and on-premises Cyber Protect mail per task or
    activity with the product name in the sender or subject and the plan/task
    and machine quoted ("Task 'Nightly' ... machine 'SRV01' ... succeeded").
    Only claimed when the product is named and both a status word and a
    quoted plan/task are present.
    """

    name = "acronis_notification"
    product = SOFTWARE
    types = ("Backup",)
    sender_contains = ("acronis",)
    subject_patterns = (r"acronis.*(?:succe|fail|warn|error|erfolgreich|fehlgeschlagen)",)
    body_markers = ()
    description = ("Acronis Backup / on-premises notifications naming the product, with a quoted plan or task "
                   "and a status word; the quoted machine becomes the object.")

    def matches(self, msg: Message) -> Optional[str]:
        subj = msg.subject
        named = ("acronis" in msg.from_address or "acronis" in msg.from_name.lower()
                 or "acronis" in subj.lower())
        if not named or not _LEGACY_STATUS_RE.search(subj):
            return None
        if _QUOTED_PLAN_RE.search(subj) or _QUOTED_PLAN_RE.search((msg.text or "")[:3000]):
            return "Acronis notification with a quoted plan/task and a status word"
        return None

    def parse(self, msg: Message) -> ParseResult:
        subj = msg.subject
        text = msg.text or ""
        m = _QUOTED_PLAN_RE.search(subj) or _QUOTED_PLAN_RE.search(text[:3000])
        plan = m.group("name").strip() if m else None
        mm = _QUOTED_MACHINE_RE.search(subj) or _QUOTED_MACHINE_RE.search(text[:3000])
        machine = mm.group("name").strip() if mm else None
        head = _QUOTED_PLAN_RE.sub(" ", subj)
        head = _QUOTED_MACHINE_RE.sub(" ", head)
        status = _status_from_words(head)
        objects = []
        if machine:
            message = ""
            if status != SUCCESS:
                em = re.search(r"^\s*(?:error|fehler|fout|reason|ursache|message|meldung)\s*:\s*(.+?)\s*$",
                               text, re.IGNORECASE | re.MULTILINE)
                message = em.group(1) if em else ""
            objects.append(ParsedObject(name=machine, type="Machine", status=status, message=message))
        started = ended = None
        sm = _TIME_LINE_RE["start"].search(text)
        if sm:
            started = _parse_dt(sm.group(1), msg)
        em2 = _TIME_LINE_RE["end"].search(text)
        if em2:
            ended = _parse_dt(em2.group(1), msg)
        return ParseResult(software=SOFTWARE, backup_type="Backup", job_name=plan or machine,
                           overall_status=status, started_at=started, ended_at=ended, objects=objects)


PARSERS: list[Parser] = [AcronisAlertParser(), AcronisNotificationParser()]
