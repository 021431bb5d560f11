"""In-app documentation: Markdown pages shipped with the app, rendered with a sidebar and search."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import markdown
import nh3
from flask import Blueprint, abort, render_template, request
from markupsafe import Markup

from ..security import EVERYONE, roles_required

doc_bp = Blueprint("docs", __name__, url_prefix="/docs")

PAGES_DIR = os.path.join(os.path.dirname(__file__), "pages")

# Sidebar order: (section, [slugs]); each slug is pages/<slug>.md whose first line is "# Title".
SECTIONS = [
    ("Start", ["index", "getting_started", "users_and_roles"]),
    ("Daily work", ["dashboard", "run_checks", "daily_jobs", "inbox", "customers", "jobs", "overrides",
                    "tickets", "reports", "feedback"]),
    ("Setup", ["mail_import", "parsers", "schedules", "autotask", "settings", "audit_log"]),
    ("Operations", ["command_line", "deployment", "troubleshooting"]),
]


@dataclass
class DocPage:
    slug: str
    title: str
    text: str


@lru_cache(maxsize=1)
def load_pages() -> dict[str, DocPage]:
    pages = {}
    for name in sorted(os.listdir(PAGES_DIR)):
        if not name.endswith(".md"):
            continue
        slug = name[:-3]
        with open(os.path.join(PAGES_DIR, name), encoding="utf-8") as fh:
            text = fh.read()
        first = text.splitlines()[0] if text else slug
        title = first.lstrip("# ").strip() or slug
        pages[slug] = DocPage(slug, title, text)
    return pages


def render_markdown(text: str) -> Markup:
    html = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])
    return Markup(nh3.clean(html, tags=nh3.ALLOWED_TAGS | {"h1", "h2", "h3", "h4", "table", "thead", "tbody",
                                                            "tr", "th", "td", "pre", "code"},
                            attributes={"*": {"id"}, "a": {"href", "title"}}))


def sidebar() -> list[tuple[str, list[DocPage]]]:
    pages = load_pages()
    return [(section, [pages[s] for s in slugs if s in pages]) for section, slugs in SECTIONS]


@doc_bp.route("/")
@roles_required(*EVERYONE)
def index():
    return page("index")


@doc_bp.route("/<slug>")
@roles_required(*EVERYONE)
def page(slug: str):
    pages = load_pages()
    if slug not in pages:
        abort(404)
    doc = pages[slug]
    return render_template("docs/page.html", doc=doc, body=render_markdown(doc.text), sidebar=sidebar())


@doc_bp.route("/search")
@roles_required(*EVERYONE)
def search():
    q = (request.args.get("q") or "").strip()
    hits = []
    if q:
        needle = q.lower()
        for doc in load_pages().values():
            pos = doc.text.lower().find(needle)
            if needle in doc.title.lower() or pos >= 0:
                start = max(0, pos - 80)
                snippet = re.sub(r"[#*`|]", "", doc.text[start:pos + 120]) if pos >= 0 else ""
                hits.append((doc, snippet))
        hits.sort(key=lambda h: (needle not in h[0].title.lower(), h[0].title))
    return render_template("docs/search.html", q=q, hits=hits, sidebar=sidebar())
