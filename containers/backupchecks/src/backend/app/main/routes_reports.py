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
from ..security import has_role, roles_required
from ..services import reports as svc
from ..services.settings import get_settings, ui_zone
from .blueprint import main_bp

READERS = ("admin", "operator", "reporter", "viewer")
EDITORS = ("admin", "reporter")


def _definition(definition_id: int) -> ReportDefinition:
    defn = db.session.get(ReportDefinition, definition_id)
    if defn is None:
        abort(404)
    return defn


def _run(run_id: int) -> ReportRun:
    run = db.session.get(ReportRun, run_id)
    if run is None:
        abort(404)
    return run


def _form_values(defn, form=None) -> dict:
    """What the form shows: the posted values after an error, else the definition's, else defaults."""
    if form is not None:
        return {"name": form.get("name", ""), "customer_scope": form.get("customer_scope", "all"),
                "customer_ids": set(form.getlist("customer_ids")), "period": form.get("period", "last_month"),
                "custom_start": form.get("custom_start", ""), "custom_end": form.get("custom_end", ""),
                "content": {k: bool(form.get(f"content_{k}")) for k in svc.CONTENT_KEYS},
                "intro_markdown": form.get("intro_markdown", ""), "schedule": form.get("schedule", "none"),
                "schedule_day_weekly": form.get("schedule_day_weekly", "0"),
                "schedule_day_monthly": form.get("schedule_day_monthly", "1"),
                "schedule_time": form.get("schedule_time", "07:00"), "recipients": form.get("recipients", "")}
    if defn is None:
        return {"name": "", "customer_scope": "all", "customer_ids": set(), "period": "last_month",
                "custom_start": "", "custom_end": "", "content": svc.content_flags(None), "intro_markdown": "",
                "schedule": "none", "schedule_day_weekly": "0", "schedule_day_monthly": "1",
                "schedule_time": "07:00", "recipients": ""}
    day = "" if defn.schedule_day is None else str(defn.schedule_day)
    return {"name": defn.name, "customer_scope": "all" if defn.all_customers else "selected",
            "customer_ids": {str(i) for i in (defn.customer_ids or [])}, "period": defn.period,
            "custom_start": defn.custom_start.isoformat() if defn.custom_start else "",
            "custom_end": defn.custom_end.isoformat() if defn.custom_end else "",
            "content": svc.content_flags(defn), "intro_markdown": defn.intro_markdown or "",
            "schedule": defn.schedule, "schedule_day_weekly": day if defn.schedule == "weekly" else "0",
            "schedule_day_monthly": day if defn.schedule == "monthly" else "1",
            "schedule_time": defn.schedule_time or "07:00", "recipients": defn.recipients or ""}


def _form_context(defn, form=None) -> dict:
    return {"defn": defn, "fv": _form_values(defn, form), "customers": svc.customer_choices(),
            "content_labels": svc.CONTENT_LABELS, "periods": svc.PERIODS, "schedules": svc.SCHEDULES,
            "weekdays": svc.WEEKDAYS, "zone": ui_zone().key}


@main_bp.route("/reports")
@roles_required(*READERS)
def reports():
    definitions = svc.list_definitions()
    names = {d.id: d.name for d in definitions}
    zone = ui_zone()
    periods = {d.id: svc.period_text(d, zone) for d in definitions}
    return render_template("main/reports.html", definitions=definitions, names=names, periods=periods,
                           runs=svc.recent_runs(limit=30), failed=svc.failed_deliveries(),
                           can_edit=has_role(*EDITORS), is_admin=has_role("admin"),
                           retention_days=get_settings().report_retention_days, svc=svc)


@main_bp.route("/reports/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def reports_new():
    if request.method == "POST":
        try:
            defn = svc.save_definition(None, svc.definition_values(request.form, request.form.getlist), current_user)
        except svc.ReportError as exc:
            db.session.rollback()
            flash(f"{exc} Nothing was saved.", "danger")
            return render_template("main/reports_form.html", **_form_context(None, request.form)), 400
        db.session.commit()
        flash(f"Report '{defn.name}' created. Generate it as PDF or CSV, or look at the preview.", "success")
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    return render_template("main/reports_form.html", **_form_context(None))


@main_bp.route("/reports/<id:definition_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def reports_edit(definition_id: int):
    defn = _definition(definition_id)
    if request.method == "POST":
        try:
            svc.save_definition(defn, svc.definition_values(request.form, request.form.getlist), current_user)
        except svc.ReportError as exc:
            db.session.rollback()
            flash(f"{exc} Nothing was saved.", "danger")
            return render_template("main/reports_form.html", **_form_context(defn, request.form)), 400
        db.session.commit()
        flash(f"Report '{defn.name}' saved.", "success")
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    return render_template("main/reports_form.html", **_form_context(defn))


@main_bp.route("/reports/<id:definition_id>/delete", methods=["POST"])
@roles_required(*EDITORS)
def reports_delete(definition_id: int):
    defn = _definition(definition_id)
    name = defn.name
    svc.delete_definition(defn, current_user)
    db.session.commit()
    flash(f"Report '{name}' and its generated files deleted.", "success")
    return redirect(url_for("main.reports"))


@main_bp.route("/reports/<id:definition_id>")
@roles_required(*READERS)
def reports_detail(definition_id: int):
    defn = _definition(definition_id)
    zone = ui_zone()
    period = svc.period_text(defn, zone)
    return render_template("main/reports_detail.html", defn=defn, period=period, runs=svc.recent_runs(defn.id),
                           customers=svc.customer_names(defn.customer_ids) if not defn.all_customers else None,
                           flags=svc.content_flags(defn), can_edit=has_role(*EDITORS), svc=svc,
                           recipients=svc.parse_recipients(defn.recipients) if defn.recipients else [])


@main_bp.route("/reports/<id:definition_id>/preview")
@roles_required(*READERS)
def reports_preview(definition_id: int):
    defn = _definition(definition_id)
    try:
        data = svc.build_report(defn)
    except svc.ReportError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    return render_template("main/reports_preview.html", defn=defn, data=data, svc=svc)


@main_bp.route("/reports/<id:definition_id>/generate", methods=["POST"])
@roles_required(*EDITORS)
def reports_generate(definition_id: int):
    defn = _definition(definition_id)
    fmt = request.form.get("fmt", "pdf")
    deliver = request.form.get("send") == "1"
    try:
        run = svc.request_report(defn, fmt, current_user, deliver=deliver)
    except svc.ReportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("main.reports_detail", definition_id=defn.id))
    svc.start_generation(current_app._get_current_object(), run.id)
    if deliver:
        flash(f"Generating the PDF of '{defn.name}'; it is mailed to the recipients within a minute or two.", "info")
    else:
        flash(f"Generating the {fmt.upper()} of '{defn.name}'. The progress shows below; the download appears "
              f"when it is ready.", "info")
    return redirect(url_for("main.reports_detail", definition_id=defn.id, _anchor=f"run-{run.id}"))


@main_bp.route("/reports/runs/<id:run_id>/status")
@roles_required(*READERS)
def reports_run_status(run_id: int):
    status = svc.run_status(run_id)
    if status is None:
        abort(404)
    return jsonify(status)


@main_bp.route("/reports/runs/<id:run_id>/download")
@roles_required(*READERS)
def reports_download(run_id: int):
    run = _run(run_id)
    if run.state != "done" or run.data is None:
        flash("That report is not ready (or it failed); see its state in the list.", "warning")
        return redirect(url_for("main.reports_detail", definition_id=run.definition_id))
    return Response(run.data, mimetype=run.content_type.split(";")[0], headers={
        "Content-Disposition": f'attachment; filename="{run.filename}"',
        "Content-Type": run.content_type, "X-Content-Type-Options": "nosniff"})


@main_bp.route("/reports/runs/<id:run_id>/retry-delivery", methods=["POST"])
@roles_required(*EDITORS)
def reports_retry_delivery(run_id: int):
    run = _run(run_id)
    try:
        svc.retry_delivery(run, current_user)
    except svc.ReportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash("Delivery queued again: it is sent within a minute or two.", "success")
    return redirect(url_for("main.reports_detail", definition_id=run.definition_id))


@main_bp.route("/reports/retention", methods=["POST"])
@roles_required("admin")
def reports_retention():
    try:
        days = svc.save_retention(request.form.get("report_retention_days"), current_user)
    except svc.ReportError as exc:
        db.session.rollback()
        flash(f"{exc} Nothing was saved.", "danger")
    else:
        db.session.commit()
        flash(f"Generated reports are kept {days} days.", "success")
    return redirect(url_for("main.reports"))
