"""Daily Jobs: every job expected on one day (in the UI timezone) and every job that ran that day,
with the day's status. The rules (documented on the Daily Jobs help page):

* A job is **expected** on a day when its effective schedule (manual, else learned) has a slot on
  that local day: daily, the right weekday, the right day of the month, every N days. Jobs of
  inactive customers, archived jobs and days before the job was added are never expected.
* A run belongs to the day its backup **started** (``started_at``) in the UI timezone; a generated
  Missed run starts at its slot.
* The day's status of a job with runs that day follows the Settings rule (worst/last/best, see
  ``status.day_run``); an overridden run shows "Success (override)".
* Whether an expected slot without a run that day is **Missed** or **Expected** is decided by
  ``missed_runs.slot_verdict``, the one definition the dashboard and the missed-run loop share:
  stored Missed runs are the source of truth for the slots the loop has decided; a slot still
  awaiting the loop is Missed once slot + grace has passed, else Expected; a slot from before the
  schedule existed or before the job was added is not expected at all. A real run of the slot that
  started just across midnight (within the slot's window, ``schedules.slot_window``) counts for the
  slot: its status is shown with a note.
* A slot inside a maintenance window of the job or its customer (``services.quiet``) that has no
  run shows **Maintenance** instead of Missed or Expected (the loop makes no Missed run for it).
  A job snoozed now carries a "Snoozed until …" marker (``view.snoozes``, read per page, not cached).
* ``day_counts`` gives the counts per shown status (the dashboard's cards), from the same rows.

``row_status`` decides one row from the job's schedule, the day's slot and runs and the moment,
without the database; ``build_day`` and ``day_counts`` query, then call it for every job.

Queries per page, whatever the number of jobs or runs: the day's fingerprint, then (only when the
rows are not cached) the candidate jobs, the runs around the day and the maintenance windows; the
customers for the filter, the tickets and the remarks of the shown runs, the snoozes in force.

The rows of a day are cached per process (``_DayCache``, bounded: 32 entries, ``DAY_CACHE_ROWS`` rows, an
entry unread for ``DAY_CACHE_IDLE`` by the callers' clock is dropped): a row depends only on the jobs, the
customers, the runs around the day, the settings (zone, rule) and the moment. The cache entry is
used while the day's fingerprint is unchanged — one cheap statement over the jobs, the customers
and the runs around the day: their count and the sum of their row versions (``xmin``, ``ctid``), which any
insert, update or delete changes — and while no slot, deadline or catch-up limit of its rows has
been passed by the clock. So a late run, a review, an override, a schedule or job change shows at
once, in every web process, and a settled past day is computed once.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Optional, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, cast, exists, func, or_, select, text
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Customer, Job, JobRun
from . import scope
from .missed_runs import CATCH_UP_LIMIT, EXPECTED_SLOT, MISSED_SLOT, RAN_SLOT, slot_verdict
from .schedules import (
    EARLY_LIMIT,
    LATE_LIMIT,
    describe_schedule,
    effective_schedule,
    is_scheduled,
    next_slot,
    slot_window,
)
from .status import (
    EXPECTED,
    FAILED,
    MAINTENANCE,
    MISSED,
    OVERRIDE_SUCCESS,
    STATUS_ORDER,
    SUCCESS,
    WARNING,
    RunColumns,
    day_run,
    display_status,
)
from .quiet import active_snoozes, snooze_of, window_for, windows_for
from .tickets import remarks_for_runs, tickets_for_runs
from .timezones import day_bounds_utc, local_day

PER_PAGE = 200
# The status filter: a word in the URL -> the shown statuses it selects.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "failed": (FAILED,),
    "missed": (MISSED,),
    "warning": (WARNING,),
    "success": (SUCCESS, OVERRIDE_SUCCESS),
    "override": (OVERRIDE_SUCCESS,),
    "expected": (EXPECTED,),
    "maintenance": (MAINTENANCE,),
}
STATUS_FILTER_LABELS = {"failed": "Failed", "missed": "Missed", "warning": "Warning",
                        "success": "Success (incl. override)", "override": "Success (override) only",
                        "expected": "Expected", "maintenance": "Maintenance"}
MESSAGE_PREVIEW = 300


_JOB_COLUMNS = ("id", "customer_id", "job_name", "software", "backup_type", "manual_schedule",
                "learned_schedule", "created_at", "next_expected_slot")


@dataclass(slots=True)
class DayJob:
    """The columns of a job the page reads (``schedules.effective_schedule`` accepts it)."""
    id: int
    customer_id: int
    job_name: str
    software: str
    backup_type: Optional[str]
    manual_schedule: Optional[dict]
    learned_schedule: Optional[dict]
    created_at: Optional[datetime]
    next_expected_slot: Optional[datetime]


@dataclass(slots=True)
class DayRun(RunColumns):
    """The columns of a run the page reads: those the status rules read, and these."""
    reviewed: bool
    preview: Optional[str] = None   # the first characters of its message


@dataclass
class DayRow:
    job: DayJob
    customer_id: int
    customer_name: str
    schedule_text: str
    expected: bool                      # the schedule has a slot on this day
    slot: Optional[datetime]            # UTC
    deadline: Optional[datetime]        # slot + grace, UTC
    runs: list[DayRun]                  # the runs that started on this day, oldest first
    status: str                         # the day's shown status
    status_run: Optional[DayRun] = None  # the run whose status stands for the day
    note: Optional[str] = None


@dataclass
class DayGroup:
    customer_id: int
    customer_name: str
    rows: list[DayRow] = field(default_factory=list)


@dataclass
class DailyJobsView:
    day: date
    today: date
    rule: str
    zone: ZoneInfo
    groups: list[DayGroup]
    counts: dict[str, int]       # shown status -> number of jobs (before the status filter)
    total: int                   # rows after the filters (all pages)
    page: int
    per_page: int
    customers: list[tuple[int, str]]
    customer_id: Optional[int]
    status_filter: Optional[str]
    tickets: dict = field(default_factory=dict)
    remarks: dict = field(default_factory=dict)
    snoozes: dict = field(default_factory=dict)  # job id -> quiet.ActiveSnooze (its own or its customer's)

    @property
    def prev_day(self) -> date:
        return self.day - timedelta(days=1)

    @property
    def next_day(self) -> date:
        return self.day + timedelta(days=1)

    @property
    def shown_rows(self) -> int:
        return sum(len(g.rows) for g in self.groups)


def parse_status_filter(value: Optional[str]) -> Optional[str]:
    """The status word from the URL (case-insensitive); ValueError with the allowed words."""
    if value is None or not str(value).strip():
        return None
    key = str(value).strip().lower()
    if key == "success (override)":
        key = "override"
    if key not in STATUS_FILTERS:
        raise ValueError(f"Unknown status '{str(value)[:30]}': use one of {', '.join(STATUS_FILTERS)}.")
    return key


def slot_on(schedule: Optional[dict], day_start: datetime, day_end: datetime, zone: ZoneInfo
            ) -> Optional[datetime]:
    """The schedule's slot (UTC) on the local day [day_start, day_end), or None when it has none."""
    slot = next_slot(schedule, day_start - timedelta(microseconds=1), zone)
    return slot if slot is not None and slot < day_end else None


def _candidate_filter(q, customer_id: Optional[int]):
    q = q.where(Job.archived.is_(False), Customer.active.is_(True))
    if customer_id is not None:
        q = q.where(Job.customer_id == customer_id)
    return q


def _hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


@dataclass(frozen=True)
class RowStatus:
    """What ``row_status`` decides for one job on one day."""
    status: str                          # the day's shown status
    expected: bool                       # the schedule has a slot on this day
    slot: Optional[datetime] = None      # UTC
    deadline: Optional[datetime] = None  # slot + grace, UTC
    status_run: Optional[DayRun] = None  # the run whose status stands for the day
    note: Optional[str] = None


def row_status(schedule: Optional[dict], slot: Optional[datetime], runs: Sequence, now: datetime, *,
               zone: ZoneInfo, rule: str = "worst", created_at: Optional[datetime] = None,
               next_expected_slot: Optional[datetime] = None, nearby: Sequence = (),
               window: Optional[tuple[datetime, datetime]] = None,
               maintenance: Optional[str] = None) -> Optional[RowStatus]:
    """The Daily Jobs status of one job on one day (the rules in the module docstring); no database.

    ``schedule`` is the job's effective schedule, ``slot`` its slot on the day (``slot_on``; None
    when it has none), ``runs`` the job's runs that started on the day (oldest first), ``nearby``
    its real runs just outside the day (a slot's window may reach across midnight), ``created_at``
    and ``next_expected_slot`` the job's columns, ``window`` the slot's window when known
    (``schedules.slot_window``), ``maintenance`` the reason of the maintenance window the slot lies
    in (None: none). None: the job is not listed on that day.
    """
    verdict = slot_verdict(schedule, slot, created_at=created_at, next_expected_slot=next_expected_slot,
                           now=now, zone=zone, real_runs=() if runs else nearby, window=window)
    if verdict is None and not runs:
        return None
    if not runs and maintenance is not None and verdict.state != RAN_SLOT:
        # no Missed run is made for a slot in maintenance: say why nothing is expected
        return RowStatus(MAINTENANCE, expected=True, slot=verdict.slot, deadline=verdict.deadline,
                         note=f"maintenance window at {_hhmm(verdict.slot, zone)}: {maintenance}")
    if not runs and verdict.state not in (EXPECTED_SLOT, MISSED_SLOT, RAN_SLOT):
        return None  # settled without a Missed run: the schedule was not in force at that slot
    slot_fields = dict(expected=verdict is not None, slot=verdict.slot if verdict else None,
                       deadline=verdict.deadline if verdict else None)
    if runs:
        run = day_run(runs, rule)
        return RowStatus(display_status(run), status_run=run, **slot_fields)
    if verdict.state == RAN_SLOT:
        run = day_run(verdict.runs, rule)
        when = run.started_at.astimezone(zone)
        return RowStatus(display_status(run), status_run=run, **slot_fields,
                         note=f"ran {when:%Y-%m-%d %H:%M} (across midnight), counted for this day's slot")
    if verdict.state == MISSED_SLOT:
        return RowStatus(MISSED, **slot_fields, note=f"no run arrived; due by {_hhmm(verdict.deadline, zone)}"
                                                     " (the missed-run check records it within minutes)")
    late = f", late but within grace until {_hhmm(verdict.deadline, zone)}" if now >= verdict.slot else ""
    return RowStatus(EXPECTED, **slot_fields, note=f"expected at {_hhmm(verdict.slot, zone)}{late}")


def _candidates(customer_id: Optional[int]) -> list[tuple[DayJob, str]]:
    """Jobs that may be listed: not archived, of active customers (with the customer's name). Plain
    rows, not ORM entities: a large service provider has thousands of jobs and the page only reads
    a few columns. The schedules come as text and each distinct one is decoded once (jobs share
    few schedules)."""
    columns = [cast(Job.manual_schedule, Text) if f == "manual_schedule" else
               cast(Job.learned_schedule, Text) if f == "learned_schedule" else getattr(Job, f)
               for f in _JOB_COLUMNS]
    jobs_q = _candidate_filter(
        select(*columns, Customer.name).join(Customer, Customer.id == Job.customer_id),
        customer_id).order_by(func.lower(Customer.name), Customer.id, func.lower(Job.job_name), Job.id)
    decoded: dict[Optional[str], Optional[dict]] = {None: None}
    manual_at, learned_at = _JOB_COLUMNS.index("manual_schedule"), _JOB_COLUMNS.index("learned_schedule")
    out = []
    for row in db.session.execute(jobs_q):
        values = list(row[:-1])
        for i in (manual_at, learned_at):
            raw = values[i]
            if raw not in decoded:
                decoded[raw] = json.loads(raw)
            values[i] = decoded[raw]
        out.append((DayJob(*values), row[-1]))
    return out


def _runs_around(day_start: datetime, day_end: datetime, customer_id: Optional[int]
                 ) -> tuple[dict[int, list[DayRun]], dict[int, list[DayRun]]]:
    """The candidates' runs of the day, plus — for jobs without a run that day — real runs within
    reach of a slot's window across midnight, per job id: (on the day, nearby). One query, only the
    columns the page reads."""
    in_day = and_(JobRun.started_at >= day_start, JobRun.started_at < day_end)
    other = aliased(JobRun)
    runs_q = _candidate_filter(
        select(JobRun.id, JobRun.job_id, JobRun.status, JobRun.effective_status, JobRun.override_id,
               JobRun.started_at, JobRun.missed, JobRun.reviewed_at.is_not(None),
               func.substr(JobRun.message, 1, MESSAGE_PREVIEW))
        .join(Job, Job.id == JobRun.job_id).join(Customer, Customer.id == Job.customer_id)
        .where(JobRun.started_at >= day_start - EARLY_LIMIT, JobRun.started_at < day_end + LATE_LIMIT)
        .where(or_(in_day, and_(
            JobRun.missed.is_(False),
            ~exists().where(other.job_id == JobRun.job_id, other.started_at >= day_start,
                            other.started_at < day_end)))),
        customer_id).order_by(JobRun.started_at, JobRun.id)
    on_day: dict[int, list[DayRun]] = defaultdict(list)
    nearby: dict[int, list[DayRun]] = defaultdict(list)
    for row in db.session.execute(runs_q):
        run = DayRun(*row)
        (on_day if day_start <= run.started_at < day_end else nearby)[run.job_id].append(run)
    return on_day, nearby


def _compute_day_rows(day: date, zone: ZoneInfo, now: datetime, rule: str,
                      customer_id: Optional[int], has_windows: bool = True) -> list[DayRow]:
    """The rows of a day with their shown status, before the status filter and paging (two queries,
    three when a maintenance window exists: ``has_windows``, known from the fingerprint)."""
    day_start, day_end = day_bounds_utc(day, zone)
    candidates = _candidates(customer_id)
    on_day, nearby = _runs_around(day_start, day_end, customer_id)
    windows = windows_for(all_=True) if has_windows else []  # few rows: every window, one query
    rows: list[DayRow] = []
    # What a schedule means for the day (its slot, the slot's window, its description), worked out
    # once per distinct schedule: a provider's thousands of jobs share a few hundred schedules.
    facts: dict[tuple[int, int], tuple] = {}
    for job, customer_name in candidates:
        schedule = effective_schedule(job)
        key = (id(job.manual_schedule), id(job.learned_schedule))  # the decoded objects are shared
        known = facts.get(key)
        if known is None:
            slot = slot_on(schedule, day_start, day_end, zone)
            window = slot_window(schedule, slot, zone) if slot is not None and is_scheduled(schedule) else None
            known = facts[key] = (slot, window, describe_schedule(schedule))
        slot, window, schedule_text = known
        runs = on_day.get(job.id, [])
        in_window = window_for(windows, job.id, job.customer_id, slot) if windows and slot is not None else None
        shown = row_status(schedule, slot, runs, now, zone=zone, rule=rule, created_at=job.created_at,
                           next_expected_slot=job.next_expected_slot, nearby=nearby.get(job.id, ()), window=window,
                           maintenance=in_window.reason if in_window is not None else None)
        if shown is None:
            continue
        rows.append(DayRow(job=job, customer_id=job.customer_id, customer_name=customer_name,
                           schedule_text=schedule_text, expected=shown.expected, slot=shown.slot,
                           deadline=shown.deadline, runs=runs, status=shown.status,
                           status_run=shown.status_run, note=shown.note))
    return rows


def _valid_until(rows: list[DayRow], now: datetime) -> Optional[datetime]:
    """The first moment after ``now`` at which the clock alone could change one of the rows: a slot
    (the "late" note), a deadline (Expected -> Missed) or a slot leaving the catch-up limit
    (``missed_runs.awaiting_check``). None: no such moment (a settled day)."""
    moments = [m for row in rows if row.slot is not None
               for m in (row.slot, row.deadline, row.slot + CATCH_UP_LIMIT) if m is not None and m > now]
    return min(moments) if moments else None


# One statement: what the rows of a day are computed from, as counts and sums over row versions
# (a row's xmin and ctid: any insert, update or delete changes the sum, within a transaction too).
_VERSIONS = "count(*), coalesce(sum(hashtextextended(xmin::text || ctid::text, 0)), 0)"
_FINGERPRINT = text(
    f"SELECT j.*, c.*, r.*, m.* FROM (SELECT {_VERSIONS} FROM jobs) j, (SELECT {_VERSIONS} FROM customers) c,"
    f" (SELECT {_VERSIONS} FROM job_runs WHERE started_at >= :lo AND started_at < :hi) r,"
    f" (SELECT {_VERSIONS} FROM maintenance_windows) m")


def _fingerprint(day_start: datetime, day_end: datetime) -> tuple:
    return tuple(db.session.execute(_FINGERPRINT, {"lo": day_start - EARLY_LIMIT, "hi": day_end + LATE_LIMIT}).one())


@dataclass
class _CachedDay:
    fingerprint: tuple
    computed_at: datetime
    valid_until: Optional[datetime]
    rows: list[DayRow]
    used_at: Optional[datetime] = None  # the latest ``now`` it was stored or read at


#: An entry not read for this long (by the callers' clock, ``now``) is dropped: a day the background
#: loops computed once (the digest's yesterday, a report's days) must not stay for weeks in the worker.
DAY_CACHE_IDLE = timedelta(hours=1)
#: At most this many rows over all entries (a row holds its job and the day's runs): the entry count
#: alone would let 32 days of every job stay in a long-running process.
DAY_CACHE_ROWS = 20_000


class _DayCache:
    """The computed rows of the last few (day, zone, rule, customer) views in this process: at most
    ``size`` entries and ``max_rows`` rows, none left unread for ``idle`` (bounded memory)."""

    def __init__(self, size: int = 32, max_rows: int = DAY_CACHE_ROWS, idle: timedelta = DAY_CACHE_IDLE):
        self.size, self.max_rows, self.idle = size, max_rows, idle
        self._entries: OrderedDict[tuple, _CachedDay] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def rows(self) -> int:
        """The rows held over all entries."""
        return self._rows

    def get(self, key: tuple, fingerprint: tuple, now: datetime) -> Optional[list[DayRow]]:
        with self._lock:
            self._evict_idle(now)
            entry = self._entries.get(key)
            if entry is None or entry.fingerprint != fingerprint or now < entry.computed_at \
                    or (entry.valid_until is not None and now >= entry.valid_until):
                return None
            self._entries.move_to_end(key)
            entry.used_at = max(entry.used_at or now, now)
            return entry.rows

    def put(self, key: tuple, entry: _CachedDay) -> None:
        with self._lock:
            entry.used_at = entry.used_at or entry.computed_at
            old = self._entries.pop(key, None)
            if old is not None:
                self._rows -= len(old.rows)
            self._entries[key] = entry
            self._rows += len(entry.rows)
            self._evict_idle(entry.computed_at)
            while len(self._entries) > 1 and (len(self._entries) > self.size or self._rows > self.max_rows):
                _key, dropped = self._entries.popitem(last=False)
                self._rows -= len(dropped.rows)

    def _evict_idle(self, now: datetime) -> None:
        stale = [k for k, e in self._entries.items() if e.used_at is not None and e.used_at + self.idle < now]
        for k in stale:
            self._rows -= len(self._entries.pop(k).rows)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rows = 0


day_cache = _DayCache()


def _day_rows(day: date, zone: ZoneInfo, now: datetime, rule: str, customer_id: Optional[int]) -> list[DayRow]:
    """The rows of a day (``_compute_day_rows``), from the cache while nothing they depend on changed."""
    day_start, day_end = day_bounds_utc(day, zone)
    fingerprint = _fingerprint(day_start, day_end)
    key = (str(db.engine.url), day, zone.key, rule, customer_id)
    rows = day_cache.get(key, fingerprint, now)
    if rows is None:
        rows = _compute_day_rows(day, zone, now, rule, customer_id, has_windows=fingerprint[6] > 0)
        day_cache.put(key, _CachedDay(fingerprint, now, _valid_until(rows, now), rows))
    return rows


def _count(rows: list[DayRow]) -> dict[str, int]:
    counts = {s: 0 for s in STATUS_ORDER}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def day_counts(day: date, zone: ZoneInfo, now: datetime, rule: str = "worst",
               customer_id: Optional[int] = None) -> dict[str, int]:
    """How many jobs show each status on Daily Jobs for ``day`` at ``now`` (all customers, or one):
    the dashboard's cards and a customer's status badge, from the very rows the page lists. Two queries."""
    return _count(_day_rows(day, zone, now, rule, customer_id))


def build_day(day: date, zone: ZoneInfo, now: datetime, rule: str = "worst", customer_id: Optional[int] = None,
              status_filter: Optional[str] = None, page: int = 1, per_page: int = PER_PAGE,
              with_links: bool = True, user=None) -> DailyJobsView:
    """Everything the Daily Jobs page shows for ``day`` (a local calendar day in ``zone``) as seen
    at ``now`` (UTC; tests pass a frozen moment). Raises ValueError for a bad status filter or rule.

    With ``user``, only the customers that user may see (``scope``: a portal user's own), in the
    rows, the counts and the customer filter; a portal user gets no tickets, remarks or snoozes."""
    if status_filter is not None and status_filter not in STATUS_FILTERS:
        raise ValueError(f"Unknown status filter '{status_filter}'.")
    visible = scope.visible_customer_ids(user) if user is not None else None
    rows = _day_rows(day, zone, now, rule, customer_id)
    if visible is not None:  # the cached rows are shared by everyone: the scope is applied to them here
        rows = [r for r in rows if r.customer_id in visible]
    internal = user is None or scope.sees_internal_notes(user)
    counts = _count(rows)
    if status_filter:
        wanted = STATUS_FILTERS[status_filter]
        rows = [r for r in rows if r.status in wanted]

    total = len(rows)
    last_page = max(1, (total + per_page - 1) // per_page)
    page = min(max(1, page), last_page)
    page_rows = rows[(page - 1) * per_page: page * per_page]
    if not internal:  # a maintenance window's reason is the provider's own note: the time only
        page_rows = [replace(r, note=f"maintenance window at {_hhmm(r.slot, zone)}")
                     if r.status == MAINTENANCE and r.slot is not None else r for r in page_rows]
    groups: list[DayGroup] = []
    for row in page_rows:
        if not groups or groups[-1].customer_id != row.customer_id:
            groups.append(DayGroup(row.customer_id, row.customer_name))
        groups[-1].rows.append(row)

    # 3. Customers for the filter; 4./5. tickets and remarks of the shown runs (two queries).
    choices = select(Customer.id, Customer.name).where(Customer.active.is_(True))
    if user is not None:
        choices = scope.restrict(choices, Customer.id, user)
    customers = [(cid, name) for cid, name in db.session.execute(choices.order_by(func.lower(Customer.name)))]
    tickets: dict = {}
    remarks: dict = {}
    if with_links and internal:
        run_ids = [r.id for row in page_rows for r in row.runs]
        run_ids += [row.status_run.id for row in page_rows if row.status_run is not None and not row.runs]
        tickets = tickets_for_runs(run_ids)
        remarks = remarks_for_runs(run_ids)
    # 6. The snoozes in force for the shown jobs (read every time: a snooze ends with the clock).
    snoozes: dict = {}
    if internal:
        in_force = active_snoozes([r.job.id for r in page_rows], [r.customer_id for r in page_rows], now)
        snoozes = {r.job.id: s for r in page_rows if (s := snooze_of(in_force, r.job.id, r.customer_id)) is not None}

    return DailyJobsView(day=day, today=local_day(now, zone), rule=rule, zone=zone, groups=groups,
                         counts=counts, total=total, page=page, per_page=per_page, customers=customers,
                         customer_id=customer_id, status_filter=status_filter, tickets=tickets, remarks=remarks,
                         snoozes=snoozes)

