"""Run Checks: work the review queue to empty (admin and operator)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..models import Job, utcnow
from ..route_helpers import commit_or_flash, or_404, posted_row
from ..security import REVIEWERS, roles_required
from ..services import review
from ..services.overrides import override_from_run
from ..services.run_checks import (
    ALL,
    REVIEWED_DAYS,
    flat_order,
    get_run,
    job_panel,
    last_import,
    queue,
    queue_page,
    snoozed_jobs,
)
from ..services.quiet import job_quiet
from ..services.timezones import as_zone
from ..services.status import display_status
from ..services.tickets import TicketingError, create_remark, create_ticket
from ..web import form_ids, parse_id
from .blueprint import main_bp


def _posted_run():
    """The run the form names in ``run_id`` (with its objects and job), or 404."""
    return or_404(get_run(request.form.get("run_id", type=int) or 0))


def _include_reviewed() -> bool:
    return request.values.get("include_reviewed") == "1" and current_user.current_role == "admin"


def _expand():
    """The customer whose successful jobs are unfolded (``expand=<id>``), every one (``all``), or none."""
    value = (request.values.get("expand") or "").strip()
    if value == ALL:
        return ALL
    cid = parse_id(value)
    return (cid,) if cid is not None else ()


def _queue_args() -> dict:
    args = {"include_reviewed": "1"} if _include_reviewed() else {}
    expand = request.values.get("expand")
    if expand and _expand():
        args["expand"] = expand.strip()
    return args


def _queue_url(job_id=None, **extra):
    args = _queue_args()
    if job_id:
        args["job"] = job_id
    args.update(extra)
    return url_for("main.run_checks", **args)


@main_bp.route("/run-checks")
@roles_required(*REVIEWERS)
def run_checks():
    include_reviewed = _include_reviewed()
    groups = queue(include_reviewed, _expand())
    order = flat_order(groups)
    job_id = request.args.get("job", type=int)
    if request.args.get("job") and job_id is None:
        abort(400, "The job in the address is not a number.")
    job_chosen = job_id is not None  # on a phone a chosen job opens as its own view
    page = queue_page(groups, request.args.get("page", 1, type=int) or 1, job_id)
    if job_id is None:  # the first listed job of the page
        job_id = next((r.job_id for g in page.groups for r in g.rows), None)
    panel = job_panel(job_id, include_reviewed) if job_id else None
    if job_id and panel is None:
        flash("That job no longer exists; here is the queue.", "warning")
        return redirect(_queue_url())
    pos = order.index(job_id) if job_id in order else -1
    prev_id = order[pos - 1] if pos > 0 else None
    next_id = order[pos + 1] if 0 <= pos < len(order) - 1 else None
    queue_url = _queue_url()
    now = utcnow()
    return render_template("main/run_checks.html", quiet=job_quiet(panel.job, now) if panel else None,
                           snoozed=snoozed_jobs(page.groups, now), quiet_next=_queue_url(job_id),
                           can_snooze=True, is_admin=current_user.current_role == "admin",
                           ui_zone_name=as_zone().key, groups=page.groups, queue_page=page, panel=panel, selected=job_id,
                           prev_id=prev_id, next_id=next_id, include_reviewed=include_reviewed, job_chosen=job_chosen,
                           reviewed_days=REVIEWED_DAYS, queue_url=queue_url, queue_args=_queue_args(),
                           base_args={"include_reviewed": "1"} if include_reviewed else {},
                           # one address built per page, not per row: the row links add the job id
                           job_link=queue_url + ("&" if "?" in queue_url else "?") + "job=",
                           page_link=queue_url + ("&" if "?" in queue_url else "?") + "page=",
                           last_import=last_import(), display_status=display_status,
                           total=sum(g.count for g in groups),
                           folded_runs=sum(g.folded_runs for g in groups),
                           folded_jobs=sum(g.folded_jobs for g in groups))


@main_bp.route("/run-checks/review", methods=["POST"])
@roles_required(*REVIEWERS)
def run_checks_review():
    """Mark a job reviewed (all its unreviewed runs, or the selected ones) and move to the next job."""
    job = posted_row(Job, "job_id")
    run_ids = form_ids("run_ids")
    n = review.mark_job_reviewed(job, current_user, run_ids or None)
    if n:
        flash(f"{n} run{'s' if n != 1 else ''} of '{job.job_name}' marked reviewed.", "success")
    else:
        flash(f"Nothing to mark: the runs of '{job.job_name}' were already reviewed (perhaps by a colleague).", "info")
    next_id = request.form.get("next_job", type=int)
    return redirect(_queue_url(next_id))


@main_bp.route("/run-checks/bulk-review", methods=["POST"])
@roles_required(*REVIEWERS)
def run_checks_bulk_review():
    job_ids = form_ids("job_ids")
    if not job_ids:
        flash("Select one or more jobs in the queue first.", "warning")
        return redirect(_queue_url())
    n = review.bulk_mark_jobs_reviewed(job_ids, current_user)
    flash(f"{n} run{'s' if n != 1 else ''} of {len(job_ids)} job{'s' if len(job_ids) != 1 else ''} marked reviewed.", "success")
    return redirect(_queue_url())


@main_bp.route("/run-checks/review-successful", methods=["POST"])
@roles_required(*REVIEWERS)
def run_checks_review_successful():
    """Mark reviewed the runs of the jobs with only successful runs: of one customer, or of all."""
    raw = request.form.get("customer_id")
    customer_id = parse_id(raw) if raw else None
    if raw and customer_id is None:
        abort(400, "The customer in the form is not a number.")
    runs, jobs = review.mark_successful_jobs_reviewed(current_user, customer_id)
    if runs:
        flash(f"{runs} successful run{'s' if runs != 1 else ''} of {jobs} job{'s' if jobs != 1 else ''} "
              "marked reviewed.", "success")
    else:
        flash("Nothing to mark: no job with only successful runs is waiting (perhaps a colleague reviewed them).",
              "info")
    return redirect(_queue_url())


@main_bp.route("/run-checks/unreview", methods=["POST"])
@roles_required("admin")
def run_checks_unreview():
    run = _posted_run()
    if review.unreview_run(run, current_user):
        flash(f"Run {run.id} is back in the queue.", "success")
    else:
        flash("That run was not reviewed.", "info")
    return redirect(_queue_url(run.job_id))


@main_bp.route("/run-checks/mark-success", methods=["POST"])
@roles_required(*REVIEWERS)
def run_checks_mark_success():
    """'Mark as success': an override from this run, for this run only or for future runs too."""
    run = _posted_run()
    future = request.form.get("future") == "yes"
    with commit_or_flash(ValueError, message="Not marked: {error}") as saved:
        rule = override_from_run(run, current_user, future=future, comment=(request.form.get("comment") or None))
    if not saved.failed:
        scope = "this run and future runs" if future else "this run only"
        flash(f"Marked as success ({scope}): override #{rule.id} created; see Overrides.", "success")
    return redirect(_queue_url(run.job_id))


def _scopes_from_form(run) -> list[dict]:
    scope = request.form.get("scope", "job")
    if scope == "customer":
        return [{"type": "customer", "customer_id": run.job.customer_id}]
    if scope == "object":
        return [{"type": "object", "job_id": run.job_id, "object_name": request.form.get("object_name", "")}]
    return [{"type": "job", "job_id": run.job_id}]


@main_bp.route("/run-checks/ticket", methods=["POST"])
@roles_required(*REVIEWERS)
def run_checks_ticket():
    """A new internal ticket or remark from a run: linked to it, following the job's next runs."""
    run = _posted_run()
    kind = request.form.get("kind", "ticket")
    with commit_or_flash(TicketingError, message="Not saved: {error}") as saved:
        if kind == "remark":
            item = create_remark(request.form.get("body", ""), _scopes_from_form(run), current_user, run=run)
            what = "Remark"
        else:
            item = create_ticket(request.form.get("code", ""), request.form.get("description", ""),
                                 _scopes_from_form(run), current_user, run=run)
            what = f"Ticket {item.code}"
    if not saved.failed:
        flash(f"{what} added; it will follow this job's next runs until resolved.", "success")
    return redirect(_queue_url(run.job_id))
