"""The allow-lists (services/sanitize.py): user Markdown, documentation Markdown and mail HTML."""
from __future__ import annotations

import pytest

from backend.app.services.sanitize import DOCS_MARKDOWN, MAIL_HTML, USER_MARKDOWN, clean_style

# --- Markdown ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [USER_MARKDOWN, DOCS_MARKDOWN], ids=["user", "docs"])
def test_markdown_html_keeps_text_tables_and_safe_links_only(policy):
    html = ('<h2 id="x">T</h2><p><strong>b</strong> <a href="https://ok.test/a" title="t">ok</a> '
            '<a href="javascript:alert(1)">js</a> <a href="data:text/html,x">data</a> <a href="/docs/jobs">rel</a>'
            '</p><img src="https://tracker.test/p.png"><script>alert(2)</script><table><tr><td>c</td></tr></table>'
            '<p onclick="alert(3)" style="color:red">p</p><!-- note -->')
    out = policy.clean(html)
    assert '<a href="https://ok.test/a" title="t" rel="noopener noreferrer">ok</a>' in out
    assert '<a rel="noopener noreferrer">js</a>' in out and '<a rel="noopener noreferrer">data</a>' in out
    assert '<a href="/docs/jobs" rel="noopener noreferrer">rel</a>' in out
    assert "<img" not in out and "tracker" not in out and "<script" not in out and "alert" not in out
    assert "<table><tbody><tr><td>c</td></tr></tbody></table>" in out and "<p>p</p>" in out and "note" not in out


def test_only_the_docs_keep_heading_anchors():
    assert DOCS_MARKDOWN.clean('<h2 id="a-heading">A</h2>') == '<h2 id="a-heading">A</h2>'
    assert USER_MARKDOWN.clean('<h2 id="a-heading">A</h2>') == "<h2>A</h2>"


# --- Mail HTML --------------------------------------------------------------------------------------

def test_a_mail_keeps_its_layout_but_nothing_that_runs_loads_or_links():
    html = ('<table border="1" cellpadding="2"><tr><td bgcolor="#fff" style="color: red"><font face="Arial">ok'
            '</font></td></tr></table><a href="https://phish.test">link</a><a href="mailto:ops@example.test">mail'
            '</a><form action="https://x.test"><input name="p"></form><style>p { color: red }</style>'
            '<img src="https://tracker.test/p.png"><script>alert(1)</script>')
    out = MAIL_HTML.clean(html)
    assert '<table border="1" cellpadding="2"><tbody>' in out and '<td bgcolor="#fff" style="color: red">' in out
    assert '<font face="Arial">ok</font>' in out
    assert "href" not in out and '<a rel="noopener noreferrer">link</a>' in out  # no link target, not even mailto
    assert "<form" not in out and "<input" not in out and "<style" not in out and "color: red }" not in out
    assert "tracker.test" not in out and "<script" not in out and "alert" not in out


@pytest.mark.parametrize("style, kept", [
    ("color: red; font-weight: bold", "color: red; font-weight: bold"),
    ("background: url(https://tracker.test/p.png); color: red", "color: red"),
    ("background-image: URL('//tracker.test/p.png')", None),
    ("background: image-set('https://x.test/a.png' 1x)", None),
    ("background: -webkit-image-set(url(a.png) 1x); width: 10px", "width: 10px"),
    ("@import 'https://x.test/a.css'", None),
    ("background: u\\rl(https://x.test/a.png)", None),               # a CSS escape spelling url(
    ("background: u/**/rl(https://x.test/a.png); color: blue", "color: blue"),  # a comment inside
    ("background: url(data:image/png;base64,iVBORw0KGgo=); color: red",
     "background: url(data:image/png;base64,iVBORw0KGgo=); color: red"),  # inline images fetch nothing
    ("background: url(data:text/html,x)", None),
    ("color: rgb(255, 0, 0); width: calc(100% - 2px)", "color: rgb(255, 0, 0); width: calc(100% - 2px)"),
    ("background: linear-gradient(red, blue)", "background: linear-gradient(red, blue)"),
    ("font-family: 'a;b'; color: red", "font-family: 'a;b'; color: red"),  # a ";" inside quotes
])
def test_mail_styles_keep_only_declarations_that_load_nothing(style, kept):
    assert clean_style(style) == kept


def test_a_remote_url_in_a_mail_style_is_gone_from_the_shown_html():
    out = MAIL_HTML.clean('<div style="background: url(https://tracker.test/p.png); color: red">x</div>'
                          '<span style="background-image: url(//tracker.test/q.png)">y</span>')
    assert "tracker.test" not in out and '<div style="color: red">x</div>' in out and "<span>y</span>" in out
