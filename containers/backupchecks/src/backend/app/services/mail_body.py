"""A mail's HTML body, made safe to show in the Inbox's sandboxed frame.

- nh3 keeps the layout tags of report mails (tables, fonts, headings) and presentational attributes;
  scripts, forms, images' sources, links' targets and ``<style>`` blocks (with their content) go.
- Inline ``style`` attributes stay for the layout, but never load anything: a declaration that could
  fetch from elsewhere is dropped (``url(...)`` other than a ``data:image/...``, ``image-set()``,
  ``image()``, ``@import``, and any function not in the short list of harmless ones), and so is one that
  hides its words (CSS escapes with a backslash, comments). The frame's Content-Security-Policy forbids
  remote loads too; this does not rely on it alone.
- The HTML parser needs time that grows with the square of the nesting depth: a mail of
  ``"<div>" * 40000`` (200 KB) would cost seconds of CPU on every view. A linear scan counts how deep
  the elements nest first; past ``MAX_DEPTH`` (report mails nest a few dozen deep) the Inbox shows the
  mail's text instead, with a line that says why.
"""
from __future__ import annotations

import re
from html import escape

import nh3

TAGS = set(nh3.ALLOWED_TAGS) | {"table", "thead", "tbody", "tfoot", "tr", "td", "th", "font", "center", "span",
                                "div", "p", "br", "hr", "b", "i", "u", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
                                "code", "small", "strong", "em", "caption", "col", "colgroup"}
ATTRIBUTES = {"*": {"style", "class", "align", "valign", "width", "height", "bgcolor", "color", "colspan",
                    "rowspan", "border", "cellpadding", "cellspacing", "face", "size"}}

# CSS functions that compute a value and never fetch anything. Everything else (url, image, image-set,
# -webkit-image-set, cross-fade, element, src, paint, expression, ...) drops its declaration.
SAFE_FUNCTIONS = frozenset({
    "rgb", "rgba", "hsl", "hsla", "hwb", "lab", "lch", "oklab", "oklch", "color", "color-mix",
    "calc", "min", "max", "clamp", "var",
    "linear-gradient", "radial-gradient", "conic-gradient", "repeating-linear-gradient",
    "repeating-radial-gradient", "repeating-conic-gradient",
    "translate", "translatex", "translatey", "rotate", "scale", "scalex", "scaley", "skew", "skewx", "skewy",
    "matrix",
})
_FUNCTION = re.compile(r"(?<![-\w])([-\w]+)\s*\(")  # the name before "(", taken from its first character
_SIGNIFICANT = re.compile(r""""[^"]*"?|'[^']*'?|[();]""")  # a quoted string (maybe unclosed), a parenthesis, a ";"
_DATA_IMAGE_URL = re.compile(r"""url\(\s*(["']?)data:image/[-+.\w]+[;,][^"'()\s]*\1\s*\)""", re.IGNORECASE)


def _declarations(style: str) -> list[str]:
    """Split a style attribute at the semicolons that end declarations (not those inside quotes or
    parentheses, e.g. in ``url(data:image/png;base64,...)``)."""
    parts, start, depth = [], 0, 0
    for m in _SIGNIFICANT.finditer(style):
        c = m.group()
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c == ";" and depth == 0:
            parts.append(style[start:m.start()])
            start = m.end()
    parts.append(style[start:])
    return [p.strip() for p in parts if p.strip()]


def _loads_nothing(declaration: str) -> bool:
    if "\\" in declaration or "/*" in declaration or "@" in declaration:
        return False  # escapes and comments can spell "url(" in a way a simple reader does not see
    rest = _DATA_IMAGE_URL.sub("", declaration)  # an inline image is kept: it fetches nothing
    return all(name.lower() in SAFE_FUNCTIONS for name in _FUNCTION.findall(rest))


def clean_style(style: str) -> str | None:
    """The style attribute without any declaration that could load something; None when nothing is left."""
    kept = [d for d in _declarations(style) if _loads_nothing(d)]
    return "; ".join(kept) or None


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    return clean_style(value) if attribute == "style" else value


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
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"mailto"}, strip_comments=True,
                     attribute_filter=_attribute_filter)
