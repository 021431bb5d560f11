"""Settings (admin): each section saves on its own."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..extensions import db
from ..security import roles_required
from ..services import settings_service
from . import main_bp

SECTIONS = ("general", "mail", "imports", "integrations", "users", "maintenance")


@main_bp.route("/settings")
@roles_required("admin")
def settings():
    section = request.args.get("section", "general")
    if section not in SECTIONS:
        section = "general"
    if section == "users":
        return redirect(url_for("main.users"))
    return render_template("main/settings.html", section=section,
                           general=settings_service.general_form_values(),
                           timezones=settings_service.timezone_choices())


@main_bp.route("/settings/general", methods=["POST"])
@roles_required("admin")
def settings_general():
    try:
        changed = settings_service.save_general(request.form)
    except settings_service.SettingsError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return render_template("main/settings.html", section="general", general=request.form,
                               timezones=settings_service.timezone_choices()), 400
    db.session.commit()
    flash("General settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.settings", section="general"))
