"""A mail's HTML body, made safe to show in the Inbox's sandboxed frame.

- What may stay (tags, attributes, styles that load nothing) is the ``MAIL_HTML`` allow-list in
  ``sanitize``.
- The HTML parser needs time that grows with the square of the nesting depth: a mail of
  ``"<div>" * 40000`` (200 KB) would cost seconds of CPU on every view. A linear scan counts how deep
  the elements nest first; past ``MAX_DEPTH`` (report mails nest a few dozen deep) the Inbox shows the
  mail's text instead, with a line that says why.
"""
from __future__ import annotations

import re
from html import escape

from .sanitize import MAIL_HTML

MAX_DEPTH = 256
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*>")
# Elements that never hold others, and those whose end tag may be left out (the parser closes them
# itself when the next one starts), do not make a mail nest deeper.
_FLAT = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                   "source", "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "thead", "tbody",
                   "tfoot", "colgroup", "caption", "option", "optgroup", "rb", "rt", "rp"})
TOO_DEEP = "This mail's HTML nests too deeply to be shown safely; here is its text."


def nesting_depth(html: str, limit: int = MAX_DEPTH) -> int:
    """How deep the elements of ``html`` nest at most (stops counting past ``limit``); linear in its length.
    An end tag only closes an element of its name that is open, as in the parser."""
    open_by_name: dict[str, int] = {}
    depth = peak = 0
    for m in _TAG.finditer(html):
        name = m.group(2).lower()
        if name in _FLAT or m.group(0).endswith("/>"):
            continue
        if m.group(1):
            if open_by_name.get(name):
                open_by_name[name] -= 1
                depth -= 1
        else:
            open_by_name[name] = open_by_name.get(name, 0) + 1
            depth += 1
            peak = max(peak, depth)
            if depth > limit:
                break
    return peak


def clean(html: str) -> str:
    """The body's HTML as the Inbox shows it: allowed tags and attributes only, styles that load nothing.
    A body nesting deeper than ``MAX_DEPTH`` is shown as its text (tags removed) with a line saying so."""
    if nesting_depth(html) > MAX_DEPTH:
        lines = (" ".join(line.split()) for line in _TAG.sub(" ", html).splitlines())  # linear, no regex
        text = "\n".join(line for line in lines if line)
        return f"<p><em>{escape(TOO_DEEP)}</em></p><pre>{escape(text)}</pre>"
    return MAIL_HTML.clean(html)


# The policy of a mail body's own response (the frame): nothing loads, no script, no form, only the
# mail's inline styles; framed only by the app's own pages.
BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
            "form-action 'none'; frame-ancestors 'self'; sandbox")


def document(body_html, body_text) -> str:
    """The page a sandboxed frame shows for a mail: its HTML cleaned (``clean``), or its text."""
    if body_html:
        body = clean(body_html)
    else:
        body = f"<pre style='white-space:pre-wrap;font-family:monospace'>{escape(body_text or '')}</pre>"
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>"
