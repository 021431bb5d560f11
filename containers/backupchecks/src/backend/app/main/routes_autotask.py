"""Autotask PSA: settings (admin), customer ↔ company mapping, and ticket actions from Run Checks.

Thin: every route reads the form, calls one function of ``services.autotask_service`` and
flashes what happened. Errors from Autotask come back as a message the operator can act on.
"""
from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Customer, JobRun, Ticket
from ..security import has_role, roles_required
from ..services import autotask_service as svc
from ..services.tasks import TaskBusy
from .blueprint import main_bp

ADMIN = ("admin",)
ACTORS = ("admin", "operator")
READERS = ("admin", "operator", "viewer")


# --- template helpers (the partials included by settings.html and run_checks.html) ------------------

@main_bp.app_template_global("autotask_settings_view")
def _settings_view() -> dict:
    return svc.settings_view()


@main_bp.app_template_global("autotask_run_view")
def _run_view(job) -> svc.RunView:
    cache = g.setdefault("autotask_run_views", {})
    if job.id not in cache:
        cache[job.id] = svc.run_checks_view(job)
    return cache[job.id]


def _error(exc: svc.AutotaskServiceError, prefix: str = "") -> None:
    db.session.rollback()
    flash(f"{prefix}{exc.message}", "danger")


# --- settings -----------------------------------------------------------------------------------------

def _to_settings():
    return redirect(url_for("main.settings", section="integrations"))


@main_bp.route("/settings/autotask", methods=["POST"])
@roles_required(*ADMIN)
def autotask_settings_save():
    try:
        changed = svc.save_settings(request.form, current_user)
    except svc.AutotaskServiceError as exc:
        _error(exc)
        return _to_settings()
    db.session.commit()
    flash("Autotask settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return _to_settings()


@main_bp.route("/settings/autotask/test", methods=["POST"])
@roles_required(*ADMIN)
def autotask_settings_test():
    try:
        result = svc.test_connection(current_user)
    except svc.AutotaskServiceError as exc:
        flash(f"Autotask connection failed: {exc.message}", "danger")
        return _to_settings()
    zone = result.get("zone") or {}
    used = result.get("requests_used")
    limit = result.get("request_threshold")
    usage = f" API usage this hour: {used} of {limit} requests." if used is not None and limit else ""
    flash(f"Autotask connection works (zone {zone.get('name') or zone.get('url')}).{usage}", "success")
    return _to_settings()


@main_bp.route("/settings/autotask/reference-data", methods=["POST"])
@roles_required(*ADMIN)
def autotask_settings_reference():
    try:
        counts = svc.refresh_reference_data(current_user)
    except svc.AutotaskServiceError as exc:
        _error(exc, "Reference data not refreshed: ")
        return _to_settings()
    flash("Reference data refreshed: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".", "success")
    return _to_settings()


@main_bp.route("/settings/autotask/poll", methods=["POST"])
@roles_required(*ADMIN)
def autotask_settings_poll():
    """Run the ticket poll now (it also runs by itself every few minutes)."""
    try:
        counts = svc.poll_open_tickets()
    except svc.AutotaskServiceError as exc:
        _error(exc, "Poll failed: ")
        return _to_settings()
    if counts["errors"]:
        flash(f"Checked {counts['checked']} open Autotask tickets, {counts['resolved']} resolved; Autotask did not "
              "answer for some of them (see the log). The poll tries again by itself.", "warning")
    else:
        flash(f"Checked {counts['checked']} open Autotask tickets; {counts['resolved']} were completed in "
              "Autotask and are now resolved here.", "success")
    return _to_settings()


# --- customer mapping ------------------------------------------------------------------------------

@main_bp.route("/customers/autotask")
@roles_required(*READERS)
def autotask_customers():
    task_id = request.args.get("task", type=int)
    state = request.args.get("state", "")
    if state not in svc.MAPPING_FILTERS:
        abort(400, "Unknown filter: use the links above the list.")
    listing = svc.mapping_overview(state, max(1, request.args.get("page", 1, type=int) or 1))
    return render_template("main/autotask_customers.html", listing=listing, state=state,
                           enabled=svc.is_enabled(), can_edit=has_role(*ACTORS), task_id=task_id,
                           page=listing.page, per_page=listing.per_page, total=listing.total)


@main_bp.route("/customers/autotask/refresh", methods=["POST"])
@roles_required(*ACTORS)
def autotask_customers_refresh():
    try:
        task = svc.start_refresh_all(current_app._get_current_object(), current_user)
    except TaskBusy as busy:
        flash("The mappings are already being checked; the progress is shown below.", "info")
        return redirect(url_for("main.autotask_customers", task=busy.task.id))
    except svc.AutotaskServiceError as exc:
        _error(exc)
        return redirect(url_for("main.autotask_customers"))
    flash("Checking every mapped customer against Autotask in the background.", "info")
    return redirect(url_for("main.autotask_customers", task=task.id))


@main_bp.route("/customers/<id:customer_id>/autotask")
@roles_required(*READERS)
def autotask_customer(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    q = (request.args.get("q") or "").strip()[:100]
    results, error = [], None
    if q and has_role(*ACTORS):
        try:
            results = svc.search_companies(q)
        except svc.AutotaskServiceError as exc:
            error = exc.message
    return render_template("main/autotask_customer.html", customer=customer, q=q, results=results,
                           search_error=error, enabled=svc.is_enabled(), can_edit=has_role(*ACTORS),
                           block_reason=svc.ticket_block_reason(customer))


@main_bp.route("/customers/<id:customer_id>/autotask", methods=["POST"])
@roles_required(*ACTORS)
def autotask_customer_change(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    action = request.form.get("action", "set")
    back = redirect(url_for("main.autotask_customer", customer_id=customer.id))
    try:
        if action == "set":
            svc.set_customer_company(customer, request.form.get("company_id"), current_user)
            flash(f"{customer.name} is mapped to Autotask company {customer.autotask_company_name} "
                  f"({customer.autotask_company_id}).", "success")
        elif action == "refresh":
            status = svc.refresh_customer(customer, current_user)
            flash(f"Mapping checked: {status}" + (f" (the company is now called {customer.autotask_company_name})"
                                                  if status == "renamed" else "") + ".",
                  "success" if status in svc.TICKETABLE else "warning")
        elif action == "clear":
            if svc.clear_customer_company(customer, current_user):
                flash(f"The Autotask mapping of {customer.name} was removed.", "success")
            else:
                flash(f"{customer.name} was not mapped.", "info")
        else:
            flash("Unknown action.", "warning")
    except svc.AutotaskServiceError as exc:
        _error(exc)
    return back


# --- tickets from Run Checks ----------------------------------------------------------------------

def _back_to_job(job_id):
    return redirect(url_for("main.run_checks", job=job_id) if job_id else url_for("main.run_checks"))


def _run_from_form() -> JobRun:
    run = db.session.get(JobRun, request.form.get("run_id", type=int) or 0)
    if run is None:
        abort(404)
    return run


@main_bp.route("/run-checks/autotask/create", methods=["POST"])
@roles_required(*ACTORS)
def autotask_ticket_create():
    run = _run_from_form()
    job_id = run.job_id
    try:
        outcome = svc.create_ticket_for_run(run.id, current_user)
    except svc.AutotaskServiceError as exc:
        _error(exc, "No Autotask ticket: " if not exc.message.startswith("No Autotask") else "")
        return _back_to_job(job_id)
    flash(outcome.message, "success" if outcome.created else "info")
    return _back_to_job(job_id)


@main_bp.route("/run-checks/autotask/link", methods=["POST"])
@roles_required(*ACTORS)
def autotask_ticket_link():
    run = _run_from_form()
    job_id = run.job_id
    try:
        outcome = svc.link_ticket_by_number(run.id, request.form.get("number", ""), current_user)
    except svc.AutotaskServiceError as exc:
        _error(exc, "Not linked: ")
        return _back_to_job(job_id)
    flash(outcome.message, "success")
    return _back_to_job(job_id)


@main_bp.route("/run-checks/autotask/resolve", methods=["POST"])
@roles_required(*ACTORS)
def autotask_ticket_resolve():
    ticket = db.session.get(Ticket, request.form.get("ticket_id", type=int) or 0)
    if ticket is None:
        abort(404)
    job_id = request.form.get("job_id", type=int)
    try:
        message = svc.resolve_ticket(ticket.id, current_user, request.form.get("note", ""))
    except svc.AutotaskServiceError as exc:
        _error(exc, "Not resolved: ")
        return _back_to_job(job_id)
    flash(message, "success")
    return _back_to_job(job_id)
