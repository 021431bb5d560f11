"""Request-wide behaviour: row ids in URLs and forms, login loading, the first-run and dashboard-first
redirects, and the security headers. Error pages are in ``errors.py``, template helpers in ``filters.py``."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import Flask, current_app, flash, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from .extensions import db, login_manager
from .models import User
from .security import session_is_current
from .services.accounts import has_users
from .services.settings import get_settings
from .services.timezones import local_day

#: The largest id a row can have: primary keys are PostgreSQL ``integer`` (32-bit signed).
MAX_ID = 2**31 - 1


def _digits_up_to(n: int) -> str:
    """A regular expression for the whole numbers 1 … ``n`` (no sign, no leading zero)."""
    top = str(n)
    alternatives = [rf"[1-9]\d{{0,{len(top) - 2}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            rest = len(top) - i - 1
            alternatives.append(f"{top[:i]}[{lowest}-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest else ""))
    alternatives.append(top)
    return "(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """``<id:name>`` in a route: a row id, 1 … 2^31-1. Anything else does not match the route at all
    (also not a route for another method on the same path, which would answer 405), so the answer
    is a plain 404 and the database never sees a number its ``integer`` can't hold."""

    regex = _digits_up_to(MAX_ID)

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's name
        super().__init__(map, min=1, max=MAX_ID)


_ID_RE = re.compile(IdConverter.regex)


def parse_id(text) -> int | None:
    """A row id typed into a form or query string: 1 … 2^31-1 in ASCII digits, else None
    (``"²".isdigit()`` is true, but it is no id)."""
    text = (text or "").strip() if isinstance(text, str) else ""
    return int(text) if _ID_RE.fullmatch(text) else None


def form_ids(name: str) -> list[int]:
    """The row ids of a repeated form field (checkboxes); anything that is no id is left out."""
    return [i for i in (parse_id(v) for v in request.form.getlist(name)) if i is not None]


# Every HTML page: scripts, styles and everything else only from this origin (the static files), no
# inline <script>, no on*= handlers, no style="…" attributes; framed only by the app itself (the
# Inbox shows a mail body in a sandboxed iframe, which sends its own stricter policy).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")


def init_app(app: Flask) -> None:
    # Before any blueprint registers its routes: they use <id:...> for every row id.
    app.url_map.converters["id"] = IdConverter
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to open that page."
    login_manager.login_message_category = "info"
    # security.session_is_current binds the session to the trusted client address instead of
    # Flask-Login's "strong" mode (which reads the client-sent X-Forwarded-For).
    login_manager.session_protection = None
    login_manager.user_loader(load_user)
    app.before_request(first_run_setup)
    app.before_request(pending_account)
    app.before_request(dashboard_first_of_the_day)
    app.after_request(security_headers)


def load_user(user_id: str):
    try:
        user = db.session.get(User, int(user_id))
    except (ValueError, TypeError):
        user = None
    if user is None or not user.is_active_user or not session_is_current(user):
        session.clear()  # ended (logout, password or role change), or a copied cookie elsewhere
        return None
    return user


def first_run_setup():
    """Until the first user exists, every page but setup (and health, metrics, static) leads to setup."""
    endpoint = request.endpoint or ""
    if endpoint in ("static", "main.health", "main.metrics", "main.badge", "auth.setup"):
        return None
    if request.path.startswith("/api/"):
        return None  # the API answers for itself (no token without a user: 401)
    app = current_app._get_current_object()
    if not getattr(app, "_has_users", False):
        if not has_users():
            return redirect(url_for("auth.setup"))
        app._has_users = True
    return None


def pending_account():
    """An account without a role (created at single sign-on, pending) sees only the waiting page."""
    if not current_user.is_authenticated or current_user.role_list:
        return None
    if (request.endpoint or "") in ("static", "main.health", "main.metrics", "main.badge", "auth.pending",
                                    "auth.logout"):
        return None
    return redirect(url_for("auth.pending"))


def dashboard_first_of_the_day():
    """With the dashboard policy on, a user's first page of the day is the dashboard."""
    if request.method != "GET" or not current_user.is_authenticated:
        return None
    endpoint = request.endpoint or ""
    if endpoint in ("static", "main.health", "main.metrics", "main.badge") or endpoint.startswith(("auth.", "docs.")):
        return None
    settings = get_settings()
    if not settings.dashboard_first:
        return None
    today = local_day(datetime.now(timezone.utc)).isoformat()
    if current_user.last_dashboard_date == today:
        return None
    current_user.last_dashboard_date = today
    db.session.commit()
    if endpoint != "main.dashboard":
        flash("Good morning: here is today's overview and the news, before work starts.", "info")
        return redirect(url_for("main.dashboard"))
    return None


def security_headers(response):
    """Anti-framing on every response; the strict CSP on every HTML page that does not bring its own
    (the sandboxed mail body and the feedback attachments keep their stricter policies)."""
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
