"""/reports: report definitions, generated PDF/CSV files, an HTML preview, scheduled mailing.

Reporter and admin create, edit, generate and send; operator and viewer read, preview and download.
The rules live in ``services.reports``; this module reads the request, calls one function and
renders or redirects with a flash message.
"""
from __future__ import annotations

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import ReportDefinition, ReportRun
from ..route_helpers import commit_or_flash, or_404
from ..security import PORTAL_READERS, REPORT_EDITORS, REPORT_READERS, has_role, roles_required
from ..services import scope
from ..services.reports import (
    BUCKETS,
    CONTENT_KEYS,
    CONTENT_LABELS,
    PERIODS,
    SCHEDULES,
    WEEKDAYS,
    ReportError,
    build_report,
    content_flags,
    customer_choices,
    customer_names,
    definition_values,
    delete_definition,
    failed_deliveries,
    intro_html,
    list_definitions,
    parse_recipients,
    period_text,
    recent_runs,
    request_report,
    retry_delivery,
    run_status,
    save_definition,
    save_retention,
    schedule_text,
    start_generation,
    visible_run,
    visible_to,
)
from ..services.settings import get_settings, ui_zone
from .blueprint import main_bp


def _definition(definition_id: int) -> ReportDefinition:
    """The definition, when the user may see it (``reports.visible_to``: a portal user only a report
    over their own customers); else 404, never 403."""
    defn = db.session.get(ReportDefinition, definition_id)
    if not visible_to(defn, current_user):
        abort(404)
    return defn


def _run(run_id: int) -> ReportRun:
    return or_404(visible_run(run_id, current_user))


def _form_values(defn, form=None) -> dict:
    """What the form shows: the posted values after an error, else the definition's, else defaults."""
    if form is not None:
        return {"name": form.get("name", ""), "customer_scope": form.get("customer_scope", "all"),
                "customer_ids": set(form.getlist("customer_ids")), "period": form.get("period", "last_month"),
                "custom_start": form.get("custom_start", ""), "custom_end": form.get("custom_end", ""),
                "content": {k: bool(form.get(f"content_{k}")) for k in CONTENT_KEYS},
                "intro_markdown": form.get("intro_markdown", ""), "schedule": form.get("schedule", "none"),
                "schedule_day_weekly": form.get("schedule_day_weekly", "0"),
                "schedule_day_monthly": form.get("schedule_day_monthly", "1"),
                "schedule_time": form.get("schedule_time", "07:00"), "recipients": form.get("recipients", "")}
    if defn is None:
        return {"name": "", "customer_scope": "all", "customer_ids": set(), "period": "last_month",
                "custom_start": "", "custom_end": "", "content": content_flags(None), "intro_markdown": "",
                "schedule": "none", "schedule_day_weekly": "0", "schedule_day_monthly": "1",
                "schedule_time": "07:00", "recipients": ""}
    day = "" if defn.schedule_day is None else str(defn.schedule_day)
    return {"name": defn.name, "customer_scope": "all" if defn.all_customers else "selected",
            "customer_ids": {str(i) for i in (defn.customer_ids or [])}, "period": defn.period,
            "custom_start": defn.custom_start.isoformat() if defn.custom_start else "",
            "custom_end": defn.custom_end.isoformat() if defn.custom_end else "",
            "content": content_flags(defn), "intro_markdown": defn.intro_markdown or "",
            "schedule": defn.schedule, "schedule_day_weekly": day if defn.schedule == "weekly" else "0",
            "schedule_day_monthly": day if defn.schedule == "monthly" else "1",
            "schedule_time": defn.schedule_time or "07:00", "recipients": defn.recipients or ""}


def _form_context(defn, form=None) -> dict:
    return {"defn": defn, "fv": _form_values(defn, form), "customers": customer_choices(),
            "content_labels": CONTENT_LABELS, "periods": PERIODS, "schedules": SCHEDULES,
            "weekdays": WEEKDAYS, "zone": ui_zone().key}


@main_bp.route("/reports")
@roles_required(*REPORT_READERS, *PORTAL_READERS)
def reports():
    """Scope: the definitions and generated files the user may see (``user=``); the failed
    deliveries (the provider's recipients) are for staff."""
    definitions = list_definitions(current_user)
    names = {d.id: d.name for d in definitions}
    zone = ui_zone()
    periods = {d.id: period_text(d, zone) for d in definitions}
    schedules = {d.id: schedule_text(d) for d in definitions}
    portal = scope.is_portal(current_user)
    return render_template("main/reports.html", definitions=definitions, names=names, periods=periods,
                           schedules=schedules, runs=recent_runs(limit=30, user=current_user),
                           failed=[] if portal else failed_deliveries(),
                           can_edit=has_role(*REPORT_EDITORS), is_admin=has_role("admin"),
                           retention_days=get_settings().report_retention_days)


def _definition_form(defn: ReportDefinition | None):
    """The create (``defn`` None) or edit form; a refused save shows the form again as it was sent."""
    if request.method == "GET":
        return render_template("main/reports_form.html", **_form_context(defn))
    with commit_or_flash(ReportError, message="{error} Nothing was saved.") as saved:
        saved_defn = save_definition(defn, definition_values(request.form, request.form.getlist), current_user)
    if saved.failed:
        return render_template("main/reports_form.html", **_form_context(defn, request.form)), 400
    flash(f"Report '{saved_defn.name}' created. Generate it as PDF or CSV, or look at the preview." if defn is None
          else f"Report '{saved_defn.name}' saved.", "success")
    return redirect(url_for("main.reports_detail", definition_id=saved_defn.id))


@main_bp.route("/reports/new", methods=["GET", "POST"])
@roles_required(*REPORT_EDITORS)
def reports_new():
    return _definition_form(None)


@main_bp.route("/reports/<id:definition_id>/edit", methods=["GET", "POST"])
@roles_required(*REPORT_EDITORS)
def reports_edit(definition_id: int):
    return _definition_form(_definition(definition_id))


@main_bp.route("/reports/<id:definition_id>/delete", methods=["POST"])
@roles_required(*REPORT_EDITORS)
def reports_delete(definition_id: int):
    defn = _definition(definition_id)
    name = defn.name
    with commit_or_flash():
        delete_definition(defn, current_user)
    flash(f"Report '{name}' and its generated files deleted.", "success")
    return redirect(url_for("main.reports"))


@main_bp.route("/reports/<id:definition_id>")
@roles_required(*REPORT_READERS, *PORTAL_READERS)
def reports_detail(definition_id: int):
    """Scope: the definition (404 unless visible), its files (``user=``); no recipients for a portal user."""
    defn = _definition(definition_id)
    zone = ui_zone()
    period = period_text(defn, zone)
    portal = scope.is_portal(current_user)
    return render_template("main/reports_detail.html", defn=defn, period=period,
                           runs=recent_runs(defn.id, user=current_user),
                           customers=customer_names(defn.customer_ids) if not defn.all_customers else None,
                           flags=content_flags(defn), can_edit=has_role(*REPORT_EDITORS),
                           content_labels=CONTENT_LABELS, schedule=schedule_text(defn), intro=intro_html(defn),
                           recipients=parse_recipients(defn.recipients) if defn.recipients and not portal else [])


@main_bp.route("/reports/<id:definition_id>/preview")
@roles_required(*REPORT_READERS, *PORTAL_READERS)
def reports_preview(definition_id: int):
    defn = _definition(definition_id)
    try:
        data = build_report(defn)
    except ReportError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    return render_template("main/reports_preview.html", defn=defn, data=data, buckets=BUCKETS)


@main_bp.route("/reports/<id:definition_id>/generate", methods=["POST"])
@roles_required(*REPORT_EDITORS)
def reports_generate(definition_id: int):
    defn = _definition(definition_id)
    fmt = request.form.get("fmt", "pdf")
    deliver = request.form.get("send") == "1"
    with commit_or_flash(ReportError) as saved:
        run = request_report(defn, fmt, current_user, deliver=deliver)
    if saved.failed:
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    start_generation(current_app._get_current_object(), run.id)
    if deliver:
        flash(f"Generating the PDF of '{defn.name}'; it is mailed to the recipients within a minute or two.", "info")
    else:
        flash(f"Generating the {fmt.upper()} of '{defn.name}'. The progress shows below; the download appears "
              f"when it is ready.", "info")
    return redirect(url_for("main.reports_detail", definition_id=defn.id, _anchor=f"run-{run.id}"))


@main_bp.route("/reports/runs/<id:run_id>/status")
@roles_required(*REPORT_READERS, *PORTAL_READERS)
def reports_run_status(run_id: int):
    return jsonify(or_404(run_status(run_id, user=current_user)))


@main_bp.route("/reports/runs/<id:run_id>/download")
@roles_required(*REPORT_READERS, *PORTAL_READERS)
def reports_download(run_id: int):
    run = _run(run_id)
    if run.state != "done" or run.data is None:
        flash("That report is not ready (or it failed); see its state in the list.", "warning")
        return redirect(url_for("main.reports_detail", definition_id=run.definition_id))
    return Response(run.data, mimetype=run.content_type.split(";")[0], headers={
        "Content-Disposition": f'attachment; filename="{run.filename}"',
        "Content-Type": run.content_type, "X-Content-Type-Options": "nosniff"})


@main_bp.route("/reports/runs/<id:run_id>/retry-delivery", methods=["POST"])
@roles_required(*REPORT_EDITORS)
def reports_retry_delivery(run_id: int):
    run = _run(run_id)
    with commit_or_flash(ReportError) as saved:
        retry_delivery(run, current_user)
    if not saved.failed:
        flash("Delivery queued again: it is sent within a minute or two.", "success")
    return redirect(url_for("main.reports_detail", definition_id=run.definition_id))


@main_bp.route("/reports/retention", methods=["POST"])
@roles_required("admin")
def reports_retention():
    with commit_or_flash(ReportError, message="{error} Nothing was saved.") as saved:
        days = save_retention(request.form.get("report_retention_days"), current_user)
    if not saved.failed:
        flash(f"Generated reports are kept {days} days.", "success")
    return redirect(url_for("main.reports"))
