"""The contract every parser lives by.

Parsers are pure: they receive a :class:`Message` (built by
:func:`backend.app.parsers.normalize.normalize`) and return a
:class:`ParseResult`. No Flask, no database, no network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, asdict
from datetime import datetime, timezone
from typing import ClassVar, Iterable, Optional

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

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("started_at", "ended_at"):
            d[key] = d[key].isoformat() if d[key] else None
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


# Dates as reports and mail clients write them ------------------------------------
# Added helpers (shared by all parsers): parse a date/time written in a report's
# own locale ("Saturday, 12 October 2024 22:00:13", "Samstag, 12. Oktober 2024
# 22:00", "zaterdag 12 oktober 2024 22:00", "10/12/2024 10:00:13 PM",
# "12.10.2024 22:00:13", "2024-10-12 22:00", RFC 2822) into an aware datetime.

_MONTHS = {
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
    # German
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mär": 3, "mai": 5, "juni": 6,
    "juli": 7, "oktober": 10, "okt": 10, "dezember": 12, "dez": 12,
    # Dutch
    "januari": 1, "februari": 2, "maart": 3, "mrt": 3, "mei": 5, "augustus": 8, "okt.": 10,
    # French
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
    "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
}
_MONTH_ALT = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_TIME_RE = re.compile(
    r"(?<!\d)(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2}))?(?:[.,]\d+)?"
    r"(?:\s*(?P<ampm>[ap])\.?\s?m\.?)?"
    r"(?:\s*(?P<tz>(?:utc|gmt|z)?\s*[+-]\d{1,2}(?::?\d{2})?|utc|gmt|z)\b)?",
    re.IGNORECASE,
)
_DATE_PATTERNS = (
    # 2024-10-12
    ("ymd", re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)")),
    # 12 October 2024 / 12. Oktober 2024 / 12-okt-2024
    ("dmy_name", re.compile(r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th)?\.?[\s-]+(?P<mon>" + _MONTH_ALT
                            + r")\.?,?[\s-]+(?P<y>\d{4})(?!\d)", re.IGNORECASE)),
    # October 12, 2024 / Oct 12 2024
    ("mdy_name", re.compile(r"(?<![a-zà-ÿ])(?P<mon>" + _MONTH_ALT + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+"
                            r"(?P<y>\d{4})(?!\d)", re.IGNORECASE)),
    # 12.10.2024, 10/12/2024, 12-10-2024 (two-digit years too)
    ("num", re.compile(r"(?<![\d.:])(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?![\d:])")),
)


def _tz_from_text(tz: str):
    from datetime import timedelta, timezone
    tz = tz.strip().lower()
    if tz in ("utc", "gmt", "z"):
        return timezone.utc
    m = re.search(r"([+-])(\d{1,2}):?(\d{2})?", tz)
    if not m:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if m.group(1) == "-" else delta)


def parse_datetime(text: Optional[str], default_tz=None, dayfirst: Optional[bool] = None,
                   near: Optional[datetime] = None) -> Optional[datetime]:
    """An aware datetime from a date (+ time) in the text, in any supported locale; None if none.

    A zone in the text wins; otherwise ``default_tz`` (a tzinfo, e.g. the mail
    Date header's), otherwise UTC. Numeric dates: ``dayfirst`` decides when it
    is not evident; else, given ``near`` (e.g. the mail's Date), the reading
    closest to it; else a 12-hour clock means month first (US), else day
    first (Europe).
    """
    from datetime import timezone
    if not text:
        return None
    s = str(text).replace("\xa0", " ").replace("\u200e", "").replace("\u200f", "")
    if len(s) > 400:
        s = s[:400]
    found = None
    for kind, rx in _DATE_PATTERNS:
        m = rx.search(s)
        if m:
            found = (kind, m)
            break
    if not found:
        return None
    kind, m = found
    tm = _TIME_RE.search(s, m.end())
    if not tm:
        tm = _TIME_RE.search(s[: m.start()])
    ampm = (tm.group("ampm") or "").lower() if tm else ""
    try:
        if kind == "ymd":
            y, mo, d = int(m.group("y")), int(m.group("m")), int(m.group("d"))
        elif kind in ("dmy_name", "mdy_name"):
            y, d = int(m.group("y")), int(m.group("d"))
            mo = _MONTHS[m.group("mon").lower().rstrip(".")] if m.group("mon").lower().rstrip(".") in _MONTHS \
                else _MONTHS[m.group("mon").lower()]
        else:
            a, b, y = int(m.group("a")), int(m.group("b")), int(m.group("y"))
            if y < 100:
                y += 2000
            if a > 12:
                df = True
            elif b > 12:
                df = False
            elif dayfirst is not None:
                df = dayfirst
            elif near is not None and a != b:
                try:
                    da = abs((datetime(y, b, a, tzinfo=near.tzinfo) - near).total_seconds())
                    db = abs((datetime(y, a, b, tzinfo=near.tzinfo) - near).total_seconds())
                    df = da <= db
                except (ValueError, TypeError):
                    df = not ampm
            elif m.group("sep") == ".":
                df = True
            else:
                df = not ampm
            d, mo = (a, b) if df else (b, a)
        hh = mm = ss = 0
        tz = None
        if tm:
            hh, mm, ss = int(tm.group("H")), int(tm.group("M")), int(tm.group("S") or 0)
            if ampm == "p" and hh < 12:
                hh += 12
            elif ampm == "a" and hh == 12:
                hh = 0
            if tm.group("tz"):
                tz = _tz_from_text(tm.group("tz"))
        return datetime(y, mo, d, hh, mm, ss, tzinfo=tz or default_tz or timezone.utc)
    except (ValueError, KeyError, OverflowError):
        return None


def html_label_text(msg: "Message") -> str:
    """'label: value' lines built from the two-cell rows of the mail's HTML tables ('' when none)."""
    tree = msg.html_tree()
    if tree is None:
        return ""
    out = []
    for row in tree.iter("tr"):
        cells = [c for c in row if c.tag in ("td", "th")]
        if len(cells) == 2:
            k = re.sub(r"\s+", " ", cells[0].text_content() or "").strip().rstrip(":")
            v = re.sub(r"\s+", " ", cells[1].text_content() or "").strip()
            if k and v and len(k) <= 40:
                out.append(f"{k}: {v}")
    return "\n".join(out)


def parse_with_formats(value: Optional[str], formats: Iterable[str], msg: "Message") -> Optional[datetime]:
    """The first of ``formats`` (strptime) that reads ``value`` (whitespace collapsed); a time
    without a zone takes the zone of the mail's Date header, else UTC. None when none fits."""
    value = re.sub(r"\s+", " ", value or "").strip()
    for fmt in formats:
        try:
            dt = datetime.strptime(value, fmt)
        except ValueError:
            continue
        tz = msg.date.tzinfo if msg.date is not None and msg.date.tzinfo else timezone.utc
        return dt.replace(tzinfo=tz)
    return None


def combine_date_time(day: Optional[datetime], time_text: Optional[str]) -> Optional[datetime]:
    """``day``'s date with the clock time found in ``time_text`` ("10:00:14 PM", "23:00:05")."""
    if day is None or not time_text:
        return None
    tm = _TIME_RE.search(time_text)
    if not tm:
        return None
    hh, mm, ss = int(tm.group("H")), int(tm.group("M")), int(tm.group("S") or 0)
    ampm = (tm.group("ampm") or "").lower()
    if ampm == "p" and hh < 12:
        hh += 12
    elif ampm == "a" and hh == 12:
        hh = 0
    try:
        return day.replace(hour=hh, minute=mm, second=ss, microsecond=0)
    except ValueError:
        return None


def clean_text(s: Optional[str]) -> str:
    """Collapse whitespace (including non-breaking spaces) and strip."""
    return _WS_RE.sub(" ", (s or "").replace("\xa0", " ")).strip()
