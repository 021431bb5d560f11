"""Settings (admin): each section saves on its own."""
from __future__ import annotations

from flask import current_app, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..mail import MailSourceError
from ..models import utcnow
from ..route_helpers import commit_or_flash, flash_changed, no_store, start_task
from ..security import roles_required
from ..services import audit, importer, mail_check, smtp_receiver
from ..services.ingest import raw_limit_bytes
from ..services.schedules import recompute_all_schedules
from ..services.settings import (
    SettingsError,
    general_form_values,
    imports_form_values,
    MAIL_SOURCE_CHOICES,
    mail_form_values,
    maintenance_info,
    save_general,
    save_imports,
    save_mail,
    storage_info,
    timezone_choices,
)
from .blueprint import main_bp
from .routes_inbox import start_reparse_all_task

SECTIONS = ("general", "mail", "imports", "integrations", "users", "maintenance")


def _env_overrides() -> dict:
    """GRAPH_*, MAIL_SOURCE and IMAP_* set in the environment (each key names its field)."""
    return {**(current_app.config.get("GRAPH_ENV_OVERRIDES") or {}),
            **(current_app.config.get("IMAP_ENV_OVERRIDES") or {})}


def _render(section: str, status: int = 200, **extra):
    ctx = {"section": section, "timezones": timezone_choices(),
           "general": general_form_values(),
           "mail": mail_form_values(_env_overrides()),
           "env_overrides": _env_overrides(), "mail_sources": MAIL_SOURCE_CHOICES,
           "imports": imports_form_values(),
           "smtp_receiver": smtp_receiver.describe(current_app.config.get("SMTP_RECEIVER")),
           "task_id": request.args.get("task", type=int)}
    if section == "imports":
        ctx["cycles"] = importer.recent_cycles(20)
    if section == "maintenance":
        ctx["maintenance"] = maintenance_info(current_app.config.get("APP_VERSION"))
        ctx["storage"] = storage_info(utcnow(), ctx["imports"]["raw_retention_days"], raw_limit_bytes())
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


SAVERS = {"general": save_general, "mail": lambda form: save_mail(form, _env_overrides()), "imports": save_imports}


@main_bp.route("/settings/general", methods=["POST"], endpoint="settings_general", defaults={"section": "general"})
@main_bp.route("/settings/mail", methods=["POST"], endpoint="settings_mail", defaults={"section": "mail"})
@main_bp.route("/settings/imports", methods=["POST"], endpoint="settings_imports", defaults={"section": "imports"})
@roles_required("admin")
def settings_save(section: str):
    """Save one section's form; a refused form comes back as it was typed, with why."""
    with commit_or_flash(SettingsError) as saved:
        changed = SAVERS[section](request.form)
    if saved.failed:
        return no_store(make_response(*_render(section, 400, **{f"{section}_form": request.form})))
    flash_changed(changed, f"{section.capitalize()} settings saved.")
    return redirect(url_for("main.settings", section=section))


@main_bp.route("/settings/mail/test", methods=["POST"])
@roles_required("admin")
def settings_mail_test():
    """Test the values in the form without saving them; the form comes back as it was typed."""
    check = mail_check.check_mail_form(request.form, _env_overrides())
    return no_store(make_response(*_render("mail", mail_form=request.form, mail_check=check)))


@main_bp.route("/settings/mail/folders")
@roles_required("admin")
def settings_mail_folders():
    """The mailbox's live folder tree for the folder pickers (JSON), from the chosen source."""
    try:
        with importer.mail_source_unchecked() as source:
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
    return start_task(lambda: importer.start_import_now(current_app._get_current_object(), current_user.id),
                      "main.settings", section="imports", busy="An import is already running; its progress is "
                      "shown below.", started="Import started in the background.")


@main_bp.route("/settings/maintenance", methods=["POST"])
@roles_required("admin")
def settings_maintenance():
    action = request.form.get("action")
    back = redirect(url_for("main.settings", section="maintenance"))
    if action == "reparse_all":
        return start_reparse_all_task("main.settings", section="maintenance")
    if action == "purge_raw":
        raw = (request.form.get("days") or "").strip()
        if not raw.isdigit() or int(raw) < 1:
            flash("Give the number of days (1 or more) of raw mails to keep. Nothing was purged.", "danger")
            return back
        with commit_or_flash():
            n = importer.purge_raw_mails(int(raw))
            audit.record("maintenance.purge_raw", f"Purged raw mails older than {raw} days ({n} mails)")
        flash(f"Removed the raw bytes of {n} mail(s) older than {raw} days; their parsed data and runs stay.",
              "success")
        return back
    if action == "recompute_schedules":
        with commit_or_flash():
            result = recompute_all_schedules(utcnow())
            audit.record("maintenance.recompute_schedules", f"Recomputed schedules ({result})")
        flash(f"Schedules recomputed: {result}.", "success")
        return back
    flash("Unknown maintenance action.", "warning")
    return back
