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
from datetime import datetime
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime
from typing import Optional

from .base import Message, parse_datetime

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


_FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:fw|fwd|wg|tr|doorst|dt|wtrlt|rv|enc|i)\s*[:：]", re.IGNORECASE)

# --- HTML to text -----------------------------------------------------------------

_BLOCK_TAGS = ("tr", "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
               "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer",
               "tbody", "thead", "center", "form", "address")


_BLOCK_SET = frozenset(_BLOCK_TAGS)
_LEADING_NL = frozenset(("p", "div", "tr", "li", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"))
_SKIP_TAGS = frozenset(("script", "style", "head", "title"))
_SPACES_RE = re.compile(r"[ \t\xa0\u200b]+")


_NBSP_RUN_RE = re.compile(r"[ \xa0]*\xa0[ \xa0]*")
_PLAIN_SPACES_RE = re.compile(r"[ \t\u200b]+")


def _spaces_keep_columns(line: str) -> str:
    """Collapse spaces, but keep a run with non-breaking spaces as two spaces: that is how
    mail clients keep the columns of a plain-text table they turned into HTML."""
    line = _PLAIN_SPACES_RE.sub(" ", line)
    return _NBSP_RUN_RE.sub(lambda m: "  " if len(m.group(0)) > 1 else " ", line)


def _tree_to_text(doc) -> str:
    """Text of an lxml tree: line breaks at <br> and blocks, cells separated. Leaves the tree as it is."""
    out: list[str] = []
    tabs = False
    stack = [(doc, False)]
    while stack:
        el, closing = stack.pop()
        tag = el.tag if isinstance(el.tag, str) else None
        if closing:
            if tag in ("td", "th"):
                out.append("\t")
            if tag == "p" and "Mso" in (el.get("class") or ""):
                # Outlook's MsoNormal / MsoPlainText paragraphs have no margins: one line
                # each, no blank line between them (a plain-text mail forwarded as HTML).
                if el.tail and not el.tail.isspace():
                    out.append(el.tail)
                continue
            if tag in _BLOCK_SET:
                out.append("\n")
            if el.tail:
                out.append(el.tail)
            continue
        if tag is None or tag in _SKIP_TAGS:  # comments, processing instructions, scripts
            if el.tail and el is not doc:
                out.append(el.tail)
            continue
        if tag == "br":
            out.append("\n")
        elif tag in _LEADING_NL:
            out.append("\n")
        elif tag == "span" and "mso-tab-count" in (el.get("style") or ""):
            # Outlook writes a tab of a plain-text mail it turned into HTML as such a span;
            # a marker survives the space collapsing below and becomes a tab again.
            out.append("\ue000")
            tabs = True
            if el.tail:
                out.append(el.tail)
            continue
        if el.text:
            out.append(el.text)
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    lines = [(_SPACES_RE.sub(" ", ln) if "\xa0" not in ln else _spaces_keep_columns(ln)).strip()
             for ln in "".join(out).splitlines()]
    if tabs:
        lines = [re.sub(r" ?\ue000 ?", "\t", ln).strip(" ") for ln in lines]
    result: list[str] = []
    blank = False
    for ln in lines:
        if not ln:
            if not blank and result:
                result.append("")
            blank = True
            continue
        result.append(ln)
        blank = False
    return "\n".join(result).strip()


def _parse_html(html: str):
    import lxml.html
    if _CONTROL_RE.search(html):
        html = _CONTROL_RE.sub("", html)
    return lxml.html.document_fromstring(html)


def html_to_text(html: str) -> str:
    """Readable text from HTML, with table cells separated and rows on lines."""
    if not html or not html.strip():
        return ""
    return _html_text_and_tree(html)[0]


def _html_text_and_tree(html: str):
    """(text, lxml tree or None) of an HTML body; the tree is reused as Message.html_tree()."""
    if not html or not html.strip():
        return "", None
    try:
        doc = _parse_html(html)
        return _tree_to_text(doc), doc
    except Exception:  # noqa: BLE001 - unparsable markup: crude fallback
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip(), None


# --- decoding ---------------------------------------------------------------------

_CHARSET_ALIASES = {
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7", "ansi_x3.4-1968": "ascii", "x-unknown": "",
    "unknown-8bit": "", "unknown": "", "default": "", "charset": "", "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "windows-874": "cp874", "latin1": "latin-1",
}
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
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


def _part_payload(part) -> bytes:
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


def _decode_part(part, html: bool = False) -> str:
    try:
        charset = part.get_param("charset")
        if isinstance(charset, tuple):  # RFC 2231 encoded parameter
            charset = email.utils.collapse_rfc2231_value(charset)
    except Exception:  # noqa: BLE001
        charset = None
    text = _decode_bytes(_part_payload(part), charset, html=html)
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
    return _CONTROL_RE.sub("", text) if _CONTROL_RE.search(text) else text


def _decode_header_value(value) -> str:
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


def _header_str(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001
        return ""
    if value is None:
        return ""
    return _decode_header_value(value)


def _header_text(msg, name: str) -> str:
    return re.sub(r"\s+", " ", _header_str(msg, name)).strip()


_SIMPLE_FROM_RE = re.compile(r'^\s*(?:"?(?P<name>[^"<>]*?)"?\s*)?<(?P<addr>[^<>@\s"]+@[^<>@\s"]+)>\s*$'
                             r'|^\s*(?P<bare>[^<>@\s"]+@[^<>@\s"]+)\s*$')
_HEADER_PARSER = email.parser.BytesHeaderParser()


def _parse_from(value: str) -> tuple[str, str]:
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


def _parse_date_header(value: str) -> Optional[datetime]:
    if not value:
        return None
    try:
        d = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001
        d = None
    if d is not None and d.tzinfo is None:
        from datetime import timezone
        d = d.replace(tzinfo=timezone.utc)
    return d or parse_datetime(value)


# --- forwarded reports ------------------------------------------------------------

_FROM_LABELS = ("from", "von", "van", "de", "da", "från", "fra", "od")
_DATE_LABELS = ("sent", "date", "gesendet", "datum", "verzonden", "verstuurd", "envoyé", "envoye",
                "inviato", "data", "skickat", "sendt", "wysłano")
_TO_LABELS = ("to", "an", "aan", "à", "a", "till", "til", "do", "cc", "bcc", "kopie", "cci")
_SUBJECT_LABELS = ("subject", "betreff", "onderwerp", "objet", "oggetto", "ämne", "emne", "temat",
                   "sujet")
_ALL_LABELS = _FROM_LABELS + _DATE_LABELS + _TO_LABELS + _SUBJECT_LABELS + ("reply-to", "importance",
                                                                           "wichtigkeit", "priorité")
_LABEL_KIND = {}
for _l in _FROM_LABELS:
    _LABEL_KIND[_l] = "from"
for _l in _DATE_LABELS:
    _LABEL_KIND[_l] = "date"
for _l in _TO_LABELS:
    _LABEL_KIND[_l] = "to"
for _l in _SUBJECT_LABELS:
    _LABEL_KIND[_l] = "subject"
_HEADER_LINE_RE = re.compile(
    r"^[ \t>]*\**(?P<label>" + "|".join(sorted((re.escape(x) for x in _ALL_LABELS), key=len, reverse=True))
    + r")\**\s?[:：]\**[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_SEPARATOR_RE = re.compile(
    r"^[ \t>]*(?:-{2,}\s*(?:original message|forwarded message|weitergeleitete nachricht|"
    r"ursprüngliche nachricht|ursprungliche nachricht|oorspronkelijk bericht|doorgestuurd bericht|"
    r"message d'origine|message transféré|messaggio originale|messaggio inoltrato|"
    r"mensaje original|mensaje reenviado|originalmeddelande|vidarebefordrat meddelande)\s*-{2,}"
    r"|begin forwarded message:|anfang der weitergeleiteten nachricht:|begin van doorgestuurd bericht:"
    r"|_{10,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# Cheap pre-check before the line scan: some label followed by a colon at a line start.
_QUICK_RE = re.compile(r"^[ \t>]*\**(?:subject|betreff|onderwerp|objet|oggetto|sujet)\**\s?[:：]",
                       re.IGNORECASE | re.MULTILINE)


class _Block:
    __slots__ = ("start", "end", "fields")

    def __init__(self, start: int, end: int, fields: dict):
        self.start, self.end, self.fields = start, end, fields


def _find_header_blocks(lines: list[str]) -> list[_Block]:
    """Runs of mail-header lines (From/Sent/To/Subject in any supported language).

    A block counts when it has a From-like and a Subject-like line and either a
    Date-like line or a separator line right above it.
    """
    blocks: list[_Block] = []
    i, n = 0, len(lines)
    while i < n:
        m = _HEADER_LINE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        fields: dict = {}
        j = i
        last_kind = None
        wrapped = 0
        while j < n:
            line = lines[j]
            hm = _HEADER_LINE_RE.match(line)
            if hm:
                kind = _LABEL_KIND.get(hm.group("label").lower(), "other")
                if kind not in fields:
                    fields[kind] = hm.group("value").strip()
                last_kind = kind
                j += 1
                continue
            bare = line.strip().lstrip(">").strip()
            if not bare:
                # Blank lines may separate header lines (Outlook HTML rendered as text).
                k = j + 1
                while k < n and not lines[k].strip().lstrip(">").strip() and k - j < 2:
                    k += 1
                if k < n and _HEADER_LINE_RE.match(lines[k]) and len(fields) < 4:
                    j = k
                    continue
                break
            # A wrapped recipient list (long To:/Cc:) continues the previous line.
            if last_kind == "to" and j - start < 12 and ("@" in bare or ";" in bare) and ":" not in bare:
                j += 1
                continue
            # A long subject hard-wrapped by a plain-text client (76 columns) continues on
            # the next line, before the blank line that ends the header block.
            if last_kind == "subject" and len(lines[j - 1].rstrip()) >= 60 and not wrapped:
                # At most two continuation lines, and the header block must end right after them.
                k = j
                while k < n and k - j < 2 and lines[k].strip().lstrip(">").strip() \
                        and not _HEADER_LINE_RE.match(lines[k]):
                    k += 1
                if k >= n or not lines[k].strip().lstrip(">").strip() or _HEADER_LINE_RE.match(lines[k]):
                    more = [ln.strip().lstrip(">").strip() for ln in lines[j:k]]
                    fields["subject"] = " ".join([fields["subject"].rstrip()] + more)
                    wrapped = 1
                    j = k
                    continue
            break
        sep_above = False
        k = start - 1
        while k >= 0 and not lines[k].strip().lstrip(">").strip() and start - k < 4:
            k -= 1
        if k >= 0 and _SEPARATOR_RE.match(lines[k]):
            sep_above = True
        if "from" in fields and "subject" in fields and ("date" in fields or sep_above):
            blocks.append(_Block(start, j, fields))
        i = max(j, i + 1)
    return blocks


def _unquote(lines: list[str]) -> list[str]:
    nonblank = [ln for ln in lines if ln.strip()]
    if nonblank and all(ln.lstrip().startswith(">") for ln in nonblank):
        return [re.sub(r"^\s*>\s?", "", ln) for ln in lines]
    return lines


def _split_forwarded_text(text: str) -> Optional[tuple[dict, str]]:
    """(header fields, body after the header) of the innermost forwarded block in a text body."""
    if not text or not _QUICK_RE.search(text):
        return None
    lines = text.split("\n")
    blocks = _find_header_blocks(lines)
    if not blocks:
        return None
    b = blocks[-1]
    body_lines = _unquote(lines[b.end:])
    body = "\n".join(body_lines).strip("\n")
    return b.fields, body


def _split_forwarded_html(html: str, fields: dict) -> Optional[str]:
    """The HTML that follows the innermost forwarded header block, or None."""
    import lxml.html
    from lxml import etree
    try:
        doc = lxml.html.document_fromstring(html)
    except Exception:  # noqa: BLE001
        return None
    # Line breaks where the markup implies them, so labels start a "line" in text_content().
    for el in doc.iter("br", "tr", "td", "th", "p", "div", "li"):
        el.tail = "\n" + (el.tail or "")
    subject_labels = "|".join(_SUBJECT_LABELS)
    from_labels = "|".join(_FROM_LABELS)
    # <br> leaves no text behind, so labels may follow the previous value directly.
    subj_rx = re.compile(r"(?<![^\W\d_])\**(?:" + subject_labels + r")\**\s?[:：]", re.IGNORECASE)
    from_rx = re.compile(r"(?<![^\W\d_])\**(?:" + from_labels + r")\**\s?[:：]", re.IGNORECASE)
    # Only an ancestor of a text node naming a subject label can hold a header block:
    # checking those alone keeps this linear on large (Outlook Word) bodies.
    holders: set = set()
    for node in doc.iter():
        if not isinstance(node.tag, str):
            continue
        for piece, owner in ((node.text, node), (node.tail, node.getparent())):
            if piece and owner is not None and owner not in holders:
                low = piece.lower()
                if any(w in low for w in _SUBJECT_LABELS):
                    holders.add(owner)
                    holders.update(owner.iterancestors())
    target = None
    for el in doc.iter("div", "p", "table", "tbody", "td", "font", "span", "blockquote", "pre"):
        if el not in holders:
            continue
        try:
            content = el.text_content()
        except Exception:  # noqa: BLE001
            continue
        if subj_rx.search(content) and from_rx.search(content):
            target = el
    if target is None:
        return None
    # A header block that is the whole remaining document (no body after it) is useless.
    marker_id = "bc-forward-split-7f3a"
    marker = etree.Element("span")
    marker.set("id", marker_id)
    tail = target.tail
    target.tail = None
    target.addnext(marker)
    marker.tail = tail
    serial = lxml.html.tostring(doc, encoding="unicode")
    pos = serial.find('<span id="%s"></span>' % marker_id)
    if pos < 0:
        return None
    rest = serial[pos + len('<span id="%s"></span>' % marker_id):]
    rest = re.sub(r"</?(?:html|body)[^>]*>", "", rest)
    if not rest.strip():
        return None
    return "<html><body>" + rest + "</body></html>"


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
            out[name] = _header_text(msg, name)[:500]
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
            name = _safe_filename(part)
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
        filename = _safe_filename(part)
        if filename or disp == "attachment":
            if ctype == "message/rfc822" or (filename or "").lower().endswith(".eml"):
                if attached is None:
                    attached = _part_payload(part)
            attachments.append(filename or "")
            continue
        if ctype == "text/html":
            html_parts.append(_decode_part(part, html=True))
        elif ctype == "text/plain" or ctype.startswith("text/") or not ctype:
            text_parts.append(_decode_part(part))
    return text_parts, html_parts, attachments, attached


def _safe_filename(part) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        return ""
    return _decode_header_value(name) if "=?" in name else name


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
        derived, tree = _html_text_and_tree(html)
        if not text.strip() or len(derived) > 1.5 * len(text.strip()):
            text = derived
    if "\n-- \n" in text:
        text = _strip_signature(text)
    from_name, from_address = _parse_from(_header_text(msg, "From"))
    raw_subject = _header_text(msg, "Subject")
    date = _parse_date_header(_header_str(msg, "Date"))
    message_id = _header_text(msg, "Message-ID")
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
    if depth < 3 and not is_dsn and (_FORWARD_SUBJECT_RE.match(raw_subject or "") or _QUICK_RE.search(text or "")):
        _unwrap_inline(result)
    return result


def _unwrap_inline(result: Message) -> None:
    split = _split_forwarded_text(result.text)
    if not split:
        return
    fields, body_text = split
    if not body_text.strip():
        return
    html = ""
    tree = None
    if result.html:
        html = _split_forwarded_html(result.html, fields) or ""
        if html:
            derived, tree = _html_text_and_tree(html)
            if not derived.strip():
                html, tree = "", None
    from_name, from_address = _parse_from(fields.get("from", ""))
    subject = fields.get("subject", "")
    tz = result.date.tzinfo if result.date is not None else None
    date = _parse_date_header(fields.get("date", "")) if fields.get("date") else None
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
