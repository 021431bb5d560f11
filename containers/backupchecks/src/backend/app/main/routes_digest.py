"""Settings → Digest (admin): when and how the morning digest is sent, its extra recipients, the
subscribers and the state of recent deliveries (``services/digest_delivery.py``); and the preview: the
morning digest of a day as its mail would show it. The mail's HTML (inline styles, as mail clients
need) is served on its own address with a strict policy of its own and shown in a sandboxed frame, so
the page itself keeps the app's Content Security Policy."""
from __future__ import annotations

from datetime import date
from typing import Optional

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..extensions import db
from ..models import DigestDelivery, User, utcnow
from ..route_helpers import commit_or_flash, or_404, render_no_store
from ..services import digest_delivery
from ..services.mail_transport import TRANSPORT_LABELS
from ..services.settings import SettingsError

from ..security import roles_required
from ..services import digest
from ..services.settings import ui_zone
from ..services.timezones import check_day_in_range, parse_day
from .blueprint import main_bp
from .routes_inbox import BODY_CSP


def _day() -> Optional[date]:
    """The day asked in ?date= (None: the digest's default, yesterday); 400 for a bad one."""
    raw = (request.args.get("date") or "").strip()
    if not raw:
        return None
    try:
        return check_day_in_range(parse_day(raw, ui_zone()))
    except ValueError as exc:
        abort(400, f"Digest preview: {exc}")


def _digest() -> digest.Digest:
    return digest.build_digest(_day(), base_url=digest.default_base_url() or request.host_url)


@main_bp.route("/settings/digest-preview")
@roles_required("admin")
def digest_preview():
    d = _digest()
    return render_template("main/digest_preview.html", d=d, subject=digest.subject(d))


@main_bp.route("/settings/digest-preview/mail")
@roles_required("admin")
def digest_preview_mail():
    """The digest's mail HTML for the sandboxed frame: no scripts, no remote loads."""
    resp = Response(digest.render_html(_digest()), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = BODY_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _render_settings(status: int = 200, form=None, error=None):
    subscribers = db.session.execute(select(User.username, User.email, User.digest_all_clear).where(
        User.digest_subscribed.is_(True), User.is_active_user.is_(True)).order_by(User.username)).all()
    ctx = {"section": "digest", "values": form or digest_delivery.form_values(), "error": error,
           "transports": TRANSPORT_LABELS, "subscribers": subscribers, "log": digest_delivery.recent(100),
           "next_send": digest_delivery.next_send(utcnow()) if form is None else None, "zone": ui_zone().key}
    return render_no_store("main/digest_settings.html", status, **ctx)


@main_bp.route("/settings/digest")
@roles_required("admin")
def digest_settings():
    return _render_settings()


@main_bp.route("/settings/digest", methods=["POST"])
@roles_required("admin")
def digest_settings_save():
    with commit_or_flash(SettingsError, message=None) as saved:
        changed = digest_delivery.save_settings(request.form)
    if saved.failed:
        return _render_settings(400, form=request.form, error=str(saved.error))
    flash("Digest settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.digest_settings"))


@main_bp.route("/settings/digest/log/<id:row_id>/retry", methods=["POST"])
@roles_required("admin")
def digest_retry(row_id: int):
    or_404(db.session.get(DigestDelivery, row_id))
    ok = digest_delivery.retry(row_id, utcnow())
    db.session.commit()
    flash("Queued again; it is sent within a minute." if ok else "Only failed or given-up digests can be retried.",
          "success" if ok else "warning")
    return redirect(url_for("main.digest_settings"))
