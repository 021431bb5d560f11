"""QNAP Hybrid Backup Sync (HBS 3) job events delivered by the QTS/QuTS Notification Center.

Format (see the corpus samples' format_source): subject
``[<Severity>] [Hybrid Backup Sync] Notification from your device: <NAS>``
(German ``Benachrichtigung von Ihrem Gerät``, Italian ``Notifica dal dispositivo``,
...), body lines in the device's language::

    NAS Name: <NAS>            (NAS-Name / NAS-naam / Nome NAS)
    Severity: Information      (Schweregrad: Fehler / Ernst: Fout / Gravità)
    Date/Time: 2024/05/14 02:13:44
    App Name: Hybrid Backup Sync
    Category: Job Status
    Message: [Hybrid Backup Sync] Finished Backup job: "Daily-to-S3".

The message text carries the job type, the quoted job name and the outcome;
labels are not relied upon (only the ``[Hybrid Backup Sync]`` message line).
A "job started" event is recognised as not being a result. For a failed or
warning event that line is the reason the mail gives (``Failed to complete
Backup job: "X". Error: Insufficient storage space on the destination.``), so
it becomes the result's ``message`` (the run's message); a success carries none.
Where the reason stands on a line of its own under the event (``Error: ...`` /
``Reason: ...``, or after a ``<br>`` in the HTML message cell) it is part of the
message too. Some firmware writes the subject as ``[Error][<NAS>] Hybrid Backup
Sync``; its severity counts like the other form's.
"""
from __future__ import annotations

import re
from typing import Optional

from .base import FAILED, SUCCESS, WARNING, Message, ParseResult, Parser, clean_text, first_group, status_from_rules
from .dates import mail_tz, parse_datetime

SOFTWARE = "QNAP Hybrid Backup Sync"

_HBS_RE = re.compile(r"Hybrid\s*Backup\s*Sync|\bHBS\s*3?\b", re.IGNORECASE)
_MSG_RE = re.compile(r"\[(?:Hybrid Backup Sync|HBS ?3?)\]\s*(?P<m>[^\r\n]+)", re.IGNORECASE)
_QUOTED_RE = re.compile(r"[\"“”„«»](?P<n>[^\"“”„«»]+)[\"“”„«»]|'(?P<s>[^']+)'|\[(?P<b>[^\]]+)\]")
_DATE_RE = re.compile(r"(?<!\d)(\d{4}[/.-]\d{1,2}[/.-]\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2})?)")
# "[Error] [Hybrid Backup Sync] Notification from your device: NAS" and "[Error][NAS] Hybrid Backup Sync"
_SEVERITY_TAG_RE = re.compile(r"\[(?P<s>[^\]]+)\]\s*(?:\[[^\]]*\]\s*)?\[?(?:Hybrid Backup Sync|HBS)", re.IGNORECASE)
# A reason the notification puts on a line of its own under the event line (or after a <br> in the
# HTML Message cell): "Error: ...", "Reason: ...", German "Fehler:", Dutch "Fout:", Italian "Errore:".
_REASON_LINE_RE = re.compile(r"^[ \t]*(?:error(?:\s+message)?|reason|cause|details?|fehler|ursache|grund|fout|"
                             r"oorzaak|reden|errore|causa|motivo|erreur|raison)\s*[:：]\s*(?P<r>\S.*?)\s*$",
                             re.IGNORECASE)

_TYPES = (
    (re.compile(r"restore|wiederherstell|herstel|ripristin|restaur", re.IGNORECASE), "Restore job"),
    (re.compile(r"\bsync|synchron|sincronizz", re.IGNORECASE), "Sync job"),
    (re.compile(r"backup|sicherung|back-up|\bRTRR\b|replicat|replikation", re.IGNORECASE), "Backup job"),
)
_STARTED_RE = re.compile(r"\b(?:started|starting|gestartet|gestart|avviat[oa]|démarré|begonnen)\b", re.IGNORECASE)
_WARN_RE = re.compile(r"with warnings?|mit warnung|met waarschuwing|con avvis|partial|teilweise|gedeeltelijk|"
                      r"skipped|übersprungen|overgeslagen", re.IGNORECASE)
_FAIL_RE = re.compile(r"\bfail(?:ed|ure)?\b|fehlgeschlagen|\bfehler\b|konnte nicht|mislukt|kon niet|\bfout\b|"
                      r"\berror\b|non riuscit|impossibile|\bstopped\b|gestoppt|gestopt|abgebrochen|\bcancel+ed\b|"
                      r"geannuleerd|\baborted\b|interrotto|échoué", re.IGNORECASE)
_OK_RE = re.compile(r"\bfinished\b|\bcompleted?\b|\bsuccess(?:ful(?:ly)?)?\b|abgeschlossen|beendet|erfolgreich|"
                    r"voltooid|geslaagd|afgerond|completat|terminat|riuscit|terminé", re.IGNORECASE)
_SEVERITY_WORDS = (
    (re.compile(r"^(?:error|fehler|fout|errore|erreur|critical|kritisch)$", re.IGNORECASE), FAILED),
    (re.compile(r"^(?:warn(?:ing)?|warnung|waarschuwing|avviso|avvertimento|avertissement)$", re.IGNORECASE), WARNING),
)


def _severity(msg: Message) -> Optional[str]:
    # the raw subject too: the normaliser strips a leading "[Warning]" like an external-mail tag
    m = _SEVERITY_TAG_RE.search(msg.subject) or _SEVERITY_TAG_RE.search(msg.raw_subject or "")
    if m:
        for rx, st in _SEVERITY_WORDS:
            if rx.match(m.group("s").strip()):
                return st
    return None


_WITH_ERRORS_RE = re.compile(r"(?:completed|finished|abgeschlossen|beendet|voltooid)\s+(?:with|mit|met)\s+"
                             r"(?:errors?|fehlern?|fouten?|warnings?|warnungen|waarschuwingen)", re.IGNORECASE)
# "completed with errors" is a warning, as everywhere in Backupchecks; then failures before warnings.
_STATUS_RULES = ((WARNING, _WITH_ERRORS_RE), (FAILED, _FAIL_RE), (WARNING, _WARN_RE), (SUCCESS, _OK_RE))


def _status(message: str, job: Optional[str]) -> Optional[str]:
    return status_from_rules(message.replace(job, " ") if job else message, _STATUS_RULES)


def _event_message(text: str) -> str:
    """The '[Hybrid Backup Sync] ...' event line; when a plain-text client wrapped it (the
    line ends with ':', leaves a quote open or fills the 76 columns), the next line
    continues it unless that is a 'Label: value' line of its own. A reason line right under
    it ('Error: ...', 'Reason: ...') belongs to the event too."""
    m = _MSG_RE.search(text)
    if not m:
        return ""
    line = m.group("m").rstrip()
    full = len(text[text.rfind("\n", 0, m.start()) + 1:m.end()].rstrip())
    following = text[m.end():].replace("\r", "").split("\n")[1:4]
    if line.endswith(":") or line.count('"') % 2 == 1 or full >= 66:
        nxt = following[0].strip() if following else ""
        if nxt and "\t" not in nxt and not re.match(r"^[\w /-]{1,30}:\s", nxt):
            line = line + " " + nxt
            following = following[1:]
    for nxt in following:
        reason = _REASON_LINE_RE.match(nxt)
        if not reason:
            break
        if reason.group("r") not in line:
            line = line.rstrip() + " " + nxt.strip()
    return line


class QnapHybridBackupSyncParser(Parser):
    """QNAP Notification Center mail for Hybrid Backup Sync (any language): subject '[<Severity>] [Hybrid Backup
    Sync] ...' or a '[Hybrid Backup Sync] <event>' message line naming a job in quotes.
    """

    name = "qnap_hybrid_backup_sync"
    product = SOFTWARE
    types = ("Backup job", "Sync job", "Restore job")
    subject_patterns = (r"\[Hybrid Backup Sync\]",)
    body_markers = ("[Hybrid Backup Sync]",)

    def matches(self, msg: Message) -> Optional[str]:
        if not (_HBS_RE.search(msg.subject) or "hybrid backup sync" in msg.text.lower()):
            return None
        message = _event_message(msg.text)
        if message and _QUOTED_RE.search(message):
            return "Hybrid Backup Sync job event"
        return None

    def parse(self, msg: Message) -> ParseResult:
        message = clean_text(_event_message(msg.text))
        q = _QUOTED_RE.search(message)
        job = None
        if q:
            job = clean_text(q.group("n") or q.group("s") or q.group("b"))
        before = message[: q.start()] if q else message
        backup_type = "Backup job"
        for rx, name in _TYPES:
            if rx.search(before) or (not q and rx.search(message)):
                backup_type = name
                break
        outcome = message.replace(job, " ") if job else message
        if _STARTED_RE.search(outcome) and not (_FAIL_RE.search(outcome) or _OK_RE.search(outcome)):
            return ParseResult(software=None, backup_type=None, job_name=None, overall_status=None,
                               is_report=False, parsed=True,
                               reason=f"Hybrid Backup Sync job start event ({job}), not a result")
        status = _status(message, job)
        severity = _severity(msg)
        if status is None or (status == SUCCESS and severity is not None):
            status = severity or status  # a warning/error notification does not report a clean success
        ended = parse_datetime(first_group(_DATE_RE, msg.text), default_tz=mail_tz(msg))
        reason = message if status in (FAILED, WARNING) else ""
        return ParseResult(software=SOFTWARE, backup_type=backup_type, job_name=job, overall_status=status,
                           ended_at=ended, objects=[], message=reason)


PARSERS: list[Parser] = [QnapHybridBackupSyncParser()]
