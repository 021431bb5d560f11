"""Turn raw RFC 822 bytes into the :class:`Message` parsers see.

Baseline version: charsets and transfer encodings via the email package,
text and HTML bodies, attachment names, subject prefixes stripped.
(Forwarded-inline detection to be extended.)
"""
from __future__ import annotations

import email
import email.policy
import re
from email.utils import getaddresses, parsedate_to_datetime
from typing import Optional

from .base import Message

_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|fw|fwd|wg|aw|tr|sv|vs|antw|doorst|rif|r|i)\s*(?:\[\d+\])?\s*:|\[(?:external|extern|ext|externe?|spam|suspicious|warning|caution)[^\]]*\]|\*\*\*\s*external\s*\*\*\*|external\s*:)\s*",
    re.IGNORECASE,
)


def strip_subject_prefixes(subject: str) -> str:
    s = re.sub(r"\s+", " ", subject or "").strip()
    while True:
        new = _PREFIX_RE.sub("", s, count=1)
        if new == s:
            return s
        s = new.strip()


def html_to_text(html: str) -> str:
    """Readable text from HTML, with table cells separated and rows on lines."""
    if not html or not html.strip():
        return ""
    import lxml.html
    try:
        doc = lxml.html.document_fromstring(html)
    except Exception:  # noqa: BLE001
        return re.sub(r"<[^>]+>", " ", html)
    for bad in doc.xpath("//script|//style|//head"):
        bad.drop_tree()
    for br in doc.xpath("//br"):
        br.tail = "\n" + (br.tail or "")
    for cell in doc.xpath("//td|//th"):
        cell.tail = "\t" + (cell.tail or "")
    for blk in doc.xpath("//tr|//p|//div|//li|//h1|//h2|//h3|//h4|//h5|//h6|//table"):
        blk.tail = "\n" + (blk.tail or "")
    text = doc.text_content()
    lines = [re.sub(r"[ \t\xa0]+", " ", ln).strip() for ln in text.splitlines()]
    out, blank = [], False
    for ln in lines:
        if not ln:
            if not blank and out:
                out.append("")
            blank = True
            continue
        out.append(ln)
        blank = False
    return "\n".join(out).strip()


def _decode_part(part) -> str:
    try:
        return part.get_content()
    except Exception:  # noqa: BLE001 - unknown charset or broken encoding
        payload = part.get_payload(decode=True) or b""
        for cs in (part.get_content_charset() or "utf-8", "utf-8", "cp1252", "latin-1"):
            try:
                return payload.decode(cs)
            except Exception:  # noqa: BLE001
                continue
        return payload.decode("utf-8", "replace")


def normalize(raw: bytes | str) -> Message:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disp = part.get_content_disposition()
        filename = part.get_filename()
        if filename or disp == "attachment":
            attachments.append(filename or "")
            continue
        if ctype == "text/plain":
            text_parts.append(_decode_part(part))
        elif ctype == "text/html":
            html_parts.append(_decode_part(part))
    html = "\n".join(html_parts)
    text = "\n".join(text_parts).replace("\r\n", "\n")
    if not text.strip() and html:
        text = html_to_text(html)
    from_name, from_address = "", ""
    try:
        addrs = getaddresses([str(msg.get("From", ""))])
        if addrs:
            from_name, from_address = addrs[0]
    except Exception:  # noqa: BLE001
        pass
    raw_subject = str(msg.get("Subject", "") or "")
    date: Optional[object] = None
    try:
        date = parsedate_to_datetime(str(msg.get("Date"))) if msg.get("Date") else None
    except Exception:  # noqa: BLE001
        date = None
    return Message(
        from_address=(from_address or "").strip().lower(),
        from_name=from_name or "",
        subject=strip_subject_prefixes(raw_subject),
        raw_subject=raw_subject,
        date=date,
        text=text,
        html=html,
        attachments=attachments,
        message_id=str(msg.get("Message-ID", "") or "").strip(),
    )
