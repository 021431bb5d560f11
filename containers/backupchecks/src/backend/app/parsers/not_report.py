"""Mail that reaches the backup mailbox but is not a backup report.

Recognised (software None, ``is_report=False``, ``parsed=True``, with the
reason) so the Inbox can file them away instead of showing "unparsed":

* newsletters and vendor marketing (an unsubscribe link or List-Unsubscribe
  header, webinar/register wording);
* "updates available" notices: Proxmox VE / Backup Server "New software
  packages available", DSM/QTS/firmware and product update announcements,
  licence/support expiry notices (English, German, Dutch);
* automatic replies and delivery failures (out of office, undeliverable);
* test messages sent from a product's notification settings;
* delivery status reports (bounces), even when they carry a report.

This parser runs first, so it is conservative: it never claims a mail that
carries backup-report markers (a result tag in the subject, status/job/start/
end/duration lines, per-object result tables).
"""
from __future__ import annotations

import re
from typing import Optional

from .base import Message, ParseResult, Parser

# Structural markers of a backup report; any of them and this parser steps aside.
_REPORT_SUBJECT_RE = re.compile(
    r"^\s*\[(?:success|successful|warning|failed|failure|error|info|erfolgreich|warnung|fehler|"
    r"geslaagd|waarschuwing|mislukt)\]"
    r"|\b(?:backup|sicherung|back-up|job|task|taak|auftrag|vzdump|replication|snapshot|sync)\b.{0,80}\b(?:"
    r"success\w*|succeeded|completed|complete|failed|failure|warnings?|errors?|partially|erfolgreich|"
    r"fehlgeschlagen|abgeschlossen|geslaagd|voltooid|mislukt|waarschuwing|finished|ok)\b"
    r"|\b(?:success\w*|failed|failure|warning|error|erfolgreich|fehlgeschlagen|geslaagd|mislukt)\b.{0,80}"
    r"\b(?:backup|sicherung|back-up|job|task|taak|auftrag)\b",
    re.IGNORECASE,
)
_REPORT_BODY_RE = re.compile(
    r"^[ \t]*(?:[\w ]{0,40}\b(?:job|task|policy|plan|auftrag|aufgabe|taak)\s*(?:name)?\s*:"
    r"|(?:job |backup |overall |task )?(?:status|result|ergebnis|resultaat)\s*:"
    r"|start(?:ed)?(?: time| at)?\s*:|end(?:ed)?(?: time| at)?\s*:|finish(?:ed)?(?: time)?\s*:"
    r"|duration\s*:|dauer\s*:|duur\s*:|startzeit\s*:|endzeit\s*:|begintijd\s*:|eindtijd\s*:"
    r"|backup result|sicherungsergebnis)"
    r"|\b(?:start time|end time)\b[\s\S]{0,400}\bduration\b"
    r"|\b\d+ of \d+ (?:vms?|objects?|machines?|shares?) processed\b",
    re.IGNORECASE | re.MULTILINE,
)

_UNSUBSCRIBE_RE = re.compile(
    r"\bunsubscribe\b|\bopt[ -]out\b|manage (?:your )?(?:email |e-mail )?(?:preferences|subscriptions)"
    r"|email preferences|abmelden|abbestellen|newsletter abbestellen|afmelden|uitschrijven"
    r"|you are receiving this (?:e-?mail|message) because you (?:subscribed|signed up|registered)"
    r"|view (?:this email |it )?in (?:your|a) (?:web )?browser",
    re.IGNORECASE,
)
_MARKETING_RE = re.compile(
    r"\b(?:webinar|register now|save your seat|sign up today|join us|free trial|limited time|"
    r"special offer|newsletter|jetzt anmelden|jetzt registrieren|meld je aan|schrijf je in|"
    r"early bird|whitepaper|e-?book|case study|product news|what's new)\b",
    re.IGNORECASE,
)
_UPDATES_RE = re.compile(
    r"new software packages available|has the following updates available|the following updates are "
    r"available|\bupdates? (?:is |are )?available\b|\bis now available\b|firmware update"
    r"|\bnew\b[^.\n]{0,40}(?:version|release|firmware|update)s?\b[^.\n]{0,60}\bavailable\b"
    r"|\bneue\b[^.\n]{0,40}(?:version|firmware|update|softwarepaket)\w*\b[^.\n]{0,60}\bverfügbar\b"
    r"|\bupdates? (?:ist |sind )?verfügbar\b"
    r"|\bnieuwe\b[^.\n]{0,40}(?:versie|firmware|update|softwarepakket)\w*\b[^.\n]{0,60}\bbeschikbaar\b"
    r"|\bupdates? (?:is |zijn )?beschikbaar\b"
    r"|software update notification|security advisory"
    r"|\blicen[cs]e\b[^.\n]{0,60}\b(?:expir\w*|will expire|has expired|renew\w*)\b|support contract\b[^.\n]{0,40}expir"
    r"|\blizenz\b[^.\n]{0,60}\b(?:läuft|lauft|abgelaufen|verlängern)|\blicentie\b[^.\n]{0,60}\b(?:verloopt|verlopen|verlengen)",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT_RE = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|out of (?:the )?office|"
    r"abwesenheitsnotiz|automatische antwort|automatisch antwoord|afwezig|absence|réponse automatique|"
    r"undeliverable|unzustellbar|onbestelbaar|delivery status notification|mail delivery failed|"
    r"returned mail|delivery has failed|nicht zustellbar)\b",
    re.IGNORECASE,
)
_TEST_RE = re.compile(
    r"\btest (?:message|e-?mail|mail|notification)\b|\btestnachricht\b|\btest-?e-?mail\b|\btestbericht\b"
    r"|\bthis is a test\b|\bdies ist eine test|\bdit is een test",
    re.IGNORECASE,
)


def _has_report_markers(msg: Message) -> Optional[str]:
    if _REPORT_SUBJECT_RE.search(msg.subject or ""):
        return "subject"
    if _REPORT_BODY_RE.search(msg.text[:20000]):
        return "body"
    return None


class NotAReportParser(Parser):
    """Newsletters/marketing (unsubscribe link or List-Unsubscribe header), update announcements (Proxmox 'New
    software packages available', firmware/DSM/product updates), automatic replies, delivery failures and test
    messages, but only when the mail has no backup-report markers (result tag in the subject,
    status/job/start/end/duration lines).
    """

    name = "not_report"
    product = "(not a backup report)"
    types = ()
    subject_patterns = (_AUTOREPLY_SUBJECT_RE.pattern, _UPDATES_RE.pattern, _TEST_RE.pattern)
    body_markers = ("unsubscribe", "has the following updates available", "New software packages available")

    def matches(self, msg: Message) -> Optional[str]:
        subject = msg.subject or ""
        head = msg.text[:20000]
        auto = _AUTOREPLY_SUBJECT_RE.search(msg.raw_subject or subject)
        if auto or msg.headers.get("auto-submitted", "").lower().startswith("auto-replied"):
            # An automatic reply or bounce: never a report, whatever it quotes.
            return f"automatic reply or delivery notice ('{(auto.group(0) if auto else 'Auto-Submitted')}')"
        if msg.headers.get("content-type", "").lower().startswith("multipart/report"):
            return "delivery status report (bounce), not a backup report"
        if _has_report_markers(msg):
            return None
        updates = _UPDATES_RE.search(subject) or _UPDATES_RE.search(head[:3000])
        if updates:
            return f"update notice, not a backup report ('{updates.group(0)[:60]}')"
        unsub = msg.headers.get("list-unsubscribe") or _UNSUBSCRIBE_RE.search(head)
        if unsub:
            what = "List-Unsubscribe header" if msg.headers.get("list-unsubscribe") else "unsubscribe link"
            return f"newsletter or marketing mail ({what}), no backup report markers"
        if _MARKETING_RE.search(subject):
            return "marketing mail (webinar/offer wording), no backup report markers"
        if _TEST_RE.search(subject) and len(head) < 3000:
            return "test message from a notification setup, not a backup report"
        return None

    def parse(self, msg: Message) -> ParseResult:
        return ParseResult(parsed=True, is_report=False, reason=self.matches(msg) or "not a backup report")


PARSERS: list[Parser] = [NotAReportParser()]
