"""/jobs, /jobs/archived, /jobs/<id>: the grouped list, the detail with run history, archive,
delete, manual schedule, JSON export and import.

Viewers read; admin and operator change; archive/unarchive and the archived list are admin only.
The rules live in ``services.jobs`` (and ``services.schedules``); this module stays thin.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Job
from ..security import has_role, roles_required
from ..web import parse_id
from ..services import jobs as svc
from .blueprint import main_bp

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
READERS = ("admin", "operator", "viewer")
EDITORS = ("admin", "operator")


def _list_args() -> dict:
    sort = request.args.get("sort", "customer")
    direction = request.args.get("dir", "asc")
    status = request.args.get("status", "")
    if sort not in svc.SORTS or direction not in ("asc", "desc") or (status and status not in svc.STATUS_FILTERS):
        abort(400, "Unknown sort or filter value: use the column headers and the filter form.")
    customer = request.args.get("customer", "")
    if customer and not (customer.isascii() and customer.isdigit()):
        abort(400, f"'{customer[:30]}' is not a customer id: choose the customer in the filter.")
    return {"customer_id": (parse_id(customer) or -1) if customer else None,  # -1: an id no row has
            "software": (request.args.get("software") or "").strip()[:120], "status": status,
            "q": (request.args.get("q") or "").strip()[:200], "sort": sort, "direction": direction,
            "page": max(1, request.args.get("page", 1, type=int) or 1)}


def _render_list(archived: bool):
    args = _list_args()
    listing = svc.list_jobs(archived=archived, **args)
    customers, software = svc.filter_choices()
    return render_template("main/jobs.html", listing=listing, filters=args, archived=archived,
                           customers=customers, software_choices=software, status_choices=svc.STATUS_FILTERS,
                           schedule_of=svc.schedule_of,
                           can_edit=has_role(*EDITORS), is_admin=has_role("admin"),
                           page=listing.page, per_page=listing.per_page, total=listing.total)


@main_bp.route("/jobs")
@roles_required(*READERS)
def jobs():
    return _render_list(archived=False)


@main_bp.route("/jobs/archived")
@roles_required("admin")
def jobs_archived():
    return _render_list(archived=True)


def _job_or_404(job_id: int) -> Job:
    job = svc.get_job(job_id)
    if job is None:
        abort(404)
    return job


@main_bp.route("/jobs/<id:job_id>")
@roles_required(*READERS)
def job_detail(job_id: int):
    job = _job_or_404(job_id)
    shown_run = request.args.get("run", type=int)  # ?run=N opens the page holding run N, highlighted
    page = max(1, request.args.get("page", 1, type=int) or 1)
    if shown_run is not None and "page" not in request.args:
        page = svc.page_of_run(job, shown_run) or 1
    history = svc.run_history(job, page)
    schedule, schedule_text = svc.schedule_of(job)
    return render_template("main/job_detail.html", job=job, history=history, schedule=schedule,
                           schedule_text=schedule_text, can_edit=has_role(*EDITORS), is_admin=has_role("admin"),
                           page=history.page, per_page=history.per_page, total=history.total,
                           mail_url=_mail_url, run_status=_run_status, weekday_names=WEEKDAY_NAMES,
                           shown_run=shown_run)


def _run_status(run_or_object) -> str:
    """The word shown for a run or object, "Success (override)" included."""
    from ..services.status import display_status
    return display_status(run_or_object)


def _mail_url(message_id: int) -> str:
    return url_for("main.inbox_message", msg_id=message_id)


@main_bp.route("/jobs/<id:job_id>/archive", methods=["POST"])
@roles_required("admin")
def job_archive(job_id: int):
    job = _job_or_404(job_id)
    if svc.archive_job(job, current_user):
        db.session.commit()
        flash(f"Job {job.job_name} archived: it gets no new runs and no missed runs. "
              f"Find it under Jobs → Archived.", "success")
    else:
        flash(f"Job {job.job_name} was already archived.", "info")
    return redirect(url_for("main.job_detail", job_id=job.id))


@main_bp.route("/jobs/<id:job_id>/unarchive", methods=["POST"])
@roles_required("admin")
def job_unarchive(job_id: int):
    job = _job_or_404(job_id)
    if svc.unarchive_job(job, current_user):
        db.session.commit()
        flash(f"Job {job.job_name} is active again; its schedule counts from now on.", "success")
    else:
        flash(f"Job {job.job_name} was not archived.", "info")
    back = request.form.get("next")
    if back == "archived":
        return redirect(url_for("main.jobs_archived"))
    return redirect(url_for("main.job_detail", job_id=job.id))


@main_bp.route("/jobs/<id:job_id>/delete", methods=["POST"])
@roles_required(*EDITORS)
def job_delete(job_id: int):
    job = _job_or_404(job_id)
    confirm = request.form.get("confirm_runs", type=int) if request.form.get("confirm") == "yes" else None
    try:
        name, customer_id = job.job_name, job.customer_id
        runs = svc.delete_job(job, current_user, confirm)
        db.session.commit()
    except svc.JobError as exc:
        db.session.rollback()
        flash(f"Not deleted: {exc}", "danger")
        return redirect(url_for("main.job_detail", job_id=job_id))
    flash(f"Job {name} and its {runs} run{'s' if runs != 1 else ''} deleted.", "success")
    return redirect(url_for("main.jobs", customer=customer_id))


@main_bp.route("/jobs/<id:job_id>/schedule", methods=["POST"])
@roles_required(*EDITORS)
def job_schedule(job_id: int):
    job = _job_or_404(job_id)
    try:
        if request.form.get("action") == "clear":
            if not job.manual_schedule:
                flash("This job has no schedule set by hand.", "info")
                return redirect(url_for("main.job_detail", job_id=job.id))
            svc.clear_schedule(job, current_user)
            message = "Manual schedule removed: the learned schedule counts again."
        else:
            data = {"kind": request.form.get("kind", ""), "weekdays": request.form.getlist("weekdays"),
                    "monthdays": request.form.get("monthdays", ""), "every_n_days": request.form.get("every_n_days", ""),
                    "anchor_date": request.form.get("anchor_date", ""), "time": request.form.get("time", ""),
                    "grace_minutes": request.form.get("grace_minutes", "")}
            svc.set_schedule(job, data, current_user)
            message = f"Schedule of {job.job_name} saved: {svc.schedule_of(job)[1]}."
        db.session.commit()
    except svc.JobError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("main.job_detail", job_id=job_id) + "#schedule")
    flash(message, "success")
    return redirect(url_for("main.job_detail", job_id=job.id) + "#schedule")


@main_bp.route("/jobs/export.<fmt>")
@roles_required(*READERS)
def jobs_export(fmt: str):
    if fmt != "json":
        abort(404)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    body = json.dumps(svc.export_json(), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="jobs-{stamp}.json"'})


@main_bp.route("/jobs/import", methods=["POST"])
@roles_required(*EDITORS)
def jobs_import():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a JSON file (a jobs export) to import.", "danger")
        return redirect(url_for("main.jobs"))
    try:
        report = svc.import_jobs_json(upload.read(), current_user)
        db.session.commit()
    except svc.JobImportError as exc:
        db.session.rollback()
        return render_template("main/jobs_import.html", errors=exc.errors, message=str(exc),
                               filename=upload.filename), 400
    except IntegrityError:  # a job or customer of the file was created elsewhere meanwhile
        db.session.rollback()
        flash("Nothing was imported: jobs or customers changed while the file was imported. Upload it again.",
              "danger")
        return redirect(url_for("main.jobs"))
    flash(f"Jobs imported from {upload.filename}: {report.summary}.", "success")
    return render_template("main/jobs_import.html", report=report, filename=upload.filename)
