"""Settings → Maintenance windows (admin): list, add (one-off or weekly, for a customer or a job),
delete. The rules live in ``services.quiet``; this module stays thin."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..models import Customer, Job, MaintenanceWindow, utcnow
from ..route_helpers import commit_or_flash, or_404
from ..security import roles_required
from ..services.quiet import WEEKDAY_NAMES, QuietError, create_window, delete_window, list_windows, window_from_form
from ..services.timezones import as_zone
from ..web import parse_id
from .blueprint import main_bp


def _render(form=None, status: int = 200):
    job = db.session.get(Job, parse_id(request.values.get("job_id") or "") or 0) if request.values.get("job_id") else None
    customers = db.session.execute(select(Customer.id, Customer.name).where(Customer.active.is_(True))
                                   .order_by(func.lower(Customer.name))).all()
    return render_template("main/maintenance_windows.html", windows=list_windows(), customers=customers, job=job,
                           form=form, weekday_names=WEEKDAY_NAMES, zone=as_zone(), now=utcnow(),
                           customer_id=parse_id(request.values.get("customer_id") or "")), status


@main_bp.route("/settings/maintenance-windows")
@roles_required("admin")
def maintenance_windows():
    return _render()


@main_bp.route("/settings/maintenance-windows", methods=["POST"])
@roles_required("admin")
def maintenance_window_create():
    job_id = parse_id(request.form.get("job_id") or "")
    customer_id = parse_id(request.form.get("customer_id") or "")
    job = or_404(db.session.get(Job, job_id)) if job_id else None
    customer = or_404(db.session.get(Customer, customer_id)) if customer_id and job is None else None
    with commit_or_flash(QuietError, message="Not saved: {error}") as saved:
        if job is None and customer is None:
            raise QuietError("Choose the customer the window is for (or add it from a job's page).")
        row = create_window(window_from_form(request.form, as_zone()), job=job, customer=customer,
                            user=current_user)
    if saved.failed:
        return _render(form=request.form, status=400)
    flash(f"Maintenance window saved for {'job ' + job.job_name if job else 'customer ' + customer.name}: "
          f"no missed runs and no alerts inside it.", "success")
    if job is not None:
        return redirect(url_for("main.job_detail", job_id=job.id) + "#quiet")
    return redirect(url_for("main.maintenance_windows"))


@main_bp.route("/settings/maintenance-windows/<id:window_id>/delete", methods=["POST"])
@roles_required("admin")
def maintenance_window_delete(window_id: int):
    row = or_404(db.session.get(MaintenanceWindow, window_id))
    with commit_or_flash():
        delete_window(row, current_user)
    flash("Maintenance window deleted.", "success")
    return redirect(url_for("main.maintenance_windows"))
