"""Dates as reports and mail clients write them.

A date/time written in a report's own locale ("Saturday, 12 October 2024 22:00:13",
"Samstag, 12. Oktober 2024 22:00", "zaterdag 12 oktober 2024 22:00", "10/12/2024 10:00:13 PM",
"12.10.2024 22:00:13", "2024-10-12 22:00", RFC 2822) becomes an aware datetime; a time
written without a zone takes the zone of the mail's Date header, else UTC.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from .base import Message

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


def mail_tz(msg: Message):
    """The zone of the mail's Date header, UTC when it has none."""
    return msg.date.tzinfo if msg.date is not None and msg.date.tzinfo else timezone.utc


def _clock(tm: re.Match) -> tuple[int, int, int]:
    """(hour, minute, second) of a _TIME_RE match, a 12-hour clock turned into 24 hours."""
    hh, mm, ss = int(tm.group("H")), int(tm.group("M")), int(tm.group("S") or 0)
    ampm = (tm.group("ampm") or "").lower()
    if ampm == "p" and hh < 12:
        hh += 12
    elif ampm == "a" and hh == 12:
        hh = 0
    return hh, mm, ss


def _first_date(s: str) -> Optional[tuple[str, re.Match]]:
    for kind, rx in _DATE_PATTERNS:
        m = rx.search(s)
        if m:
            return kind, m
    return None


def _numeric_dayfirst(m: re.Match, y: int, dayfirst: Optional[bool], near: Optional[datetime], ampm: str) -> bool:
    """Whether a numeric date a.b.y reads day first (see :func:`parse_datetime`)."""
    a, b = int(m.group("a")), int(m.group("b"))
    if a > 12:
        return True
    if b > 12:
        return False
    if dayfirst is not None:
        return dayfirst
    if near is not None and a != b:
        try:
            da = abs((datetime(y, b, a, tzinfo=near.tzinfo) - near).total_seconds())
            db = abs((datetime(y, a, b, tzinfo=near.tzinfo) - near).total_seconds())
            return da <= db
        except (ValueError, TypeError):
            return not ampm
    if m.group("sep") == ".":
        return True
    return not ampm


def _year_month_day(kind: str, m: re.Match, dayfirst: Optional[bool], near: Optional[datetime],
                    ampm: str) -> tuple[int, int, int]:
    if kind == "ymd":
        return int(m.group("y")), int(m.group("m")), int(m.group("d"))
    if kind in ("dmy_name", "mdy_name"):
        mon = m.group("mon").lower()
        return int(m.group("y")), _MONTHS[mon.rstrip(".")] if mon.rstrip(".") in _MONTHS else _MONTHS[mon], \
            int(m.group("d"))
    a, b, y = int(m.group("a")), int(m.group("b")), int(m.group("y"))
    if y < 100:
        y += 2000
    d, mo = (a, b) if _numeric_dayfirst(m, y, dayfirst, near, ampm) else (b, a)
    return y, mo, d


def parse_datetime(text: Optional[str], default_tz=None, dayfirst: Optional[bool] = None,
                   near: Optional[datetime] = None) -> Optional[datetime]:
    """An aware datetime from a date (+ time) in the text, in any supported locale; None if none.

    A zone in the text wins; otherwise ``default_tz`` (a tzinfo, e.g. the mail
    Date header's), otherwise UTC. Numeric dates: ``dayfirst`` decides when it
    is not evident; else, given ``near`` (e.g. the mail's Date), the reading
    closest to it; else a 12-hour clock means month first (US), else day
    first (Europe).
    """
    if not text:
        return None
    s = str(text).replace("\xa0", " ").replace("\u200e", "").replace("\u200f", "")
    if len(s) > 400:
        s = s[:400]
    found = _first_date(s)
    if not found:
        return None
    kind, m = found
    tm = _TIME_RE.search(s, m.end())
    if not tm:
        tm = _TIME_RE.search(s[: m.start()])
    ampm = (tm.group("ampm") or "").lower() if tm else ""
    try:
        y, mo, d = _year_month_day(kind, m, dayfirst, near, ampm)
        hh = mm = ss = 0
        tz = None
        if tm:
            hh, mm, ss = _clock(tm)
            if tm.group("tz"):
                tz = _tz_from_text(tm.group("tz"))
        return datetime(y, mo, d, hh, mm, ss, tzinfo=tz or default_tz or timezone.utc)
    except (ValueError, KeyError, OverflowError):
        return None


def strptime_any(value: str, formats: Iterable[str]) -> Optional[datetime]:
    """A naive datetime read by the first of ``formats`` (strptime) that fits ``value`` as it is; None if none does."""
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def parse_with_formats(value: Optional[str], formats: Iterable[str], msg: Message) -> Optional[datetime]:
    """The first of ``formats`` (strptime) that reads ``value`` (whitespace collapsed); a time
    without a zone takes the zone of the mail's Date header, else UTC. None when none fits."""
    dt = strptime_any(re.sub(r"\s+", " ", value or "").strip(), formats)
    return dt.replace(tzinfo=mail_tz(msg)) if dt is not None else None


def combine_date_time(day: Optional[datetime], time_text: Optional[str]) -> Optional[datetime]:
    """``day``'s date with the clock time found in ``time_text`` ("10:00:14 PM", "23:00:05")."""
    if day is None or not time_text:
        return None
    tm = _TIME_RE.search(time_text)
    if not tm:
        return None
    hh, mm, ss = _clock(tm)
    try:
        return day.replace(hour=hh, minute=mm, second=ss, microsecond=0)
    except ValueError:
        return None
