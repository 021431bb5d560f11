"""Settings (admin): each section saves on its own."""
from __future__ import annotations

from flask import current_app, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..mail import MailSourceError
from ..security import roles_required
from ..services import audit, importer, mail_check
from ..services.settings import (
    SettingsError,
    general_form_values,
    imports_form_values,
    mail_form_values,
    maintenance_info,
    save_general,
    save_imports,
    save_mail,
    timezone_choices,
)
from ..services.tasks import TaskBusy
from . import main_bp

SECTIONS = ("general", "mail", "imports", "integrations", "users", "maintenance")


def _env_overrides() -> dict:
    return dict(current_app.config.get("GRAPH_ENV_OVERRIDES") or {})


def _render(section: str, status: int = 200, **extra):
    ctx = {"section": section, "timezones": timezone_choices(),
           "general": general_form_values(),
           "mail": mail_form_values(_env_overrides()),
           "env_overrides": _env_overrides(),
           "imports": imports_form_values(),
           "task_id": request.args.get("task", type=int)}
    if section == "imports":
        ctx["cycles"] = importer.recent_cycles(20)
    if section == "maintenance":
        ctx["maintenance"] = maintenance_info(current_app.config.get("APP_VERSION"))
    ctx.update(extra)
    return render_template("main/settings.html", **ctx), status


@main_bp.route("/settings")
@roles_required("admin")
def settings():
    section = request.args.get("section", "general")
    if section not in SECTIONS:
        section = "general"
    if section == "users":
        return redirect(url_for("main.users"))
    return _render(section)


def _save(section: str, fn, *args):
    try:
        changed = fn(request.form, *args)
    except SettingsError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        response = make_response(*_render(section, 400, **{f"{section}_form": request.form}))
        response.headers["Cache-Control"] = "no-store"  # the form may hold a secret just typed
        return response
    db.session.commit()
    flash(f"{section.capitalize()} settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.settings", section=section))


@main_bp.route("/settings/general", methods=["POST"])
@roles_required("admin")
def settings_general():
    return _save("general", save_general)


@main_bp.route("/settings/mail", methods=["POST"])
@roles_required("admin")
def settings_mail():
    return _save("mail", save_mail, _env_overrides())


@main_bp.route("/settings/imports", methods=["POST"])
@roles_required("admin")
def settings_imports():
    return _save("imports", save_imports)


@main_bp.route("/settings/mail/test", methods=["POST"])
@roles_required("admin")
def settings_mail_test():
    """Test the values in the form without saving them; the form comes back as it was typed."""
    check = mail_check.check_mail_form(request.form, _env_overrides())
    body, status = _render("mail", mail_form=request.form, mail_check=check)
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"  # the page may hold the secret just typed
    return response


@main_bp.route("/settings/mail/folders")
@roles_required("admin")
def settings_mail_folders():
    """The mailbox's live folder tree for the folder pickers (JSON)."""
    try:
        source = importer.graph_source_unchecked()
        tree = source.folder_tree()
    except MailSourceError as exc:
        return jsonify({"ok": False, "error": exc.message}), (400 if exc.code == "not_configured" else 502)
    paths: list[str] = []

    def walk(nodes):
        for n in nodes:
            paths.append(n["path"])
            walk(n.get("children") or [])
    walk(tree)
    return jsonify({"ok": True, "folders": paths})


@main_bp.route("/settings/imports/run", methods=["POST"])
@roles_required("admin")
def settings_import_now():
    audit.record("import.manual", "Started an import now")  # committed with the task, dropped when busy
    try:
        task = importer.start_import_now(current_app._get_current_object(), current_user.id)
    except TaskBusy as busy:
        flash("An import is already running; its progress is shown below.", "info")
        return redirect(url_for("main.settings", section="imports", task=busy.task.id))
    flash("Import started in the background.", "info")
    return redirect(url_for("main.settings", section="imports", task=task.id))


@main_bp.route("/settings/maintenance", methods=["POST"])
@roles_required("admin")
def settings_maintenance():
    action = request.form.get("action")
    if action == "reparse_all":
        from ..services.inbox import start_reparse_all
        try:
            task = start_reparse_all(current_app._get_current_object(), current_user)
        except TaskBusy as busy:
            flash("Re-parsing is already running; its progress is shown below.", "info")
            return redirect(url_for("main.settings", section="maintenance", task=busy.task.id))
        flash("Re-parsing all stored mails in the background.", "info")
        return redirect(url_for("main.settings", section="maintenance", task=task.id))
    if action == "purge_raw":
        raw = (request.form.get("days") or "").strip()
        if not raw.isdigit() or int(raw) < 1:
            flash("Give the number of days (1 or more) of raw mails to keep. Nothing was purged.", "danger")
            return redirect(url_for("main.settings", section="maintenance"))
        n = importer.purge_raw_mails(int(raw))
        audit.record("maintenance.purge_raw", f"Purged raw mails older than {raw} days ({n} mails)", commit=True)
        flash(f"Removed the raw bytes of {n} mail(s) older than {raw} days; their parsed data and runs stay.", "success")
        return redirect(url_for("main.settings", section="maintenance"))
    if action == "recompute_schedules":
        from ..models import utcnow
        from ..services.schedules import recompute_all_schedules
        result = recompute_all_schedules(utcnow())
        audit.record("maintenance.recompute_schedules", f"Recomputed schedules ({result})", commit=True)
        db.session.commit()
        flash(f"Schedules recomputed: {result}.", "success")
        return redirect(url_for("main.settings", section="maintenance"))
    flash("Unknown maintenance action.", "warning")
    return redirect(url_for("main.settings", section="maintenance"))
