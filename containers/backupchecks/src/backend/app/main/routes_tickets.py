"""/tickets: internal tickets and remarks (list, create, edit, resolve). Viewers read; admin and operator change.

The rules live in ``services/tickets.py``; this module reads the form, calls one function inside
``commit_or_flash`` and redirects with a flash message.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import JobRun, Remark, Ticket
from ..route_helpers import commit_or_flash, flash_changed, page_arg
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, has_role, roles_required, safe_next
from ..services import autotask
from ..services.jobs import JobLookupError, job_from_picker
from ..services.settings import ui_zone
from ..services.tickets import (
    STATES,
    TicketingError,
    create_remark,
    create_ticket,
    list_items,
    resolve_remark,
    customer_choices,
    resolve_ticket,
    update_remark,
    update_ticket,
)
from ..web import parse_id
from .blueprint import main_bp

PER_PAGE = 50
TABS = ("tickets", "remarks")


@main_bp.route("/tickets")
@roles_required(*OPERATIONS_READERS)
def tickets():
    tab = request.args.get("tab", "tickets")
    if tab not in TABS:
        abort(400, "Unknown tab: use tickets or remarks.")
    state = request.args.get("state", "open")
    if state not in STATES:
        abort(400, "Unknown filter: use open, resolved or all.")
    customer_id = request.args.get("customer", type=int)
    listing = list_items("ticket" if tab == "tickets" else "remark", state, customer_id, page_arg(), PER_PAGE)
    return render_template("main/tickets.html", tab=tab, state=state, customer_id=customer_id,
                           listing=listing, customers=customer_choices(), can_edit=has_role(*OPERATIONS_EDITORS),
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
    return [{"type": kind, "job_id": _job_from_form(), "object_name": request.form.get("object_name")}]


def _job_from_form():
    """The job picker's choice; typed text without a choice names one job (of the customer chosen
    in the form, when one is)."""
    try:
        return job_from_picker(request.form.get("job_id"), request.form.get("job_text"),
                               customer_id=parse_id(request.form.get("customer_id")))
    except JobLookupError as exc:
        raise TicketingError(str(exc)) from exc


def _active_from_from_form() -> Optional[datetime]:
    value = (request.form.get("active_from") or "").strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=ui_zone())
        except ValueError:
            continue
    raise TicketingError(f"'{value}' is not a date and time; use YYYY-MM-DD HH:MM.")


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
        raise TicketingError(f"Run {raw} does not exist (any more).")
    return run


def _back(tab: str):
    """Back to where the form was (Run Checks, job detail) if it said so, else to the tab."""
    return redirect(safe_next(request.form.get("next"), url_for("main.tickets", tab=tab)))


def _save(tab: str, refused: str, change: Callable[[], str], refusal: type[Exception] = TicketingError):
    """Run ``change`` (it returns what to flash), commit, and go back; a refused change flashes
    ``refused`` with the reason and changes nothing."""
    with commit_or_flash(refusal, message=refused + ": {error}") as saved:
        message = change()
    if not saved.failed:
        flash(message, "success")
    return _back(tab)


def _edit(tab: str, item, update: Callable, fields: dict, kind: str, name: Callable[[], str]):
    """Save a ticket's or remark's edit form: ``fields``, and the start when the form changed it.
    ``name()`` names the item in the message, after the change ("Ticket T-2", "Remark")."""
    with commit_or_flash(TicketingError, message=kind + " not changed: {error}") as saved:
        changed = update(item, current_user, **fields, **_edited_active_from(item))
    if not saved.failed:
        flash_changed(changed, f"{name()} saved.", f"{name()}: nothing changed.")
    return _back(tab)


# --- tickets -------------------------------------------------------------------------------------

@main_bp.route("/tickets/new", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def ticket_create():
    def create():
        run = _run_from_form()
        ticket = create_ticket(request.form.get("code", ""), request.form.get("description", ""),
                               _scopes_from_form(run), current_user, active_from=_active_from_from_form(), run=run)
        return f"Ticket {ticket.code} created" + (" and linked to the run." if run else ".")
    return _save("tickets", "Ticket not created", create)


@main_bp.route("/tickets/<id:ticket_id>/edit", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def ticket_update(ticket_id: int):
    ticket = db.get_or_404(Ticket, ticket_id)
    fields = {"code": request.form.get("code", ""), "description": request.form.get("description", "")}
    return _edit("tickets", ticket, update_ticket, fields, "Ticket", lambda: f"Ticket {ticket.code}")


@main_bp.route("/tickets/<id:ticket_id>/resolve", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def ticket_resolve(ticket_id: int):
    ticket = db.get_or_404(Ticket, ticket_id)
    note = request.form.get("note", "")
    if ticket.autotask_ticket_id is not None:
        # An Autotask-backed ticket gets the note and is completed in Autotask too.
        return _save("tickets", "Ticket not resolved",
                     lambda: autotask.resolve_ticket(ticket.id, current_user, note)
                     + " It links to no new run from now on.", refusal=autotask.AutotaskServiceError)

    def resolve():
        resolve_ticket(ticket, current_user, note)
        return f"Ticket {ticket.code} resolved; it links to no new run from now on."
    return _save("tickets", "Ticket not resolved", resolve)


# --- remarks -------------------------------------------------------------------------------------

@main_bp.route("/tickets/remarks/new", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def remark_create():
    def create():
        run = _run_from_form()
        create_remark(request.form.get("body", ""), _scopes_from_form(run), current_user,
                      active_from=_active_from_from_form(), run=run)
        return "Remark created" + (" and linked to the run." if run else ".")
    return _save("remarks", "Remark not created", create)


@main_bp.route("/tickets/remarks/<id:remark_id>/edit", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def remark_update(remark_id: int):
    return _edit("remarks", db.get_or_404(Remark, remark_id), update_remark, {"body": request.form.get("body", "")},
                 "Remark", lambda: "Remark")


@main_bp.route("/tickets/remarks/<id:remark_id>/resolve", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def remark_resolve(remark_id: int):
    remark = db.get_or_404(Remark, remark_id)

    def resolve():
        resolve_remark(remark, current_user, request.form.get("note", ""))
        return "Remark resolved; it links to no new run from now on."
    return _save("remarks", "Remark not resolved", resolve)
