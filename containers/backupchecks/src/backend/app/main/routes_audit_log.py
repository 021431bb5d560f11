from datetime import datetime

from flask import abort, render_template, request

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
    filters = {"user": user, "event": event, "from": request.args.get("from", ""), "to": request.args.get("to", "")}
    zone = ui_zone()
    try:
        page = audit.list_entries(zone, user, event, _parse_date(filters["from"]), _parse_date(filters["to"]),
                                  older=request.args.get("older") or None, newer=request.args.get("newer") or None)
    except audit.BadCursor as exc:
        abort(400, f"This page link is not valid ({exc}). Open the Audit log again to start from the newest entries.")
    changes = {r.id: audit.change_lines(r.before, r.after, zone) for r in page.rows}
    # The page links keep the filters that are set.
    link_args = {k: v for k, v in filters.items() if v}
    return render_template("main/audit_log.html", page=page, rows=page.rows, changes=changes,
                           events=page.events, filters=filters, link_args=link_args)
