"""Markdown to safe HTML: the one Markdown pipeline of the app.

Used for what users write (feedback descriptions and replies, dashboard news, report intros) and for
the shipped documentation pages.

- Safe: Markdown's own HTML handling is off, so HTML typed in the text is shown as text; the result
  then goes through the allow-list in ``sanitize`` (``USER_MARKDOWN``, or ``DOCS_MARKDOWN`` with the
  docs' heading anchors).
- Rendered once, when the text is saved. FIELDS lists each Markdown column and the HTML column beside
  it; a flush of a new row, or of a row whose Markdown changed, renders it and stamps the row's
  ``html_version`` with VERSION. Pages read the stored HTML (``html_of``) and never run Markdown.
  Raise VERSION whenever the output changes (an allow-list, the neutraliser, the extensions, the
  Markdown package): rows with an older version show as plain text until the background loop has
  re-rendered them, a bounded batch per pass.
- Linear time whatever the input. Python-Markdown is quadratic on some inputs: "[" * 20,000 takes
  over a minute. So texts are at most MAX_LENGTH characters (each form says so); before Markdown,
  ``neutralise`` escapes the brackets that make its link search run to the end of the text (unbalanced
  "[", nesting deeper than MAX_NESTING, link targets it cannot end early) beyond the first few; link
  texts and targets are looked for within LINK_WINDOW characters; and a render that still uses more
  than BUDGET_SECONDS of CPU, or nests deeper than Python allows, is stored as plain text instead.
"""
from __future__ import annotations

import logging
import re
import time
import types
from dataclasses import dataclass

import markdown
from flask import Flask
from markdown.inlinepatterns import LinkInlineProcessor
from markupsafe import Markup, escape
from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import FeedbackItem, FeedbackReply, NewsItem, ReportDefinition
from .sanitize import DOCS_MARKDOWN, USER_MARKDOWN

log = logging.getLogger(__name__)

VERSION = 1                 # of the stored HTML: raise it when the output of render() changes
MAX_LENGTH = 10_000         # characters of Markdown in one field (feedback, reply, news, report intro)
BUDGET_SECONDS = 0.5        # CPU time one render may take before it falls back to plain text
MAX_NESTING = 4             # "[" nested deeper than this is shown as a plain bracket
KEEP_ODD = 4                # unbalanced "[" and odd link targets left alone (each costs one bounded look)
LINK_WINDOW = 2_000         # characters a link text or target may have
RERENDER_BATCH = 50         # rows per table per pass of the background loop ...
PASS_SECONDS = 5.0          # ... and about this much CPU per pass at most (the loop thread has other work)

EXTENSIONS = ("tables", "fenced_code", "sane_lists")


@dataclass(frozen=True)
class Field:
    """A Markdown column and the column that holds its rendered HTML; the row has ``html_version``."""

    model: type
    source: str
    html: str


FIELDS = (
    Field(FeedbackItem, "description", "description_html"),
    Field(FeedbackReply, "body", "body_html"),
    Field(NewsItem, "body", "body_html"),
    Field(ReportDefinition, "intro_markdown", "intro_html"),
)
_BY_MODEL = {f.model: f for f in FIELDS}


# --- Neutralising what makes Markdown slow -------------------------------------------------------

# A backslash escape Markdown knows, a "[", or a "]" (with the "(" of a link target after it).
_TOKENS = re.compile(r"\\[\\`*_{}\[\]()>#+.!-]|\[|\](\()?")
# A link target Markdown's own search ends at its ")": an <address>, or an address without quotes and
# with at most one level of parentheses, then perhaps a quoted title. Bounded, so it is linear.
_PLAIN_TARGET = re.compile(r"""\(\s*(?:<[^<>\n]{0,2000}>|(?:[^()\n"'\\]|\([^()\n"'\\]{0,500}\)){0,2000})"""
                           r"""(?:\s+(?:"[^"\n]{0,500}"|'[^'\n]{0,500}'))?\s*\)""")


def neutralise(text: str) -> str:
    """Backslash-escape the brackets that would make Markdown search to the end of the text for each of
    them: "[" (and so "![") without a "]" beyond the first KEEP_ODD, "[" nested deeper than MAX_NESTING
    (with their "]"), and the "(" of link targets that do not end plainly, beyond the first KEEP_ODD.
    An escaped bracket looks the same on the page (in code it shows its backslash). One pass."""
    escape_at: list[int] = []
    open_: list[tuple[int, bool]] = []  # the "[" not closed yet, and whether it is nested too deep
    odd_targets = 0
    for m in _TOKENS.finditer(text):
        token = m.group()
        if token == "[":
            open_.append((m.start(), len(open_) >= MAX_NESTING))
        elif token[0] == "]":
            if open_:
                start, too_deep = open_.pop()
                if too_deep:
                    escape_at += (start, m.start())
            if m.group(1) and not _PLAIN_TARGET.match(text, m.start(1)):
                odd_targets += 1
                if odd_targets > KEEP_ODD:
                    escape_at.append(m.start(1))
    unbalanced = 0
    for start, too_deep in open_:
        unbalanced += not too_deep
        if too_deep or unbalanced > KEEP_ODD:
            escape_at.append(start)
    if not escape_at:
        return text
    parts, last = [], 0
    for pos in sorted(escape_at):
        parts += (text[last:pos], "\\")
        last = pos
    parts.append(text[last:])
    return "".join(parts)


# --- Markdown with bounded look-aheads and a CPU budget ------------------------------------------

class _OverBudget(Exception):
    pass


_BRACKET = re.compile(r"[\[\]]")
_TEXT_PROCESSORS = ("reference", "link", "image_link", "image_reference", "short_reference", "short_image_ref")
_TARGET_PROCESSORS = ("link", "image_link")


def _get_text(self, data: str, index: int) -> tuple[str, int, bool]:
    """LinkInlineProcessor.getText (the text up to the matching "]"), jumping from bracket to bracket
    and looking at most LINK_WINDOW characters ahead."""
    depth, end = 1, min(len(data), index + LINK_WINDOW)
    for m in _BRACKET.finditer(data, index, end):
        depth += 1 if m.group() == "[" else -1
        if depth == 0:
            return data[index:m.start()], m.end(), True
    return data[index:end], end, False


def _get_link(self, data: str, index: int):
    """LinkInlineProcessor.getLink (the "(target)" after the text), looking at most LINK_WINDOW characters ahead."""
    if data.startswith("(", index) and len(data) > index + LINK_WINDOW:
        data = data[:index + LINK_WINDOW]
    return LinkInlineProcessor.getLink(self, data, index)


def _within(deadline: float, fn):
    def call(*args, **kwargs):
        if time.thread_time() > deadline:
            raise _OverBudget
        return fn(*args, **kwargs)
    return call


def _markdown(text: str, heading_ids: bool) -> str:
    md = markdown.Markdown(extensions=list(EXTENSIONS) + (["toc"] if heading_ids else []))
    md.preprocessors.deregister("html_block")  # HTML in the text is text
    md.inlinePatterns.deregister("html")
    for name in _TEXT_PROCESSORS:
        md.inlinePatterns[name].getText = types.MethodType(_get_text, md.inlinePatterns[name])
    for name in _TARGET_PROCESSORS:
        md.inlinePatterns[name].getLink = types.MethodType(_get_link, md.inlinePatterns[name])
    deadline = time.thread_time() + BUDGET_SECONDS
    for pattern in md.inlinePatterns:
        pattern.handleMatch = _within(deadline, pattern.handleMatch)
    for processor in md.parser.blockprocessors:
        processor.run = _within(deadline, processor.run)
    return md.convert(text)


def plain_html(text: str) -> str:
    """The text as it was typed, HTML-escaped: paragraphs at blank lines, line breaks kept."""
    paragraphs = re.split(r"\n[ \t]*\n", (text or "").replace("\r\n", "\n").strip())
    return "".join("<p>" + str(escape(p)).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs if p.strip())


def render(text: str | None, *, heading_ids: bool = False) -> str:
    """Markdown to safe HTML, in bounded time (see the module's notes); heading_ids for the docs' anchors."""
    source = text or ""
    try:
        html = _markdown(neutralise(source), heading_ids)
    except (_OverBudget, RecursionError) as exc:
        log.warning("Markdown of %d characters shown as plain text: %s", len(source),
                    "it nests too deep" if isinstance(exc, RecursionError) else
                    f"rendering took more than {BUDGET_SECONDS} s of CPU")
        html = plain_html(source)
    return (DOCS_MARKDOWN if heading_ids else USER_MARKDOWN).clean(html)


# --- Stored HTML --------------------------------------------------------------------------------

def html_of(row) -> Markup:
    """The stored HTML of a row's Markdown for a page; plain text while it awaits a re-render."""
    field = _BY_MODEL[type(row)]
    if (row.html_version or 0) >= VERSION:
        return Markup(getattr(row, field.html) or "")
    return Markup(USER_MARKDOWN.clean(plain_html(getattr(row, field.source) or "")))


def _render_changed(session: Session, flush_context, instances) -> None:
    """Before a flush: render the Markdown of new rows and of rows whose Markdown changed."""
    for row in list(session.new) + list(session.dirty):
        field = _BY_MODEL.get(type(row))
        if field is None:
            continue
        if row in session.new or inspect(row).attrs[field.source].history.has_changes():
            setattr(row, field.html, render(getattr(row, field.source)))
            row.html_version = VERSION


def rerender_stale(limit: int = RERENDER_BATCH) -> int:
    """Re-render up to ``limit`` rows per table whose HTML is older than VERSION, for at most about
    PASS_SECONDS of CPU (committed per table); returns how many. A row is written only if neither its
    Markdown nor its version changed meanwhile, and its ``updated_at`` stays as it was."""
    done, deadline, out_of_time = 0, time.thread_time() + PASS_SECONDS, False
    for field in FIELDS:
        table = field.model.__table__
        source, version = table.c[field.source], table.c.html_version
        keep = {"updated_at": table.c.updated_at} if "updated_at" in table.c else {}
        rows = db.session.execute(select(table.c.id, source, version).where(version < VERSION)
                                  .order_by(table.c.id).limit(limit)).all()
        for row_id, text, old in rows:
            done += db.session.execute(
                update(table).where(table.c.id == row_id, version == old, source == text)
                .values({field.html: render(text), "html_version": VERSION, **keep})).rowcount
            out_of_time = time.thread_time() > deadline
            if out_of_time:
                break
        db.session.commit()
        if out_of_time:
            break
    if done:
        log.info("re-rendered the Markdown of %d row(s) to version %d", done, VERSION)
    return done


def _step(app: Flask) -> None:
    rerender_stale()


def init_app(app: Flask) -> None:
    """Render on save, in every session; the forms show the length limit."""
    if not event.contains(Session, "before_flush", _render_changed):
        event.listen(Session, "before_flush", _render_changed)
    app.jinja_env.globals["markdown_max_length"] = MAX_LENGTH


def register(app: Flask) -> None:
    """Re-render rows left by an older VERSION: a batch at start-up, then every minute until none are left."""
    from .background import register_loop
    register_loop("markdown-rerender", _step, lambda app: 60)
