"""In-app documentation: Markdown pages shipped with the app, rendered with a sidebar and search."""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from markupsafe import Markup, escape

from ..security import SIGNED_IN, roles_required
from ..services import markdown_render, scope

doc_bp = Blueprint("docs", __name__, url_prefix="/docs")

PAGES_DIR = os.path.join(os.path.dirname(__file__), "pages")

# Sidebar order: (section, [slugs]); each slug is pages/<slug>.md whose first line is "# Title".
SECTIONS = [
    ("Start", ["index", "getting_started", "users_and_roles", "portal", "two_factor", "api_tokens"]),
    ("Daily work", ["dashboard", "run_checks", "daily_jobs", "digest", "inbox", "customers", "jobs", "overrides",
                    "tickets", "reports", "feedback"]),
    ("Setup", ["mail_import", "single_sign_on", "parsers", "schedules", "autotask", "notifications", "snooze_and_maintenance", "status_badges", "settings", "audit_log"]),
    ("Operations", ["command_line", "api", "deployment", "troubleshooting"]),
]
# The pages for the customer portal's users (the rest describes the provider's own work); the
# portal guide is also their index and every "? Help" of their pages.
PORTAL_PAGES = ("portal", "two_factor", "api_tokens", "api")
PORTAL_SECTIONS = [("Your portal", list(PORTAL_PAGES))]


@dataclass
class DocPage:
    slug: str
    title: str
    text: str       # the Markdown source
    plain: str = ""  # the page as plain text (what a reader sees), for search
    html: str = ""   # the page rendered (once per process: the pages ship with the app)


_BLOCK_TAG_RE = re.compile(r"</?(?:p|h[1-6]|li|ul|ol|pre|table|thead|tbody|tr|td|th|blockquote|div|hr|br)\b[^>]*>", re.I)
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


def plain_text(md: str) -> str:
    """The Markdown as the reader sees it, without markup: rendered, tags dropped, entities decoded."""
    rendered = markdown_render.render(md)
    text = _TAG_RE.sub("", _BLOCK_TAG_RE.sub(" ", rendered))
    return _SPACE_RE.sub(" ", html.unescape(text)).strip()


# A page may hold this line: it becomes the JSON API's endpoint reference, written from the OpenAPI
# document the API serves (backend/app/api/openapi.py), so the page and the API never disagree.
OPENAPI_MARKER = "<!-- openapi-endpoints -->"


def _expand(text: str) -> str:
    if OPENAPI_MARKER not in text:
        return text
    from ..api.openapi import endpoints_markdown, openapi_document

    return text.replace(OPENAPI_MARKER, endpoints_markdown(openapi_document()))


@lru_cache(maxsize=1)
def load_pages() -> dict[str, DocPage]:
    pages = {}
    for name in sorted(os.listdir(PAGES_DIR)):
        if not name.endswith(".md"):
            continue
        slug = name[:-3]
        with open(os.path.join(PAGES_DIR, name), encoding="utf-8") as fh:
            text = _expand(fh.read())
        first = text.splitlines()[0] if text else slug
        title = first.lstrip("# ").strip() or slug
        body = text.split("\n", 1)[1] if text.startswith("#") and "\n" in text else text
        pages[slug] = DocPage(slug, title, text, plain_text(body), markdown_render.render(text, heading_ids=True))
    return pages


def _for_portal() -> bool:
    return scope.is_portal(current_user)


def sidebar() -> list[tuple[str, list[DocPage]]]:
    pages = load_pages()
    sections = PORTAL_SECTIONS if _for_portal() else SECTIONS
    return [(section, [pages[s] for s in slugs if s in pages]) for section, slugs in sections]


@doc_bp.route("/")
@roles_required(*SIGNED_IN)
def index():
    return page("portal" if _for_portal() else "index")


@doc_bp.route("/<slug>")
@roles_required(*SIGNED_IN)
def page(slug: str):
    pages = load_pages()
    if slug not in pages or (_for_portal() and slug not in PORTAL_PAGES):
        abort(404)
    doc = pages[slug]
    return render_template("docs/page.html", doc=doc, body=Markup(doc.html), sidebar=sidebar())


SNIPPET_BEFORE, SNIPPET_AFTER = 80, 140


def snippet(plain: str, needle: str) -> Markup:
    """Some plain text around the first match, every match in it marked; safe to render."""
    pos = plain.lower().find(needle.lower())
    if pos < 0:
        start, end = 0, SNIPPET_BEFORE + SNIPPET_AFTER
    else:
        start, end = max(0, pos - SNIPPET_BEFORE), pos + len(needle) + SNIPPET_AFTER
    if start > 0:  # begin and end on a word boundary
        space = plain.find(" ", start)
        start = space + 1 if 0 <= space < pos else start
    if end < len(plain):
        space = plain.rfind(" ", pos + len(needle) if pos >= 0 else 0, end)
        end = space if space > 0 else end
    part = plain[start:end]
    out = Markup("…") if start > 0 else Markup("")
    last = 0
    for m in re.finditer(re.escape(needle), part, re.IGNORECASE):
        out += escape(part[last:m.start()]) + Markup("<mark>") + escape(m.group(0)) + Markup("</mark>")
        last = m.end()
    out += escape(part[last:])
    return out + (Markup("…") if end < len(plain) else Markup(""))


def search_pages(q: str) -> list[tuple[DocPage, Markup]]:
    """Pages whose title or text holds ``q`` (case-insensitive), title hits first, each with a snippet."""
    needle = q.strip().lower()
    if not needle:
        return []
    hits = [(doc, snippet(doc.plain, needle)) for doc in load_pages().values()
            if (needle in doc.title.lower() or needle in doc.plain.lower())
            and (doc.slug in PORTAL_PAGES or not _for_portal())]
    hits.sort(key=lambda h: (needle not in h[0].title.lower(), h[0].title))
    return hits


@doc_bp.route("/search")
@roles_required(*SIGNED_IN)
def search():
    q = (request.args.get("q") or "").strip()[:200]
    return render_template("docs/search.html", q=q, hits=search_pages(q), sidebar=sidebar())
