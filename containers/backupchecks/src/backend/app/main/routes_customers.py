"""/customers: list, add, rename, activate/deactivate, delete, CSV export and import.

Viewers read; admin and operator change. The rules live in ``services.customers``; this module
reads the request, calls one service function, commits or rolls back, and flashes what happened.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Customer
from ..security import has_role, roles_required, safe_next
from ..services import customers as svc
from . import main_bp

READERS = ("admin", "operator", "viewer")
EDITORS = ("admin", "operator")
ACTIVE_FILTERS = ("", "active", "inactive", "nojobs")


def _list_args() -> dict:
    sort = request.args.get("sort", "name")
    direction = request.args.get("dir", "asc")
    active = request.args.get("active", "")
    if sort not in svc.SORTS or direction not in ("asc", "desc") or active not in ACTIVE_FILTERS:
        abort(400, "Unknown sort or filter value: use the column headers and the filter form.")
    return {"q": (request.args.get("q") or "").strip()[:200], "active": active, "sort": sort,
            "direction": direction, "page": max(1, request.args.get("page", 1, type=int) or 1)}


@main_bp.route("/customers")
@roles_required(*READERS)
def customers():
    args = _list_args()
    listing = svc.list_customers(**args)
    return render_template("main/customers.html", listing=listing, filters=args, can_edit=has_role(*EDITORS),
                           page=listing.page, per_page=listing.per_page, total=listing.total,
                           csv_columns=svc.CSV_COLUMNS)


@main_bp.route("/customers/new", methods=["POST"])
@roles_required(*EDITORS)
def customer_create():
    try:
        customer = svc.create_customer(request.form.get("name", ""), current_user,
                                       active=request.form.get("active", "1") != "0")
        db.session.commit()
    except svc.CustomerError as exc:
        db.session.rollback()
        flash(f"Customer not added: {exc}", "danger")
        return redirect(url_for("main.customers"))
    except IntegrityError:  # someone added the same name at the same moment
        db.session.rollback()
        flash("Customer not added: a customer with that name was just added by someone else.", "danger")
        return redirect(url_for("main.customers"))
    flash(f"Customer {customer.name} added.", "success")
    return redirect(url_for("main.customers", q=customer.name))


@main_bp.route("/customers/<id:customer_id>/edit")
@roles_required(*EDITORS)
def customer_edit(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    jobs, runs = svc.delete_summary(customer)
    return render_template("main/customers_edit.html", customer=customer, jobs=jobs, runs=runs)


@main_bp.route("/customers/<id:customer_id>", methods=["POST"])
@roles_required(*EDITORS)
def customer_update(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    action = request.form.get("action", "")
    back = safe_next(request.form.get("next"), url_for("main.customers"))
    try:
        if action == "rename":
            old = customer.name
            changed = svc.rename_customer(customer, request.form.get("name", ""), current_user)
            message = f"Customer {old} renamed to {customer.name}." if changed else "The name did not change."
        elif action in ("activate", "deactivate"):
            changed = svc.set_active(customer, action == "activate", current_user)
            message = f"Customer {customer.name} {action}d." if changed else f"Customer {customer.name} was already {action}d."
        else:
            raise svc.CustomerError("Unknown action.")
        db.session.commit()
    except (svc.CustomerError, IntegrityError) as exc:
        db.session.rollback()
        reason = exc if isinstance(exc, svc.CustomerError) else "another customer was just given that name."
        flash(f"Not changed: {reason}", "danger")
        return redirect(url_for("main.customer_edit", customer_id=customer_id) if action == "rename" else back)
    flash(message, "success")
    return redirect(back)


@main_bp.route("/customers/<id:customer_id>/delete", methods=["GET"])
@roles_required(*EDITORS)
def customer_delete_confirm(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    jobs, runs = svc.delete_summary(customer)
    return render_template("main/customers_delete.html", customer=customer, jobs=jobs, runs=runs)


@main_bp.route("/customers/<id:customer_id>/delete", methods=["POST"])
@roles_required(*EDITORS)
def customer_delete(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    confirm = None
    if request.form.get("confirm") == "yes":
        confirm = request.form.get("confirm_jobs", type=int)
    try:
        name = customer.name
        jobs, runs = svc.delete_customer(customer, current_user, confirm_jobs=confirm)
        db.session.commit()
    except svc.CustomerError as exc:
        db.session.rollback()
        flash(f"Not deleted: {exc}", "danger")
        return redirect(url_for("main.customer_delete_confirm", customer_id=customer_id))
    extra = f" with {jobs} job{'s' if jobs != 1 else ''} and {runs} run{'s' if runs != 1 else ''}" if jobs else ""
    flash(f"Customer {name}{extra} deleted.", "success")
    return redirect(url_for("main.customers"))


@main_bp.route("/customers/export.<fmt>")
@roles_required(*READERS)
def customers_export(fmt: str):
    if fmt != "csv":
        abort(404)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    return Response(svc.export_csv(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="customers-{stamp}.csv"'})


@main_bp.route("/customers/import", methods=["POST"])
@roles_required(*EDITORS)
def customers_import():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a CSV file to import.", "danger")
        return redirect(url_for("main.customers"))
    try:
        report = svc.import_csv(upload.read(), current_user)
        db.session.commit()
    except svc.CustomerImportError as exc:
        db.session.rollback()
        return render_template("main/customers_import.html", errors=exc.errors, message=str(exc),
                               filename=upload.filename, csv_columns=svc.CSV_COLUMNS), 400
    except IntegrityError:  # a customer of the file was added elsewhere meanwhile
        db.session.rollback()
        flash("Nothing was imported: customers changed while the file was imported. Upload it again.", "danger")
        return redirect(url_for("main.customers"))
    flash(f"Customers imported from {upload.filename}: {report.summary}.", "success")
    return render_template("main/customers_import.html", report=report, filename=upload.filename,
                           csv_columns=svc.CSV_COLUMNS)
