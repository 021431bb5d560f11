"""Every allow-list of the app, in one place: what HTML may reach a page, per kind of content.

- ``USER_MARKDOWN``: the HTML rendered from what users write in Markdown (feedback, replies, news,
  report intros). Text and tables; links keep only http, https and mailto targets (and relative ones),
  so ``javascript:`` and ``data:`` links lose their target; no images (no remote loads).
- ``DOCS_MARKDOWN``: the shipped documentation pages: the same, plus ``id`` on headings (the anchors).
- ``MAIL_HTML``: a mail's HTML body in the Inbox's sandboxed frame. The layout tags of report mails
  (tables, fonts, headings) and presentational attributes stay; scripts, forms, images' sources, links'
  targets and ``<style>`` blocks (with their content) go. Inline ``style`` attributes stay for the
  layout but never load anything (``clean_style``): a declaration that could fetch from elsewhere is
  dropped (``url(...)`` other than a ``data:image/...``, ``image-set()``, ``image()``, ``@import``, and
  any function not in ``SAFE_FUNCTIONS``), and so is one that hides its words (CSS escapes with a
  backslash, comments). The frame's Content-Security-Policy forbids remote loads too; this does not
  rely on it alone.

The pipelines that produce the HTML stay with their content (``markdown_render`` for Markdown,
``mail_body`` for mails) and end with ``<policy>.clean(html)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import nh3

LINK_REL = "noopener noreferrer"  # on every link that is kept


@dataclass(frozen=True)
class Policy:
    """One allow-list: the tags, attributes per tag ("*" = any tag) and link schemes that are kept."""

    tags: frozenset[str]
    attributes: Mapping[str, frozenset[str]]
    url_schemes: frozenset[str]
    link_rel: str = LINK_REL
    attribute_filter: Optional[Callable[[str, str, str], Optional[str]]] = field(default=None, compare=False)

    def clean(self, html: str) -> str:
        """``html`` with everything outside this allow-list removed (comments too)."""
        return nh3.clean(html, tags=set(self.tags), attributes={t: set(a) for t, a in self.attributes.items()},
                         url_schemes=set(self.url_schemes), link_rel=self.link_rel, strip_comments=True,
                         attribute_filter=self.attribute_filter)


# --- Markdown -------------------------------------------------------------------------------------

MARKDOWN_TAGS = frozenset({"p", "br", "hr", "strong", "em", "b", "i", "del", "code", "pre", "blockquote", "ul",
                           "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
                           "th", "td"})
_LINK = {"a": frozenset({"href", "title"})}
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})

USER_MARKDOWN = Policy(MARKDOWN_TAGS, _LINK, _LINK_SCHEMES)
DOCS_MARKDOWN = Policy(MARKDOWN_TAGS, {**_LINK, **{f"h{n}": frozenset({"id"}) for n in range(1, 7)}}, _LINK_SCHEMES)


# --- Mail HTML: styles that load nothing ----------------------------------------------------------

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


def clean_style(style: str) -> Optional[str]:
    """The style attribute without any declaration that could load something; None when nothing is left."""
    kept = [d for d in _declarations(style) if _loads_nothing(d)]
    return "; ".join(kept) or None


def _mail_attribute(tag: str, attribute: str, value: str) -> Optional[str]:
    return clean_style(value) if attribute == "style" else value


MAIL_HTML = Policy(
    frozenset(nh3.ALLOWED_TAGS) | {"table", "thead", "tbody", "tfoot", "tr", "td", "th", "font", "center", "span",
                                   "div", "p", "br", "hr", "b", "i", "u", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
                                   "code", "small", "strong", "em", "caption", "col", "colgroup"},
    {"*": frozenset({"style", "class", "align", "valign", "width", "height", "bgcolor", "color", "colspan",
                     "rowspan", "border", "cellpadding", "cellspacing", "face", "size"})},
    frozenset({"mailto"}),
    attribute_filter=_mail_attribute,
)
