"""Internal tickets and remarks: create, edit, resolve, and follow a job's runs.

A ticket (a code such as a PSA number, plus a description) or a remark (a note)
has one or more scopes: a customer, a job, or one object within a job. While it
is open (``resolved_at IS NULL``) every new run in its scope gets linked to it
(``link_open_internal_tickets_to_run``, called by the import flow and by the
missed-run generator). A resolved ticket never links to a new run; the links it
already has stay (audit trail). What a run shows is read from the link tables
through explicit JOINs (``tickets_for_runs``, ``remarks_for_runs``), never by
comparing dates.

Functions add to the session and flush; the caller commits (so an import keeps
the run and its links in one transaction). Every user change is audited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Optional

from sqlalchemy import and_, bindparam, exists, func, insert, literal, or_, select, union_all, update
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    Customer,
    Job,
    JobRun,
    Remark,
    RemarkJobRun,
    RemarkScope,
    RunObject,
    Ticket,
    TicketJobRun,
    TicketScope,
    User,
    utcnow,
)
from . import audit

SCOPE_TYPES = ("customer", "job", "object")
CODE_MAX = 100
OBJECT_NAME_MAX = 500


class TicketingError(ValueError):
    """A change that can't be made; the message is shown to the user as is."""


# --- The two kinds share their rules; this table says which models each one uses ---------------

@dataclass(frozen=True)
class _Kind:
    name: str            # "ticket" | "remark" (audit events, messages)
    model: Any
    scope_model: Any
    link_model: Any
    fk: str              # "ticket_id" | "remark_id" on the scope and link tables


TICKET = _Kind("ticket", Ticket, TicketScope, TicketJobRun, "ticket_id")
REMARK = _Kind("remark", Remark, RemarkScope, RemarkJobRun, "remark_id")


def _label(kind: _Kind, item) -> str:
    if kind is TICKET:
        return f"ticket {item.code}"
    text = (item.body or "").strip().splitlines()[0] if (item.body or "").strip() else ""
    return f"remark #{item.id}" + (f" ({text[:60]})" if text else "")


# --- Validation ----------------------------------------------------------------------------------

def _as_id(value, what: str) -> int:
    if isinstance(value, bool):
        raise TicketingError(f"{what} is not valid.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TicketingError(f"{what} is missing or not a number.") from None


def normalise_scopes(scopes: Optional[Iterable[dict]]) -> list[dict]:
    """Check scopes against the database (two queries at most) and return them cleaned.

    Each scope is {"type": "customer", "customer_id"} | {"type": "job", "job_id"} |
    {"type": "object", "job_id", "object_name"}. At least one is required; duplicates are dropped.
    """
    scopes = list(scopes or [])
    if not scopes:
        raise TicketingError("Choose at least one scope: a customer, a job, or an object within a job.")
    cleaned: list[dict] = []
    for raw in scopes:
        if not isinstance(raw, dict):
            raise TicketingError("A scope must be a customer, a job or an object.")
        kind = (raw.get("type") or "").strip().lower()
        if kind not in SCOPE_TYPES:
            raise TicketingError(f"Unknown scope type '{raw.get('type') or ''}': use customer, job or object.")
        if kind == "customer":
            scope = {"type": "customer", "customer_id": _as_id(raw.get("customer_id"), "The customer"),
                     "job_id": None, "object_name": None}
        else:
            scope = {"type": kind, "customer_id": None, "job_id": _as_id(raw.get("job_id"), "The job"),
                     "object_name": None}
            if kind == "object":
                name = (raw.get("object_name") or "").strip()
                if not name:
                    raise TicketingError("An object scope needs the object's name.")
                if len(name) > OBJECT_NAME_MAX:
                    raise TicketingError(f"The object name is longer than {OBJECT_NAME_MAX} characters.")
                scope["object_name"] = name
        if scope not in cleaned:
            cleaned.append(scope)
    customer_ids = {s["customer_id"] for s in cleaned if s["customer_id"] is not None}
    job_ids = {s["job_id"] for s in cleaned if s["job_id"] is not None}
    if customer_ids:
        found = set(db.session.execute(select(Customer.id).where(Customer.id.in_(customer_ids))).scalars())
        missing = sorted(customer_ids - found)
        if missing:
            raise TicketingError(f"Unknown customer (id {', '.join(map(str, missing))}).")
    if job_ids:
        found = set(db.session.execute(select(Job.id).where(Job.id.in_(job_ids))).scalars())
        missing = sorted(job_ids - found)
        if missing:
            raise TicketingError(f"Unknown job (id {', '.join(map(str, missing))}).")
    return cleaned


def _clean_code(code) -> str:
    code = (code or "").strip() if isinstance(code, str) or code is None else str(code).strip()
    if not code:
        raise TicketingError("The ticket code is empty.")
    if len(code) > CODE_MAX:
        raise TicketingError(f"The ticket code is longer than {CODE_MAX} characters.")
    return code


def _clean_text(value, what: str, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TicketingError(f"The {what} must be text.")
    value = value.strip()
    if required and not value:
        raise TicketingError(f"The {what} is empty.")
    return value


def _clean_active_from(value: Optional[datetime]) -> datetime:
    if value is None:
        return utcnow()
    if not isinstance(value, datetime):
        raise TicketingError("'Active from' must be a date and time.")
    if value.tzinfo is None:
        raise TicketingError("'Active from' needs a timezone.")
    return value


def _scope_dicts(item) -> list[dict]:
    return [{"type": s.scope_type, "customer_id": s.customer_id, "job_id": s.job_id,
             "object_name": s.object_name} for s in item.scopes]


# --- Create, edit, resolve -------------------------------------------------------------------

def _create(kind: _Kind, fields: dict, scopes, actor: Optional[User], active_from, run: Optional[JobRun]):
    cleaned = normalise_scopes(scopes)
    item = kind.model(active_from=_clean_active_from(active_from),
                      created_by_id=getattr(actor, "id", None), **fields)
    item.scopes = [kind.scope_model(scope_type=s["type"], customer_id=s["customer_id"], job_id=s["job_id"],
                                    object_name=s["object_name"]) for s in cleaned]
    db.session.add(item)
    db.session.flush()
    if run is not None:
        db.session.add(kind.link_model(**{kind.fk: item.id}, job_run_id=run.id, linked_at=utcnow()))
        db.session.flush()
    after = dict(fields, active_from=item.active_from, scopes=cleaned)
    if run is not None:
        after["linked_run_id"] = run.id
    audit.record(f"{kind.name}.created", f"Created {_label(kind, item)}", user=actor,
                 target_type=kind.name, target_id=item.id, after=after)
    return item


def create_ticket(code: str, description: str, scopes: list[dict], actor: Optional[User],
                  active_from: Optional[datetime] = None, run: Optional[JobRun] = None) -> Ticket:
    """A new open ticket. With ``run`` it is linked to that run right away (created from Run Checks)."""
    fields = {"code": _clean_code(code), "description": _clean_text(description, "description")}
    return _create(TICKET, fields, scopes, actor, active_from, run)


def create_remark(body: str, scopes: list[dict], actor: Optional[User],
                  active_from: Optional[datetime] = None, run: Optional[JobRun] = None) -> Remark:
    """A new open remark (a note with the same scopes and lifecycle as a ticket)."""
    fields = {"body": _clean_text(body, "remark", required=True)}
    return _create(REMARK, fields, scopes, actor, active_from, run)


_EDITABLE = {TICKET.name: ("code", "description", "active_from", "scopes"),
             REMARK.name: ("body", "active_from", "scopes")}


def _update(kind: _Kind, item, actor: Optional[User], changes: dict) -> dict:
    allowed = _EDITABLE[kind.name]
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise TicketingError(f"These fields can't be changed: {', '.join(unknown)}.")
    new: dict = {}
    if "code" in changes:
        new["code"] = _clean_code(changes["code"])
    if "description" in changes:
        new["description"] = _clean_text(changes["description"], "description")
    if "body" in changes:
        new["body"] = _clean_text(changes["body"], "remark", required=True)
    if "active_from" in changes:
        new["active_from"] = _clean_active_from(changes["active_from"])
    if "scopes" in changes:
        new["scopes"] = normalise_scopes(changes["scopes"])
    old = {k: (_scope_dicts(item) if k == "scopes" else getattr(item, k)) for k in new}
    before, after = audit.changed_fields(old, new)
    if not after:
        return {}
    for key, value in after.items():
        if key == "scopes":
            item.scopes = [kind.scope_model(scope_type=s["type"], customer_id=s["customer_id"],
                                            job_id=s["job_id"], object_name=s["object_name"]) for s in value]
        else:
            setattr(item, key, value)
    db.session.flush()
    audit.record(f"{kind.name}.updated", f"Edited {_label(kind, item)}: {', '.join(after)}", user=actor,
                 target_type=kind.name, target_id=item.id, before=before, after=after)
    return after


def update_ticket(ticket: Ticket, actor: Optional[User], **changes) -> dict:
    """Change code, description, active_from and/or scopes; returns the fields that changed.

    Links already made stay as they are; new scopes apply to runs linked from now on.
    """
    return _update(TICKET, ticket, actor, changes)


def update_remark(remark: Remark, actor: Optional[User], **changes) -> dict:
    """Change body, active_from and/or scopes; returns the fields that changed."""
    return _update(REMARK, remark, actor, changes)


def _resolve(kind: _Kind, item, actor: Optional[User], note: Optional[str]):
    note = _clean_text(note, "resolution note") or None
    now = utcnow()
    # A conditional UPDATE, so two people (or the Autotask poll) can never both resolve it.
    result = db.session.execute(
        update(kind.model)
        .where(kind.model.id == item.id, kind.model.resolved_at.is_(None))
        .values(resolved_at=now, resolved_by_id=getattr(actor, "id", None), resolution_note=note)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        db.session.refresh(item)
        when = item.resolved_at.strftime("%Y-%m-%d %H:%M UTC") if item.resolved_at else "earlier"
        raise TicketingError(f"{_label(kind, item).capitalize()} is already resolved ({when}).")
    db.session.refresh(item)
    audit.record(f"{kind.name}.resolved", f"Resolved {_label(kind, item)}", user=actor,
                 target_type=kind.name, target_id=item.id,
                 before={"resolved_at": None}, after={"resolved_at": now, "resolution_note": note})
    return item


def resolve_ticket(ticket: Ticket, actor: Optional[User], note: Optional[str] = "") -> Ticket:
    """Resolve: no new run is linked from now on; existing links stay. Twice is a TicketingError."""
    return _resolve(TICKET, ticket, actor, note)


def resolve_remark(remark: Remark, actor: Optional[User], note: Optional[str] = "") -> Remark:
    return _resolve(REMARK, remark, actor, note)


# --- Propagation to runs -------------------------------------------------------------------

_LINK_STATEMENT: list = []


def _link_insert(kind: _Kind):
    """The INSERT … SELECT of one kind: every open item whose scope covers one of the runs
    (``run_ids``, ``now`` and ``linked_at`` are bound parameters), not yet linked."""
    item, scope, link = kind.model, kind.scope_model, kind.link_model
    run = aliased(JobRun)
    job = aliased(Job)
    item_fk = getattr(scope, kind.fk)
    now = bindparam("now", type_=JobRun.started_at.type)
    object_named = exists().where(RunObject.job_run_id == run.id,
                                  func.lower(RunObject.name) == func.lower(scope.object_name)
                                  ).correlate_except(RunObject)
    covers = exists().where(
        item_fk == item.id,
        or_(
            and_(scope.scope_type == "customer", scope.customer_id == job.customer_id),
            and_(scope.scope_type == "job", scope.job_id == run.job_id),
            and_(scope.scope_type == "object", scope.job_id == run.job_id, object_named),
        ),
    ).correlate_except(scope)
    already = exists().where(getattr(link, kind.fk) == item.id, link.job_run_id == run.id).correlate_except(link)
    reference = func.coalesce(run.started_at, run.missed_slot, now)
    rows = (
        select(item.id, run.id, bindparam("linked_at", type_=link.linked_at.type))
        .select_from(item)
        .join(run, run.id.in_(bindparam("run_ids", expanding=True)))
        .join(job, job.id == run.job_id)
        .where(item.resolved_at.is_(None), item.active_from <= reference, covers, ~already)
    )
    return insert(link).from_select([kind.fk, "job_run_id", "linked_at"], rows).returning(link.job_run_id)


def _link_statement():
    """Both kinds' INSERT … SELECT in ONE statement (two data-modifying WITH clauses) that returns
    how many tickets and remarks were linked; built once, so SQLAlchemy's statement cache serves
    every later call without building or compiling again."""
    if not _LINK_STATEMENT:
        tickets = _link_insert(TICKET).cte("linked_tickets")
        remarks = _link_insert(REMARK).cte("linked_remarks")
        _LINK_STATEMENT.append(select(select(func.count()).select_from(tickets).scalar_subquery(),
                                      select(func.count()).select_from(remarks).scalar_subquery()))
    return _LINK_STATEMENT[0]


def _link_open(run_ids: list[int], now: datetime) -> tuple[int, int]:
    """Link the open tickets and remarks that cover the runs; returns (tickets, remarks) linked.

    The NOT EXISTS skips existing links. The runs linked here are new ones of the caller's own,
    uncommitted transaction (a run from mail, a generated missed run), so no other transaction can
    link them at the same time."""
    params = {"run_ids": list(run_ids), "now": now, "linked_at": now}
    tickets, remarks = db.session.connection().execute(_link_statement(), params).one()
    return int(tickets), int(remarks)


def link_open_internal_tickets_to_runs(run_ids: Iterable[int]) -> tuple[int, int]:
    """Batch form of ``link_open_internal_tickets_to_run`` (e.g. for many generated missed runs).

    One statement whatever the number of runs, tickets or scopes. Returns (tickets, remarks) links made.
    """
    ids = sorted({int(i) for i in run_ids if i is not None})
    if not ids:
        return 0, 0
    db.session.flush()  # the runs and their objects must be visible to the INSERT … SELECT
    return _link_open(ids, utcnow())


def link_open_internal_tickets_to_run(run: JobRun) -> tuple[int, int]:
    """Link every open ticket and remark whose scope covers ``run``; returns (tickets, remarks) linked.

    Open means ``resolved_at IS NULL`` and ``active_from`` at or before the run's start (else its
    missed slot, else now). Scope: customer → the run's job's customer; job → the job; object →
    the job and one of the run's objects has that name (case-insensitive). Idempotent: calling it
    again links nothing new. A constant number of queries. The caller commits.
    """
    if run.id is None:
        db.session.flush()
    return link_open_internal_tickets_to_runs([run.id])


# --- Reading ---------------------------------------------------------------------------------

def _items_for_runs(kind: _Kind, run_ids: Iterable[int]) -> dict[int, list]:
    ids = sorted({int(i) for i in run_ids if i is not None})
    out: dict[int, list] = {i: [] for i in ids}
    if not ids:
        return out
    link = kind.link_model
    rows = db.session.execute(
        select(link.job_run_id, kind.model)
        .join(kind.model, kind.model.id == getattr(link, kind.fk))
        .where(link.job_run_id.in_(ids))
        .order_by(link.job_run_id, kind.model.resolved_at.is_not(None), kind.model.id)
    ).all()
    for run_id, item in rows:
        out[run_id].append(item)
    return out


def tickets_for_runs(run_ids: Iterable[int]) -> dict[int, list[Ticket]]:
    """{run_id: [Ticket, …]} for every run id asked (empty list when none), open ones first; one query."""
    return _items_for_runs(TICKET, run_ids)


def remarks_for_runs(run_ids: Iterable[int]) -> dict[int, list[Remark]]:
    """{run_id: [Remark, …]} for every run id asked (empty list when none), open ones first; one query."""
    return _items_for_runs(REMARK, run_ids)


def _open_for_job(kind: _Kind, job_id: int) -> list:
    scope, item = kind.scope_model, kind.model
    job_customer = select(Job.customer_id).where(Job.id == job_id).scalar_subquery()
    covers = exists().where(
        getattr(scope, kind.fk) == item.id,
        or_(and_(scope.scope_type.in_(("job", "object")), scope.job_id == job_id),
            and_(scope.scope_type == "customer", scope.customer_id == job_customer)),
    )
    return list(db.session.execute(
        select(item).where(item.resolved_at.is_(None), covers).order_by(item.created_at, item.id)
    ).scalars())


def open_tickets_for_job(job_id: int) -> list[Ticket]:
    """Open tickets whose scope covers the job (job, one of its objects, or its customer); one query."""
    return _open_for_job(TICKET, job_id)


def open_remarks_for_job(job_id: int) -> list[Remark]:
    return _open_for_job(REMARK, job_id)


def _open_per_job(kind: _Kind, job_ids: list[int]):
    """(kind, job id, open items covering it) for the jobs: scoped to the job, one of its objects
    or its customer."""
    scope, item = kind.scope_model, kind.model
    covers = or_(and_(scope.scope_type.in_(("job", "object")), scope.job_id == Job.id),
                 and_(scope.scope_type == "customer", scope.customer_id == Job.customer_id))
    return (select(literal(kind.name).label("kind"), Job.id.label("job_id"),
                   func.count(func.distinct(item.id)).label("n"))
            .select_from(Job).join(scope, covers).join(item, item.id == getattr(scope, kind.fk))
            .where(Job.id.in_(job_ids), item.resolved_at.is_(None)).group_by(Job.id))


def open_counts_for_jobs(job_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """{job_id: (open tickets, open remarks)} for every job asked, covering it as ``open_tickets_for_job``
    and ``open_remarks_for_job`` do; one query whatever the number of jobs."""
    ids = sorted({int(i) for i in job_ids if i is not None})
    out = {i: (0, 0) for i in ids}
    if not ids:
        return out
    both = union_all(_open_per_job(TICKET, ids), _open_per_job(REMARK, ids))
    for kind, job_id, n in db.session.execute(both):
        tickets, remarks = out[job_id]
        out[job_id] = (int(n), remarks) if kind == TICKET.name else (tickets, int(n))
    return out


# --- The /tickets list -----------------------------------------------------------------------

STATES = ("open", "resolved", "all")


@dataclass
class ScopeView:
    type: str
    customer_id: Optional[int]
    job_id: Optional[int]
    object_name: Optional[str]
    customer_name: Optional[str]
    job_name: Optional[str]

    @property
    def label(self) -> str:
        if self.type == "customer":
            return f"Customer: {self.customer_name}"
        if self.type == "job":
            return f"Job: {self.customer_name} · {self.job_name}"
        return f"Object: {self.object_name} in {self.customer_name} · {self.job_name}"


@dataclass
class ListRow:
    item: Any
    linked_runs: int
    created_by: Optional[str]
    resolved_by: Optional[str]
    scopes: list[ScopeView] = field(default_factory=list)


@dataclass
class ListPage:
    rows: list[ListRow]
    total: int
    page: int
    per_page: int


def list_items(kind_name: str = "ticket", state: str = "open", customer_id: Optional[int] = None,
               page: int = 1, per_page: int = 50) -> ListPage:
    """One page of tickets or remarks, filtered and paged in the database.

    Three queries whatever the page size: the count, the rows (with their linked-run count and the
    user names), and all their scopes with customer and job names.
    """
    if kind_name not in ("ticket", "remark"):
        raise TicketingError("Unknown list: use tickets or remarks.")
    kind = TICKET if kind_name == "ticket" else REMARK
    if state not in STATES:
        raise TicketingError("Unknown filter: use open, resolved or all.")
    page = max(1, int(page or 1))
    item, scope, link = kind.model, kind.scope_model, kind.link_model
    q = select(item.id)
    if state == "open":
        q = q.where(item.resolved_at.is_(None))
    elif state == "resolved":
        q = q.where(item.resolved_at.is_not(None))
    if customer_id is not None:
        scoped_job = aliased(Job)
        q = q.where(exists().where(
            getattr(scope, kind.fk) == item.id,
            or_(scope.customer_id == customer_id,
                scope.job_id.in_(select(scoped_job.id).where(scoped_job.customer_id == customer_id))),
        ))
    ids = q.subquery()
    total = db.session.execute(select(func.count()).select_from(ids)).scalar_one()
    creator, resolver = aliased(User), aliased(User)
    linked = select(func.count()).where(getattr(link, kind.fk) == item.id).scalar_subquery()
    rows = db.session.execute(
        select(item, linked, creator.username, resolver.username)
        .join(ids, ids.c.id == item.id)
        .outerjoin(creator, creator.id == item.created_by_id)
        .outerjoin(resolver, resolver.id == item.resolved_by_id)
        .order_by(item.resolved_at.is_not(None), item.created_at.desc(), item.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    out = [ListRow(item=r[0], linked_runs=r[1], created_by=r[2], resolved_by=r[3]) for r in rows]
    by_id = {r.item.id: r for r in out}
    if by_id:
        job_customer = aliased(Customer)
        scope_rows = db.session.execute(
            select(scope, Customer.name, Job.job_name, job_customer.name)
            .outerjoin(Customer, Customer.id == scope.customer_id)
            .outerjoin(Job, Job.id == scope.job_id)
            .outerjoin(job_customer, job_customer.id == Job.customer_id)
            .where(getattr(scope, kind.fk).in_(by_id))
            .order_by(scope.id)
        ).all()
        for s, customer_name, job_name, job_customer_name in scope_rows:
            by_id[getattr(s, kind.fk)].scopes.append(ScopeView(
                type=s.scope_type, customer_id=s.customer_id, job_id=s.job_id, object_name=s.object_name,
                customer_name=customer_name or job_customer_name, job_name=job_name))
    return ListPage(rows=out, total=total, page=page, per_page=per_page)


def customer_choices() -> list:
    """Customers as (id, name) for the customer filter and the customer scope; one query. Jobs are
    not listed: the job scope is chosen with the job picker (services/jobs.py:lookup_jobs)."""
    return db.session.execute(select(Customer.id, Customer.name).order_by(Customer.name)).all()
