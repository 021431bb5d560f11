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
    # A few headers that tell a report from other mail (lower-case names): list-unsubscribe,
    # list-id, precedence, auto-submitted, x-mailer, user-agent, content-language, x-autoreply ...
    headers: dict = field(default_factory=dict)
    # Internal cache for the parsed HTML tree; filled lazily by html_tree().
    _tree: object = field(default=None, repr=False, compare=False)
    _tree_done: bool = field(default=False, repr=False, compare=False)

    def html_tree(self):
        """The HTML body parsed with lxml (cached); None when there is no HTML.

        A text-only message whose text holds tables (a report forwarded as plain
        text), or one whose HTML has no table at all (a plain-text report that
        Outlook forwarded as HTML), gets a tree built from its text's tables, so
        HTML table readers work on it too.
        """
        if not self._tree_done:
            self._tree_done = True
            import lxml.html
            if self._tree is None and self.html:
                try:
                    self._tree = lxml.html.document_fromstring(self.html)
                except Exception:  # noqa: BLE001 - malformed markup: no tree
                    self._tree = False
            if self.text and (self._tree is None or self._tree is False and not self.html
                              or self._tree is not False and self._tree.find(".//table") is None):
                from .texttables import has_tables, tables_html
                if has_tables(self.text):
                    try:
                        self._tree = lxml.html.document_fromstring(tables_html(self.text))
                    except Exception:  # noqa: BLE001
                        pass
        if self._tree is None or self._tree is False:
            return None
        return self._tree


@dataclass
class ParsedObject:
    name: str
    type: str = ""
    status: Optional[str] = None
    message: str = ""


@dataclass
class MatchEvidence:
    """One declared criterion that a message meets: what the parser looked for and what it found."""

    on: str          # "sender", "subject" or "body"
    criterion: str   # the sender fragment, subject pattern or body marker the parser declares
    found: str       # the part of the message it matched (a short excerpt)


@dataclass
class ParseResult:
    software: Optional[str] = None
    backup_type: Optional[str] = None
    job_name: Optional[str] = None
    overall_status: Optional[str] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    objects: list[ParsedObject] = field(default_factory=list)
    # The report's own words about the outcome when they are not tied to an object, e.g. the
    # failure or warning reason of a one-line notification; the run's message shows it.
    message: str = ""
    parser: Optional[str] = None     # name of the parser that produced this
    reason: str = ""                 # why it matched / why nothing did
    parsed: bool = True              # False: no parser understood it, or one raised
    is_report: bool = True           # False: recognised as not a backup report
    error: Optional[str] = None      # the exception text when a parser raised
    match_reason: str = ""           # what the matching parser's matches() said, even when parse() set reason
    evidence: list[MatchEvidence] = field(default_factory=list)  # filled on request (registry explain=True)
    rule_checks: list = field(default_factory=list)  # the users' rules tried: rules.RuleCheck (matched or why not)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("started_at", "ended_at"):
            d[key] = d[key].isoformat() if d[key] else None
        if not d["rule_checks"]:
            del d["rule_checks"]  # no rules were given (the parser CLI): the output as before
        return d


_WARNING_MARKERS = (
    "partially completed", "partially", "partial", "with warning", "with exception",
    "with error", "warning", "warn", "teilweise", "gedeeltelijk", "waarschuwing",
    "warnung", "mit fehlern", "met fouten", "completed with", "exception",
)
_FAILED_MARKERS = (
    "failed", "failure", "error", "err", "fehlgeschlagen", "fehler", "mislukt",
    "fout", "abgebrochen", "aborted", "cancelled", "canceled", "missed", "not run",
    "critical", "unsuccessful", "stopped", "timed out", "timeout", "killed", "interrupted", "unterbrochen",
    "onderbroken", "geannuleerd", "gestopt", "gestoppt", "not started", "nicht gestartet", "niet gestart",
    "did not start", "not completed", "nicht abgeschlossen", "niet voltooid",
)
_SUCCESS_MARKERS = (
    "success", "successful", "succeeded", "completed", "complete", "ok", "done",
    "erfolgreich", "abgeschlossen", "geslaagd", "voltooid", "gelukt", "finished",
    "passed", "erfolg", "succes", "succesvol", "ok",
)
# "0 errors", "no warnings", "keine Fehler", "zonder waarschuwingen": not a warning or failure.
_NEGATED_COUNT_RE = re.compile(
    r"(?:\b(?:with|mit|met)\s+)?\b(?:no|0|zero|without|keine|kein|ohne|geen|zonder)\s+(?:errors?|warnings?|failures?|problems?|issues?|"
    r"fehlern?|warnungen|probleme|fouten|waarschuwingen|problemen)\b|\((?:0|no)\s+(?:errors?|warnings?)\)")
# "not successful", "nicht erfolgreich", "niet geslaagd": a failure, whatever the success word says.
_NEGATED_SUCCESS_RE = re.compile(
    r"\b(?:not|nicht|niet|never|nie|nooit)\s+(?:\w+\s+)?(?:successful(?:ly)?|succeeded|completed?|erfolgreich|"
    r"abgeschlossen|geslaagd|gelukt|succesvol|voltooid|finished|beendet)\b")
# Same semantics as testing each marker in order with \b...\b, compiled once.
_FAILED_RE = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in _FAILED_MARKERS) + r")\b")
_SUCCESS_RE = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in _SUCCESS_MARKERS) + r")\b")
_WS_RE = re.compile(r"\s+")
_STATUS_CACHE: dict = {}


def status_from_word(word: Optional[str]) -> Optional[str]:
    """Map a vendor status word (any of the supported languages) to Success/Warning/Failed (our spelling
    of our own statuses: ``services.status.canonical_status``)."""
    if word is None:
        return None
    key = str(word)
    if key in _STATUS_CACHE:
        return _STATUS_CACHE[key]
    w = _WS_RE.sub(" ", key).strip().lower().strip(".:!")
    result = None
    if w and ("no" in w or "0" in w or "out" in w or "kein" in w or "ohne" in w or "geen" in w or "zonder" in w):
        w = _NEGATED_COUNT_RE.sub(" ", w).strip()
    if w and _NEGATED_SUCCESS_RE.search(w):
        result = FAILED
    elif w:
        # Order matters: "completed with errors" is a warning, not a failure.
        if any(m in w for m in _WARNING_MARKERS):
            result = WARNING
        elif _FAILED_RE.search(w):
            result = FAILED
        elif _SUCCESS_RE.search(w):
            result = SUCCESS
    if len(_STATUS_CACHE) < 4096 and len(key) < 200:
        _STATUS_CACHE[key] = result
    return result


def worst_status(*statuses: Optional[str]) -> Optional[str]:
    """The worst of the given statuses (Failed > Warning > Success), None if none given."""
    best = None
    for s in statuses:
        if _STATUS_RANK.get(s, -1) > _STATUS_RANK.get(best, -1):
            best = s
    return best


def status_from_rules(text: str, rules) -> Optional[str]:
    """The status of the first ``(status, pattern)`` rule whose compiled pattern occurs in ``text``;
    None when none does. A vendor's own status words, in the order its wording needs."""
    for status, rx in rules:
        if rx.search(text):
            return status
    return None


def vendor_status(word: str, rules, lower: bool = False) -> Optional[str]:
    """A vendor's status word: its own ``rules`` (see :func:`status_from_rules`; tried on the lower-cased word
    with ``lower``) first, then the status words every parser shares (:func:`status_from_word`)."""
    return status_from_rules(word.lower() if lower else word, rules) or status_from_word(word)


def first_label(text: str, table, default: Optional[str] = None) -> Optional[str]:
    """The label of the first ``(word, label)`` pair whose word occurs in ``text``; ``default`` when none does."""
    return next((label for word, label in table if word in text), default)


def first_group(rx: re.Pattern, text: str, group: int | str = 1) -> Optional[str]:
    """Group ``group`` of the first match of ``rx`` in ``text``; None without a match."""
    m = rx.search(text)
    return m.group(group) if m else None


class Parser:
    """Base class of a vendor parser.

    Match criteria are data, so the /parsers page can show them:
    ``sender_contains`` (any of, case-insensitive), ``subject_patterns``
    (regexes, any of, case-insensitive), ``body_markers`` (strings, any of, in
    text or HTML). ``matches()`` uses them by default; a parser may refine it.
    A subclass's docstring says what it recognises and how the criteria combine;
    it becomes ``description`` (whitespace folded), which the /parsers page shows.
    """

    name: ClassVar[str] = ""
    product: ClassVar[str] = ""
    types: ClassVar[tuple[str, ...]] = ()
    sender_contains: ClassVar[tuple[str, ...]] = ()
    subject_patterns: ClassVar[tuple[str, ...]] = ()
    body_markers: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__:
            cls.description = " ".join(cls.__doc__.split())

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

    def evidence(self, msg: Message) -> list[MatchEvidence]:
        """Every declared criterion (sender fragment, subject pattern, body marker) this message meets,
        with the part of the message that met it. For "Try a message": it explains a match, it does not
        decide one (``matches()`` does, and may use more than the declared criteria)."""
        found: list[MatchEvidence] = []
        sender = msg.from_address or ""
        for s in self.sender_contains:
            if s.lower() in sender:
                found.append(MatchEvidence("sender", s, sender))
        for p in self.subject_patterns:
            try:
                m = re.search(p, msg.subject, re.IGNORECASE)
            except re.error:
                continue
            if m:
                found.append(MatchEvidence("subject", p, _excerpt(m.group(0) or msg.subject)))
        text, html = (msg.text or ""), (msg.html or "")
        low_text, low_html = text.lower(), html.lower()
        for marker in self.body_markers:
            low = marker.lower()
            pos = low_text.find(low)
            if pos >= 0:
                found.append(MatchEvidence("body", marker, _line_around(text, pos, len(marker))))
            elif low in low_html:
                found.append(MatchEvidence("body", marker, f"{marker} (in the HTML)"))
        return found

    def criteria(self) -> dict:
        return {
            "sender_contains": list(self.sender_contains),
            "subject_patterns": list(self.subject_patterns),
            "body_markers": list(self.body_markers),
            "description": self.description,
        }


def _excerpt(text: str, limit: int = 160) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _line_around(text: str, pos: int, length: int, limit: int = 160) -> str:
    """The line of ``text`` that holds [pos, pos+length), cut to ``limit`` characters around it."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos + length)
    line = text[start: end if end >= 0 else len(text)]
    if len(line) > limit:
        at = pos - start
        lo = max(0, min(at - limit // 3, len(line) - limit))
        line = ("…" if lo else "") + line[lo: lo + limit] + ("…" if lo + limit < len(line) else "")
    return _WS_RE.sub(" ", line).strip()


def clean_text(s: Optional[str]) -> str:
    """Collapse whitespace (including non-breaking spaces) and strip."""
    return _WS_RE.sub(" ", (s or "").replace("\xa0", " ")).strip()
