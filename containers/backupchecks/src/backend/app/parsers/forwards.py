"""Forwarded (or quoted) reports: the mail-header block a forwarder's client writes above the
report (From/Sent/To/Subject in English, German, Dutch, French, Italian and Scandinavian
wording), found in a text body, and the HTML that follows the same block in an HTML body.
"""
from __future__ import annotations

import re
from typing import Optional

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
# A subject that a forward gave its prefix (FW:, WG:, Doorst: ...).
FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:fw|fwd|wg|tr|doorst|dt|wtrlt|rv|enc|i)\s*[:：]", re.IGNORECASE)
# Cheap pre-check before the line scan: some label followed by a colon at a line start.
QUICK_RE = re.compile(r"^[ \t>]*\**(?:subject|betreff|onderwerp|objet|oggetto|sujet)\**\s?[:：]",
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


def split_forwarded_text(text: str) -> Optional[tuple[dict, str]]:
    """(header fields, body after the header) of the innermost forwarded block in a text body."""
    if not text or not QUICK_RE.search(text):
        return None
    lines = text.split("\n")
    blocks = _find_header_blocks(lines)
    if not blocks:
        return None
    b = blocks[-1]
    body_lines = _unquote(lines[b.end:])
    body = "\n".join(body_lines).strip("\n")
    return b.fields, body


def split_forwarded_html(html: str) -> Optional[str]:
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

