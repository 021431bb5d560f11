"""/tickets: internal tickets and remarks (list, create, edit, resolve). Viewers read; admin and operator change.

The rules live in ``services/tickets.py``; this module reads the form, calls one function and redirects
with a flash message.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import tickets as tk
from ..extensions import db
from ..models import JobRun, Remark, Ticket
from ..security import has_role, roles_required, safe_next
from ..web import parse_id
from ..services.settings import ui_zone
from . import main_bp

PER_PAGE = 50
TABS = ("tickets", "remarks")
READERS = ("admin", "operator", "viewer")
EDITORS = ("admin", "operator")


@main_bp.route("/tickets")
@roles_required(*READERS)
def tickets():
    tab = request.args.get("tab", "tickets")
    if tab not in TABS:
        abort(400, "Unknown tab: use tickets or remarks.")
    state = request.args.get("state", "open")
    if state not in tk.STATES:
        abort(400, "Unknown filter: use open, resolved or all.")
    customer_id = request.args.get("customer", type=int)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    listing = tk.list_items("ticket" if tab == "tickets" else "remark", state, customer_id, page, PER_PAGE)
    can_edit = has_role(*EDITORS)
    customers, jobs = tk.scope_choices(include_jobs=can_edit)
    return render_template("main/tickets.html", tab=tab, state=state, customer_id=customer_id,
                           listing=listing, customers=customers, jobs=jobs, can_edit=can_edit,
                           page=listing.page, per_page=PER_PAGE, total=listing.total)


# --- form reading ------------------------------------------------------------------------------

def _scopes_from_form(run: Optional[JobRun]) -> list[dict]:
    kind = (request.form.get("scope_type") or "").strip()
    if not kind and run is not None:
        return [{"type": "job", "job_id": run.job_id}]  # created from a run without a choice: its job
    if not kind:
        return []
    if kind == "customer":
        return [{"type": "customer", "customer_id": request.form.get("customer_id")}]
    return [{"type": kind, "job_id": request.form.get("job_id"), "object_name": request.form.get("object_name")}]


def _active_from_from_form() -> Optional[datetime]:
    value = (request.form.get("active_from") or "").strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=ui_zone())
        except ValueError:
            continue
    raise tk.TicketingError(f"'{value}' is not a date and time; use YYYY-MM-DD HH:MM.")


def _edited_active_from(item) -> dict:
    """{"active_from": …} when the edit form changed it; the form shows minutes, so equal minutes = unchanged."""
    raw = (request.form.get("active_from") or "").strip()
    if not raw:
        return {}
    shown = item.active_from.astimezone(ui_zone()).strftime("%Y-%m-%dT%H:%M")
    if raw.replace(" ", "T")[:16] == shown:
        return {}
    return {"active_from": _active_from_from_form()}


def _run_from_form() -> Optional[JobRun]:
    raw = (request.form.get("run_id") or "").strip()
    if not raw:
        return None
    run_id = parse_id(raw)
    run = db.session.get(JobRun, run_id) if run_id else None
    if run is None:
        raise tk.TicketingError(f"Run {raw} does not exist (any more).")
    return run


def _back(tab: str):
    """Back to where the form was (Run Checks, job detail) if it said so, else to the tab."""
    return redirect(safe_next(request.form.get("next"), url_for("main.tickets", tab=tab)))


# --- tickets -------------------------------------------------------------------------------------

@main_bp.route("/tickets/new", methods=["POST"])
@roles_required(*EDITORS)
def ticket_create():
    try:
        run = _run_from_form()
        ticket = tk.create_ticket(request.form.get("code", ""), request.form.get("description", ""),
                                  _scopes_from_form(run), current_user, active_from=_active_from_from_form(), run=run)
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Ticket not created: {exc}", "danger")
        return _back("tickets")
    flash(f"Ticket {ticket.code} created" + (" and linked to the run." if run else "."), "success")
    return _back("tickets")


@main_bp.route("/tickets/<id:ticket_id>/edit", methods=["POST"])
@roles_required(*EDITORS)
def ticket_update(ticket_id: int):
    ticket = db.get_or_404(Ticket, ticket_id)
    try:
        changes = {"code": request.form.get("code", ""), "description": request.form.get("description", ""),
                   **_edited_active_from(ticket)}
        changed = tk.update_ticket(ticket, current_user, **changes)
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Ticket not changed: {exc}", "danger")
        return _back("tickets")
    flash(f"Ticket {ticket.code} saved." if changed else f"Ticket {ticket.code}: nothing changed.",
          "success" if changed else "info")
    return _back("tickets")


@main_bp.route("/tickets/<id:ticket_id>/resolve", methods=["POST"])
@roles_required(*EDITORS)
def ticket_resolve(ticket_id: int):
    ticket = db.get_or_404(Ticket, ticket_id)
    if ticket.autotask_ticket_id is not None:
        # An Autotask-backed ticket gets the note and is completed in Autotask too.
        from ..services import autotask_service
        try:
            message = autotask_service.resolve_ticket(ticket.id, current_user, request.form.get("note", ""))
        except autotask_service.AutotaskServiceError as exc:
            db.session.rollback()
            flash(f"Ticket not resolved: {exc}", "danger")
            return _back("tickets")
        flash(message + " It links to no new run from now on.", "success")
        return _back("tickets")
    try:
        tk.resolve_ticket(ticket, current_user, request.form.get("note", ""))
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Ticket not resolved: {exc}", "danger")
        return _back("tickets")
    flash(f"Ticket {ticket.code} resolved; it links to no new run from now on.", "success")
    return _back("tickets")


# --- remarks -------------------------------------------------------------------------------------

@main_bp.route("/tickets/remarks/new", methods=["POST"])
@roles_required(*EDITORS)
def remark_create():
    try:
        run = _run_from_form()
        tk.create_remark(request.form.get("body", ""), _scopes_from_form(run), current_user,
                         active_from=_active_from_from_form(), run=run)
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Remark not created: {exc}", "danger")
        return _back("remarks")
    flash("Remark created" + (" and linked to the run." if run else "."), "success")
    return _back("remarks")


@main_bp.route("/tickets/remarks/<id:remark_id>/edit", methods=["POST"])
@roles_required(*EDITORS)
def remark_update(remark_id: int):
    remark = db.get_or_404(Remark, remark_id)
    try:
        changes = {"body": request.form.get("body", ""), **_edited_active_from(remark)}
        changed = tk.update_remark(remark, current_user, **changes)
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Remark not changed: {exc}", "danger")
        return _back("remarks")
    flash("Remark saved." if changed else "Remark: nothing changed.", "success" if changed else "info")
    return _back("remarks")


@main_bp.route("/tickets/remarks/<id:remark_id>/resolve", methods=["POST"])
@roles_required(*EDITORS)
def remark_resolve(remark_id: int):
    remark = db.get_or_404(Remark, remark_id)
    try:
        tk.resolve_remark(remark, current_user, request.form.get("note", ""))
        db.session.commit()
    except tk.TicketingError as exc:
        db.session.rollback()
        flash(f"Remark not resolved: {exc}", "danger")
        return _back("remarks")
    flash("Remark resolved; it links to no new run from now on.", "success")
    return _back("remarks")
