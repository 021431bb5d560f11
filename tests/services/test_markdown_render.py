"""One Markdown pipeline (services/markdown_render.py): safe, rendered once when saved, bounded in time.

Feedback descriptions and replies, dashboard news and report intros all go through it."""
from __future__ import annotations

import html as html_lib
import logging
import re
import time
from zoneinfo import ZoneInfo

import markdown
import pytest
from sqlalchemy import func, select, update
from werkzeug.datastructures import MultiDict

from backend.app.extensions import db
from backend.app.models import FeedbackItem, FeedbackReply, NewsItem, ReportDefinition
from backend.app.services import feedback as fb
from backend.app.services import markdown_render as mr
from backend.app.services import news as news_svc
from backend.app.services import reports as reports_svc
from backend.app.services import sanitize

from ..conftest import active_html, post_form

MAX = mr.MAX_LENGTH
UTC_ZONE = ZoneInfo("UTC")


def at_max(unit: str) -> str:
    """``unit`` repeated to exactly the longest text a field accepts."""
    return (unit * (MAX // len(unit) + 1))[:MAX]


def shown_text(stored_html: str) -> str:
    """What a reader sees of the HTML: tags dropped, entities decoded."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", stored_html)).strip()


# --- Saving a text in each field, through its service (as the forms do) -------------------------

def save_description(user, text):
    item = fb.create_item(user, "bug", "Worst case", text, [])
    return item, "description_html"


def save_reply(user, text):
    item = fb.create_item(user, "question", "A question", "", [])
    return fb.add_reply(user, item, text, []), "body_html"


def save_news(user, text):
    return news_svc.create(news_svc.parse_form({"title": "Worst case", "body": text}, UTC_ZONE),
                           user), "body_html"


def save_intro(user, text):
    form = MultiDict({"name": "Worst case", "customer_scope": "all", "period": "last_month",
                      "content_summary": "1", "intro_markdown": text, "schedule": "none"})
    return reports_svc.save_definition(None, reports_svc.definition_values(form, form.getlist), user), "intro_html"


FIELDS = {"feedback description": save_description, "feedback reply": save_reply, "news": save_news,
          "report intro": save_intro}
WORST = {"[": at_max("["), "![": at_max("!["), "[a](": at_max("[a]("), "<a ": at_max("<a ")}


# --- Bounded in time ------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", list(WORST))
@pytest.mark.parametrize("field", list(FIELDS))
def test_the_worst_inputs_at_the_maximum_length_render_in_well_under_a_second(personas, caplog, field, unit):
    """Python-Markdown alone needs minutes for some of these ("[" * 20,000: about 85 s of CPU)."""
    text = WORST[unit]
    assert len(text) == MAX
    caplog.set_level(logging.WARNING, logger=mr.__name__)
    started = time.thread_time()  # CPU time of this thread: the render runs here, at the flush
    row, column = FIELDS[field](personas["reporter"], text)
    db.session.flush()
    used = time.thread_time() - started
    assert used < 1.0, f"{field} with {unit!r} * n took {used:.2f} s of CPU"
    assert row.html_version == mr.VERSION
    # Rendered as Markdown (not the plain-text fallback), and it reads exactly as typed.
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert shown_text(getattr(row, column)) == text
    assert "\\" not in getattr(row, column)  # the escapes that keep the parser linear do not show


@pytest.mark.parametrize("text", [
    "[" * 5_000 + "]" * 5_000,                 # nested 5,000 deep
    at_max('[a]("x)'),                         # quotes in link targets
    at_max("[x]["), at_max("[[]"), at_max("![["), at_max("[]("), at_max("\\\\["),
    at_max("[a](b [c]( ![d] (e) ["),
    "".join("`" * i + "a" for i in range(1, 200))[:MAX],  # code spans that never close
    at_max("*_"), at_max("> "), at_max("1. "), at_max("a\n=\n"), at_max("```\n"), at_max("a|b\n-|-\n"),
], ids=lambda t: repr(t[:12]))
def test_other_pathological_inputs_stay_bounded(text):
    started = time.thread_time()
    mr.render(text)
    assert time.thread_time() - started < 1.0


def test_a_render_over_its_budget_is_stored_as_plain_text(monkeypatch, caplog):
    monkeypatch.setattr(mr, "BUDGET_SECONDS", -1.0)  # already over budget at the first step
    out = mr.render("**bold** <b>tag</b>\nsecond line\n\nnext [paragraph](https://example.test)")
    assert out == ("<p>**bold** &lt;b&gt;tag&lt;/b&gt;<br>\nsecond line</p>\n"
                   "<p>next [paragraph](https://example.test)</p>\n")
    assert "Markdown of 71 characters shown as plain text: rendering took more than" in caplog.text


def test_markdown_nested_deeper_than_python_allows_is_stored_as_plain_text(caplog):
    text = at_max("1. ")  # a list in a list in a list ... 3,333 deep
    out = mr.render(text)
    assert "nests too deep" in caplog.text
    assert shown_text(out) == text.strip()


# --- Neutralising ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "A [link](https://example.test/a_(b)) and ![img](x.png \"title\") and [ref][1] and [short].\n\n[1]: https://x.test",
    "[![badge](https://x.test/b.png)](https://x.test) and `arr[0]` and [a [nested [link]]](https://x.test)",
    "Smileys :( :( and a stray [ bracket or two [ and a (parenthesis",
    "```\nlog [INFO] [12:00] started\nlog [WARN\n```",
])
def test_ordinary_text_is_left_as_it_is(text):
    assert mr.neutralise(text) == text


def test_unbalanced_brackets_beyond_a_few_are_escaped():
    assert mr.neutralise("[" * 10) == "[" * mr.KEEP_ODD + "\\[" * (10 - mr.KEEP_ODD)
    assert mr.neutralise("![" * 6) == "![" * 4 + "!\\[" * 2
    assert mr.neutralise("\\[" * 6) == "\\[" * 6       # already escaped: nothing to do
    assert mr.neutralise("\\\\[" * 6) == "\\\\[" * 4 + "\\\\\\[" * 2  # an escaped backslash, then a real "["


def test_brackets_nested_too_deep_are_escaped_in_pairs():
    deep = "[" * 6 + "x" + "]" * 6
    assert mr.neutralise(deep) == "[[[[\\[\\[x\\]\\]]]]]"
    assert shown_text(mr.render(deep)) == deep


def test_link_targets_that_do_not_end_plainly_are_escaped_beyond_a_few():
    text = "[a](" * 6
    assert mr.neutralise(text) == "[a](" * 4 + "[a]\\(" * 2
    plain = "[a](https://x.test/a_(b) 'title') " * 10
    assert mr.neutralise(plain) == plain
    assert mr.render(plain).count('<a href="https://x.test/a_(b)"') == 10


# --- Safe, with one allow-list --------------------------------------------------------------------

XSS = """**bold** and [ok](https://example.test/x)

<script>alert('xss')</script>
<img src=x onerror="alert(1)">
<a href="javascript:alert(2)">click</a>
[md link](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:x)
<iframe src="https://evil.example"></iframe>
<div style="background:url(javascript:alert(4))" onclick="alert(5)">styled</div>
![pixel](https://tracker.example/p.png)
"""


def test_html_in_the_text_is_shown_as_text_and_nothing_runs():
    out = mr.render(XSS)
    assert active_html(out) == []
    assert "<strong>bold</strong>" in out
    assert '<a href="https://example.test/x" rel="noopener noreferrer">ok</a>' in out
    assert "&lt;script&gt;alert('xss')&lt;/script&gt;" in out  # shown, as typed
    assert "<a rel=\"noopener noreferrer\">md link</a>" in out  # the javascript: target is gone
    assert "tracker.example" not in out  # Markdown images are not shown (no remote loads)
    assert set(re.findall(r"<([a-z0-9]+)", out)) <= sanitize.MARKDOWN_TAGS


def test_every_field_stores_the_same_html_for_the_same_text(personas):
    text = "# Title\n\n**b** *i* `c` [l](https://x.test)\n\n- one\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + XSS
    stored = set()
    for save in FIELDS.values():
        row, column = save(personas["admin"], text)
        db.session.flush()
        stored.add(getattr(row, column))
    assert stored == {mr.render(text)}
    assert "<table>" in mr.render(text) and "<h1>Title</h1>" in mr.render(text)


def test_the_docs_use_the_same_pipeline_with_heading_anchors(as_user):
    page = as_user("viewer").get("/docs/feedback").get_data(as_text=True)
    assert '<h3 id="screenshots">Screenshots</h3>' in page
    assert mr.render("## A heading", heading_ids=True) == '<h2 id="a-heading">A heading</h2>'
    assert mr.render("## A heading") == "<h2>A heading</h2>"


# --- Rendered once, when saved --------------------------------------------------------------------

def _content(personas):
    """One of everything, saved as the forms save it."""
    author = personas["operator"]
    item = fb.create_item(author, "bug", "Export fails", "The **export** fails", [])
    fb.add_reply(author, item, "Same *here*", [])
    news_svc.create(news_svc.parse_form({"title": "Maintenance", "body": "Mail server _down_ tonight"},
                                        UTC_ZONE), author)
    defn, _ = save_intro(personas["reporter"], "Dear customer, **all is well**.")
    db.session.commit()
    return item, defn


@pytest.mark.slow  # over 5 s
def test_page_views_never_run_markdown(as_user, personas, monkeypatch):
    item, defn = _content(personas)

    def no_markdown(*args, **kwargs):
        raise AssertionError("Markdown ran during a page view")

    monkeypatch.setattr(markdown.Markdown, "convert", no_markdown)
    pages = [
        ("viewer", "/feedback", "Export fails"),
        ("viewer", f"/feedback/{item.id}", "The <strong>export</strong> fails"),
        ("viewer", f"/feedback/{item.id}", "Same <em>here</em>"),
        ("viewer", "/", "Mail server <em>down</em> tonight"),
        ("admin", "/", "Mail server <em>down</em> tonight"),
        ("viewer", f"/reports/{defn.id}", "Dear customer, <strong>all is well</strong>."),
        ("viewer", f"/reports/{defn.id}/preview", "Dear customer, <strong>all is well</strong>."),
    ]
    for role, path, shows in pages:
        r = as_user(role).get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert shows in r.get_data(as_text=True), path


def test_saving_renders_and_editing_renders_again(as_user, personas):
    item, defn = _content(personas)
    news = db.session.execute(select(NewsItem)).scalar_one()
    assert news.body_html == "<p>Mail server <em>down</em> tonight</p>" and news.html_version == mr.VERSION
    admin = as_user("admin")
    r = post_form(admin, f"/news/{news.id}/edit", {"title": "Maintenance", "body": "Back **up**"})
    assert r.status_code == 302
    assert "Back <strong>up</strong>" in admin.get("/").get_data(as_text=True)
    reporter = as_user("reporter")
    r = post_form(reporter, f"/reports/{defn.id}/edit", {
        "name": defn.name, "customer_scope": "all", "period": "last_month", "content_summary": "1",
        "intro_markdown": "New *intro*", "schedule": "none"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(ReportDefinition, defn.id).intro_html == "<p>New <em>intro</em></p>"
    # A change that leaves the Markdown alone does not render it (and a page view changes nothing).
    news = db.session.get(NewsItem, news.id)
    news.body_html = "<p>kept</p>"
    news.title = "Renamed"
    db.session.commit()
    assert db.session.get(NewsItem, news.id).body_html == "<p>kept</p>"


def test_rows_of_an_older_version_show_as_text_until_the_loop_renders_them(as_user, personas, monkeypatch):
    item, defn = _content(personas)
    for model in (FeedbackItem, FeedbackReply, NewsItem, ReportDefinition):
        db.session.execute(update(model).values(html_version=mr.VERSION - 1))
    db.session.execute(update(NewsItem).values(body_html="<p>made by the old sanitiser</p>"))
    db.session.commit()
    viewer = as_user("viewer")
    page = viewer.get("/").get_data(as_text=True)
    assert "made by the old sanitiser" not in page and "Mail server _down_ tonight" in page  # plain text

    before = [db.session.execute(select(m.updated_at)).scalars().all() for m in (FeedbackItem, NewsItem)]
    assert mr.rerender_stale(limit=100) == 4
    assert mr.rerender_stale(limit=100) == 0
    # Re-rendering is not an edit: "last changed" stays as it was.
    assert [db.session.execute(select(m.updated_at)).scalars().all() for m in (FeedbackItem, NewsItem)] == before
    assert "Mail server <em>down</em> tonight" in viewer.get("/").get_data(as_text=True)
    assert "The <strong>export</strong> fails" in viewer.get(f"/feedback/{item.id}").get_data(as_text=True)


def test_the_loop_renders_a_bounded_batch_and_never_overwrites_a_newer_edit(personas, monkeypatch):
    for i in range(5):
        news_svc.create(news_svc.parse_form({"title": f"N{i}", "body": f"**{i}**"}, UTC_ZONE),
                        personas["admin"])
    db.session.commit()
    db.session.execute(update(NewsItem).values(html_version=0, body_html=""))
    db.session.commit()
    assert mr.rerender_stale(limit=2) == 2
    assert mr.rerender_stale(limit=2) == 2
    # The last stale row is edited while the loop renders its old text: the loop leaves it alone.
    last = db.session.execute(select(NewsItem).where(NewsItem.html_version == 0)).scalar_one()
    real_render = mr.render

    def render_while_someone_edits(text, **kw):
        db.session.execute(update(NewsItem).where(NewsItem.id == last.id).values(body="edited"))
        return real_render(text, **kw)

    monkeypatch.setattr(mr, "render", render_while_someone_edits)
    assert mr.rerender_stale(limit=2) == 0
    monkeypatch.setattr(mr, "render", real_render)
    assert mr.rerender_stale(limit=2) == 1
    db.session.expire_all()
    assert db.session.get(NewsItem, last.id).body_html == "<p>edited</p>"
    assert db.session.execute(select(func.count()).where(NewsItem.html_version < mr.VERSION)).scalar_one() == 0


def test_a_pass_of_the_loop_stops_after_its_cpu_time(personas, monkeypatch):
    for i in range(3):
        news_svc.create(news_svc.parse_form({"title": f"N{i}", "body": "x"}, UTC_ZONE), personas["admin"])
    db.session.commit()
    db.session.execute(update(NewsItem).values(html_version=0))
    db.session.commit()
    monkeypatch.setattr(mr, "PASS_SECONDS", 0.0)
    assert mr.rerender_stale() == 1  # one row, then the pass has used its time
    assert mr.rerender_stale() == 1


# --- The length limit, said on each form ----------------------------------------------------------

def test_each_form_refuses_text_over_the_limit_and_says_so(as_user, personas):
    too_long = "x" * (MAX + 1)
    viewer = as_user("viewer")
    r = post_form(viewer, "/feedback/new", {"kind": "bug", "title": "T", "description": too_long},
                  content_type="multipart/form-data")
    assert r.status_code == 400
    assert ("The description is 10,001 characters long; the limit is 10,000. Nothing was saved"
            in r.get_data(as_text=True))
    assert "At most 10,000 characters." in r.get_data(as_text=True)
    item = fb.create_item(personas["viewer"], "bug", "T", "", [])
    db.session.commit()
    r = post_form(viewer, f"/feedback/{item.id}/reply", {"body": too_long}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert "The reply is 10,001 characters long; the limit is 10,000." in r.get_data(as_text=True)

    r = post_form(as_user("admin"), "/news", {"title": "T", "body": too_long})
    assert r.status_code == 400
    assert "The text is 10,001 characters long: keep it to 10,000." in r.get_data(as_text=True)

    r = post_form(as_user("reporter"), "/reports/new", {
        "name": "R", "customer_scope": "all", "period": "last_month", "content_summary": "1",
        "intro_markdown": too_long, "schedule": "none"})
    assert r.status_code == 400
    assert "The intro text is 10,001 characters long; it may have at most 10,000." in r.get_data(as_text=True)
    assert "at most 10,000 characters" in r.get_data(as_text=True)

    counts = [db.session.execute(select(func.count()).select_from(m)).scalar_one()
              for m in (FeedbackItem, FeedbackReply, NewsItem, ReportDefinition)]
    assert counts == [1, 0, 0, 0]  # only the item made above


def test_the_limit_counts_a_line_break_once(as_user):
    text = "line\r\n" * (MAX // 5)  # 12,000 characters as sent, 10,000 once \r\n is one line break
    r = post_form(as_user("viewer"), "/feedback/new", {"kind": "bug", "title": "T", "description": text},
                  content_type="multipart/form-data")
    assert r.status_code == 302
    assert db.session.execute(select(FeedbackItem.description)).scalar_one() == ("line\n" * (MAX // 5)).strip()
