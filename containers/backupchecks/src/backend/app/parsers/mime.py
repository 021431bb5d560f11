"""Decoding what a raw mail carries: body parts (transfer encodings, charsets, format=flowed),
header values (RFC 2047 encoded words, raw 8-bit), the From address and the Date header.

Nothing here raises on bad input; a charset that is missing, wrong or unknown falls back to
UTF-8, then Windows-1252.
"""
from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime
from typing import Optional

from .dates import parse_datetime

_CHARSET_ALIASES = {
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7", "ansi_x3.4-1968": "ascii", "x-unknown": "",
    "unknown-8bit": "", "unknown": "", "default": "", "charset": "", "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "windows-874": "cp874", "latin1": "latin-1",
}
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def _decode_bytes(payload: bytes, declared: Optional[str], html: bool = False) -> str:
    candidates: list[str] = []
    if declared:
        cs = declared.strip().strip('"\'').lower()
        cs = _CHARSET_ALIASES.get(cs, cs)
        if cs in ("us-ascii", "ascii"):
            cs = "utf-8"  # mislabelled 8-bit content is common; utf-8 is a superset
        if cs:
            candidates.append(cs)
    if html and not candidates:
        m = _META_CHARSET_RE.search(payload[:4096])
        if m:
            candidates.append(m.group(1).decode("ascii", "ignore").lower())
    candidates += ["utf-8", "cp1252"]
    for cs in candidates:
        try:
            text = payload.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
        if cs in ("latin-1", "iso-8859-1", "latin1") and re.search("[\x80-\x9f]", text):
            # Windows-1252 labelled as ISO-8859-1: curly quotes, euro sign, dashes.
            try:
                return payload.decode("cp1252")
            except UnicodeDecodeError:
                pass
        return text
    return payload.decode("latin-1")


def part_payload(part) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encoding
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            payload = raw.encode("utf-8", "surrogateescape")
        else:
            payload = b""
    return payload


_QUOTE_PREFIX_RE = re.compile(r"^>+ ?")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (ending in a space), undo space-stuffing."""
    out: list[str] = []
    pending = None  # (quote prefix, text so far) of a paragraph still flowing
    for line in text.split("\n"):
        m = _QUOTE_PREFIX_RE.match(line)
        quote = m.group(0).rstrip(" ") if m else ""
        body = line[m.end():] if m else line
        if body.startswith(" "):
            body = body[1:]  # space-stuffed
        if pending is not None and pending[0] == quote:
            body = pending[1] + body
        elif pending is not None:
            out.append((pending[0] + " " if pending[0] else "") + pending[1])
        pending = None
        if body.endswith(" ") and body.strip() and body != "-- ":
            pending = (quote, body[:-1] if delsp else body)
            continue
        out.append((quote + " " if quote else "") + body)
    if pending is not None:
        out.append((pending[0] + " " if pending[0] else "") + pending[1])
    return "\n".join(out)


def decode_part(part, html: bool = False) -> str:
    try:
        charset = part.get_param("charset")
        if isinstance(charset, tuple):  # RFC 2231 encoded parameter
            charset = email.utils.collapse_rfc2231_value(charset)
    except Exception:  # noqa: BLE001
        charset = None
    text = _decode_bytes(part_payload(part), charset, html=html)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not html and "flowed" in str(part.get("Content-Type", "")).lower():
        try:
            fmt = (part.get_param("format") or "")
            delsp = (part.get_param("delsp") or "")
        except Exception:  # noqa: BLE001
            fmt = delsp = ""
        if isinstance(fmt, str) and fmt.lower() == "flowed":
            text = _unflow(text, isinstance(delsp, str) and delsp.lower() == "yes")
    # NUL and other control characters: never meaningful in a report, fatal to lxml.
    return CONTROL_RE.sub("", text) if CONTROL_RE.search(text) else text


def decode_header_value(value) -> str:
    """A header value (str, Header or with RFC 2047 encoded words, raw 8-bit) as text."""
    if value is None:
        return ""
    if isinstance(value, str) and "=?" not in value and value.isascii():
        return value
    if isinstance(value, str) and "\n" in value:
        # Unfold first (RFC 5322: drop the line break, keep the space): decode_header would
        # otherwise lose the space between plain text and an encoded word on the next line.
        value = re.sub(r"\r?\n(?=[ \t])", "", value)
    try:
        parts = decode_header(value)
    except Exception:  # noqa: BLE001 - malformed encoded words: keep them as they are
        return str(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            if any("\udc80" <= ch <= "\udcff" for ch in chunk):  # raw 8-bit bytes in the header
                chunk = _decode_bytes(chunk.encode("utf-8", "surrogateescape"), None)
            out.append(chunk)
        else:
            cs = None if charset in (None, "unknown-8bit") else charset
            out.append(_decode_bytes(chunk, cs))
    return "".join(out)


def header_str(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001
        return ""
    if value is None:
        return ""
    return decode_header_value(value)


def header_text(msg, name: str) -> str:
    return re.sub(r"\s+", " ", header_str(msg, name)).strip()


_SIMPLE_FROM_RE = re.compile(r'^\s*(?:"?(?P<name>[^"<>]*?)"?\s*)?<(?P<addr>[^<>@\s"]+@[^<>@\s"]+)>\s*$'
                             r'|^\s*(?P<bare>[^<>@\s"]+@[^<>@\s"]+)\s*$')
def parse_from(value: str) -> tuple[str, str]:
    m = _SIMPLE_FROM_RE.match(value or "")
    if m:
        return (m.group("name") or "").strip(), (m.group("addr") or m.group("bare")).strip().lower()
    try:
        addrs = getaddresses([value])
    except Exception:  # noqa: BLE001
        addrs = []
    name, addr = (addrs[0] if addrs else ("", ""))
    if "@" not in (addr or ""):
        m = re.search(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", value or "")
        addr = m.group(0) if m else ""
        if not name:
            name = re.sub(r"[<\[(].*$", "", value or "").strip().strip('"')
    return (name or "").strip().strip('"'), (addr or "").strip().lower()


def parse_date_header(value: str) -> Optional[datetime]:
    if not value:
        return None
    try:
        d = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001
        d = None
    if d is not None and d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d or parse_datetime(value)


def safe_filename(part) -> str:
    """A part's file name (encoded words decoded), '' when it has none or it cannot be read."""
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        return ""
    return decode_header_value(name) if "=?" in name else name
