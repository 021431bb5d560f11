"""Settings → Notifications (admin): channels, a test message, the delivery log, and Mail sending
(the SMTP server e-mail channels and the digest may use)."""
from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for

from ..extensions import db
from ..models import Customer, NotificationChannel, NotificationOutbox
from ..route_helpers import commit_or_flash, or_404, render_no_store
from ..security import roles_required
from ..services.notifications import channels as svc
from ..services.notifications import env_channels
from ..services import settings
from ..services.mail_transport import SECURITY, TRANSPORT_LABELS, smtp_env_overrides
from ..services.notifications.delivery import KIND_LABELS
from ..services.settings import ui_zone
from ..web import form_ids
from .blueprint import main_bp


def _form() -> svc.ChannelForm:
    f = request.form
    return svc.ChannelForm(name=f.get("name", ""), kind=f.get("kind", ""), url=f.get("target_url", ""),
                           secret=f.get("secret", ""), clear_secret=bool(f.get("clear_secret")),
                           enabled=bool(f.get("enabled")), flags={k: bool(f.get(k)) for k in svc.EVENT_FLAGS},
                           all_customers=f.get("scope", "all") != "chosen", customer_ids=form_ids("customers"),
                           min_failures=f.get("min_failures", ""), quiet_start=f.get("quiet_start", ""),
                           quiet_end=f.get("quiet_end", ""), quiet_mode=f.get("quiet_mode", "hold"),
                           recipients=f.get("recipients", ""), transport=f.get("transport", "graph"))


def _render(status: int = 200, channel=None, form=None, error=None, smtp_form=None, smtp_error=None):
    env = smtp_env_overrides()
    ctx = {"section": "notifications", "kinds": KIND_LABELS, "channel": channel, "form": form, "error": error,
           "customers": db.session.query(Customer.id, Customer.name).order_by(Customer.name).all(),
           "quiet_modes": svc.QUIET_MODES, "max_failures": svc.MAX_FAILURES, "zone_name": ui_zone().key,
           "transports": TRANSPORT_LABELS, "smtp": smtp_form or settings.smtp_form_values(env),
           "smtp_env": env, "smtp_error": smtp_error, "security_choices": SECURITY,
           "channels": db.session.query(NotificationChannel).order_by(NotificationChannel.name).all(),
           "last": svc.last_states(), "log": svc.delivery_log(100),
           "env_urls": env_channels.describe(current_app.config.get("NOTIFY_URLS") or [])}
    return render_no_store("main/notifications.html", status, **ctx)


@main_bp.route("/settings/notifications")
@roles_required("admin")
def notifications():
    return _render()


@main_bp.route("/settings/notifications/<id:channel_id>")
@roles_required("admin")
def notifications_edit(channel_id: int):
    ch, refused = _editable(channel_id)
    return refused or _render(channel=ch)


def _channel(channel_id: int) -> NotificationChannel:
    """The channel in the address, or 404."""
    return or_404(db.session.get(NotificationChannel, channel_id))


def _editable(channel_id: int):
    """The channel in the address if it may be changed here, else a redirect with the reason
    (a NOTIFY_URLS channel is changed in the environment)."""
    ch = _channel(channel_id)
    if ch.env_key:
        flash(f"{ch.name} comes from NOTIFY_URLS in the environment: change it there.", "warning")
        return None, redirect(url_for("main.notifications"))
    return ch, None


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
    ch, refused = _editable(channel_id)
    if refused:
        return refused
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
    ch, refused = _editable(channel_id)
    if refused:
        return refused
    name = ch.name
    with commit_or_flash():
        svc.delete_channel(ch)
    flash(f"Channel {name} deleted.", "success")
    return redirect(url_for("main.notifications"))


@main_bp.route("/settings/notifications/<id:channel_id>/test", methods=["POST"])
@roles_required("admin")
def notifications_test(channel_id: int):
    ch = _channel(channel_id)
    result = svc.send_channel_test(ch)
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


@main_bp.route("/settings/notifications/mail-sending", methods=["POST"])
@roles_required("admin")
def notifications_mail_sending():
    with commit_or_flash(settings.SettingsError, message=None) as saved:
        changed = settings.save_smtp(request.form, smtp_env_overrides())
    if saved.failed:
        form = {k: v for k, v in request.form.items() if k not in ("smtp_password", "csrf_token")}
        form["password_set"] = settings.smtp_form_values(smtp_env_overrides())["password_set"]
        return _render(400, smtp_form=form, smtp_error=str(saved.error))
    flash("Mail sending saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.notifications") + "#mail-sending")
