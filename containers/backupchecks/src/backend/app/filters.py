"""What every template can use: the filters ``localtime``, ``reltime`` and ``status_badge``, the
global ``doc_link``, and the context every page gets (settings, version, roles, navigation counts)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask, current_app, g, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import func, select

from .extensions import db
from .models import ROLES, JobRun, MailMessage
from .services.settings import get_settings, ui_zone
from .services.timezones import local_day


def init_app(app: Flask) -> None:
    app.context_processor(inject_globals)
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["reltime"] = reltime
    app.jinja_env.filters["status_badge"] = status_badge
    app.jinja_env.globals["doc_link"] = doc_link


def inject_globals() -> dict:
    ctx = {"app_version": current_app.config.get("APP_VERSION", ""), "ROLES": ROLES}
    try:
        settings = get_settings()
    except Exception:  # noqa: BLE001 - the error page must still render
        db.session.rollback()
        return ctx
    ctx["settings"] = settings
    if current_user.is_authenticated and not current_user.is_portal:  # counts over every customer: staff only
        ctx["nav_counts"] = _nav_counts()
    return ctx


def _nav_counts() -> dict:
    if "nav_counts" in g:
        return g.nav_counts
    inbox = db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.state == "inbox")).scalar_one()
    unreviewed = db.session.execute(select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None))).scalar_one()
    g.nav_counts = {"inbox": inbox, "run_checks": unreviewed}
    return g.nav_counts


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC datetime shown in the UI timezone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(ui_zone()).strftime(fmt)


def _ago(seconds: int) -> str:
    if seconds <= -90:  # an expiry date, a next run: "in 7 d", as "7 d ago" the other way
        ahead = -seconds
        if ahead < 3600:
            return f"in {ahead // 60} min"
        return f"in {ahead // 3600} h" if ahead < 86400 else f"in {ahead // 86400} d"
    if seconds < 90:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def reltime(value: datetime | None) -> Markup:
    """'02:14 · 6 h ago' with the full timestamp and zone in a tooltip."""
    if value is None:
        return Markup('<span class="text-body-secondary">—</span>')
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    local = value.astimezone(ui_zone())
    ago = _ago(int((datetime.now(timezone.utc) - value).total_seconds()))
    today = local_day(datetime.now(timezone.utc))
    short = local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")
    full = local.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")
    return Markup(f'<time datetime="{escape(value.isoformat())}" title="{escape(full)}">{escape(short)} · {escape(ago)}</time>')


# The one badge rule: the word a page shows -> (status-… class, Bootstrap colour classes). The colours
# mean the same on every page and a badge always carries its word, never colour alone.
_BADGES = {
    "Success": ("success", "text-bg-success"),
    "Warning": ("warning", "text-bg-warning"),
    "Failed": ("failed", "text-bg-danger"),
    "Missed": ("missed", "badge-missed"),
    "Expected": ("expected", "text-bg-secondary"),
    "Maintenance": ("maintenance", "text-bg-light border"),
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
    """The documentation page for a page's "? Help"; a portal user gets the pages meant for them
    (``docs.PORTAL_PAGES``), the portal guide for any other."""
    from .docs import PORTAL_PAGES

    if getattr(current_user, "is_authenticated", False) and current_user.is_portal and page not in PORTAL_PAGES:
        page = "portal"
    return url_for("docs.page", slug=page)
