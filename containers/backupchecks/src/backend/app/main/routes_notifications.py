"""Settings → Notifications (admin): channels, a test message, the delivery log."""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for

from ..extensions import db
from ..models import NotificationChannel, NotificationOutbox
from ..route_helpers import commit_or_flash, or_404
from ..security import roles_required
from ..services.notifications import channels as svc
from ..services.notifications.delivery import KIND_LABELS
from .blueprint import main_bp


def _form() -> svc.ChannelForm:
    f = request.form
    return svc.ChannelForm(name=f.get("name", ""), kind=f.get("kind", ""), url=f.get("target_url", ""),
                           secret=f.get("secret", ""), clear_secret=bool(f.get("clear_secret")),
                           enabled=bool(f.get("enabled")), flags={k: bool(f.get(k)) for k in svc.EVENT_FLAGS})


def _render(status: int = 200, channel=None, form=None, error=None):
    ctx = {"section": "notifications", "kinds": KIND_LABELS, "channel": channel, "form": form, "error": error,
           "channels": db.session.query(NotificationChannel).order_by(NotificationChannel.name).all(),
           "last": svc.last_states(), "log": svc.delivery_log(100)}
    resp = make_response(render_template("main/notifications.html", **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@main_bp.route("/settings/notifications")
@roles_required("admin")
def notifications():
    return _render()


@main_bp.route("/settings/notifications/<id:channel_id>")
@roles_required("admin")
def notifications_edit(channel_id: int):
    return _render(channel=_channel(channel_id))


def _channel(channel_id: int) -> NotificationChannel:
    """The channel in the address, or 404."""
    return or_404(db.session.get(NotificationChannel, channel_id))


@main_bp.route("/settings/notifications", methods=["POST"])
@roles_required("admin")
def notifications_create():
    with commit_or_flash(svc.ChannelError, message=None) as saved:
        ch = svc.save_channel(_form())
    if saved.failed:
        return _render(400, form=request.form, error=str(saved.error))
    flash(f"Channel {ch.name} added.", "success")
    return redirect(url_for("main.notifications"))


@main_bp.route("/settings/notifications/<id:channel_id>/edit", methods=["POST"])
@roles_required("admin")
def notifications_update(channel_id: int):
    ch = _channel(channel_id)
    with commit_or_flash(svc.ChannelError, message=None) as saved:
        svc.save_channel(_form(), ch)
    if saved.failed:
        ch = _channel(channel_id)
        return _render(400, channel=ch, form=request.form, error=str(saved.error))
    flash(f"Channel {ch.name} saved.", "success")
    return redirect(url_for("main.notifications"))


@main_bp.route("/settings/notifications/<id:channel_id>/delete", methods=["POST"])
@roles_required("admin")
def notifications_delete(channel_id: int):
    ch = _channel(channel_id)
    name = ch.name
    with commit_or_flash():
        svc.delete_channel(ch)
    flash(f"Channel {name} deleted.", "success")
    return redirect(url_for("main.notifications"))


@main_bp.route("/settings/notifications/<id:channel_id>/test", methods=["POST"])
@roles_required("admin")
def notifications_test(channel_id: int):
    ch = _channel(channel_id)
    result = svc.send_test(ch.kind, ch.target_url, ch.secret)
    from ..services import audit

    audit.record("notification_channel.test", f"Test message to {ch.name}: {'delivered' if result.sent else 'not delivered'}",
                 target_type="notification_channel", target_id=ch.id)
    db.session.commit()
    if result.sent:
        flash(f"Test message delivered to {ch.name}.", "success")
    else:
        flash(f"Test message to {ch.name} not delivered: {result.error}", "danger")
    return redirect(url_for("main.notifications"))


@main_bp.route("/settings/notifications/log/<id:row_id>/retry", methods=["POST"])
@roles_required("admin")
def notifications_retry(row_id: int):
    or_404(db.session.get(NotificationOutbox, row_id))
    ok = svc.retry_row(row_id)
    db.session.commit()
    flash("Queued again; it is sent within a minute." if ok else "Only failed, given-up or held messages can be retried.",
          "success" if ok else "warning")
    return redirect(url_for("main.notifications"))
