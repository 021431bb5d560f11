"""The Overrides page: the list of rules (filtered, sorted and paged in the database; three queries
per page whatever the number of rules) and the choices its form offers.

A rule made with "Mark as success → this run only" (``rules.is_one_run_rule``) is in the
state "run": the page says which run it was applied to, never "expired"."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import and_, func, or_, select

from ...extensions import db
from ...models import Customer, Job, JobRun, Override, RunObject, User
from ..search import contains_text
from .rules import LEVELS, is_one_run_rule, one_run_rule_sql

PER_PAGE = 50
STATES = {"current": "In force (active, not expired)", "run": "This run only (applied to one run)",
          "expired": "Expired", "inactive": "Switched off", "upcoming": "Not yet valid"}
SORTS = {"created": Override.created_at, "level": Override.level, "until": Override.valid_until,
         "updated": Override.updated_at}


@dataclass(frozen=True)
class AppliedRun:
    """A run a "this run only" rule covers."""
    id: int
    job_id: int
    started_at: datetime


@dataclass
class OverrideRow:
    rule: Override
    job_name: Optional[str]
    customer_name: Optional[str]
    created_by: Optional[str]
    state: str   # current | run | expired | inactive | upcoming
    runs: list[AppliedRun] = field(default_factory=list)  # state "run": the run(s) it was applied to


@dataclass
class OverrideFilters:
    level: Optional[str] = None
    state: Optional[str] = None
    q: str = ""
    sort: str = "created"
    direction: str = "desc"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "OverrideFilters":
        """Unknown values are ignored (the list shows everything), never an error."""
        level = (args.get("level") or "").strip().lower()
        state = (args.get("state") or "").strip().lower()
        sort = (args.get("sort") or "created").strip().lower()
        direction = (args.get("dir") or "").strip().lower()
        try:
            page = max(1, int(args.get("page") or 1))
        except ValueError:
            page = 1
        return cls(level=level if level in LEVELS else None, state=state if state in STATES else None,
                   q=(args.get("q") or "").strip()[:200], sort=sort if sort in SORTS else "created",
                   direction=direction if direction in ("asc", "desc") else ("desc" if sort in ("created", "updated") else "asc"),
                   page=min(page, 10 ** 6))


def _state_of(rule: Override, now: datetime) -> str:
    if not rule.active:
        return "inactive"
    if is_one_run_rule(rule):
        return "run"
    if rule.valid_until is not None and rule.valid_until <= now:
        return "expired"
    if rule.valid_from is not None and rule.valid_from > now:
        return "upcoming"
    return "current"


def list_overrides(filters: OverrideFilters, now: datetime, per_page: int = PER_PAGE
                   ) -> tuple[list[OverrideRow], int, int]:
    """(rows of this page, total rows, page) — one count query and one page query."""
    base = (select(Override, Job.job_name, Customer.name, User.username)
            .outerjoin(Job, Job.id == Override.job_id)
            .outerjoin(Customer, Customer.id == Job.customer_id)
            .outerjoin(User, User.id == Override.created_by_id))
    conds = []
    if filters.level:
        conds.append(Override.level == filters.level)
    one_run = one_run_rule_sql()
    if filters.state == "current":
        conds += [Override.active.is_(True), or_(Override.valid_until.is_(None), Override.valid_until > now),
                  or_(Override.valid_from.is_(None), Override.valid_from <= now), ~one_run]
    elif filters.state == "run":
        conds += [Override.active.is_(True), one_run]
    elif filters.state == "expired":
        conds += [Override.active.is_(True), Override.valid_until <= now, ~one_run]
    elif filters.state == "inactive":
        conds.append(Override.active.is_(False))
    elif filters.state == "upcoming":
        conds += [Override.active.is_(True), Override.valid_from > now, ~one_run]
    if filters.q:
        conds.append(contains_text((
            Override.software, Override.backup_type, Override.job_name_pattern, Override.object_name,
            Override.match_text, Override.comment, Job.job_name, Customer.name), filters.q))
    if conds:
        base = base.where(and_(*conds))
    total = db.session.execute(select(func.count()).select_from(base.with_only_columns(Override.id).subquery())
                               ).scalar_one()
    last = max(1, (total + per_page - 1) // per_page)
    page = min(filters.page, last)
    col = SORTS[filters.sort]
    order = col.asc().nulls_last() if filters.direction == "asc" else col.desc().nulls_last()
    q = base.order_by(order, Override.id.desc()).limit(per_page).offset((page - 1) * per_page)
    rows = [OverrideRow(rule, job_name, customer_name, username, _state_of(rule, now))
            for rule, job_name, customer_name, username in db.session.execute(q).all()]
    _attach_applied_runs([r for r in rows if r.state == "run"])
    return rows, total, page


def _attach_applied_runs(rows: list[OverrideRow]) -> None:
    """The runs each "this run only" rule covers (its job's runs that started in its window), in
    ONE query for the whole page."""
    if not rows:
        return
    windows = [and_(JobRun.job_id == r.rule.job_id, JobRun.started_at >= r.rule.valid_from,
                    JobRun.started_at < r.rule.valid_until) for r in rows]
    found = db.session.execute(select(JobRun.id, JobRun.job_id, JobRun.started_at).where(or_(*windows))
                               .order_by(JobRun.started_at, JobRun.id)).all()
    for row in rows:
        rule = row.rule
        row.runs = [AppliedRun(rid, jid, started) for rid, jid, started in found
                    if jid == rule.job_id and rule.valid_from <= started < rule.valid_until]


def unreviewed_runs_using(rule_id: int) -> int:
    """How many unreviewed runs the rule currently decides (the run itself or one of its objects)."""
    by_object = select(RunObject.job_run_id).where(RunObject.override_id == rule_id)
    return db.session.execute(
        select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None),
                                            or_(JobRun.override_id == rule_id, JobRun.id.in_(by_object)))
    ).scalar_one()


def software_choices() -> list[str]:
    return list(db.session.execute(select(Job.software).where(Job.software != "").distinct()
                                   .order_by(Job.software)).scalars())


def backup_type_choices() -> list[str]:
    return list(db.session.execute(select(Job.backup_type).where(Job.backup_type.is_not(None), Job.backup_type != "")
                                   .distinct().order_by(Job.backup_type)).scalars())
