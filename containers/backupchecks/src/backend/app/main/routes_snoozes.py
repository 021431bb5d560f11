"""Snoozes: snooze a job or its whole customer from Run Checks or the job page, and lift a snooze.

Whoever may review runs (``REVIEWERS``) may snooze and lift their own snoozes; admins lift any.
The rules live in ``services.quiet``; this module stays thin.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Customer, Job, Snooze, utcnow
from ..route_helpers import commit_or_flash, or_404
from ..security import REVIEWERS, roles_required, safe_next
from ..services.quiet import QuietError, lift, may_lift, snooze, snooze_until
from ..services.timezones import as_zone
from ..web import parse_id
from .blueprint import main_bp


def _back(default: str) -> str:
    return safe_next(request.form.get("next"), default)


@main_bp.route("/snoozes", methods=["POST"])
@roles_required(*REVIEWERS)
def snooze_create():
    """Snooze the posted job (``scope=job``) or its customer (``scope=customer``), or a customer
    (``customer_id``): until a quick choice or a chosen local date and time, with a reason."""
    job_id = parse_id(request.form.get("job_id") or "")
    customer_id = parse_id(request.form.get("customer_id") or "")
    job = or_404(db.session.get(Job, job_id)) if job_id else None
    if job is not None and request.form.get("scope") == "customer":
        customer = job.customer
        back_default = url_for("main.job_detail", job_id=job.id)
        job = None
    elif job is None and customer_id:
        customer = or_404(db.session.get(Customer, customer_id))
        back_default = url_for("main.customers")
    elif job is not None:
        customer, back_default = None, url_for("main.job_detail", job_id=job.id)
    else:
        abort(400, "Choose the job or the customer to snooze.")
    back = _back(back_default)
    zone, now = as_zone(), utcnow()
    with commit_or_flash(QuietError, message="Not snoozed: {error}") as saved:
        until = snooze_until(request.form.get("choice"), request.form.get("until"), now, zone)
        row, created = snooze(job=job, customer=customer, until=until, reason=request.form.get("reason", ""),
                              user=current_user, now=now, zone=zone)
    if not saved.failed:
        what = f"Job '{job.job_name}'" if job is not None else f"Customer '{customer.name}' (all its jobs)"
        flash(f"{what} {'snoozed' if created else 'snooze changed'}: alerts are held until "
              f"{until.astimezone(zone):%Y-%m-%d %H:%M} — {row.reason}.", "success")
    return redirect(back)


@main_bp.route("/snoozes/<id:snooze_id>/lift", methods=["POST"])
@roles_required(*REVIEWERS)
def snooze_lift(snooze_id: int):
    row = or_404(db.session.get(Snooze, snooze_id))
    if not may_lift(row, current_user, current_user.current_role):
        abort(403, "Only an admin or the one who made this snooze may lift it.")
    back = _back(url_for("main.job_detail", job_id=row.job_id) if row.job_id else url_for("main.customers"))
    with commit_or_flash(QuietError) as saved:
        lifted = lift(row, current_user, utcnow())
    if not saved.failed:
        flash("Snooze lifted: alerts are sent again." if lifted else "That snooze had already ended.",
              "success" if lifted else "info")
    return redirect(back)
