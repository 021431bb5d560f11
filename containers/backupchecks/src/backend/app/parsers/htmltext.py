"""Readable text from a mail's HTML body: line breaks at <br> and blocks, table cells separated.

Used by :mod:`.normalize` to derive the text of an HTML-only mail; the parsed tree is kept so
``Message.html_tree()`` does not parse the markup again.
"""
from __future__ import annotations

import re

from .mime import CONTROL_RE

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


def parse_html(html: str):
    import lxml.html
    if CONTROL_RE.search(html):
        html = CONTROL_RE.sub("", html)
    return lxml.html.document_fromstring(html)


def html_to_text(html: str) -> str:
    """Readable text from HTML, with table cells separated and rows on lines."""
    if not html or not html.strip():
        return ""
    return html_text_and_tree(html)[0]


def html_text_and_tree(html: str):
    """(text, lxml tree or None) of an HTML body; the tree is reused as Message.html_tree()."""
    if not html or not html.strip():
        return "", None
    try:
        doc = parse_html(html)
        return _tree_to_text(doc), doc
    except Exception:  # noqa: BLE001 - unparsable markup: crude fallback
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip(), None

