"""The audit log: every change a user makes, with who, when, what, before and after."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from flask import has_request_context, request
from flask_login import current_user

from ..extensions import db
from ..models import AuditLog

SECRET_FIELDS = {"graph_client_secret", "autotask_secret", "password", "password_hash", "client_secret", "secret"}
MASK = "••••••"


def mask_secrets(values: Optional[Mapping[str, Any]]) -> Optional[dict]:
    if values is None:
        return None
    out = {}
    for key, value in values.items():
        if key in SECRET_FIELDS or key.endswith("_secret"):
            out[key] = MASK if value else ""
        else:
            out[key] = value
    return out


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only the keys whose value changed, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(event: str, summary: str = "", *, user=None, target_type: str | None = None,
           target_id: Any = None, before: Optional[Mapping] = None, after: Optional[Mapping] = None,
           username: str | None = None, commit: bool = False, ip_address: str | None = None) -> AuditLog:
    """Add an audit entry to the session (committed with the caller's change). The address is
    the request's (the real client's only behind a trusted proxy, APP_BEHIND_PROXY)."""
    if user is None and has_request_context() and getattr(current_user, "is_authenticated", False):
        user = current_user
    ip = ip_address
    if ip is None and has_request_context():
        ip = request.remote_addr or None
    entry = AuditLog(
        user_id=getattr(user, "id", None),
        username=username or getattr(user, "username", None),
        event=event,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        summary=summary[:500],
        before=_jsonable(mask_secrets(before)),
        after=_jsonable(mask_secrets(after)),
        ip_address=ip,
    )
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry


def _jsonable(values: Optional[dict]) -> Optional[dict]:
    if values is None:
        return None
    out = {}
    for k, v in values.items():
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        elif not isinstance(v, (str, int, float, bool, list, dict, type(None))):
            v = str(v)
        out[k] = v
    return out


# --- Listing (the Audit log page) ------------------------------------------------------------

AUDIT_PER_PAGE = 50


def list_entries(user: str = "", event: str = "", date_from=None, date_to=None, page: int = 1,
                 per_page: int = AUDIT_PER_PAGE) -> tuple[list[AuditLog], int, list[str]]:
    """One page of entries, newest first, filtered by user name, event prefix and local dates
    (inclusive, in the UI timezone): a count, a page and the list of event names."""
    from datetime import datetime, time, timedelta

    from sqlalchemy import func, select

    from .settings import ui_zone

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
                              .limit(per_page).offset((max(1, page) - 1) * per_page)).scalars().all()
    events = db.session.execute(select(AuditLog.event).distinct().order_by(AuditLog.event)).scalars().all()
    return rows, total, events
