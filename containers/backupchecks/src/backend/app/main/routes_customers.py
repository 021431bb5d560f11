"""/customers: list, add, rename, activate/deactivate, delete, CSV export and import, status badge.

Viewers read; admin and operator change. The rules live in ``services.customers``; this module
reads the request, calls one service function, commits or rolls back, and flashes what happened.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Customer
from ..route_helpers import commit_or_flash, dated_download, import_upload, sorted_list_args
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, has_role, roles_required, safe_next
from ..services import badges
from ..services.customers import (
    CSV_COLUMNS,
    SORTS,
    CustomerError,
    CustomerImportError,
    create_customer,
    delete_customer,
    delete_summary,
    export_csv,
    import_csv,
    list_customers,
    rename_customer,
    set_active,
)
from .blueprint import main_bp

ACTIVE_FILTERS = ("", "active", "inactive", "nojobs")


def _list_args() -> dict:
    active = request.args.get("active", "")
    return {"active": active, **sorted_list_args(SORTS, "name", filters_ok=active in ACTIVE_FILTERS)}


@main_bp.route("/customers")
@roles_required(*OPERATIONS_READERS)
def customers():
    args = _list_args()
    listing = list_customers(**args)
    return render_template("main/customers.html", listing=listing, filters=args,
                           can_edit=has_role(*OPERATIONS_EDITORS), page=listing.page, per_page=listing.per_page,
                           total=listing.total, csv_columns=CSV_COLUMNS)


@main_bp.route("/customers/new", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def customer_create():
    with commit_or_flash(CustomerError, message="Customer not added: {error}",
                         conflict="Customer not added: a customer with that name was just added by someone else."
                         ) as saved:
        customer = create_customer(request.form.get("name", ""), current_user,
                                   active=request.form.get("active", "1") != "0")
    if saved.failed:
        return redirect(url_for("main.customers"))
    flash(f"Customer {customer.name} added.", "success")
    return redirect(url_for("main.customers", q=customer.name))


def _with_delete_summary(template: str, customer_id: int, **extra):
    customer = db.get_or_404(Customer, customer_id)
    jobs, runs = delete_summary(customer)
    return render_template(template, customer=customer, jobs=jobs, runs=runs, **extra)


@main_bp.route("/customers/<id:customer_id>/edit")
@roles_required(*OPERATIONS_EDITORS)
def customer_edit(customer_id: int):
    return _with_delete_summary("main/customers_edit.html", customer_id, badge=badges.live_badge(customer_id))


@main_bp.route("/customers/<id:customer_id>/badge", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def customer_badge(customer_id: int):
    """Create (or regenerate) the customer's status badge, or revoke it."""
    customer = db.get_or_404(Customer, customer_id)
    action = request.form.get("action", "")
    if action not in ("create", "revoke"):
        abort(400, "Unknown action.")
    with commit_or_flash():
        if action == "create":
            replaced = badges.live_badge(customer.id) is not None
            badges.create_badge(customer, actor=current_user)
            message = (f"New status badge for {customer.name}: the old address no longer works." if replaced
                       else f"Status badge for {customer.name} created.")
        else:
            done = badges.revoke_badge(customer, actor=current_user)
            message = (f"Status badge of {customer.name} revoked: its address no longer works." if done
                       else f"{customer.name} has no status badge.")
    flash(message, "success")
    return redirect(url_for("main.customer_edit", customer_id=customer.id) + "#status-badge")


@main_bp.route("/customers/<id:customer_id>", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def customer_update(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    action = request.form.get("action", "")
    back = safe_next(request.form.get("next"), url_for("main.customers"))
    with commit_or_flash(CustomerError, message="Not changed: {error}",
                         conflict="Not changed: another customer was just given that name.") as saved:
        if action == "rename":
            old = customer.name
            changed = rename_customer(customer, request.form.get("name", ""), current_user)
            message = f"Customer {old} renamed to {customer.name}." if changed else "The name did not change."
        elif action in ("activate", "deactivate"):
            changed = set_active(customer, action == "activate", current_user)
            message = (f"Customer {customer.name} {action}d." if changed
                       else f"Customer {customer.name} was already {action}d.")
        else:
            raise CustomerError("Unknown action.")
    if saved.failed:
        return redirect(url_for("main.customer_edit", customer_id=customer_id) if action == "rename" else back)
    flash(message, "success")
    return redirect(back)


@main_bp.route("/customers/<id:customer_id>/delete", methods=["GET"])
@roles_required(*OPERATIONS_EDITORS)
def customer_delete_confirm(customer_id: int):
    return _with_delete_summary("main/customers_delete.html", customer_id)


@main_bp.route("/customers/<id:customer_id>/delete", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def customer_delete(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    confirm = request.form.get("confirm_jobs", type=int) if request.form.get("confirm") == "yes" else None
    name = customer.name
    with commit_or_flash(CustomerError, message="Not deleted: {error}") as saved:
        jobs, runs = delete_customer(customer, current_user, confirm_jobs=confirm)
    if saved.failed:
        return redirect(url_for("main.customer_delete_confirm", customer_id=customer_id))
    extra = f" with {jobs} job{'s' if jobs != 1 else ''} and {runs} run{'s' if runs != 1 else ''}" if jobs else ""
    flash(f"Customer {name}{extra} deleted.", "success")
    return redirect(url_for("main.customers"))


@main_bp.route("/customers/export.<fmt>")
@roles_required(*OPERATIONS_READERS)
def customers_export(fmt: str):
    if fmt != "csv":
        abort(404)
    return dated_download(export_csv(), "text/csv; charset=utf-8", "customers", "csv")


@main_bp.route("/customers/import", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def customers_import():
    return import_upload(import_csv, CustomerImportError, what="Customers", template="main/customers_import.html",
                         back=url_for("main.customers"), choose="Choose a CSV file to import.",
                         conflict="Nothing was imported: customers changed while the file was imported. "
                                  "Upload it again.", csv_columns=CSV_COLUMNS)
