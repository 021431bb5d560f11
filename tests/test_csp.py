"""Every HTML page sends the strict Content-Security-Policy and X-Frame-Options, and nothing in it needs
an exception: no inline <script> (a type="application/json" data block is fine: it never runs), no
on*= handler, no style="…" attribute, no <style> element, no javascript: address.

The pages are walked as in test_route_matrix (every GET route, 1 for every id, as every role and
anonymous), on seeded data (tests/page_seed.py) so the pages show their content, plus the addresses
with query strings that open more of a page (a Run Checks job, settings sections, tabs, a task's
progress). The sandboxed mail body, the digest's mail and feedback attachments keep their own, stricter
policies.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from backend.app.docs import load_pages
from backend.app.main.routes_inbox import BODY_CSP
from backend.app.web import CONTENT_SECURITY_POLICY

from .conftest import PERSONAS, login, make_user
from .page_seed import seed_pages
from .test_route_matrix import _routes

TEMPLATES = Path(__file__).resolve().parents[1] / "containers" / "backupchecks" / "src" / "templates"
STRICT = {"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
          "object-src": "'none'", "base-uri": "'self'", "form-action": "'self'", "frame-ancestors": "'self'"}
ATTACHMENT_CSP = "default-src 'none'; sandbox"

EXTRA_URLS = ["/run-checks?job=1", "/run-checks?job=2", "/run-checks?include_reviewed=1", "/inbox?task=1",
              "/inbox?q=Daily", "/jobs/1?run=1", "/jobs?q=North", "/daily-jobs?status=Failed",
              "/tickets?tab=remarks", "/tickets?state=resolved", "/feedback?show=deleted",
              "/docs/search?q=backup", "/docs/csp-no-such-page", "/no-such-page", "/auth/logout",
              "/audit-log?event=ticket.created"] + \
             [f"/settings?section={s}" for s in ("general", "mail", "imports", "integrations", "users",
                                                   "maintenance")] + ["/settings?section=maintenance&task=1"] + \
             [f"/docs/{slug}" for slug in load_pages()]  # every help page (Markdown tables, code, links)


def directives(policy: str) -> dict[str, str]:
    out = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            out[name] = value.strip()
    return out


class InlineFinder(HTMLParser):
    """What a page holds that the strict CSP would refuse (or that only works with 'unsafe-inline')."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names and (names.get("type") or "").lower() != "application/json":
            self.problems.append(f"inline <script {attrs}>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            elif name == "style":
                self.problems.append(f"<{tag} style={value!r}>")
            elif name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


def inline_problems(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def test_the_policy_is_strict():
    d = directives(CONTENT_SECURITY_POLICY)
    assert d == STRICT
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


def _check(r, where, seen):
    assert r.headers.get("X-Frame-Options") == "SAMEORIGIN", where
    if r.mimetype != "text/html":
        return
    policy = r.headers.get("Content-Security-Policy")
    assert policy, f"{where}: HTML without a Content-Security-Policy"
    assert r.headers.getlist("Content-Security-Policy") == [policy], f"{where}: more than one policy"
    assert directives(policy)["frame-ancestors"] == "'self'", where
    if r.status_code == 200 and re.fullmatch(r"/inbox/\d+/body", r.request.path):
        assert policy == BODY_CSP, where  # the sandboxed mail body keeps its own, stricter policy
        seen["mail body"] += 1
        return
    if r.status_code == 200 and re.fullmatch(r"/jobs/\d+/runs/\d+/mail/body", r.request.path):
        assert policy == BODY_CSP, where  # a run's mail (the portal's way to it): the same frame policy
        seen["run mail body"] = seen.get("run mail body", 0) + 1
        return
    if r.status_code == 200 and r.request.path == "/settings/digest-preview/mail":
        assert policy == BODY_CSP, where  # the digest's mail, framed sandboxed like a mail body
        seen["digest mail"] = seen.get("digest mail", 0) + 1
        return
    assert policy == CONTENT_SECURITY_POLICY, where
    assert inline_problems(r.get_data(as_text=True)) == [], where
    seen["html"] += 1


@pytest.mark.slow  # over 5 s
def test_every_html_page_of_every_role_sends_the_policy_and_needs_no_inline_code(app, personas):
    seed_pages()
    from backend.app.extensions import db
    from backend.app.models import Customer

    portal = make_user("paula", roles=("portal",))  # a customer's own staff, bound to the first customer
    portal.customers = [db.session.get(Customer, 1)]
    portal.portal_mail_bodies = True
    db.session.commit()
    clients = {"anonymous": app.test_client()}
    for role, name in {**PERSONAS, "portal": "paula"}.items():
        c = app.test_client()
        assert login(c, name).status_code == 302
        clients[role] = c
    urls = [url for _, url, method, _ in _routes(app) if method == "GET"] + EXTRA_URLS
    seen = {"html": 0, "mail body": 0, "ok pages": 0}
    admin_pages = {}
    for who, c in clients.items():
        for url in urls:
            r = c.get(url)
            assert r.status_code < 500, (who, url, r.status_code)
            _check(r, (who, url, r.status_code), seen)
            if r.status_code == 200 and r.mimetype == "text/html":
                seen["ok pages"] += 1
                if who == "admin":
                    admin_pages[url] = r.get_data(as_text=True)
    # The walk reached the parts that used to be inline (scripts, handlers, sizes), now from static files.
    for url, marker in [("/", 'id="success-chart"'), ("/", "js/pages/dashboard.js"), ("/", "chart-box"),
                        ("/run-checks?job=1", "js/pages/run_checks.js"), ("/run-checks?job=1", 'data-prev-url="/run-checks?job=2"'),
                        ("/run-checks?job=1", "run-message pre-wrap"), ("/inbox?task=1", "task-progress"),
                        ("/inbox", 'class="col-received"'), ("/inbox/1", 'class="w-100 border rounded bg-white mail-frame"'),
                        ("/inbox/deleted", "data-confirm-click"), ("/reports", 'data-task-finish="reload"'),
                        ("/reports/1", 'data-bar-width="33"'), ("/reports/1/preview", "data-bar-height="),
                        ("/overrides/1/edit", "js/pages/overrides_form.js"), ("/settings?section=mail", "js/pages/settings.js"),
                        ("/feedback/1", "feedback-thumb"), ("/tickets", "pre-line min-w-14"), ("/parsers", 'class="col-num"'),
                        ("/jobs/1?run=1", "run-message-cell"), ("/news/1/edit", "card max-w-52")]:
        assert marker in admin_pages[url], (url, marker)
    # Every role really saw pages with content (not only 403s and redirects), the mail body included.
    assert seen["ok pages"] >= 4 * 15 and seen["html"] >= 150 and seen["mail body"] == 3, seen
    assert seen.get("digest mail") == 1, seen  # the admin's


def test_the_pages_before_login_send_the_policy(app):
    c = app.test_client()
    r = c.get("/auth/setup")  # no users yet: first-run setup
    assert r.status_code == 200
    seen = {"html": 0, "mail body": 0}
    _check(r, "setup", seen)
    from .conftest import make_user
    make_user("alice", roles=("admin",))
    for url in ("/auth/login", "/auth/login?next=/jobs", "/no-such-page"):
        _check(c.get(url), url, seen)
    assert seen["html"] == 4


def test_the_bare_error_page_sends_the_policy_too(app, personas, monkeypatch):
    """When even the error template cannot render, the plain fallback page still carries the headers."""
    import backend.app.errors as errors

    def broken(*args, **kwargs):
        raise RuntimeError("template broken")
    monkeypatch.setattr(errors, "render_template", broken)
    r = app.test_client().get("/no-such-page")  # the page that reads nothing from the database
    assert r.status_code == 404 and '<h1 class="h3">Error 404</h1>' in r.get_data(as_text=True)
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    monkeypatch.setattr(app.jinja_env, "get_template", broken)
    r = app.test_client().get("/no-such-page")  # and the inline one when no template loads at all
    assert r.status_code == 404 and "<h1>Error 404</h1>" in r.get_data(as_text=True)
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_the_mail_body_and_attachments_keep_their_stricter_policies(app, as_user):
    seed_pages()
    c = as_user("viewer")
    body = c.get("/inbox/1/body")
    assert body.status_code == 200 and body.headers["Content-Security-Policy"] == BODY_CSP
    assert "sandbox" in directives(BODY_CSP) and directives(BODY_CSP)["frame-ancestors"] == "'self'"
    shot = c.get("/feedback/attachments/1")
    assert shot.status_code == 200 and shot.mimetype == "image/png"
    assert shot.headers["Content-Security-Policy"] == ATTACHMENT_CSP
    assert shot.headers["X-Frame-Options"] == "SAMEORIGIN"
    # The Inbox page that frames the body allows it: frames come from 'self' (default-src).
    page = c.get("/inbox/1")
    assert 'src="/inbox/1/body"' in page.get_data(as_text=True)
    d = directives(page.headers["Content-Security-Policy"])
    assert "frame-src" not in d and d["default-src"] == "'self'"


def test_json_and_downloads_get_x_frame_options_but_no_page_policy(app, as_user):
    seed_pages()
    c = as_user("admin")
    for url in ("/tasks/1", "/reports/runs/1/status", "/health", "/reports/runs/2/download",
                "/static/js/app.js"):
        r = c.get(url)
        assert r.status_code == 200, url
        assert r.mimetype != "text/html" and r.headers["X-Frame-Options"] == "SAMEORIGIN", url
        assert "Content-Security-Policy" not in r.headers, url


# --- The template sources: nothing inline, in every branch (also those the walk does not reach) -------

_SCRIPT_RE = re.compile(r"<script\b([^>]*)>", re.I)
_HANDLER_RE = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S)
_STYLE_ATTR_RE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I | re.S)


def _template_problems(text: str) -> list[str]:
    problems = []
    for m in _SCRIPT_RE.finditer(text):
        attrs = m.group(1)
        if "src=" not in attrs and not re.search(r'type\s*=\s*"application/json"', attrs):
            problems.append(m.group(0))
    problems += [m.group(0)[-40:] for m in _HANDLER_RE.finditer(text)]
    problems += [m.group(0)[-40:] for m in _STYLE_ATTR_RE.finditer(text)]
    problems += re.findall(r"<style\b", text, re.I) + re.findall(r"javascript:", text, re.I)
    return problems


def test_no_template_holds_inline_scripts_handlers_or_style_attributes():
    # Mail templates (templates/mail/) are not pages: mail clients need inline styles, and the app
    # only shows them in a sandboxed frame under their own policy.
    templates = sorted(p for p in TEMPLATES.rglob("*.html") if p.relative_to(TEMPLATES).parts[0] != "mail")
    assert len(templates) > 40
    found = {str(p.relative_to(TEMPLATES)): _template_problems(p.read_text(encoding="utf-8")) for p in templates}
    assert {name: problems for name, problems in found.items() if problems} == {}


@pytest.mark.parametrize("snippet", [
    '<script>alert(1)</script>', '<script type="module">x()</script>', '<select onchange="this.form.submit()">',
    '<div class="x"\n     style="width: 3%">', '<col style="width: 2rem">', '<a href="javascript:void(0)">',
    '<style>p{}</style>',
])
def test_the_template_check_finds_what_it_looks_for(snippet):
    assert _template_problems(snippet) and inline_problems(snippet)


@pytest.mark.parametrize("snippet", [
    '<script src="/static/js/app.js"></script>', '<script type="application/json" id="d">{"a": 1}</script>',
    '<div data-bar-width="40" class="progress-bar"></div>', '<input data-confirm-click="Sure?" data-autosubmit>',
])
def test_the_template_check_lets_allowed_markup_through(snippet):
    assert _template_problems(snippet) == [] and inline_problems(snippet) == []
