"""The contract every parser lives by.

Parsers are pure: they receive a :class:`Message` (built by
:func:`backend.app.parsers.normalize.normalize`) and return a
:class:`ParseResult`. No Flask, no database, no network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, asdict
from datetime import datetime
from typing import ClassVar, Optional

SUCCESS = "Success"
WARNING = "Warning"
FAILED = "Failed"

_STATUS_RANK = {None: -1, SUCCESS: 0, WARNING: 1, FAILED: 2}


@dataclass
class Message:
    """A mail as the parsers see it, after normalisation."""

    from_address: str = ""          # lower-cased address of the (original) sender
    from_name: str = ""
    subject: str = ""               # without FW:/RE:/[EXTERNAL] ... prefixes
    raw_subject: str = ""           # as it arrived
    date: Optional[datetime] = None  # Date header, timezone-aware (original one when forwarded)
    text: str = ""                  # text body (from text/plain, else derived from HTML)
    html: str = ""                  # HTML body ('' when the mail has none)
    attachments: list[str] = field(default_factory=list)  # attachment file names
    message_id: str = ""
    forwarded: bool = False         # the report was found inside a forwarded body
    # Internal cache for the parsed HTML tree; filled lazily by html_tree().
    _tree: object = field(default=None, repr=False, compare=False)

    def html_tree(self):
        """The HTML body parsed with lxml (cached); None when there is no HTML."""
        if self._tree is None and self.html:
            import lxml.html
            try:
                self._tree = lxml.html.document_fromstring(self.html)
            except Exception:  # noqa: BLE001 - malformed markup: no tree
                self._tree = False
        return self._tree or None


@dataclass
class ParsedObject:
    name: str
    type: str = ""
    status: Optional[str] = None
    message: str = ""


@dataclass
class ParseResult:
    software: Optional[str] = None
    backup_type: Optional[str] = None
    job_name: Optional[str] = None
    overall_status: Optional[str] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    objects: list[ParsedObject] = field(default_factory=list)
    parser: Optional[str] = None     # name of the parser that produced this
    reason: str = ""                 # why it matched / why nothing did
    parsed: bool = True              # False: no parser understood it, or one raised
    is_report: bool = True           # False: recognised as not a backup report
    error: Optional[str] = None      # the exception text when a parser raised

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("started_at", "ended_at"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


def normalize_status(word: Optional[str]) -> Optional[str]:
    """Map a vendor status word (any of the supported languages) to Success/Warning/Failed."""
    if word is None:
        return None
    w = re.sub(r"\s+", " ", str(word)).strip().lower().strip(".:!")
    if not w:
        return None
    # Order matters: "completed with errors" is a warning, not a failure.
    warning_markers = (
        "partially completed", "partially", "partial", "with warning", "with exception",
        "with error", "warning", "warn", "teilweise", "gedeeltelijk", "waarschuwing",
        "warnung", "mit fehlern", "met fouten", "completed with", "exception",
    )
    failed_markers = (
        "failed", "failure", "error", "err", "fehlgeschlagen", "fehler", "mislukt",
        "fout", "abgebrochen", "aborted", "cancelled", "canceled", "missed", "not run",
        "critical", "unsuccessful",
    )
    success_markers = (
        "success", "successful", "succeeded", "completed", "complete", "ok", "done",
        "erfolgreich", "abgeschlossen", "geslaagd", "voltooid", "gelukt", "finished",
        "passed",
    )
    for m in warning_markers:
        if m in w:
            return WARNING
    for m in failed_markers:
        if re.search(r"\b" + re.escape(m) + r"\b", w):
            return FAILED
    for m in success_markers:
        if re.search(r"\b" + re.escape(m) + r"\b", w):
            return SUCCESS
    return None


def worst_status(*statuses: Optional[str]) -> Optional[str]:
    """The worst of the given statuses (Failed > Warning > Success), None if none given."""
    best = None
    for s in statuses:
        if _STATUS_RANK.get(s, -1) > _STATUS_RANK.get(best, -1):
            best = s
    return best


class Parser:
    """Base class of a vendor parser.

    Match criteria are data, so the /parsers page can show them:
    ``sender_contains`` (any of, case-insensitive), ``subject_patterns``
    (regexes, any of, case-insensitive), ``body_markers`` (strings, any of, in
    text or HTML). ``matches()`` uses them by default; a parser may refine it.
    """

    name: ClassVar[str] = ""
    product: ClassVar[str] = ""
    types: ClassVar[tuple[str, ...]] = ()
    sender_contains: ClassVar[tuple[str, ...]] = ()
    subject_patterns: ClassVar[tuple[str, ...]] = ()
    body_markers: ClassVar[tuple[str, ...]] = ()
    # How the criteria combine: "any" = one of sender/subject/body suffices,
    # "subject_and_body" = a subject pattern and a body marker must both match, ...
    description: ClassVar[str] = ""

    def matches(self, msg: Message) -> Optional[str]:
        """Return a short reason when this parser handles the message, else None."""
        raise NotImplementedError

    def parse(self, msg: Message) -> ParseResult:
        raise NotImplementedError

    # Helpers shared by parsers -------------------------------------------------
    def sender_match(self, msg: Message) -> Optional[str]:
        for s in self.sender_contains:
            if s.lower() in msg.from_address:
                return f"sender contains '{s}'"
        return None

    def subject_match(self, msg: Message) -> Optional[re.Match]:
        for p in self.subject_patterns:
            m = re.search(p, msg.subject, re.IGNORECASE)
            if m:
                return m
        return None

    def body_match(self, msg: Message) -> Optional[str]:
        for marker in self.body_markers:
            if marker.lower() in msg.text.lower() or (msg.html and marker.lower() in msg.html.lower()):
                return f"body contains '{marker}'"
        return None

    def criteria(self) -> dict:
        return {
            "sender_contains": list(self.sender_contains),
            "subject_patterns": list(self.subject_patterns),
            "body_markers": list(self.body_markers),
            "description": self.description,
        }
