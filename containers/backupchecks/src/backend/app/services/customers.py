"""Customers: the list, add/rename/activate, delete (with what goes), CSV export and import.

Every change is audited; the caller commits (or rolls back on ``CustomerError``), so a refused
change leaves nothing half-saved.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import Customer, Job, JobRun
from . import audit, scope
from .search import contains_text

NAME_MAX = 200
PER_PAGE = 50
# The CSV columns, in this order, exactly (export writes them; import requires them).
CSV_COLUMNS = ("name", "active", "job_count", "autotask_company_id")
MAX_IMPORT_LINES = 10000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheets run cells that start like this
_TRUE = {"1", "true", "yes", "y", "active"}
_FALSE = {"0", "false", "no", "n", "inactive"}


class CustomerError(ValueError):
    """A rule was broken; the message is shown to the user as is."""


# --- Reading ---------------------------------------------------------------------------------------

SORTS = ("name", "jobs", "active", "autotask")


@dataclass
class CustomerRow:
    customer: Customer
    job_count: int


@dataclass
class CustomerPage:
    rows: list[CustomerRow]
    total: int
    page: int
    per_page: int


def _job_count_subquery():
    return (select(Job.customer_id, func.count(Job.id).label("n"))
            .where(Job.archived.is_(False)).group_by(Job.customer_id).subquery())


def list_customers(q: str = "", active: str = "", sort: str = "name", direction: str = "asc",
                   page: int = 1, per_page: int = PER_PAGE) -> CustomerPage:
    """One page of customers with their (non-archived) job count: two queries whatever the size."""
    counts = _job_count_subquery()
    n = func.coalesce(counts.c.n, 0)
    stmt = select(Customer, n.label("job_count")).outerjoin(counts, counts.c.customer_id == Customer.id)
    if q:
        stmt = stmt.where(contains_text([Customer.name], q))
    if active == "active":
        stmt = stmt.where(Customer.active.is_(True))
    elif active == "inactive":
        stmt = stmt.where(Customer.active.is_(False))
    elif active == "nojobs":
        stmt = stmt.where(n == 0)
    total = db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    key = {"name": func.lower(Customer.name), "jobs": n, "active": Customer.active,
           "autotask": func.lower(Customer.autotask_company_name)}.get(sort, func.lower(Customer.name))
    key = key.desc().nullslast() if direction == "desc" else key.asc().nullslast()
    page = max(1, page)
    result = db.session.execute(stmt.order_by(key, Customer.id).limit(per_page).offset((page - 1) * per_page)).all()
    return CustomerPage([CustomerRow(c, int(cnt)) for c, cnt in result], total, page, per_page)


def choices(user=None, *, active_only: bool = False) -> list[tuple[int, str]]:
    """(id, name) of the customers ``user`` may see (every customer without a user), by name: the
    customer pickers and filters. One query."""
    q = select(Customer.id, Customer.name)
    if active_only:
        q = q.where(Customer.active.is_(True))
    if user is not None:
        q = scope.restrict(q, Customer.id, user)
    return [(cid, name) for cid, name in db.session.execute(q.order_by(func.lower(Customer.name), Customer.id))]


def delete_summary(customer: Customer) -> tuple[int, int]:
    """(jobs, runs) that deleting the customer takes with it (archived jobs included); one query."""
    row = db.session.execute(
        select(func.count(func.distinct(Job.id)), func.count(JobRun.id))
        .select_from(Job).outerjoin(JobRun, JobRun.job_id == Job.id)
        .where(Job.customer_id == customer.id)
    ).one()
    return int(row[0]), int(row[1])


# --- Changing --------------------------------------------------------------------------------------

def clean_name(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise CustomerError("Give the customer a name.")
    if len(name) > NAME_MAX:
        raise CustomerError(f"The name is longer than {NAME_MAX} characters.")
    return name


def _name_taken(name: str, exclude_id: Optional[int] = None) -> Optional[Customer]:
    stmt = select(Customer).where(func.lower(Customer.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Customer.id != exclude_id)
    return db.session.execute(stmt.limit(1)).scalar_one_or_none()


def create_customer(name, actor, active: bool = True) -> Customer:
    name = clean_name(name)
    if _name_taken(name):
        raise CustomerError(f"A customer named '{name}' already exists.")
    return _add(name, actor, active)


def find_or_create_customer(name, actor, source: str) -> Customer:
    """The customer of this name (case-insensitive), or a new active one, audited with where it
    was made (``source``, e.g. "from the Inbox"). CustomerError for an empty or too long name."""
    name = clean_name(name)
    return _name_taken(name) or _add(name, actor, True, source)


def _add(name: str, actor, active: bool, source: str = "") -> Customer:
    """The one way a single customer is created: added, flushed and audited."""
    customer = Customer(name=name, active=bool(active))
    db.session.add(customer)
    db.session.flush()
    audit.record("customer.create", f"Added customer {name}" + (f" ({source})" if source else ""), user=actor,
                 target_type="customer", target_id=customer.id, after={"name": name, "active": customer.active})
    return customer


def rename_customer(customer: Customer, name, actor) -> bool:
    """Rename (unique, case-insensitive). Returns False when nothing changed."""
    name = clean_name(name)
    if name == customer.name:
        return False
    if _name_taken(name, exclude_id=customer.id):
        raise CustomerError(f"Another customer is already named '{name}'. Nothing was changed.")
    before = customer.name
    customer.name = name
    audit.record("customer.rename", f"Renamed customer {before} to {name}", user=actor,
                 target_type="customer", target_id=customer.id, before={"name": before}, after={"name": name})
    return True


def set_active(customer: Customer, active: bool, actor) -> bool:
    if customer.active == bool(active):
        return False
    customer.active = bool(active)
    audit.record("customer.activate" if active else "customer.deactivate",
                 f"{'Activated' if active else 'Deactivated'} customer {customer.name}", user=actor,
                 target_type="customer", target_id=customer.id,
                 before={"active": not active}, after={"active": bool(active)})
    return True


def delete_customer(customer: Customer, actor, confirm_jobs: Optional[int] = None) -> tuple[int, int]:
    """Delete a customer. With jobs it is refused unless ``confirm_jobs`` equals the number of jobs
    the confirmation page showed; then the jobs, their runs and objects go too. Returns (jobs, runs)."""
    jobs, runs = delete_summary(customer)
    if jobs and confirm_jobs is None:
        raise CustomerError(f"{customer.name} still has {jobs} job{'s' if jobs != 1 else ''} "
                            f"({runs} run{'s' if runs != 1 else ''}). Delete or move them first, or confirm "
                            f"deleting them with the customer.")
    if jobs and confirm_jobs != jobs:
        raise CustomerError(f"{customer.name} now has {jobs} jobs, not the {confirm_jobs} you confirmed. "
                            f"Nothing was deleted: check again.")
    name, cid = customer.name, customer.id
    if jobs:
        # job_runs, run_objects, ticket/remark links and job-level overrides go by ON DELETE CASCADE;
        # mails keep existing (their job_id is set to NULL).
        db.session.execute(delete(Job).where(Job.customer_id == cid).execution_options(synchronize_session=False))
    db.session.execute(delete(Customer).where(Customer.id == cid).execution_options(synchronize_session=False))
    db.session.expunge(customer)
    audit.record("customer.delete", f"Deleted customer {name}" + (f" with {jobs} jobs and {runs} runs" if jobs else ""),
                 user=actor, target_type="customer", target_id=cid,
                 before={"name": name, "jobs": jobs, "runs": runs})
    return jobs, runs


# --- CSV --------------------------------------------------------------------------------------------

def export_csv() -> str:
    """All customers as CSV (columns ``CSV_COLUMNS``); one query."""
    counts = _job_count_subquery()
    rows = db.session.execute(
        select(Customer.name, Customer.active, func.coalesce(counts.c.n, 0), Customer.autotask_company_id)
        .outerjoin(counts, counts.c.customer_id == Customer.id).order_by(func.lower(Customer.name))
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for name, active, n, at_id in rows:
        writer.writerow([_safe_cell(name), "true" if active else "false", n, "" if at_id is None else at_id])
    return out.getvalue()


def _safe_cell(value: str) -> str:
    """A name that a spreadsheet would run as a formula is written with a leading apostrophe
    (the import strips it again)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _unsafe_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


@dataclass
class ImportLine:
    line: int
    name: str
    action: str  # created | updated | unchanged
    detail: str = ""


@dataclass
class ImportReport:
    lines: list[ImportLine] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for x in self.lines if x.action == action)

    @property
    def summary(self) -> str:
        return (f"{self.count('created')} created, {self.count('updated')} updated, "
                f"{self.count('unchanged')} unchanged")


class CustomerImportError(CustomerError):
    """The file was refused; ``errors`` lists every problem by line number. Nothing was imported."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"Nothing was imported: {len(errors)} problem{'s' if len(errors) != 1 else ''} in the file.")


def _parse_bool(value: str) -> Optional[bool]:
    v = value.strip().lower()
    if v == "":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"active must be true or false, not '{value}'")


def _parse_company_id(value: str) -> Optional[int]:
    v = value.strip()
    if v == "":
        return None
    if not v.isdigit() or int(v) <= 0 or int(v) > 2_147_483_647:
        raise ValueError(f"autotask_company_id must be a positive whole number or empty, not '{value}'")
    return int(v)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CustomerImportError(["The file is not UTF-8 text (save it as CSV UTF-8)."]) from None


def parse_csv(data: bytes) -> list[dict]:
    """Validate the whole file; a list of clean rows, or CustomerImportError naming every bad line."""
    if not data or not data.strip():
        raise CustomerImportError(["The file is empty."])
    text = _decode(data)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CustomerImportError([f"The file is not valid CSV: {exc}."]) from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if tuple(header) != CSV_COLUMNS:
        raise CustomerImportError([f"Line 1: the header must be exactly '{','.join(CSV_COLUMNS)}', "
                                   f"not '{','.join(rows[0]) if rows else ''}'."])
    if len(rows) - 1 > MAX_IMPORT_LINES:
        raise CustomerImportError([f"The file has more than {MAX_IMPORT_LINES} lines; split it."])
    errors: list[str] = []
    clean: list[dict] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue  # blank lines are ignored
        if len(row) != len(CSV_COLUMNS):
            errors.append(f"Line {number}: expected {len(CSV_COLUMNS)} values, found {len(row)}.")
            continue
        problems = []
        try:
            name = clean_name(_unsafe_cell(row[0].strip()))
        except CustomerError as exc:
            problems.append(str(exc).rstrip("."))
            name = None
        try:
            active = _parse_bool(row[1])
        except ValueError as exc:
            problems.append(str(exc))
            active = None
        try:
            company = _parse_company_id(row[3])
        except ValueError as exc:
            problems.append(str(exc))
            company = None
        if name and name.lower() in seen:
            problems.append(f"'{name}' is also on line {seen[name.lower()]}")
        if problems:
            errors.append(f"Line {number}: " + "; ".join(problems) + ".")
            continue
        seen[name.lower()] = number
        clean.append({"line": number, "name": name, "active": active, "autotask_company_id": company})
    if errors:
        raise CustomerImportError(errors)
    if not clean:
        raise CustomerImportError(["The file has a header but no customers."])
    return clean


def import_csv(data: bytes, actor) -> ImportReport:
    """Validate every line first, then create or update the customers (matched by name, case-insensitive).

    Empty ``active`` keeps the current value (new customers are active); ``job_count`` is ignored;
    an empty ``autotask_company_id`` clears the mapping. The caller commits (one transaction).
    """
    rows = parse_csv(data)
    existing = {c.name.lower(): c for c in db.session.execute(
        select(Customer).where(func.lower(Customer.name).in_([r["name"].lower() for r in rows]))).scalars()}
    report = ImportReport()
    for r in rows:
        c = existing.get(r["name"].lower())
        if c is None:
            c = Customer(name=r["name"], active=True if r["active"] is None else r["active"],
                         autotask_company_id=r["autotask_company_id"])
            db.session.add(c)
            report.lines.append(ImportLine(r["line"], r["name"], "created"))
            continue
        before, after = {}, {}
        if r["name"] != c.name:
            before["name"], after["name"] = c.name, r["name"]
            c.name = r["name"]
        if r["active"] is not None and r["active"] != c.active:
            before["active"], after["active"] = c.active, r["active"]
            c.active = r["active"]
        if r["autotask_company_id"] != c.autotask_company_id:
            before["autotask_company_id"], after["autotask_company_id"] = c.autotask_company_id, r["autotask_company_id"]
            c.autotask_company_id = r["autotask_company_id"]
            # A new company id must be checked again by the Autotask mapping.
            c.autotask_company_name = None
            c.autotask_mapping_status = None
            c.autotask_checked_at = None
        if after:
            report.lines.append(ImportLine(r["line"], r["name"], "updated",
                                           ", ".join(f"{k}: {before[k]} → {after[k]}" for k in after)))
        else:
            report.lines.append(ImportLine(r["line"], r["name"], "unchanged"))
    db.session.flush()
    audit.record("customer.import", f"Imported customers from CSV: {report.summary}", user=actor,
                 target_type="customer",
                 after={"created": [x.name for x in report.lines if x.action == "created"][:200],
                        "updated": [x.name for x in report.lines if x.action == "updated"][:200]})
    return report


def search_filter(q: str):
    """The WHERE clause for the global search (customer or job name)."""
    return contains_text([Customer.name, Job.job_name], q)
