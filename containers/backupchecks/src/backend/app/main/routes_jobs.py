"""/jobs, /jobs/archived, /jobs/<id>: the grouped list, the detail with run history, archive,
delete, manual schedule, JSON export and import; /jobs/lookup: the job picker's suggestions.

Viewers read; admin and operator change; archive/unarchive and the archived list are admin only.
The rules live in ``services.jobs`` (and ``services.schedules``); this module stays thin.
"""
from __future__ import annotations

import json
from typing import Callable

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..models import Job, utcnow
from ..route_helpers import commit_or_flash, dated_download, flash_changed, import_upload, or_404, page_arg, sorted_list_args
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, PORTAL_READERS, REVIEWERS, has_role, roles_required
from ..services import mail_body, scope
from ..services.jobs import (
    SORTS,
    STATUS_FILTERS,
    JobError,
    JobImportError,
    JobLookupError,
    archive_job,
    clear_schedule,
    delete_job,
    export_json,
    filter_choices,
    get_job,
    import_jobs_json,
    list_jobs,
    lookup_jobs,
    page_of_run,
    run_history,
    run_mail,
    schedule_of,
    set_alert_after_failures,
    set_schedule,
    unarchive_job,
)
from ..services.quiet import job_quiet
from ..services.status import display_status
from ..services.timezones import as_zone
from ..web import parse_id
from .blueprint import main_bp

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SCHEDULE_FIELDS = ("kind", "monthdays", "every_n_days", "anchor_date", "time", "grace_minutes")


def _list_args() -> dict:
    status = request.args.get("status", "")
    args = sorted_list_args(SORTS, "customer", filters_ok=not status or status in STATUS_FILTERS)
    customer = request.args.get("customer", "")
    if customer and not (customer.isascii() and customer.isdigit()):
        abort(400, f"'{customer[:30]}' is not a customer id: choose the customer in the filter.")
    return {"customer_id": (parse_id(customer) or -1) if customer else None,  # -1: an id no row has
            "software": (request.args.get("software") or "").strip()[:120], "status": status, **args}


def _render_list(archived: bool):
    args = _list_args()
    listing = list_jobs(archived=archived, **args)
    customers, software = filter_choices()
    return render_template("main/jobs.html", listing=listing, filters=args, archived=archived,
                           customers=customers, software_choices=software, status_choices=STATUS_FILTERS,
                           schedule_of=schedule_of,
                           can_edit=has_role(*OPERATIONS_EDITORS), is_admin=has_role("admin"),
                           page=listing.page, per_page=listing.per_page, total=listing.total)


@main_bp.route("/jobs")
@roles_required(*OPERATIONS_READERS)
def jobs():
    return _render_list(archived=False)


@main_bp.route("/jobs/archived")
@roles_required("admin")
def jobs_archived():
    return _render_list(archived=True)


def _lookup_args() -> dict:
    """The job picker's question: ``q`` (search text), ``customer`` (an id: only its jobs),
    ``archived=1`` (archived jobs too)."""
    customer = (request.args.get("customer") or "").strip()
    customer_id = parse_id(customer) if customer else None
    if customer and customer_id is None:
        raise JobLookupError(f"'{customer[:30]}' is not a customer id: send the id of a customer, or no customer.")
    archived = request.args.get("archived", "")
    if archived not in ("", "0", "1"):
        raise JobLookupError(f"'{archived[:30]}' is not a choice for archived: send 1 to include archived jobs, "
                             f"0 or nothing to leave them out.")
    return {"text": request.args.get("q", ""), "customer_id": customer_id, "include_archived": archived == "1"}


@main_bp.route("/jobs/lookup")
@roles_required(*OPERATIONS_EDITORS)
def jobs_lookup():
    """The job picker's suggestions as JSON: at most 20 jobs matching the typed text (services.jobs.lookup_jobs);
    the roles that create tickets, remarks and overrides. A question that can't be answered: 400 with why."""
    try:
        found = lookup_jobs(**_lookup_args())
    except JobLookupError as exc:
        return jsonify({"status": "error", "code": 400, "message": str(exc)}), 400
    return jsonify(found.as_json())


def _job_or_404(job_id: int) -> Job:
    return or_404(get_job(job_id))


def _visible_job_or_404(job_id: int) -> Job:
    """The job, when the user may see its customer (``scope``); else 404, never 403: ids don't leak."""
    job = get_job(job_id)
    if not scope.job_visible(current_user, job):
        abort(404)
    return job


@main_bp.route("/jobs/<id:job_id>")
@roles_required(*OPERATIONS_READERS, *PORTAL_READERS)
def job_detail(job_id: int):
    """The job and its run history. Scope: the job's customer (404 otherwise); the runs are the job's."""
    job = _visible_job_or_404(job_id)
    shown_run = request.args.get("run", type=int)  # ?run=N opens the page holding run N, highlighted
    page = page_arg()
    if shown_run is not None and "page" not in request.args:
        page = page_of_run(job, shown_run) or 1
    if scope.is_portal(current_user):  # read-only, without the provider's notes, reviews and settings
        history = run_history(job, page, with_links=False)
        return render_template("main/portal_job.html", job=job, history=history, schedule_text=schedule_of(job)[1],
                               page=history.page, per_page=history.per_page, total=history.total,
                               run_status=display_status, shown_run=shown_run,
                               mail_bodies=scope.mail_bodies_allowed(current_user))
    history = run_history(job, page)
    schedule, schedule_text = schedule_of(job)
    return render_template("main/job_detail.html", job=job, history=history, schedule=schedule,
                           schedule_text=schedule_text, can_edit=has_role(*OPERATIONS_EDITORS),
                           is_admin=has_role("admin"), page=history.page, per_page=history.per_page,
                           total=history.total, mail_url=_mail_url, run_status=display_status,
                           weekday_names=WEEKDAY_NAMES, shown_run=shown_run, quiet=job_quiet(job, utcnow()),
                           quiet_next=url_for("main.job_detail", job_id=job.id), can_snooze=has_role(*REVIEWERS),
                           ui_zone_name=as_zone().key)


def _mail_url(message_id: int) -> str:
    return url_for("main.inbox_message", msg_id=message_id)


def _run_mail_or_404(job_id: int, run_id: int):
    """The mail behind one of a job's runs, for a user who may read it: the job's customer is theirs
    (``scope``) and, for a portal user, an admin allowed mail bodies. Anything else: 404."""
    job = _visible_job_or_404(job_id)
    if not scope.mail_bodies_allowed(current_user):
        abort(404)
    return job, or_404(run_mail(job, run_id))


@main_bp.route("/jobs/<id:job_id>/runs/<id:run_id>/mail")
@roles_required(*OPERATIONS_READERS, *PORTAL_READERS)
def job_run_mail(job_id: int, run_id: int):
    """The mail of one run, read-only (the portal's way to a mail; staff also have the Inbox)."""
    job, msg = _run_mail_or_404(job_id, run_id)
    return render_template("main/run_mail.html", job=job, run_id=run_id, msg=msg)


@main_bp.route("/jobs/<id:job_id>/runs/<id:run_id>/mail/body")
@roles_required(*OPERATIONS_READERS, *PORTAL_READERS)
def job_run_mail_body(job_id: int, run_id: int):
    """The body for the sandboxed frame of ``job_run_mail``: cleaned HTML, nothing loads."""
    _, msg = _run_mail_or_404(job_id, run_id)
    resp = Response(mail_body.document(msg.body_html, msg.body_text), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = mail_body.BODY_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _change_archived(job_id: int, change: Callable, done: str, unchanged: str) -> Job:
    """Archive or unarchive the job; ``{job}`` in the messages is its name."""
    job = _job_or_404(job_id)
    with commit_or_flash():
        changed = change(job, current_user)
    flash_changed(changed, done.format(job=job.job_name), unchanged.format(job=job.job_name))
    return job


@main_bp.route("/jobs/<id:job_id>/archive", methods=["POST"])
@roles_required("admin")
def job_archive(job_id: int):
    job = _change_archived(job_id, archive_job, "Job {job} archived: it gets no new runs and no missed runs. "
                           "Find it under Jobs → Archived.", "Job {job} was already archived.")
    return redirect(url_for("main.job_detail", job_id=job.id))


@main_bp.route("/jobs/<id:job_id>/unarchive", methods=["POST"])
@roles_required("admin")
def job_unarchive(job_id: int):
    job = _change_archived(job_id, unarchive_job, "Job {job} is active again; its schedule counts from now on.",
                           "Job {job} was not archived.")
    if request.form.get("next") == "archived":
        return redirect(url_for("main.jobs_archived"))
    return redirect(url_for("main.job_detail", job_id=job.id))


@main_bp.route("/jobs/<id:job_id>/delete", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def job_delete(job_id: int):
    job = _job_or_404(job_id)
    confirm = request.form.get("confirm_runs", type=int) if request.form.get("confirm") == "yes" else None
    name, customer_id = job.job_name, job.customer_id
    with commit_or_flash(JobError, message="Not deleted: {error}") as saved:
        runs = delete_job(job, current_user, confirm)
    if saved.failed:
        return redirect(url_for("main.job_detail", job_id=job_id))
    flash(f"Job {name} and its {runs} run{'s' if runs != 1 else ''} deleted.", "success")
    return redirect(url_for("main.jobs", customer=customer_id))


@main_bp.route("/jobs/<id:job_id>/schedule", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def job_schedule(job_id: int):
    job = _job_or_404(job_id)
    back = url_for("main.job_detail", job_id=job_id) + "#schedule"
    clear = request.form.get("action") == "clear"
    if clear and not job.manual_schedule:
        flash("This job has no schedule set by hand.", "info")
        return redirect(url_for("main.job_detail", job_id=job.id))
    with commit_or_flash(JobError) as saved:
        if clear:
            clear_schedule(job, current_user)
            message = "Manual schedule removed: the learned schedule counts again."
        else:
            data = {f: request.form.get(f, "") for f in SCHEDULE_FIELDS}
            set_schedule(job, {**data, "weekdays": request.form.getlist("weekdays")}, current_user)
            message = f"Schedule of {job.job_name} saved: {schedule_of(job)[1]}."
    if not saved.failed:
        flash(message, "success")
    return redirect(back)


@main_bp.route("/jobs/<id:job_id>/notifications", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def job_notifications(job_id: int):
    job = _job_or_404(job_id)
    with commit_or_flash(JobError) as saved:
        changed = set_alert_after_failures(job, request.form.get("alert_after_failures", ""), current_user)
    if not saved.failed:
        n = job.alert_after_failures
        flash_changed(changed, f"Notifications for {job.job_name}: " + (
            f"a failure is sent after {n} in a row." if n else "each channel's own number counts."),
            "Nothing changed.")
    return redirect(url_for("main.job_detail", job_id=job_id) + "#notifications")


@main_bp.route("/jobs/export.<fmt>")
@roles_required(*OPERATIONS_READERS)
def jobs_export(fmt: str):
    if fmt != "json":
        abort(404)
    return dated_download(json.dumps(export_json(), indent=2, ensure_ascii=False), "application/json", "jobs", "json")


@main_bp.route("/jobs/import", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def jobs_import():
    return import_upload(import_jobs_json, JobImportError, what="Jobs", template="main/jobs_import.html",
                         back=url_for("main.jobs"), choose="Choose a JSON file (a jobs export) to import.",
                         conflict="Nothing was imported: jobs or customers changed while the file was imported. "
                                  "Upload it again.")
