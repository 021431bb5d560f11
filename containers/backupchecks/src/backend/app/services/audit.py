"""The audit log: every change a user makes, with who, when, what, before and after.

The entries keep ``before`` and ``after`` as recorded (JSON, secrets masked). The page shows
them as readable change lines (``change_lines``): "field: old → new" for every changed field,
the new values for a creation, the old ones for a deletion; secrets stay hidden.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import AuditLog

SECRET_FIELDS = {"graph_client_secret", "autotask_secret", "password", "password_hash", "client_secret", "secret",
                 "smtp_password", "imap_password"}
MASK = "••••••"


def is_secret(key: str) -> bool:
    return key in SECRET_FIELDS or str(key).endswith(("_secret", "_password"))


def mask_secrets(values: Optional[Mapping[str, Any]]) -> Optional[dict]:
    if values is None:
        return None
    out = {}
    for key, value in values.items():
        if is_secret(key):
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
    the request's (the real client's only behind a trusted proxy, APP_BEHIND_PROXY). A change
    made through the JSON API says so in the summary ("… (via API token 'name')"; the API sets
    ``g.audit_via`` for the request)."""
    if user is None and has_request_context() and getattr(current_user, "is_authenticated", False):
        user = current_user
    via = g.get("audit_via") if has_request_context() else None
    if via:
        summary = f"{summary} (via {via})"
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
#
# The log grows by thousands of entries a day, so the page never reads it all: it pages by
# position (keyset: the entries just older or newer than a cursor, from the index on created_at),
# counts at most COUNT_CAP + 1 matching entries, and lists the event names by skipping through the
# index on event (one index probe per distinct name). The event filter (a prefix) becomes the list
# of those names that start with it, so a rare event is found through the same index.

AUDIT_PER_PAGE = 50
COUNT_CAP = 1000         # beyond this many matching entries the page says "1,000+ entries"
_CURSOR = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z_(\d{1,10})")
_MAX_ID = 2**31 - 1      # audit_logs.id is an integer column


class BadCursor(ValueError):
    """A page link whose position (``older=`` / ``newer=``) is not one this page wrote."""


def cursor_of(entry: AuditLog) -> str:
    """The position of ``entry`` in the newest-first order, for a page link: its moment (UTC, to
    the microsecond) and its id, e.g. ``2026-11-25T09:30:00.000000Z_4711``."""
    moment = entry.created_at.astimezone(timezone.utc)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z_{entry.id}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    """(created_at, id) of a cursor written by ``cursor_of``; BadCursor for anything else."""
    match = _CURSOR.fullmatch(text or "")
    if match and int(match.group(2)) <= _MAX_ID:
        try:
            return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc), int(match.group(2))
        except ValueError:  # a date that does not exist, such as 2026-02-30
            pass
    raise BadCursor("its position is not one the audit log wrote")


@dataclass
class AuditPage:
    rows: list[AuditLog]     # newest first
    total: int               # matching entries, at most COUNT_CAP + 1
    events: list[str]        # every event name in the log, for the filter
    newer: Optional[str]     # cursor for the page of newer entries (None: this is the newest page)
    older: Optional[str]     # cursor for the page of older entries (None: nothing older)

    @property
    def total_capped(self) -> bool:
        """More than COUNT_CAP entries match: the page says "1,000+" instead of the number."""
        return self.total > COUNT_CAP

    @property
    def total_text(self) -> str:
        """"1 entry", "73 entries", "1,000+ entries"."""
        if self.total_capped:
            return f"{COUNT_CAP:,}+ entries"
        return f"{self.total:,} entr{'y' if self.total == 1 else 'ies'}"


def _newest_first(q):
    return q.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())


def list_entries(zone: ZoneInfo, user: str = "", event: str = "", date_from=None, date_to=None, *,
                 older: str | None = None, newer: str | None = None,
                 per_page: int | None = None) -> AuditPage:
    """One page of entries, newest first, filtered by user name, event prefix and local dates
    (inclusive, in ``zone``): the entries just older than the cursor ``older``, or just newer than
    ``newer``, or the newest ones; with a count capped at COUNT_CAP + 1 and the event names.
    BadCursor for a cursor ``cursor_of`` did not write."""
    per_page = per_page or AUDIT_PER_PAGE
    events = event_names()
    conditions = []
    if user:
        conditions.append(func.lower(AuditLog.username) == user.lower())
    if event:
        # The names that start with ``event``, as a list the index on event can find.
        conditions.append(AuditLog.event.in_([name for name in events if name.startswith(event)]))
    if date_from:
        conditions.append(AuditLog.created_at >= datetime.combine(date_from, time.min, tzinfo=zone))
    if date_to:
        conditions.append(AuditLog.created_at < datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone))
    position = tuple_(AuditLog.created_at, AuditLog.id)

    rows: list[AuditLog] | None = None
    if newer:
        # The entries just newer than the cursor, fetched oldest first, shown newest first. With
        # no more than a page of them this is the newest page, shown as the first page (full).
        found = db.session.execute(
            select(AuditLog).where(*conditions, position > parse_cursor(newer))
            .order_by(AuditLog.created_at, AuditLog.id).limit(per_page + 1)).scalars().all()
        if len(found) > per_page:
            rows = found[:per_page][::-1]
            newer_link, older_link = cursor_of(rows[0]), cursor_of(rows[-1])
    if rows is None:
        before = parse_cursor(older) if older and not newer else None
        q = select(AuditLog).where(*conditions)
        if before is not None:
            q = q.where(position < before)
        found = db.session.execute(_newest_first(q).limit(per_page + 1)).scalars().all()
        rows = found[:per_page]
        older_link = cursor_of(rows[-1]) if len(found) > per_page else None
        # Past the oldest matching entry the way back is the entries newer than the same position.
        newer_link = None if before is None else cursor_of(rows[0]) if rows else older

    capped = select(AuditLog.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    total = db.session.execute(select(func.count()).select_from(capped)).scalar_one()
    return AuditPage(rows=rows, total=total, events=events, newer=newer_link, older=older_link)


def event_names() -> list[str]:
    """Every distinct event name in the log, sorted, by a loose index scan: the smallest name,
    then the smallest one after it, and so on (one probe of ix_audit_logs_event per name, instead
    of reading every entry)."""
    names = select(func.min(AuditLog.event).label("event")).cte("names", recursive=True)
    later = aliased(AuditLog)
    following = select(func.min(later.event)).where(later.event > names.c.event).scalar_subquery()
    names = names.union_all(select(following).where(names.c.event.is_not(None)))
    return list(db.session.execute(
        select(names.c.event).where(names.c.event.is_not(None)).order_by(names.c.event)).scalars())


# --- Presentation (the Audit log page) -----------------------------------------------------------

VALUE_MAX = 200          # characters of one shown value; the stored entry keeps everything
EMPTY = "—"
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$")
_MISSING = object()


@dataclass(frozen=True)
class ChangeLine:
    field: str            # "valid until", "manual schedule › time"
    old: Optional[str]    # None for a creation line
    new: Optional[str]    # None for a deletion line

    @property
    def text(self) -> str:
        if self.old is None:
            return f"{self.field}: {self.new}"
        if self.new is None:
            return f"{self.field}: {self.old}"
        return f"{self.field}: {self.old} → {self.new}"


def _label(path: tuple[str, ...]) -> str:
    return " › ".join(str(p).replace("_", " ") for p in path)


def show_value(value: Any, zone: ZoneInfo) -> str:
    """One recorded value as a reader wants it: "—" for nothing, yes/no, lists joined, a moment
    in the UI timezone, long text cut at ``VALUE_MAX`` characters."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        text = ", ".join(show_value(v, zone) for v in value)
    elif isinstance(value, dict):
        text = "; ".join(f"{_label((k,))} {show_value(v, zone)}" for k, v in value.items())
    elif isinstance(value, str) and _ISO_MOMENT.match(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            text = value
        else:
            local = moment.astimezone(zone)
            text = local.strftime("%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M")
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= VALUE_MAX else text[:VALUE_MAX - 1] + "…"


def _secret_line(path: tuple[str, ...], old: Any, new: Any) -> Optional[ChangeLine]:
    label = _label(path)
    if old is _MISSING:
        return ChangeLine(label, None, "set (hidden)" if new else EMPTY)
    if new is _MISSING:
        return ChangeLine(label, None, "was set (hidden)" if old else EMPTY)
    if bool(old) and bool(new):
        return ChangeLine(label, None, "changed (hidden)")
    if old == new:
        return None
    return ChangeLine(label, "set (hidden)" if old else EMPTY, "set (hidden)" if new else EMPTY)


def _lines(path: tuple[str, ...], old: Any, new: Any, zone: ZoneInfo) -> list[ChangeLine]:
    key = path[-1] if path else ""
    if path and is_secret(key):
        line = _secret_line(path, old, new)
        return [line] if line else []
    if isinstance(old, dict) or isinstance(new, dict):
        old_d = old if isinstance(old, dict) else ({} if old in (_MISSING, None) else None)
        new_d = new if isinstance(new, dict) else ({} if new in (_MISSING, None) else None)
        if old_d is not None and new_d is not None:
            out: list[ChangeLine] = []
            for k in list(old_d) + [k for k in new_d if k not in old_d]:
                # Inside a change a field missing on one side reads "—"; in a creation or
                # deletion the whole side is missing.
                sub_old = _MISSING if old is _MISSING else old_d.get(k)
                sub_new = _MISSING if new is _MISSING else new_d.get(k)
                out += _lines(path + (k,), sub_old, sub_new, zone)
            return out
    label = _label(path)
    if old is _MISSING:
        return [ChangeLine(label, None, show_value(new, zone))]
    if new is _MISSING:
        return [ChangeLine(label, show_value(old, zone), None)]
    if old == new:
        return []
    return [ChangeLine(label, show_value(old, zone), show_value(new, zone))]


def change_lines(before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
                 zone: ZoneInfo) -> list[ChangeLine]:
    """The lines the Audit log shows for one entry, one per changed field (nested values such as a
    schedule are compared field by field):

    * both recorded: "field: old → new" for each field whose value differs (a field only on one
      side reads "—" on the other);
    * only ``after`` (a creation): "field: new value"; only ``before`` (a deletion): "field: old value";
    * secrets (``is_secret``) never show a value, whatever was stored: "set (hidden)", "changed
      (hidden)", "—".
    """
    # Entries written by hand or by an older version may hold something else than fields.
    if before is not None and not isinstance(before, Mapping):
        before = {"value": before}
    if after is not None and not isinstance(after, Mapping):
        after = {"value": after}
    if before is None and after is None:
        return []
    if before is None:
        return _lines((), _MISSING, dict(after), zone)
    if after is None:
        return _lines((), dict(before), _MISSING, zone)
    out: list[ChangeLine] = []
    for key in list(before) + [k for k in after if k not in before]:
        old, new = before.get(key), after.get(key)
        out += _lines((key,), old, new, zone)
    return out
