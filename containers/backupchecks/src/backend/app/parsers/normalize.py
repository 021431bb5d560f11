"""Turn raw RFC 822 bytes into the :class:`Message` parsers see.

What a parser can rely on after :func:`normalize`:

* bodies decoded from any transfer encoding and charset (a missing, wrong or
  unknown charset falls back to UTF-8, then Windows-1252);
* ``text`` always filled when the mail has a body: from text/plain, else
  derived from the HTML with lxml (table cells separated by a space, rows on lines);
* the subject without the prefixes mail systems and people add (FW:, Fwd:,
  WG:, AW:, RE:, TR:, SV:, Antw:, Doorst:, [EXTERNAL], *** EXTERNAL ***,
  "Caution: External", ..., repeated and mixed);
* a report that was forwarded, either as a message/rfc822 attachment or
  inline (Outlook, Gmail, Thunderbird, Apple Mail; English, German, Dutch and
  French header labels; in text and in HTML bodies), is unwrapped: the
  Message carries the ORIGINAL sender, subject, date and body, with
  ``forwarded=True``.

Nothing here raises on bad input except for truly unreadable objects; the
registry catches that anyway.
"""
from __future__ import annotations

import email
import email.parser
import re
from typing import Optional

from .base import Message
from .dates import parse_datetime
from .forwards import FORWARD_SUBJECT_RE, QUICK_RE, split_forwarded_html, split_forwarded_text
from .htmltext import html_text_and_tree
from .mime import (
    decode_part, header_str, header_text, parse_date_header, parse_from, part_payload, safe_filename,
)

_HEADER_PARSER = email.parser.BytesHeaderParser()

# --- subjects -------------------------------------------------------------------

_REPLY_WORDS = r"re|fw|fwd|wg|aw|tr|sv|vs|antw|antwort|doorst|dt|rif|r|i|ref|rv|enc|wtrlt|weitergeleitet"
_PREFIX_RE = re.compile(
    r"^\s*(?:"
    r"(?:" + _REPLY_WORDS + r")\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"           # RE: FW: WG: AW[2]:
    r"|\[(?:[^\]]*\b(?:external|extern|externe|ext|spam|suspicious|suspected spam|caution|"
    r"phish\w*|unverified|outside)\b[^\]]*)\]"                              # [EXTERNAL], [EXT] ...
    r"|\(\s*(?:external|extern|ext)\s*\)"                                   # (EXTERNAL)
    r"|\*+\s*(?:external|extern|spam|caution)[^*]*\*+"                      # *** EXTERNAL ***
    r"|(?:caution|warning|attention|achtung|let op)\s*[:\-]?\s*(?:this email (?:originated|came) from )?"
    r"(?:an? )?(?:external|extern|externe)(?: (?:e-?mail|sender|source|message|afzender|absender))?\s*[:\-!]?"
    r"|(?:external|extern|externe)\s*(?:e-?mail|sender|message)?\s*[:\-]"   # EXTERNAL: / External email -
    r")\s*",
    re.IGNORECASE,
)


def strip_subject_prefixes(subject: str) -> str:
    """The subject without reply/forward markers and external-sender tags (repeated, mixed)."""
    s = re.sub(r"\s+", " ", subject or "").strip()
    for _ in range(20):
        new = _PREFIX_RE.sub("", s, count=1).strip()
        if new == s or not new:
            return s if not new else new
        s = new
    return s


_KEPT_HEADERS = ("content-type", "list-unsubscribe", "list-id", "precedence", "auto-submitted", "x-auto-response-suppress",
                 "x-autoreply", "x-autorespond", "x-mailer", "user-agent", "content-language",
                 "x-campaign", "x-mailgun-tag", "feedback-id", "x-ms-exchange-generated-message-source")


def _kept_headers(msg) -> dict:
    out = {}
    try:
        keys = {k.lower() for k in msg.keys()}
    except Exception:  # noqa: BLE001
        return out
    for name in _KEPT_HEADERS:
        if name in keys:
            out[name] = header_text(msg, name)[:500]
    return out


# --- the message ------------------------------------------------------------------

def _collect(msg) -> tuple[list[str], list[str], list[str], Optional[object]]:
    """Text parts, HTML parts, attachment names and the first attached message (if any)."""
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[str] = []
    attached = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = (part.get_content_type() or "").lower()
        if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()
                                         and ctype not in ("message/delivery-status",)):
            name = safe_filename(part)
            attachments.append(name or "forwarded.eml")
            if attached is None:
                payload = part.get_payload()
                if isinstance(payload, list) and payload:
                    attached = payload[0]
                elif isinstance(payload, str) and payload.strip():
                    attached = payload
            continue
        if part.is_multipart():
            try:
                payload = part.get_payload()
            except Exception:  # noqa: BLE001
                payload = None
            if isinstance(payload, list):
                stack[0:0] = payload
            continue
        disp = None
        try:
            disp = part.get_content_disposition()
        except Exception:  # noqa: BLE001
            pass
        filename = safe_filename(part)
        if filename or disp == "attachment":
            if ctype == "message/rfc822" or (filename or "").lower().endswith(".eml"):
                if attached is None:
                    attached = part_payload(part)
            attachments.append(filename or "")
            continue
        if ctype == "text/html":
            html_parts.append(decode_part(part, html=True))
        elif ctype == "text/plain" or ctype.startswith("text/") or not ctype:
            text_parts.append(decode_part(part))
    return text_parts, html_parts, attachments, attached


def _join_html(parts: list[str]) -> str:
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return "\n".join(parts)


def _strip_signature(text: str) -> str:
    """The text without a short trailing signature block (a line "-- " and at most 12 lines after it):
    disclaimers and scan notices that mail gateways append, never part of the report."""
    pos = text.rfind("\n-- \n")
    tail = text[pos + 5:]
    if tail.count("\n") > 12 or len(tail) > 2000:
        return text
    return text[:pos].rstrip("\n") + "\n"


def _build(msg, depth: int) -> Message:
    text_parts, html_parts, attachments, attached = _collect(msg)
    html = _join_html(html_parts)
    text = "\n".join(t for t in text_parts if t is not None)
    tree = None
    if html and len(text.strip()) < 200:
        # No text part, or a stub ("This is an HTML message..."): derive it from the HTML.
        derived, tree = html_text_and_tree(html)
        if not text.strip() or len(derived) > 1.5 * len(text.strip()):
            text = derived
    if "\n-- \n" in text:
        text = _strip_signature(text)
    from_name, from_address = parse_from(header_text(msg, "From"))
    raw_subject = header_text(msg, "Subject")
    date = parse_date_header(header_str(msg, "Date"))
    message_id = header_text(msg, "Message-ID")
    result = Message(
        from_address=from_address,
        from_name=from_name,
        subject=strip_subject_prefixes(raw_subject),
        raw_subject=raw_subject,
        date=date,
        text=text,
        html=html,
        attachments=attachments,
        message_id=message_id,
        headers=_kept_headers(msg),
    )
    if tree is not None:
        result._tree = tree  # parsed once, shared with the parsers through html_tree()

    # Forwarded as an attachment: the attached message is the report. Not for delivery
    # reports: bounces carry the bounced mail as an attachment.
    is_dsn = (msg.get_content_type() or "").lower() == "multipart/report"
    if attached is not None and depth < 3 and not is_dsn:
        try:
            if isinstance(attached, (bytes, str)):
                raw = attached.encode("utf-8", "surrogateescape") if isinstance(attached, str) else attached
                inner_msg = email.message_from_bytes(raw)
            else:
                inner_msg = attached
            inner = _build(inner_msg, depth + 1)
        except Exception:  # noqa: BLE001
            inner = None
        if inner is not None and (inner.text.strip() or inner.html.strip()) and (inner.from_address or inner.subject):
            inner.forwarded = True
            inner.message_id = inner.message_id or message_id
            if inner.date is None:
                inner.date = date
            return inner

    # Forwarded (or quoted in a reply) inline: the innermost quoted header block. A reply
    # that quotes a report is read as that report, like a forward (stable with the
    # subject prefixes people add); the job matcher sees the original job and times.
    if depth < 3 and not is_dsn and (FORWARD_SUBJECT_RE.match(raw_subject or "") or QUICK_RE.search(text or "")):
        _unwrap_inline(result)
    return result


def _unwrap_inline(result: Message) -> None:
    split = split_forwarded_text(result.text)
    if not split:
        return
    fields, body_text = split
    if not body_text.strip():
        return
    html = ""
    tree = None
    if result.html:
        html = split_forwarded_html(result.html) or ""
        if html:
            derived, tree = html_text_and_tree(html)
            if not derived.strip():
                html, tree = "", None
    from_name, from_address = parse_from(fields.get("from", ""))
    subject = fields.get("subject", "")
    tz = result.date.tzinfo if result.date is not None else None
    date = parse_date_header(fields.get("date", "")) if fields.get("date") else None
    if date is not None and fields.get("date") and not re.search(r"[+-]\d{4}\b|\b(?:utc|gmt)\b",
                                                                    fields["date"], re.IGNORECASE):
        # No zone written: the forwarder's mail client wrote local time; use its zone.
        date = parse_datetime(fields["date"], default_tz=tz) or date
    result.from_name = from_name
    result.from_address = from_address
    result.raw_subject = subject
    result.subject = strip_subject_prefixes(subject)
    result.date = date or result.date
    result.text = body_text.strip()
    result.html = html
    result._tree = tree  # parsed once here, reused by html_tree()
    result.forwarded = True


def normalize(raw: bytes | str) -> Message:
    """A :class:`Message` from raw RFC 822 bytes (or text)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    # compat32 parsing (the email package's default) is several times faster than
    # policy.default; headers are decoded here with decode_header. Single-part
    # mails (most reports) skip the line-by-line body parser altogether.
    msg = _parse_single_part(raw)
    if msg is None:
        msg = email.message_from_bytes(raw)
    return _build(msg, 0)


def _parse_single_part(raw: bytes):
    """Headers parsed, body attached as is, for a mail that is not multipart; else None."""
    a, b = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    cands = [(a, 4), (b, 2)]
    cands = [c for c in cands if c[0] >= 0]
    if not cands:
        return None
    pos, width = min(cands)
    head, body = raw[: pos + width // 2], raw[pos + width:]
    try:
        msg = _HEADER_PARSER.parsebytes(head)
    except Exception:  # noqa: BLE001
        return None
    if msg.defects or msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(body.decode("ascii", "surrogateescape"))
    return msg
