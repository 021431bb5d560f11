"""What the JSON API (backend/app/api/) reads and how it shows it: the queries, the cursor paging
and the JSON shape of each resource. The API's routes stay thin; the rules they act on (review,
tickets, the Inbox) stay in their own services, and which customers a user may see stays in
``scope``: every query here passes through ``scope.restrict`` or ``scope.allows``, so a row of a
customer the user may not see is "not found" (None), exactly like a row that does not exist.

Paging is by cursor (keyset), never by OFFSET: a list is ordered by a sort key and the row id, the
cursor holds the (sort key, id) of the last row of a page, and the next page is the rows after it.
Rows added while a client pages (new runs, newer than the first page) never shift the later pages:
no row comes twice and none that existed at the start is skipped.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

from sqlalchemy import and_, exists, false, func, or_, select, true, tuple_
from sqlalchemy.orm import aliased, selectinload

from ..extensions import db
from ..models import (
    Customer,
    Job,
    JobRun,
    MailMessage,
    Remark,
    RemarkJobRun,
    RemarkScope,
    Ticket,
    TicketJobRun,
    TicketScope,
)
from . import scope
from .daily_jobs import build_day
from .jobs import schedule_of
from .settings import ui_zone
from .status import configured_day_rule, display_status
from .tickets import remarks_for_runs, tickets_for_runs
from .timezones import check_day_in_range

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
RUN_STATUSES = ("Success", "Warning", "Failed", "Missed")
ITEM_STATES = ("open", "resolved", "all")
MAX_ID = 2**31 - 1


class InvalidParameter(ValueError):
    """A query parameter or body field the API can't use: ``field`` names it, ``code`` is
    ``bad_request`` or ``bad_cursor``; the message says what is expected."""

    def __init__(self, field: str, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


# --- Reading parameters ------------------------------------------------------------------------

def parse_limit(value: Optional[str]) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(value)


def parse_id_param(field: str, value: Optional[str]) -> Optional[int]:
    """An id filter: None when absent; a number beyond any row is fine (it matches nothing)."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise InvalidParameter(field, f"{field} must be a row id (a whole number).")
    return int(value)


def parse_bool(field: str, value: Optional[str]) -> Optional[bool]:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidParameter(field, f"{field} must be true or false.")


def parse_choice(field: str, value: Optional[str], choices: Sequence[str], default: Optional[str] = None):
    if value is None or value == "":
        return default
    if value not in choices:
        raise InvalidParameter(field, f"{field} must be one of: {', '.join(choices)}.")
    return value


def parse_moment(field: str, value: Optional[str], *, end_of_day: bool = False) -> Optional[datetime]:
    """A date (YYYY-MM-DD, a UTC day: its start, or with ``end_of_day`` the start of the next day)
    or a datetime (ISO 8601; without an offset it is UTC)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            check_day_in_range(day)
            moment = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(field, f"{field} must be a date (YYYY-MM-DD) or a date and time "
                                      f"(ISO 8601, e.g. 2026-06-10T08:30:00Z), in UTC.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_day_param(value: str) -> date:
    try:
        return check_day_in_range(date.fromisoformat(value))
    except ValueError:
        raise InvalidParameter("day", "The day must be a date: YYYY-MM-DD.") from None


# --- Cursors -----------------------------------------------------------------------------------

def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """An opaque cursor: base64url of ``[kind, *key]`` (datetimes as ISO 8601)."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, text: Optional[str], types: Sequence[type]) -> Optional[tuple]:
    """The key of a cursor this list wrote; None without one; InvalidParameter (bad_cursor) else."""
    if text is None or text == "":
        return None
    bad = InvalidParameter("cursor", "The cursor is not one this list gave out: start again without it.",
                           code="bad_cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(types) + 1 or values[0] != kind:
        raise bad
    out = []
    for value, wanted in zip(values[1:], types):
        if wanted is datetime:
            if not isinstance(value, str):
                raise bad
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise bad from None
            if moment.tzinfo is None:
                raise bad
            out.append(moment)
        elif wanted is int:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
                raise bad
            out.append(value)
        else:  # str
            if not isinstance(value, str):
                raise bad
            out.append(value)
    return tuple(out)


@dataclass
class Page:
    data: list[dict]
    next_cursor: Optional[str]

    def as_json(self) -> dict:
        return {"data": self.data, "next_cursor": self.next_cursor}


def _keyset_page(stmt, kind: str, columns: Sequence, types: Sequence[type], cursor: Optional[str], limit: int,
                 key_of: Callable[[Any], tuple], *, descending: bool = True, scalars: bool = True):
    """The rows after ``cursor`` in (columns) order, at most ``limit`` (one query: limit + 1 rows
    tells whether there is a next page), and the next cursor."""
    after = decode_cursor(kind, cursor, types)
    if after is not None:
        position = tuple_(*columns)
        stmt = stmt.where(position < tuple_(*after) if descending else position > tuple_(*after))
    order = [c.desc() for c in columns] if descending else [c.asc() for c in columns]
    result = db.session.execute(stmt.order_by(*order).limit(limit + 1))
    rows = list(result.scalars() if scalars else result.all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(kind, key_of(rows[-1])) if more and rows else None
    return rows, next_cursor


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment is not None else None


# --- Customers ---------------------------------------------------------------------------------

def _job_counts(customer_ids: list[int]) -> dict[int, int]:
    if not customer_ids:
        return {}
    return dict(db.session.execute(
        select(Job.customer_id, func.count(Job.id))
        .where(Job.customer_id.in_(customer_ids), Job.archived.is_(False)).group_by(Job.customer_id)).all())


def customer_json(customer: Customer, job_count: int) -> dict:
    return {"id": customer.id, "name": customer.name, "active": bool(customer.active), "job_count": job_count,
            "created_at": _iso(customer.created_at)}


def list_customers(user, *, cursor: Optional[str], limit: int, active: Optional[bool] = None) -> Page:
    stmt = scope.restrict(select(Customer), Customer.id, user)
    if active is not None:
        stmt = stmt.where(Customer.active.is_(active))
    rows, next_cursor = _keyset_page(stmt, "customers", [Customer.id], [int], cursor, limit,
                                     lambda c: (c.id,), descending=False)
    counts = _job_counts([c.id for c in rows])
    return Page([customer_json(c, counts.get(c.id, 0)) for c in rows], next_cursor)


def get_customer(user, customer_id: int) -> Optional[dict]:
    if not scope.allows(user, customer_id):
        return None
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        return None
    return customer_json(customer, _job_counts([customer.id]).get(customer.id, 0))


# --- Jobs --------------------------------------------------------------------------------------

def job_json(job: Job, customer_name: str) -> dict:
    schedule, text = schedule_of(job)
    return {
        "id": job.id, "customer_id": job.customer_id, "customer_name": customer_name,
        "job_name": job.job_name, "software": job.software, "backup_type": job.backup_type,
        "archived": bool(job.archived),
        "schedule": {"kind": (schedule or {}).get("kind") or job.schedule_kind or "unknown",
                     "description": text, "manual": job.manual_schedule is not None,
                     "next_expected_slot": _iso(job.next_expected_slot)},
        "last_run_at": _iso(job.last_run_at), "last_status": job.last_status,
    }


def _jobs_stmt(user):
    return scope.restrict(select(Job, Customer.name).join(Customer, Customer.id == Job.customer_id),
                          Job.customer_id, user)


def list_jobs(user, *, cursor: Optional[str], limit: int, customer_id: Optional[int] = None,
              archived: Optional[bool] = False) -> Page:
    stmt = _jobs_stmt(user)
    if customer_id is not None:
        stmt = stmt.where(Job.customer_id == customer_id)
    if archived is not None:
        stmt = stmt.where(Job.archived.is_(archived))
    rows, next_cursor = _keyset_page(stmt, "jobs", [Job.id], [int], cursor, limit, lambda r: (r[0].id,),
                                     descending=False, scalars=False)
    return Page([job_json(job, name) for job, name in rows], next_cursor)


def get_job(user, job_id: int) -> Optional[dict]:
    row = db.session.execute(_jobs_stmt(user).where(Job.id == job_id)).one_or_none()
    return job_json(*row) if row is not None else None


# --- Runs --------------------------------------------------------------------------------------

# A run's place in time: when its backup started (as the report says), else when it was stored.
RUN_TIME = func.coalesce(JobRun.started_at, JobRun.created_at)


def run_json(run: JobRun, job_name: str, customer_id: int, customer_name: str) -> dict:
    return {
        "id": run.id, "job_id": run.job_id, "job_name": job_name, "customer_id": customer_id,
        "customer_name": customer_name, "status": run.status, "effective_status": run.effective_status,
        "shown_status": display_status(run), "override_id": run.override_id,
        "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at), "missed": bool(run.missed),
        "message": run.message, "reviewed": run.reviewed_at is not None, "reviewed_at": _iso(run.reviewed_at),
        "created_at": _iso(run.created_at),
    }


def _runs_stmt(user):
    stmt = (select(JobRun, Job.job_name, Job.customer_id, Customer.name, RUN_TIME.label("run_time"))
            .join(Job, Job.id == JobRun.job_id).join(Customer, Customer.id == Job.customer_id))
    return scope.restrict(stmt, Job.customer_id, user)


@dataclass
class RunFilters:
    start: Optional[datetime] = None   # inclusive
    end: Optional[datetime] = None     # exclusive
    status: Optional[str] = None
    customer_id: Optional[int] = None
    job_id: Optional[int] = None
    reviewed: Optional[bool] = None


def list_runs(user, f: RunFilters, *, cursor: Optional[str], limit: int) -> Page:
    """Runs newest first (by when the backup started, then id)."""
    stmt = _runs_stmt(user)
    if f.start is not None:
        stmt = stmt.where(RUN_TIME >= f.start)
    if f.end is not None:
        stmt = stmt.where(RUN_TIME < f.end)
    if f.status is not None:
        stmt = stmt.where(JobRun.effective_status == f.status)
    if f.customer_id is not None:
        stmt = stmt.where(Job.customer_id == f.customer_id)
    if f.job_id is not None:
        stmt = stmt.where(JobRun.job_id == f.job_id)
    if f.reviewed is not None:
        stmt = stmt.where(JobRun.reviewed_at.is_not(None) if f.reviewed else JobRun.reviewed_at.is_(None))
    rows, next_cursor = _keyset_page(stmt, "runs", [RUN_TIME, JobRun.id], [datetime, int], cursor, limit,
                                     lambda r: (r[4], r[0].id), scalars=False)
    return Page([run_json(run, name, cid, cname) for run, name, cid, cname, _ in rows], next_cursor)


def visible_run(user, run_id: int) -> Optional[JobRun]:
    """The run when ``user`` may see it (its customer is in their scope), else None."""
    return db.session.execute(
        scope.restrict(select(JobRun).join(Job, Job.id == JobRun.job_id).where(JobRun.id == run_id),
                       Job.customer_id, user)).scalar_one_or_none()


def visible_run_ids(user, run_ids: list[int]) -> list[int]:
    """Those of ``run_ids`` that exist and that ``user`` may see (one query)."""
    ids = [i for i in run_ids if 1 <= i <= MAX_ID]
    if not ids:
        return []
    return sorted(db.session.execute(
        scope.restrict(select(JobRun.id).join(Job, Job.id == JobRun.job_id).where(JobRun.id.in_(ids)),
                       Job.customer_id, user)).scalars())


def may_read_mail_bodies(user) -> bool:
    """Staff may read the mail a run came from (as in the Inbox); a portal user only when an admin
    allowed it for them (the rule's one home: ``scope.mail_bodies_allowed``)."""
    return scope.mail_bodies_allowed(user)


def get_run(user, run_id: int, *, include_mail: bool = False) -> Optional[dict]:
    row = db.session.execute(_runs_stmt(user).where(JobRun.id == run_id)
                             .options(selectinload(JobRun.objects))).one_or_none()
    if row is None:
        return None
    run, job_name, customer_id, customer_name, _ = row
    out = run_json(run, job_name, customer_id, customer_name)
    out["objects"] = [{"name": o.name, "type": o.type, "status": o.status, "effective_status": o.effective_status,
                       "shown_status": display_status(o), "message": o.message} for o in run.objects]
    # Tickets and remarks are the provider's own notes: never for a portal user (empty lists).
    internal = scope.sees_internal_notes(user)
    out["tickets"] = [{"id": t.id, "code": t.code, "resolved": t.resolved_at is not None}
                      for t in (tickets_for_runs([run.id]).get(run.id, []) if internal else [])]
    out["remarks"] = [{"id": r.id, "body": r.body, "resolved": r.resolved_at is not None}
                      for r in (remarks_for_runs([run.id]).get(run.id, []) if internal else [])]
    if include_mail:
        mail = db.session.get(MailMessage, run.mail_message_id) if run.mail_message_id else None
        out["mail"] = mail_json(mail, with_body=True) if mail is not None and may_read_mail_bodies(user) else None
    return out


# --- A day (the Daily Jobs view) -----------------------------------------------------------------

ALL_ROWS = 1_000_000  # one "page" holds every row of the day: the API does not page a day


def day_json(user, day: date, now: datetime) -> dict:
    """The Daily Jobs view of ``day`` (a calendar day in the configured timezone) as at ``now``,
    only the rows of customers ``user`` may see; the counts are of those rows."""
    zone = ui_zone()
    rule = configured_day_rule()
    view = build_day(day, zone, now, rule=rule, per_page=ALL_ROWS, with_links=False, user=user)
    rows = []
    counts: dict[str, int] = {}
    for group in view.groups:
        for row in group.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
            rows.append({
                "customer_id": row.customer_id, "customer_name": row.customer_name, "job_id": row.job.id,
                "job_name": row.job.job_name, "software": row.job.software, "status": row.status,
                "expected": bool(row.expected), "slot": _iso(row.slot), "deadline": _iso(row.deadline),
                "schedule": row.schedule_text, "note": row.note,
                "runs": [{"id": r.id, "shown_status": display_status(r), "started_at": _iso(r.started_at),
                          "reviewed": bool(r.reviewed)} for r in row.runs],
            })
    return {"day": day.isoformat(), "timezone": zone.key, "rule": rule, "counts": counts, "rows": rows}


# --- Tickets and remarks -------------------------------------------------------------------------

def _items_visible_to(user, item_model, scope_model, fk: str):
    """The SQL condition for the tickets (or remarks) ``user`` may see: for a portal user, those
    with at least one scope and every scope within their customers (a scope names a customer
    directly or through its job), so a ticket never shows them another customer's name."""
    ids = scope.visible_customer_ids(user)
    if ids is None:
        return true()
    if not ids:
        return false()
    s, job = aliased(scope_model), aliased(Job)
    owner = func.coalesce(s.customer_id, job.customer_id)
    outside = (select(s.id).outerjoin(job, job.id == s.job_id)
               .where(getattr(s, fk) == item_model.id, or_(owner.is_(None), owner.not_in(sorted(ids))))
               .correlate(item_model))
    has_scope = exists().where(getattr(scope_model, fk) == item_model.id).correlate(item_model)
    return and_(has_scope, ~exists(outside))


_KINDS = {
    "ticket": (Ticket, TicketScope, TicketJobRun, "ticket_id"),
    "remark": (Remark, RemarkScope, RemarkJobRun, "remark_id"),
}


def _item_json(kind: str, item, linked_runs: int, scopes: list[dict]) -> dict:
    out = {"id": item.id}
    if kind == "ticket":
        out.update(code=item.code, description=item.description)
    else:
        out["body"] = item.body
    out.update(active_from=_iso(item.active_from), created_at=_iso(item.created_at),
               resolved=item.resolved_at is not None, resolved_at=_iso(item.resolved_at),
               resolution_note=item.resolution_note, linked_runs=linked_runs, scopes=scopes)
    return out


def _scopes_of(kind: str, item_ids: list[int]) -> dict[int, list[dict]]:
    """The scopes of the items, with customer and job names (one query)."""
    _, scope_model, _, fk = _KINDS[kind]
    out: dict[int, list[dict]] = {i: [] for i in item_ids}
    if not item_ids:
        return out
    job_customer = aliased(Customer)
    rows = db.session.execute(
        select(scope_model, Customer.name, Job.job_name, Job.customer_id, job_customer.name)
        .outerjoin(Customer, Customer.id == scope_model.customer_id)
        .outerjoin(Job, Job.id == scope_model.job_id)
        .outerjoin(job_customer, job_customer.id == Job.customer_id)
        .where(getattr(scope_model, fk).in_(item_ids)).order_by(scope_model.id)).all()
    for s, customer_name, job_name, job_customer_id, job_customer_name in rows:
        out[getattr(s, fk)].append({
            "type": s.scope_type, "customer_id": s.customer_id if s.customer_id is not None else job_customer_id,
            "customer_name": customer_name or job_customer_name, "job_id": s.job_id, "job_name": job_name,
            "object_name": s.object_name})
    return out


def _items_stmt(kind: str, user):
    model, scope_model, link, fk = _KINDS[kind]
    linked = select(func.count()).where(getattr(link, fk) == model.id).correlate(model).scalar_subquery()
    return select(model, linked).where(_items_visible_to(user, model, scope_model, fk))


def list_items(kind: str, user, *, state: str, cursor: Optional[str], limit: int,
               customer_id: Optional[int] = None) -> Page:
    """Tickets or remarks, newest first; three queries whatever the page size."""
    model, scope_model, _, fk = _KINDS[kind]
    stmt = _items_stmt(kind, user)
    if state == "open":
        stmt = stmt.where(model.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(model.resolved_at.is_not(None))
    if customer_id is not None:
        job = aliased(Job)
        stmt = stmt.where(exists().where(
            getattr(scope_model, fk) == model.id,
            or_(scope_model.customer_id == customer_id,
                scope_model.job_id.in_(select(job.id).where(job.customer_id == customer_id)))))
    rows, next_cursor = _keyset_page(stmt, kind + "s", [model.created_at, model.id], [datetime, int], cursor,
                                     limit, lambda r: (r[0].created_at, r[0].id), scalars=False)
    scopes = _scopes_of(kind, [r[0].id for r in rows])
    return Page([_item_json(kind, item, n, scopes[item.id]) for item, n in rows], next_cursor)


def visible_item(kind: str, user, item_id: int):
    model, scope_model, _, fk = _KINDS[kind]
    return db.session.execute(select(model).where(model.id == item_id,
                                                  _items_visible_to(user, model, scope_model, fk))
                              ).scalar_one_or_none()


def item_json(kind: str, user, item_id: int) -> Optional[dict]:
    model = _KINDS[kind][0]
    row = db.session.execute(_items_stmt(kind, user).where(model.id == item_id)).one_or_none()
    if row is None:
        return None
    return _item_json(kind, row[0], row[1], _scopes_of(kind, [row[0].id])[row[0].id])


# --- The Inbox -----------------------------------------------------------------------------------

def mail_json(msg: MailMessage, *, with_body: bool = False) -> dict:
    result = msg.parse_result if isinstance(msg.parse_result, dict) else {}
    objects = result.get("objects") if isinstance(result.get("objects"), list) else []
    out = {
        "id": msg.id, "state": msg.state, "received_at": _iso(msg.received_at), "from_address": msg.from_address,
        "subject": msg.subject,
        "parse": {"parsed": bool(msg.parsed), "is_report": bool(msg.is_report), "parser": msg.parser_name,
                  "software": msg.software, "backup_type": msg.backup_type, "job_name": msg.job_name,
                  "status": msg.overall_status, "objects": len(objects), "reason": msg.parse_reason,
                  "error": msg.parse_error},
    }
    if with_body:
        out["body_text"] = msg.body_text
    return out


def list_inbox(*, cursor: Optional[str], limit: int, with_body: bool = False) -> Page:
    """The mails in the Inbox (not yet approved), newest stored first. No customer scope: the
    Inbox is for admins (the routes check that), and its mails belong to no customer yet."""
    stmt = select(MailMessage).where(MailMessage.state == "inbox")
    rows, next_cursor = _keyset_page(stmt, "inbox", [MailMessage.id], [int], cursor, limit, lambda m: (m.id,))
    return Page([mail_json(m, with_body=with_body) for m in rows], next_cursor)


def inbox_message(msg_id: int) -> Optional[MailMessage]:
    return db.session.execute(select(MailMessage).where(MailMessage.id == msg_id, MailMessage.state == "inbox")
                              ).scalar_one_or_none()


def visible_customer(user, customer_id: int) -> Optional[Customer]:
    return db.session.get(Customer, customer_id) if scope.allows(user, customer_id) else None
