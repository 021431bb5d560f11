from datetime import datetime, time, timedelta

from flask import abort, render_template, request
from sqlalchemy import func, select

from ..extensions import db
from ..models import AuditLog
from ..security import roles_required
from ..services.settings import ui_zone
from . import main_bp

PER_PAGE = 50


def _parse_date(value: str | None):
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        abort(400, f"'{value}' is not a date; use YYYY-MM-DD.")


@main_bp.route("/audit-log")
@roles_required("admin")
def audit_log():
    user = (request.args.get("user") or "").strip()
    event = (request.args.get("event") or "").strip()
    date_from = _parse_date(request.args.get("from"))
    date_to = _parse_date(request.args.get("to"))
    page = max(1, request.args.get("page", 1, type=int) or 1)
    q = select(AuditLog)
    if user:
        q = q.where(func.lower(AuditLog.username) == user.lower())
    if event:
        q = q.where(AuditLog.event.like(f"{event}%"))
    zone = ui_zone()
    if date_from:
        q = q.where(AuditLog.created_at >= datetime.combine(date_from, time.min, tzinfo=zone))
    if date_to:
        q = q.where(AuditLog.created_at < datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone))
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = db.session.execute(q.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
                              .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).scalars().all()
    events = db.session.execute(select(AuditLog.event).distinct().order_by(AuditLog.event)).scalars().all()
    return render_template("main/audit_log.html", rows=rows, total=total, page=page, per_page=PER_PAGE,
                           events=events, filters={"user": user, "event": event,
                                                   "from": request.args.get("from", ""), "to": request.args.get("to", "")})
