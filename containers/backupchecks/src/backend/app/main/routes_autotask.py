"""Autotask PSA: settings (admin), customer ↔ company mapping, and ticket actions from Run Checks.

Thin: every route reads the form, calls one function of ``services.autotask`` and
flashes what happened. Errors from Autotask come back as a message the operator can act on.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Customer, JobRun, Ticket
from ..route_helpers import commit_or_flash, flash_changed, page_arg, posted_row, start_task
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, REVIEWERS, has_role, roles_required
from ..services import autotask
from ..services.autotask import AutotaskServiceError
from .blueprint import main_bp

T = TypeVar("T")


# --- template helpers (the partials included by settings.html and run_checks.html) ------------------

@main_bp.app_template_global("autotask_settings_view")
def _settings_view() -> dict:
    return autotask.settings_view()


@main_bp.app_template_global("autotask_run_view")
def _run_view(job) -> autotask.RunView:
    cache = g.setdefault("autotask_run_views", {})
    if job.id not in cache:
        cache[job.id] = autotask.run_checks_view(job)
    return cache[job.id]


# --- settings -----------------------------------------------------------------------------------------

def _settings_action(action: Callable[[], T], refused: str, report: Callable[[T], None]):
    """Run one action of the Autotask settings, ``report`` its result, and go back to the section;
    a refusal from Autotask flashes ``refused`` with the reason."""
    with commit_or_flash(AutotaskServiceError, message=refused + "{error}") as saved:
        result = action()
    if not saved.failed:
        report(result)
    return redirect(url_for("main.settings", section="integrations"))


@main_bp.route("/settings/autotask", methods=["POST"])
@roles_required("admin")
def autotask_settings_save():
    return _settings_action(lambda: autotask.save_settings(request.form, current_user), "",
                            lambda changed: flash_changed(changed, "Autotask settings saved."))


def _report_connection(result: dict) -> None:
    zone = result.get("zone") or {}
    used = result.get("requests_used")
    limit = result.get("request_threshold")
    usage = f" API usage this hour: {used} of {limit} requests." if used is not None and limit else ""
    flash(f"Autotask connection works (zone {zone.get('name') or zone.get('url')}).{usage}", "success")


@main_bp.route("/settings/autotask/test", methods=["POST"])
@roles_required("admin")
def autotask_settings_test():
    return _settings_action(lambda: autotask.test_connection(current_user), "Autotask connection failed: ",
                            _report_connection)


def _report_reference(counts: dict) -> None:
    flash("Reference data refreshed: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".", "success")


@main_bp.route("/settings/autotask/reference-data", methods=["POST"])
@roles_required("admin")
def autotask_settings_reference():
    return _settings_action(lambda: autotask.refresh_reference_data(current_user),
                            "Reference data not refreshed: ", _report_reference)


def _report_poll(counts: dict) -> None:
    if counts["errors"]:
        flash(f"Checked {counts['checked']} open Autotask tickets, {counts['resolved']} resolved; Autotask did not "
              "answer for some of them (see the log). The poll tries again by itself.", "warning")
    else:
        flash(f"Checked {counts['checked']} open Autotask tickets; {counts['resolved']} were completed in "
              "Autotask and are now resolved here.", "success")


@main_bp.route("/settings/autotask/poll", methods=["POST"])
@roles_required("admin")
def autotask_settings_poll():
    """Run the ticket poll now (it also runs by itself every few minutes)."""
    return _settings_action(autotask.poll_open_tickets, "Poll failed: ", _report_poll)


# --- customer mapping ------------------------------------------------------------------------------

@main_bp.route("/customers/autotask")
@roles_required(*OPERATIONS_READERS)
def autotask_customers():
    task_id = request.args.get("task", type=int)
    state = request.args.get("state", "")
    if state not in autotask.MAPPING_FILTERS:
        abort(400, "Unknown filter: use the links above the list.")
    listing = autotask.mapping_overview(state, page_arg())
    return render_template("main/autotask_customers.html", listing=listing, state=state,
                           enabled=autotask.is_enabled(), can_edit=has_role(*OPERATIONS_EDITORS), task_id=task_id,
                           page=listing.page, per_page=listing.per_page, total=listing.total)


@main_bp.route("/customers/autotask/refresh", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def autotask_customers_refresh():
    with commit_or_flash(AutotaskServiceError) as saved:
        started = start_task(lambda: autotask.start_refresh_all(current_app._get_current_object(), current_user),
                             "main.autotask_customers",
                             busy="The mappings are already being checked; the progress is shown below.",
                             started="Checking every mapped customer against Autotask in the background.")
    return redirect(url_for("main.autotask_customers")) if saved.failed else started


@main_bp.route("/customers/<id:customer_id>/autotask")
@roles_required(*OPERATIONS_READERS)
def autotask_customer(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    q = (request.args.get("q") or "").strip()[:100]
    results, error = [], None
    if q and has_role(*OPERATIONS_EDITORS):
        try:
            results = autotask.search_companies(q)
        except AutotaskServiceError as exc:
            error = exc.message
    return render_template("main/autotask_customer.html", customer=customer, q=q, results=results,
                           search_error=error, enabled=autotask.is_enabled(), can_edit=has_role(*OPERATIONS_EDITORS),
                           block_reason=autotask.ticket_block_reason(customer))


@main_bp.route("/customers/<id:customer_id>/autotask", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def autotask_customer_change(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    action = request.form.get("action", "set")
    with commit_or_flash(AutotaskServiceError):
        if action == "set":
            autotask.set_customer_company(customer, request.form.get("company_id"), current_user)
            flash(f"{customer.name} is mapped to Autotask company {customer.autotask_company_name} "
                  f"({customer.autotask_company_id}).", "success")
        elif action == "refresh":
            status = autotask.refresh_customer(customer, current_user)
            flash(f"Mapping checked: {status}" + (f" (the company is now called {customer.autotask_company_name})"
                                                  if status == "renamed" else "") + ".",
                  "success" if status in autotask.TICKETABLE else "warning")
        elif action == "clear":
            if autotask.clear_customer_company(customer, current_user):
                flash(f"The Autotask mapping of {customer.name} was removed.", "success")
            else:
                flash(f"{customer.name} was not mapped.", "info")
        else:
            flash("Unknown action.", "warning")
    return redirect(url_for("main.autotask_customer", customer_id=customer.id))


# --- tickets from Run Checks ----------------------------------------------------------------------

def _back_to_job(job_id):
    return redirect(url_for("main.run_checks", job=job_id) if job_id else url_for("main.run_checks"))


@main_bp.route("/run-checks/autotask/create", methods=["POST"])
@roles_required(*REVIEWERS)
def autotask_ticket_create():
    run = posted_row(JobRun, "run_id")
    job_id = run.job_id
    with commit_or_flash(AutotaskServiceError, message=None) as saved:
        outcome = autotask.create_ticket_for_run(run.id, current_user)
    if saved.failed:
        reason = str(saved.error)
        flash(reason if reason.startswith("No Autotask") else f"No Autotask ticket: {reason}", "danger")
    else:
        flash(outcome.message, "success" if outcome.created else "info")
    return _back_to_job(job_id)


@main_bp.route("/run-checks/autotask/link", methods=["POST"])
@roles_required(*REVIEWERS)
def autotask_ticket_link():
    run = posted_row(JobRun, "run_id")
    job_id = run.job_id
    with commit_or_flash(AutotaskServiceError, message="Not linked: {error}") as saved:
        outcome = autotask.link_ticket_by_number(run.id, request.form.get("number", ""), current_user)
    if not saved.failed:
        flash(outcome.message, "success")
    return _back_to_job(job_id)


@main_bp.route("/run-checks/autotask/resolve", methods=["POST"])
@roles_required(*REVIEWERS)
def autotask_ticket_resolve():
    ticket = posted_row(Ticket, "ticket_id")
    with commit_or_flash(AutotaskServiceError, message="Not resolved: {error}") as saved:
        message = autotask.resolve_ticket(ticket.id, current_user, request.form.get("note", ""))
    if not saved.failed:
        flash(message, "success")
    return _back_to_job(request.form.get("job_id", type=int))
