"""Daily Jobs: every job expected on a day (UI timezone) and every job that ran that day."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, render_template, request
from flask_login import current_user

from ..security import OPERATIONS_READERS, PORTAL_READERS, roles_required
from ..services import scope
from ..services.daily_jobs import STATUS_FILTER_LABELS, build_day, parse_status_filter
from ..services.settings import ui_zone
from ..services.status import configured_day_rule, display_status
from ..services.timezones import check_day_in_range, local_day, parse_day
from ..web import parse_id
from .blueprint import main_bp


@main_bp.route("/daily-jobs")
@roles_required(*OPERATIONS_READERS, *PORTAL_READERS)
def daily_jobs():
    """Scope: ``build_day(user=…)`` keeps the rows, counts and customer filter to the customers the
    user may see; a customer filter naming another customer is 404, as its id in a path would be."""
    zone = ui_zone()
    now = datetime.now(timezone.utc)
    try:
        day = parse_day(request.args.get("date"), zone, today=local_day(now, zone))
        check_day_in_range(day)
        status = parse_status_filter(request.args.get("status"))
    except ValueError as exc:
        abort(400, f"Daily Jobs: {exc}")
    raw_customer = (request.args.get("customer") or "").strip()
    if raw_customer and not (raw_customer.isascii() and raw_customer.isdigit()):
        abort(400, f"Daily Jobs: the customer '{raw_customer[:30]}' is not a customer number; "
                   "choose one from the list.")
    page = request.args.get("page", 1, type=int) or 1
    customer_id = (parse_id(raw_customer) or -1) if raw_customer else None  # -1: no row
    if scope.hides_customer(current_user, customer_id):
        abort(404)
    view = build_day(day, zone, now, rule=configured_day_rule(), customer_id=customer_id,
                     status_filter=status, page=page, user=current_user)
    return render_template("main/daily_jobs.html", v=view, status_labels=STATUS_FILTER_LABELS,
                           run_status=display_status)
