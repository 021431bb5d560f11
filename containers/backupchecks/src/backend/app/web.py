"""Request-wide behaviour: login loading, first-run setup, template helpers, error pages."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import Flask, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.routing import IntegerConverter

from .extensions import db, login_manager
from .models import ROLES, MailMessage, User
from .security import session_is_current

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
    from flask import request
    return [i for i in (parse_id(v) for v in request.form.getlist(name)) if i is not None]


def _out_of_range(err: DataError) -> bool:
    """A number too large for its column (an id typed into a form or a query string)."""
    return getattr(getattr(err, "orig", None), "sqlstate", None) == "22003"  # numeric_value_out_of_range


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

    @login_manager.user_loader
    def load_user(user_id: str):
        try:
            user = db.session.get(User, int(user_id))
        except (ValueError, TypeError):
            user = None
        if user is None or not user.is_active_user or not session_is_current(user):
            session.clear()  # ended (logout, password or role change), or a copied cookie elsewhere
            return None
        return user

    @app.before_request
    def first_run_setup():
        endpoint = request.endpoint or ""
        if endpoint in ("static", "main.health", "auth.setup"):
            return None
        from .services.accounts import has_users
        if not getattr(app, "_has_users", False):
            if not has_users():
                return redirect(url_for("auth.setup"))
            app._has_users = True
        return None

    @app.before_request
    def dashboard_first_of_the_day():
        """With the dashboard policy on, a user's first page of the day is the dashboard."""
        if request.method != "GET" or not current_user.is_authenticated:
            return None
        endpoint = request.endpoint or ""
        if endpoint in ("static", "main.health") or endpoint.startswith(("auth.", "docs.")):
            return None
        from .services.settings import get_settings, ui_zone
        settings = get_settings()
        if not settings.dashboard_first:
            return None
        today = datetime.now(ui_zone()).date().isoformat()
        if current_user.last_dashboard_date == today:
            return None
        current_user.last_dashboard_date = today
        db.session.commit()
        if endpoint != "main.dashboard":
            flash("Good morning: here is today's overview and the news, before work starts.", "info")
            return redirect(url_for("main.dashboard"))
        return None

    @app.after_request
    def security_headers(response):
        """Anti-framing on every response; the strict CSP on every HTML page that does not bring its own
        (the sandboxed mail body and the feedback attachments keep their stricter policies)."""
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    @app.context_processor
    def inject_globals():
        from .services.settings import get_settings
        ctx = {"app_version": app.config.get("APP_VERSION", ""), "ROLES": ROLES}
        try:
            settings = get_settings()
        except Exception:  # noqa: BLE001 - the error page must still render
            db.session.rollback()
            return ctx
        ctx["settings"] = settings
        if current_user.is_authenticated:
            ctx["nav_counts"] = _nav_counts()
        return ctx

    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["reltime"] = reltime
    app.jinja_env.filters["status_badge"] = status_badge
    app.jinja_env.globals["doc_link"] = doc_link

    @app.errorhandler(CSRFError)
    def csrf_error(err):
        return _error_page(400, "The form expired or was sent without its security token. "
                                "Nothing was changed: reload the page and try again.")

    @app.errorhandler(400)
    def bad_request(err):
        return _error_page(400, getattr(err, "description", None) or "The request was not understood.")

    @app.errorhandler(403)
    def forbidden(err):
        role = current_user.current_role if current_user.is_authenticated else None
        return _error_page(403, f"Your active role ({role or 'none'}) may not open this page. "
                                "Switch role in the top bar if you hold another one, or ask an admin.")

    @app.errorhandler(404)
    def not_found(err):
        return _error_page(404, "There is nothing at this address. It may have been deleted.")

    @app.errorhandler(405)
    def not_allowed(err):
        return _error_page(405, "This address does not accept that kind of request.")

    @app.errorhandler(413)
    def too_large(err):
        return _error_page(413, "The upload is too large. Nothing was saved.")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_down(err):
        db.session.rollback()
        app.logger.error("database unavailable: %s", type(err).__name__)
        return _error_page(503, "The database does not answer. Nothing was saved; try again in a minute. "
                                "If this lasts, check the PostgreSQL container (docs: Troubleshooting).")

    @app.errorhandler(DataError)
    def data_error(err):
        """An id beyond any row (e.g. 2^31 in a form's list of ids): there is nothing there. Other
        data errors stay server errors."""
        db.session.rollback()
        if _out_of_range(err):
            return not_found(err)
        app.logger.exception("database refused a value")
        return server_error(err)

    @app.errorhandler(500)
    def server_error(err):
        db.session.rollback()
        return _error_page(500, "Something went wrong on our side. Nothing was half-saved; "
                                "try again, and report it under Feedback if it repeats.")


def _error_page(code: int, message: str):
    if request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json"):
        return jsonify({"status": "error", "code": code, "message": message}), code
    try:
        return render_template("error.html", code=code, message=message), code
    except Exception:  # noqa: BLE001 - never a stack trace, even when templates can't load settings
        return (f"<!doctype html><title>Error {code}</title><h1>Error {code}</h1><p>{escape(message)}</p>", code)


def _nav_counts() -> dict:
    if "nav_counts" in g:
        return g.nav_counts
    from .models import JobRun
    inbox = db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.state == "inbox")).scalar_one()
    unreviewed = db.session.execute(select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None))).scalar_one()
    g.nav_counts = {"inbox": inbox, "run_checks": unreviewed}
    return g.nav_counts


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC datetime shown in the UI timezone."""
    if value is None:
        return ""
    from .services.settings import ui_zone
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(ui_zone()).strftime(fmt)


def reltime(value: datetime | None) -> Markup:
    """'02:14 · 6 h ago' with the full timestamp and zone in a tooltip."""
    if value is None:
        return Markup('<span class="text-body-secondary">—</span>')
    from .services.settings import ui_zone
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    local = value.astimezone(ui_zone())
    now = datetime.now(timezone.utc)
    delta = now - value
    seconds = int(delta.total_seconds())
    if seconds < 0:
        ago = "in the future"
    elif seconds < 90:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} d ago"
    today = datetime.now(ui_zone()).date()
    short = local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")
    full = local.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")
    return Markup(f'<time datetime="{escape(value.isoformat())}" title="{escape(full)}">{escape(short)} · {escape(ago)}</time>')


_BADGES = {
    "Success": ("success", "text-bg-success"),
    "Warning": ("warning", "text-bg-warning"),
    "Failed": ("failed", "text-bg-danger"),
    "Missed": ("missed", "badge-missed"),
    "Expected": ("expected", "text-bg-secondary"),
    "Success (override)": ("override", "badge-override"),
    "Reviewed": ("reviewed", "badge-reviewed"),
}


def status_badge(status: str | None, override: bool = False) -> Markup:
    """A coloured badge with a word, the same everywhere (never colour alone)."""
    if not status:
        return Markup('<span class="badge text-bg-light border">Unknown</span>')
    label = "Success (override)" if override else status
    key, cls = _BADGES.get(label, ("unknown", "text-bg-light border"))
    icon = "✓ " if label == "Reviewed" else ""
    return Markup(f'<span class="badge status-{key} {cls}">{icon}{escape(label)}</span>')


def doc_link(page: str) -> str:
    return url_for("docs.page", slug=page)
