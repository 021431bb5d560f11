"""Customer ↔ Autotask company mapping: by company id, checked against Autotask (``ok``,
``renamed``, ``missing``, ``invalid``), one customer or all in the background, and the mapping page."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from flask import Flask
from sqlalchemy import case, func, select

from ...extensions import db
from ...models import Customer, User, utcnow
from ...psa import AutotaskClient, PsaCompany, PsaError, PsaNotFoundError
from .. import audit
from .client import AutotaskServiceError, _fail, autotask_client, is_enabled

MAPPING_STATUSES = ("ok", "renamed", "missing", "invalid")
TICKETABLE = ("ok", "renamed")
REFRESH_BATCH = 100


def ticket_block_reason(customer: Customer) -> Optional[str]:
    """Why this customer can't get an Autotask ticket now (None when it can)."""
    if customer.autotask_company_id is None:
        return (f"{customer.name} is not mapped to an Autotask company: map it under Customers → "
                f"{customer.name} → Autotask.")
    status = customer.autotask_mapping_status
    if status == "missing":
        return (f"Autotask company {customer.autotask_company_id} of {customer.name} no longer exists in "
                "Autotask: map the customer to another company.")
    if status == "invalid":
        return (f"Autotask company {customer.autotask_company_id} of {customer.name} is inactive in Autotask "
                "(or the id is not valid): map the customer to an active company.")
    return None


def _parse_company_id(raw: Any) -> int:
    text = ("" if raw is None else str(raw)).strip()
    if not text.isdigit() or int(text) <= 0:
        raise AutotaskServiceError(f"An Autotask company id is a whole number such as 174, not '{text}'. "
                                   "Nothing was saved.")
    return int(text)


def search_companies(text: str, limit: int = 25) -> list[PsaCompany]:
    text = (text or "").strip()
    if len(text) < 2 and not text.isdigit():
        return []
    try:
        with autotask_client() as client:
            return client.search_companies(text, limit=limit)
    except PsaError as exc:
        raise _fail(exc, "company search") from None


def _status_for(customer: Customer, company: Optional[PsaCompany]) -> tuple[str, Optional[str]]:
    if company is None:
        return "missing", customer.autotask_company_name
    if not company.active:
        return "invalid", company.name
    old = (customer.autotask_company_name or "").strip()
    if old and old != company.name.strip():
        return "renamed", company.name
    return "ok", company.name


def _apply_mapping(customer: Customer, company_id: Optional[int], status: Optional[str], name: Optional[str],
                   actor: Optional[User], event: str, summary: str) -> dict:
    fields = ("autotask_company_id", "autotask_company_name", "autotask_mapping_status")
    before = {f: getattr(customer, f) for f in fields}
    after = {"autotask_company_id": company_id, "autotask_company_name": name, "autotask_mapping_status": status}
    customer.autotask_company_id = company_id
    customer.autotask_company_name = name
    customer.autotask_mapping_status = status
    customer.autotask_checked_at = utcnow() if company_id is not None else None
    b, a = audit.changed_fields(before, after)
    if a or event != "customer.autotask_checked":
        audit.record(event, summary, user=actor, target_type="customer", target_id=customer.id, before=b, after=a)
    return a


def set_customer_company(customer: Customer, raw_company_id: Any, actor: Optional[User]) -> str:
    """Map the customer to an existing, active Autotask company. Commits; returns the status."""
    company_id = _parse_company_id(raw_company_id)
    try:
        with autotask_client() as client:
            company = client.get_company(company_id)
    except PsaNotFoundError:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask has no company with id {company_id} (or the API user can't see it). "
                                   "Nothing was saved.") from None
    except PsaError as exc:
        raise _fail(exc, "company") from None
    if not company.active:
        raise AutotaskServiceError(f"Autotask company {company.name} ({company_id}) is inactive; tickets can't be "
                                   "made for it. Choose an active company. Nothing was saved.")
    _apply_mapping(customer, company_id, "ok", company.name, actor, "customer.autotask_mapped",
                   f"Mapped {customer.name} to Autotask company {company.name} ({company_id})")
    db.session.commit()
    return "ok"


def clear_customer_company(customer: Customer, actor: Optional[User]) -> bool:
    if customer.autotask_company_id is None and customer.autotask_mapping_status is None:
        return False
    _apply_mapping(customer, None, None, None, actor, "customer.autotask_cleared",
                   f"Removed the Autotask mapping of {customer.name}")
    customer.autotask_checked_at = None
    db.session.commit()
    return True


def _companies(client: AutotaskClient, ids: Sequence[int]) -> dict[int, PsaCompany]:
    """Companies by id, one query per batch (ids Autotask doesn't return are absent)."""
    if not ids:
        return {}
    # The client has no public bulk read of companies yet; its query helper pages and retries for us.
    items = client._query("Companies", [{"op": "in", "field": "id", "value": sorted(set(ids))}],
                          include=("companyName", "companyNumber", "isActive"),
                          action="Reading Autotask companies")
    out = {}
    for item in items:
        out[int(item["id"])] = PsaCompany(id=int(item["id"]), name=str(item.get("companyName") or ""),
                                          active=bool(item.get("isActive", True)), number=item.get("companyNumber"))
    return out


def check_customers(customers: Sequence[Customer], client: AutotaskClient, actor: Optional[User]) -> dict[str, int]:
    """Check the mapping of ``customers`` against Autotask (one query for all); the caller commits."""
    counts = {s: 0 for s in MAPPING_STATUSES}
    found = _companies(client, [c.autotask_company_id for c in customers if c.autotask_company_id])
    for c in customers:
        if c.autotask_company_id is None:
            continue
        status, name = _status_for(c, found.get(c.autotask_company_id))
        counts[status] += 1
        _apply_mapping(c, c.autotask_company_id, status, name, actor, "customer.autotask_checked",
                       f"Checked the Autotask mapping of {c.name}: {status}")
    return counts


def refresh_customer(customer: Customer, actor: Optional[User]) -> str:
    """Check one customer's mapping now; commits and returns the status."""
    if customer.autotask_company_id is None:
        raise AutotaskServiceError(f"{customer.name} is not mapped to an Autotask company.")
    try:
        with autotask_client() as client:
            check_customers([customer], client, actor)
    except PsaError as exc:
        raise _fail(exc, "mapping check") from None
    db.session.commit()
    return customer.autotask_mapping_status


def refresh_all_mappings(actor: Optional[User], progress=None) -> dict[str, int]:
    """Check every mapped customer, in batches; commits after each batch. ``progress(done, total, msg)``."""
    ids = db.session.execute(select(Customer.id).where(Customer.autotask_company_id.is_not(None))
                             .order_by(Customer.id)).scalars().all()
    total = len(ids)
    counts = {s: 0 for s in MAPPING_STATUSES}
    if progress:
        progress(0, total, f"Checking {total} mapped customers")
    with autotask_client(interactive=progress is None) as client:
        for start in range(0, total, REFRESH_BATCH):
            batch = db.session.execute(select(Customer).where(Customer.id.in_(ids[start:start + REFRESH_BATCH]))
                                       ).scalars().all()
            try:
                for k, v in check_customers(batch, client, actor).items():
                    counts[k] += v
            except PsaError as exc:
                raise _fail(exc, "mapping check") from None
            db.session.commit()
            if progress:
                done = min(start + REFRESH_BATCH, total)
                progress(done, total, f"Checked {done} of {total}")
    return counts


def start_refresh_all(app: Flask, actor: Optional[User]):
    """"Refresh all" in the background with progress (a BackgroundTask)."""
    from ..tasks import start_task

    if not is_enabled():
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    actor_id = getattr(actor, "id", None)
    # Committed with the task by start_task, or rolled back when a check already runs (TaskBusy).
    audit.record("customer.autotask_refresh_all", "Started checking all Autotask mappings", user=actor)

    def work(progress):
        user = db.session.get(User, actor_id) if actor_id else None
        try:
            counts = refresh_all_mappings(user, progress)
        except AutotaskServiceError as exc:
            return f"Stopped: {exc}"
        return ("Checked the Autotask mappings: " +
                ", ".join(f"{n} {status}" for status, n in counts.items()) + ".")

    return start_task(app, "autotask_refresh_all", actor_id, work)


# ------------------------------------------------------------------- mapping page


MAPPING_FILTERS = ("", "ok", "renamed", "missing", "invalid", "unchecked", "unmapped", "problems")


@dataclass
class MappingPage:
    customers: list[Customer]
    total: int
    page: int
    per_page: int
    counts: dict[str, int]


def _mapping_state():
    """ok|renamed|missing|invalid, 'unchecked' (an id never checked) or 'unmapped', in SQL."""
    return case((Customer.autotask_company_id.is_(None), "unmapped"),
                   (Customer.autotask_mapping_status.is_(None), "unchecked"),
                   else_=Customer.autotask_mapping_status)


def mapping_overview(state: str = "", page: int = 1, per_page: int = 100) -> MappingPage:
    """One page of customers with their mapping, filtered by state; three queries whatever the size."""
    if state not in MAPPING_FILTERS:
        raise AutotaskServiceError("Unknown filter.")
    st = _mapping_state()
    counts = dict(db.session.execute(select(st, func.count(Customer.id)).group_by(st)).all())
    q = select(Customer)
    if state == "problems":
        q = q.where(st.in_(("missing", "invalid", "unchecked")))
    elif state:
        q = q.where(st == state)
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    page = max(1, page)
    rows = db.session.execute(q.order_by(Customer.autotask_company_id.is_(None), func.lower(Customer.name))
                              .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    return MappingPage(rows, total, page, per_page, counts)
