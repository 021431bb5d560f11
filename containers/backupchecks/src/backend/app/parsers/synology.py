"""Synology DSM notification mails: Hyper Backup, Active Backup for Business,
USB Copy and Snapshot Replication.

DSM writes these mails in the device's language (English, German, Dutch, ...)
through its notification service (often sent by ``sns@synologynotification.com``,
otherwise by the NAS's own SMTP settings). The subject carries a configurable
prefix, usually ``[<NAS>]``; the body ends with ``From <NAS>`` / ``Von <NAS>`` /
``Van <NAS>``.

Hyper Backup (real German DSM 7 mails, see the sample corpus):
  subject ``[prefix] <destination> backup - <task> erfolgreich auf <NAS>``;
  body ``Ihre Datensicherungsaufgabe <task> ist jetzt abgeschlossen.`` or
  ``Die Datensicherung auf <NAS> ist fehlgeschlagen.`` then label lines
  ``Datensicherungsaufgabe: / (Daten)Sicherungsziel: / Startzeit: / Dauer:``
  (English ``Backup Task: / Backup Destination: / Start Time: / Duration:``,
  Dutch ``Back-uptaak: / Back-upbestemming: / Starttijd: / Duur:``).
Active Backup for Business: ``<prefix> Active Backup for Business - Backup task
  <task> on <NAS> was partially completed`` with ``Start time / End time /
  Device list`` lines (Microsoft 365 / Google Workspace: ``backup task [<task>]
  on [<NAS>] ...``).
USB Copy: ``USB Copy task <task> on <NAS> has completed``.
Snapshot Replication: replication / snapshot task notifications, also DSM's own
  event sentences that name the shared folder (or LUN) in brackets without naming
  the package (``The replication of shared folder [X] ... has failed.``,
  ``Failed to take a snapshot of shared folder [X] ...``, German ``Replikation /
  Snapshot des freigegebenen Ordners [X]``, Dutch ``replicatie van gedeelde map
  [X]``); a failure's ``Reason:`` line, else its opening sentences, is the run's
  message.

The status comes from the wording (subject and opening sentence) in any of the
supported languages, with the task name blanked out first so a task called
"Failover" cannot fail a run.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

from .base import (
    FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, Parser, clean_text, status_from_rules,
)
from .dates import mail_tz, parse_datetime

HB = "Synology Hyper Backup"
ABB = "Synology Active Backup for Business"
USB = "Synology USB Copy"
SR = "Synology Snapshot Replication"

# --------------------------------------------------------------------------- status wording

# Warnings first: "partially completed", "completed with errors".
_STATUS_RULES = (
    (WARNING, re.compile(
        r"partially\s+complete|partially\s+succe|partial\s+success|gedeeltelijk|teilweise|with\s+warnings?|"
        r"mit\s+warnung|met\s+waarschuwing|completed\s+with\s+(?:errors?|exceptions?)|some\s+files|einige\s+dateien|"
        r"sommige\s+bestanden|partiellement|parzialmente|delvist|\bskipped\b|übersprungen|overgeslagen",
        re.IGNORECASE)),
    (FAILED, re.compile(
        r"\bfail(?:ed|ure|s)?\b|fehlgeschlagen|fehler\b|mislukt|misluk|\bcould\s+not\b|\bcannot\b|konnte\s+nicht|"
        r"kon\s+niet|niet\s+gelukt|\bcancel+ed\b|abgebrochen|geannuleerd|interrupted|unterbrochen|onderbroken|"
        r"\bsuspended\b|angehalten|\baborted\b|\berror\b|échoué|non\s+riuscit|fallit|mislykkedes",
        re.IGNORECASE)),
    (SUCCESS, re.compile(
        r"successful|successfully|succeeded|\bis\s+now\s+complete|\bhas\s+completed\b|\bhas\s+been\s+completed|"
        r"\bcompleted\b|\bcomplete\b|\bfinished\b|erfolgreich|abgeschlossen|fertiggestellt|beendet|geslaagd|voltooid|"
        r"succesvol|gelukt|afgerond|terminé|réussi|completat|riuscit|fuldført|gennemført",
        re.IGNORECASE)),
)


_NEGATED_RE = re.compile(r"\b(?:no|zero|0)\s+(?:errors?|problems?|failures?|warnings?)\b|keine\s+(?:Fehler|Probleme)|"
                         r"geen\s+(?:fouten|problemen)|without\s+errors?|ohne\s+Fehler|zonder\s+fouten",
                         re.IGNORECASE)


def _status_of(*texts: str, blank: Optional[str] = None) -> Optional[str]:
    joined = " | ".join(t for t in texts if t)
    if blank:
        joined = joined.replace(blank, " ")
    return status_from_rules(_NEGATED_RE.sub(" ", joined), _STATUS_RULES)


# --------------------------------------------------------------------------- shared helpers

_LABEL_LINE = r"^[ \t]*(?:{labels})[ \t]*[:：][ \t]*(?P<v>[^\r\n]*?)[ \t]*$"


def _label_re(*labels: str) -> re.Pattern:
    return re.compile(_LABEL_LINE.format(labels="|".join(labels)), re.IGNORECASE | re.MULTILINE)


_FROM_LINE_RE = re.compile(r"^[ \t]*(?:From|Von|Van|De|Da|Fra|Från|Z)[ \t]+(\S[^\r\n]*?)[ \t]*$", re.MULTILINE)
_PREFIX_RE = re.compile(r"^\s*\[([^\]]+)\]\s*")
_DURATION_PART_RE = re.compile(
    r"(\d+)\s*(Tag|Tage|Tagen|dag|dagen|day|days|Stunde|Stunden|uur|Uur|hour|hours|Std|h|Minute|Minuten|minuut|"
    r"minuten|minute|minutes|min|Sekunde|Sekunden|seconde|seconden|second|seconds|sec|s)\b",
    re.IGNORECASE)


def _duration(text: str) -> Optional[timedelta]:
    total = 0
    found = False
    for num, unit in _DURATION_PART_RE.findall(text or ""):
        u = unit.lower()
        n = int(num)
        found = True
        if u.startswith(("tag", "dag", "day")):
            total += n * 86400
        elif u.startswith(("stund", "uur", "hour", "std")) or u == "h":
            total += n * 3600
        elif u.startswith(("min",)):
            total += n * 60
        else:
            total += n
    return timedelta(seconds=total) if found else None


def _dt(value: Optional[str], msg: Message):
    """A report time; an ambiguous numeric date that would lie after the mail was sent is read the other way."""
    if not value:
        return None
    tz = mail_tz(msg)
    first = parse_datetime(value, default_tz=tz)
    if first is None or msg.date is None or msg.date.tzinfo is None:
        return first
    limit = msg.date + timedelta(hours=1)
    if first <= limit:
        return first
    for dayfirst in (False, True):
        other = parse_datetime(value, default_tz=tz, dayfirst=dayfirst)
        if other is not None and other <= limit:
            return other
    return first


def _host(msg: Message) -> Optional[str]:
    """The NAS name: the 'From <NAS>' closing line, else the subject's [prefix]."""
    lines = [m.group(1) for m in _FROM_LINE_RE.finditer(msg.text)]
    for cand in reversed(lines):
        cand = cand.strip()
        if cand and len(cand) <= 64 and not re.search(r"[\s:@]", cand):
            return cand
    m = _PREFIX_RE.match(msg.subject)
    return m.group(1).strip() if m else None


def _first_sentences(msg: Message, n: int = 3) -> str:
    out = []
    for line in msg.text.splitlines():
        s = line.strip()
        if not s:
            continue
        if re.match(r"^(Dear|Sehr geehrte[rs]?|Beste|Geachte|Hallo|Hello|Hi)\b", s, re.IGNORECASE):
            continue
        out.append(s)
        if len(out) >= n:
            break
    return " ".join(out)


def _first_value(rx: re.Pattern, text: str) -> Optional[str]:
    m = rx.search(text)
    if m:
        v = clean_text(m.group("v"))
        return v or None
    return None


_SYNO_SENDER = ("synologynotification.com", "synology")


def _is_synology_context(msg: Message) -> bool:
    if any(s in msg.from_address for s in _SYNO_SENDER):
        return True
    low = msg.text.lower()
    return ("synology" in low or "hyper backup" in low or "active backup" in low or "usb copy" in low
            or ".hbk" in low or "dsm" in low or bool(_FROM_LINE_RE.search(msg.text)))


# --------------------------------------------------------------------------- Hyper Backup

_HB_TASK_RE = _label_re("Backup Task", "Backup task", "Datensicherungsaufgabe", "Sicherungsaufgabe", "Back-uptaak",
                        "Backuptaak", "Back-up taak", "Tâche de sauvegarde", "Attività di backup", "Backupopgave")
_HB_DEST_RE = _label_re("Backup Destination", "Backup destination", "Datensicherungsziel", "Sicherungsziel",
                        "Back-upbestemming", "Backupbestemming", "Back-up bestemming", "Destination de sauvegarde",
                        "Destinazione backup", "Backupdestination")
_HB_START_RE = _label_re("Start Time", "Start time", "Startzeit", "Start", "Starttijd", "Begintijd",
                         "Heure de début", "Ora di inizio", "Starttid")
_HB_DUR_RE = _label_re("Duration", "Dauer", "Duur", "Durée", "Durata", "Varighed")
# '<destination> backup - <task> <status> on <NAS>' (any language: the ' - ' split is the stable part)
_HB_SUBJECT_RE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?P<dest>.+?\b(?:backup|back-up|sicherung|datensicherung))\s+-\s+"
                            r"(?P<rest>.+)$", re.IGNORECASE)
_HB_SENTENCE_RE = re.compile(
    r"(?:backup task|Datensicherungsaufgabe|Sicherungsaufgabe|back-uptaak|backuptaak)\s+\[?(?P<task>.+?)\]?\s+"
    r"(?:is|ist|has|was|wurde|werd|on|auf|op)\b", re.IGNORECASE)
_HB_MARKERS = ("Hyper Backup", ".hbk")
_INTEGRITY_RE = re.compile(r"integrity check|Integritätsprüfung|Integritätsprüfung|integriteitscontrole|"
                           r"integriteitscheck|controllo di integrità", re.IGNORECASE)


class SynologyHyperBackupParser(Parser):
    """Hyper Backup task result in any DSM language: a 'Backup Task:' label line (EN/DE/NL/...) together with a
    backup destination label or 'Hyper Backup'/.hbk, or a subject '[prefix] <destination> backup - <task>
    <result> on <NAS>' from a Synology sender.
    """

    name = "synology_hyper_backup"
    product = HB
    types = ("Backup task", "Integrity check")
    sender_contains = ("synologynotification.com",)
    subject_patterns = (_HB_SUBJECT_RE.pattern,)
    body_markers = ("Backup Task:", "Datensicherungsaufgabe:", "Back-uptaak:", "Hyper Backup", ".hbk")

    def matches(self, msg: Message) -> Optional[str]:
        text = msg.text
        low_subj = msg.subject.lower()
        if "active backup" in low_subj or "usb copy" in low_subj:
            return None
        has_task = _HB_TASK_RE.search(text) is not None
        if has_task and (_HB_DEST_RE.search(text) or any(m.lower() in text.lower() for m in _HB_MARKERS)):
            return "body has Hyper Backup task and destination lines"
        if "hyper backup" in low_subj and _status_of(msg.subject):
            return "subject names Hyper Backup"
        if "Hyper Backup" in text and _HB_SENTENCE_RE.search(_first_sentences(msg, 2)):
            return "body names Hyper Backup with a backup task sentence"
        if _HB_SUBJECT_RE.search(msg.subject) and "synologynotification.com" in msg.from_address:
            return "Synology notification with a Hyper Backup subject"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text
        host = _host(msg)
        task = _first_value(_HB_TASK_RE, text)
        if not task:
            sm = _HB_SENTENCE_RE.search(_first_sentences(msg))
            task = sm.group("task").strip() if sm else None
        if not task:
            task = self._task_from_subject(msg.subject, host)
        opening = _first_sentences(msg, 2)
        status = _status_of(opening, blank=task) or _status_of(self._subject_rest(msg.subject), blank=task)
        start = _first_value(_HB_START_RE, text)
        started = _dt(start, msg)
        ended = None
        dur = _duration(_first_value(_HB_DUR_RE, text) or "")
        if started is not None and dur is not None:
            ended = started + dur
        kind = "Integrity check" if _INTEGRITY_RE.search(msg.subject + " " + opening) else "Backup task"
        return ParseResult(software=HB, backup_type=kind, job_name=task, overall_status=status,
                           started_at=started, ended_at=ended, objects=[])

    @staticmethod
    def _subject_rest(subject: str) -> str:
        m = _HB_SUBJECT_RE.search(subject)
        return m.group("rest") if m else subject

    @staticmethod
    def _task_from_subject(subject: str, host: Optional[str]) -> Optional[str]:
        m = _HB_SUBJECT_RE.search(subject)
        if not m:
            return None
        rest = m.group("rest").strip()
        if host:
            rest = re.sub(r"\s+(?:on|auf|op|sur|su|på)\s+" + re.escape(host) + r"\s*$", "", rest, flags=re.IGNORECASE)
        # drop the trailing result words
        rest = re.sub(r"\s+(?:is\s+|ist\s+|was\s+|has\s+)?(?:partially\s+completed|gedeeltelijk\s+voltooid|teilweise\s+"
                      r"abgeschlossen|successful|erfolgreich|geslaagd|voltooid|failed|fehlgeschlagen|mislukt|"
                      r"completed|abgeschlossen|succeeded)\s*$", "", rest, flags=re.IGNORECASE)
        return rest.strip() or None


# --------------------------------------------------------------------------- Active Backup for Business

_ABB_SUBJECT_RE = re.compile(r"Active Backup for (?:Business|Microsoft 365|Office 365|Google Workspace|G Suite)",
                             re.IGNORECASE)
_ABB_TASK_SENT_RE = re.compile(
    r"(?:backup\s*task|backup-?taak|back-uptaak|sicherungsaufgabe|datensicherungsaufgabe|backup-?aufgabe|"
    r"attivit[aà] di backup|backupopgave(?:n)?|t[aâ]che de sauvegarde|task)\s+\[?(?P<task>.+?)\]?\s+"
    r"(?:on|auf|op|su|p[aå]|sur)\s+\[?(?P<host>[^\s\]]+)\]?", re.IGNORECASE)
_ABB_START_RE = _label_re("Start time", "Start Time", "Startzeit", "Starttijd", "Begintijd", "Ora d'inizio", "Ora d’inizio",
                          "Ora di inizio", "Starttidspunkt", "Heure de début")
_ABB_END_RE = _label_re("End time", "End Time", "Endzeit", "Eindtijd", "Ora di fine", "Sluttidspunkt",
                        "Heure de fin")
_ABB_DEVICES_RE = _label_re("Device list", "Device List", "Devices", "Geräteliste", "Geräte", "Apparatenlijst",
                            "Apparaatlijst", "Lijst met apparaten", "Apparaten", "Elenco dispositivi",
                            "Enhedsliste", "Liste des appareils", "Virtual machine list", "VM list",
                            "Liste der virtuellen Maschinen", "Lijst met virtuele machines", "Server list",
                            "Serverliste", "Serverlijst", "Account list", "User list", "Benutzerliste",
                            "Gebruikerslijst")
# Per-result device lists (when the mail splits devices by outcome).
_ABB_RESULT_LISTS = (
    (_label_re("Failed devices", "Failed device list", "Fehlgeschlagene Geräte", "Mislukte apparaten",
               "Dispositivi non riusciti"), FAILED),
    (_label_re("Partially completed devices", "Devices with warnings", "Teilweise abgeschlossene Geräte",
               "Gedeeltelijk voltooide apparaten", "Apparaten met waarschuwingen"), WARNING),
    (_label_re("Successful devices", "Succeeded devices", "Completed devices", "Erfolgreiche Geräte",
               "Geslaagde apparaten", "Voltooide apparaten", "Dispositivi completati"), SUCCESS),
)
_ABB_KIND_HINTS = (
    (re.compile(r"Microsoft 365|Office 365", re.IGNORECASE), "Microsoft 365 backup task", "Account"),
    (re.compile(r"Google Workspace|G Suite", re.IGNORECASE), "Google Workspace backup task", "Account"),
    (re.compile(r"virtual machine|virtuelle maschine|virtuele machine|\bVM list|\bVM-Liste|hypervisor",
                re.IGNORECASE), "VM backup task", "VM"),
    (re.compile(r"file server|dateiserver|bestandsserver|file-server", re.IGNORECASE),
     "File server backup task", "File server"),
    (re.compile(r"physical server|physischer server|fysieke server|server list|serverliste|serverlijst",
                re.IGNORECASE), "Physical server backup task", "Server"),
)


class SynologyActiveBackupParser(Parser):
    """Subject or body naming 'Active Backup for Business' (or Active Backup for Microsoft 365 / Google
    Workspace) with a backup task result; device list becomes the objects.
    """

    name = "synology_active_backup"
    product = ABB
    types = ("PC backup task", "Physical server backup task", "VM backup task", "File server backup task",
             "Microsoft 365 backup task", "Google Workspace backup task")
    sender_contains = ("synologynotification.com",)
    subject_patterns = (_ABB_SUBJECT_RE.pattern,)
    body_markers = ("Active Backup for Business",)

    def matches(self, msg: Message) -> Optional[str]:
        if _ABB_SUBJECT_RE.search(msg.subject):
            return "subject names Active Backup"
        if "Active Backup for" in msg.text[:2000] and _ABB_TASK_SENT_RE.search(msg.text[:2000]):
            return "body names Active Backup with a backup task"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text
        subj = msg.subject
        after = _ABB_SUBJECT_RE.split(subj, 1)
        subj_tail = after[-1] if len(after) > 1 else subj
        opening = _first_sentences(msg, 2)
        m = _ABB_TASK_SENT_RE.search(subj_tail) or _ABB_TASK_SENT_RE.search(opening)
        task = m.group("task").strip() if m else None
        status = _status_of(subj_tail, opening, blank=task)
        # The kind of task from the subject, the opening and the label names, never from device names.
        labels = " ".join(line.split(":", 1)[0] for line in text.splitlines() if ":" in line)
        hay = subj + "\n" + _first_sentences(msg, 1) + "\n" + labels
        backup_type, obj_type = "PC backup task", "PC"
        for rx, bt, ot in _ABB_KIND_HINTS:
            if rx.search(hay):
                backup_type, obj_type = bt, ot
                break
        found = []
        for rx, st in _ABB_RESULT_LISTS:
            lm = rx.search(text)
            if not lm:
                continue
            for i, d in enumerate(re.split(r"\s*[,;]\s*", clean_text(lm.group("v")))):
                if d and d not in ("-", "0"):
                    found.append((lm.start(), i, ParsedObject(name=d, type=obj_type, status=st, message="")))
        objects = [o for _, _, o in sorted(found, key=lambda t: (t[0], t[1]))]  # in the report's order
        devices = None if objects else _first_value(_ABB_DEVICES_RE, text)
        if devices:
            for d in re.split(r"\s*[,;]\s*", devices):
                d = d.strip()
                if d:
                    objects.append(ParsedObject(name=d, type=obj_type, status=status, message=""))
        return ParseResult(software=ABB, backup_type=backup_type, job_name=task, overall_status=status,
                           started_at=_dt(_first_value(_ABB_START_RE, text), msg),
                           ended_at=_dt(_first_value(_ABB_END_RE, text), msg), objects=objects)


# --------------------------------------------------------------------------- USB Copy

_USB_RE = re.compile(r"USB\s*Copy", re.IGNORECASE)
_USB_TASK_RE = _label_re("Task name", "Task Name", "Aufgabenname", "Taaknaam", "Taak", "Aufgabe", "Task")
_USB_SENT_RE = re.compile(r"USB\s*Copy[- ](?:task|Aufgabe|taak)\s+\[?(?P<task>.+?)\]?\s+"
                          r"(?:on|auf|op|has|is|was|wurde|ist|werd|heeft)\b", re.IGNORECASE)
_USB_START_RE = _label_re("Start time", "Start Time", "Startzeit", "Starttijd")
_USB_END_RE = _label_re("End time", "End Time", "Endzeit", "Eindtijd")


class SynologyUsbCopyParser(Parser):
    """Synology USB Copy task result: 'USB Copy task <task> on <NAS> has completed/failed' (any language)."""

    name = "synology_usb_copy"
    product = USB
    types = ("USB Copy task",)
    subject_patterns = (_USB_RE.pattern,)
    body_markers = ("USB Copy",)

    def matches(self, msg: Message) -> Optional[str]:
        if _USB_RE.search(msg.subject) and (_USB_SENT_RE.search(msg.subject) or _USB_RE.search(msg.text)):
            return "subject names a USB Copy task"
        if _USB_SENT_RE.search(_first_sentences(msg, 3)) and _is_synology_context(msg):
            return "body names a USB Copy task"
        return None

    def parse(self, msg: Message) -> ParseResult:
        text = msg.text
        task = _first_value(_USB_TASK_RE, text)
        opening = _first_sentences(msg, 2)
        if not task:
            m = _USB_SENT_RE.search(msg.subject) or _USB_SENT_RE.search(opening)
            task = m.group("task").strip() if m else None
        status = _status_of(opening, blank=task) or _status_of(msg.subject, blank=task)
        return ParseResult(software=USB, backup_type="USB Copy task", job_name=task, overall_status=status,
                           started_at=_dt(_first_value(_USB_START_RE, text), msg),
                           ended_at=_dt(_first_value(_USB_END_RE, text), msg), objects=[])


# --------------------------------------------------------------------------- Snapshot Replication

_SR_RE = re.compile(r"Snapshot Replication|Snapshot-Replikation|Snapshotreplicatie|Momentopname", re.IGNORECASE)
_SR_REPL_SENT_RE = re.compile(
    r"(?:replication task|Replikationsaufgabe|replicatietaak|Replikationsauftrag)\s+\[?(?P<task>.+?)\]?\s+"
    r"(?:on|auf|op|of|for|für|voor|from|has|is|was|wurde|ist|werd)\b", re.IGNORECASE)
_SR_SNAP_SENT_RE = re.compile(
    r"(?:snapshot of|Snapshot (?:des|von)|snapshot van|momentopname van)\s+(?:the\s+|der\s+|de\s+|het\s+)?"
    r"(?:shared folder|freigegebene[nm]? Ordners?|gedeelde map|LUN)?\s*\[?(?P<task>[^\]\s]+(?: [^\]\s]+)*?)\]?"
    r"(?:\s+(?:on|auf|op|has|is|was|wurde|ist|werd|could|konnte|kon)\b|[.]|$)", re.IGNORECASE)
_SR_TASK_RE = _label_re("Replication task", "Task name", "Replikationsaufgabe", "Aufgabenname", "Replicatietaak",
                        "Taaknaam")
# DSM's own event sentences name the shared folder (or LUN) in brackets and need not name the package:
# "The replication of shared folder [Projects] from NAS-HQ to NAS-DR failed.", "Failed to take a snapshot
# of shared folder [Data] on NAS-HQ.", "Die Replikation des freigegebenen Ordners [Projekte] ist
# fehlgeschlagen.", "De replicatie van gedeelde map [Projecten] is mislukt."
_SR_OBJECT = (r"(?:the\s+|der\s+|des\s+|de\s+|het\s+)?(?:shared\s+folder|iSCSI\s+LUN|LUN|"
              r"freigegebenen?\s+Ordners?|gedeelde\s+map)\s*\[(?P<task>[^\]\r\n]+)\]")
_SR_EVENT_RE = re.compile(
    r"(?P<what>replication|Replikation|replicatie|snapshots?|momentopname)\s+(?:of|von|des|van|for|für|voor)\s+"
    + _SR_OBJECT, re.IGNORECASE)
_SR_REASON_RE = _label_re("Reason", "Cause", "Error", "Grund", "Ursache", "Fehler", "Oorzaak", "Reden", "Fout")
_SR_BOILERPLATE_RE = re.compile(r"^(?:please|bitte|ga\s+naar|go\s+to|for\s+more|weitere|meer)\b", re.IGNORECASE)


def _is_closing(sentence: str) -> bool:
    """DSM's closing 'From <NAS>' (one word after it), not a sentence that starts with Dutch 'De'."""
    m = _FROM_LINE_RE.match(sentence)
    return bool(m) and len(m.group(1).split()) == 1


def _sr_event(msg: Message) -> Optional[re.Match]:
    """DSM's bracketed replication / snapshot event sentence in the subject or the opening lines."""
    return _SR_EVENT_RE.search(msg.subject) or _SR_EVENT_RE.search(_first_sentences(msg, 4))


def _sr_reason(msg: Message) -> str:
    """What a failed or warning Snapshot Replication mail says about why: a 'Reason:' line, else its
    opening sentences without the greeting, the 'please go to ...' hint and the 'From <NAS>' closing."""
    labelled = _first_value(_SR_REASON_RE, msg.text)
    if labelled:
        return labelled
    kept = [s for s in (x.strip() for x in re.split(r"(?<=[.!])\s+", _first_sentences(msg, 4)))
            if s and not _SR_BOILERPLATE_RE.match(s) and not _is_closing(s)]
    return clean_text(" ".join(kept[:3]))


class SynologySnapshotReplicationParser(Parser):
    """Synology Snapshot Replication: replication task or scheduled snapshot result, recognised by 'Snapshot
    Replication' in subject or body plus a replication/snapshot task sentence, or by DSM's own event sentence
    naming the shared folder or LUN in brackets ('The replication of shared folder [X] ... failed', 'Failed to
    take a snapshot of shared folder [X]') in a Synology mail. A failure's or warning's reason becomes the
    run's message.
    """

    name = "synology_snapshot_replication"
    product = SR
    types = ("Replication task", "Snapshot task")
    subject_patterns = (_SR_RE.pattern,)
    body_markers = ("Snapshot Replication",)

    def matches(self, msg: Message) -> Optional[str]:
        head = msg.text[:3000]
        low = (msg.subject + " " + head).lower()
        if not any(w in low for w in ("snapshot", "momentopname", "replica", "replika")):
            return None
        if _sr_event(msg) and _is_synology_context(msg):
            return "Synology replication / snapshot event for a shared folder ('... of shared folder [name]')"
        if "snapshot" not in low and "momentopname" not in low:
            return None
        if not (_SR_RE.search(msg.subject) or _SR_RE.search(head)):
            return None
        hay = msg.subject + "\n" + _first_sentences(msg, 4)
        if _SR_REPL_SENT_RE.search(hay) or _SR_SNAP_SENT_RE.search(hay) or _first_value(_SR_TASK_RE, msg.text):
            return "Snapshot Replication task notification"
        return None

    def parse(self, msg: Message) -> ParseResult:
        opening = _first_sentences(msg, 2)
        task = _first_value(_SR_TASK_RE, msg.text)
        kind = "Replication task"
        if not task:
            m = _SR_REPL_SENT_RE.search(msg.subject) or _SR_REPL_SENT_RE.search(opening)
            if m:
                task = m.group("task").strip()
            else:
                m = _SR_SNAP_SENT_RE.search(msg.subject) or _SR_SNAP_SENT_RE.search(opening)
                if m:
                    task, kind = m.group("task").strip(), "Snapshot task"
        if not task:
            event = _sr_event(msg)
            if event:
                task = clean_text(event.group("task"))
                if event.group("what").lower() in ("snapshot", "snapshots", "momentopname"):
                    kind = "Snapshot task"
        status = _status_of(_PREFIX_RE.sub("", msg.subject), opening, blank=task)
        reason = _sr_reason(msg) if status in (FAILED, WARNING) else ""
        return ParseResult(software=SR, backup_type=kind, job_name=task, overall_status=status, objects=[],
                           message=reason)


PARSERS: list[Parser] = [
    SynologyActiveBackupParser(),
    SynologyUsbCopyParser(),
    SynologySnapshotReplicationParser(),
    SynologyHyperBackupParser(),
]
