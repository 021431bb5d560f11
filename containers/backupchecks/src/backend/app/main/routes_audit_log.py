from datetime import datetime

from flask import abort, render_template, request

from ..route_helpers import page_arg
from ..security import roles_required
from ..services import audit
from ..services.settings import ui_zone
from .blueprint import main_bp


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
    page = page_arg()
    zone = ui_zone()
    rows, total, events = audit.list_entries(zone, user, event, _parse_date(request.args.get("from")),
                                             _parse_date(request.args.get("to")), page)
    changes = {r.id: audit.change_lines(r.before, r.after, zone) for r in rows}
    return render_template("main/audit_log.html", rows=rows, changes=changes, total=total, page=page,
                           per_page=audit.AUDIT_PER_PAGE,
                           events=events, filters={"user": user, "event": event,
                                                   "from": request.args.get("from", ""), "to": request.args.get("to", "")})
