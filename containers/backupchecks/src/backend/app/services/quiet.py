"""Snoozes and maintenance windows: the one home of "this job is quiet now".

* A **snooze** holds the alerts of a job, or of every job of a customer, until a moment (UTC),
  with a short reason. Whoever reviews runs in Run Checks may snooze; the one who made a snooze and
  every admin may lift it. An expired snooze simply stops applying (no clean-up needed).
* A **maintenance window** (admins) says a job or a customer's jobs are not expected to report:
  one-off (start, end in UTC) or weekly (days of the week, a wall-clock start time in the UI
  timezone, and a length or a wall-clock end time; DST-correct: 02:00 local stays 02:00 local).
  A schedule slot inside a window gets no Missed run (``missed_runs``), Daily Jobs shows it as
  "Maintenance", and the alerts of a run that started inside one are held.
* Held alerts: ``hold_for_runs`` marks the outbox rows of such runs ``held`` with the reason in
  ``last_error`` (one UPDATE), so the sender never picks them; an admin may send one anyway (Retry).

The rules (validation, "is this instant inside this window") are pure functions at the top; the
database functions below them read and write around them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Optional, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, text

from ..extensions import db
from ..models import Customer, Job, JobRun, MaintenanceWindow, Snooze
from . import audit

REASON_MAX = 200
MAX_SNOOZE = timedelta(days=366)
MAX_WINDOW = timedelta(days=366)        # a one-off window
MAX_WEEKLY = timedelta(days=7)          # one weekly occurrence
QUICK_CHOICES = {"1d": ("1 day", timedelta(days=1)), "3d": ("3 days", timedelta(days=3)),
                 "1w": ("1 week", timedelta(weeks=1))}
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ONCE, WEEKLY = "once", "weekly"


class QuietError(ValueError):
    """A snooze or window that can't be saved; the message says why and what to do."""


# --- Pure rules -------------------------------------------------------------------------------------

def clean_reason(reason: Optional[str]) -> str:
    text_ = " ".join((reason or "").split())
    if not text_:
        raise QuietError("Give a reason (a few words, e.g. \"migrating the NAS\"); it is shown next to the job.")
    if len(text_) > REASON_MAX:
        raise QuietError(f"The reason is too long ({len(text_)} characters); keep it under {REASON_MAX}.")
    return text_


def parse_local(value: Optional[str], zone: ZoneInfo, what: str = "date and time") -> datetime:
    """A ``YYYY-MM-DDTHH:MM`` (a datetime-local field) in ``zone`` as UTC; QuietError when it is not one."""
    raw = (value or "").strip()
    try:
        local = datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError:
        raise QuietError(f"Choose a {what} (YYYY-MM-DD HH:MM), e.g. 2026-12-05 08:00.") from None
    if local.tzinfo is not None:
        local = local.replace(tzinfo=None)
    return local.replace(tzinfo=zone).astimezone(timezone.utc)


def parse_clock(value: Optional[str], what: str) -> time:
    try:
        return time.fromisoformat((value or "").strip())
    except ValueError:
        raise QuietError(f"Give the {what} as HH:MM, e.g. 22:00.") from None


def snooze_until(choice: Optional[str], custom: Optional[str], now: datetime, zone: ZoneInfo) -> datetime:
    """The end of a snooze (UTC) from the form: a date and time in ``zone`` when one is given (or
    ``choice`` is "custom"), else a quick choice (1d, 3d, 1w from ``now``). QuietError for an
    unknown choice, a moment that is not in the future, or one more than a year ahead."""
    choice = (choice or "").strip()
    if choice in QUICK_CHOICES and not (custom or "").strip():
        return now + QUICK_CHOICES[choice][1]
    if choice not in ("", "custom", *QUICK_CHOICES):
        raise QuietError("Choose 1 day, 3 days, 1 week or a date and time.")
    until = parse_local(custom, zone)
    return check_snooze_until(until, now, zone)


def check_snooze_until(until: datetime, now: datetime, zone: ZoneInfo) -> datetime:
    if until <= now:
        raise QuietError(f"{until.astimezone(zone):%Y-%m-%d %H:%M} has already passed: "
                         "choose a moment in the future to snooze until.")
    if until - now > MAX_SNOOZE:
        raise QuietError("A snooze lasts at most a year; for a job that no longer runs, archive it instead.")
    return until


def parse_weekdays(values: Iterable[str]) -> tuple[int, ...]:
    days = set()
    for v in values:
        v = str(v).strip()
        if v.isdigit() and 0 <= int(v) <= 6:
            days.add(int(v))
        elif v:
            raise QuietError(f"'{v[:10]}' is not a day of the week.")
    return tuple(sorted(days))


@dataclass(frozen=True)
class Window:
    """A maintenance window as the rules read it (``MaintenanceWindow`` rows and forms alike)."""
    kind: str
    reason: str
    zone: str = "UTC"
    starts_at: Optional[datetime] = None       # once, UTC
    ends_at: Optional[datetime] = None         # once, UTC
    weekdays: tuple[int, ...] = ()             # weekly, 0 = Monday
    local_start: Optional[time] = None         # weekly, wall clock in zone
    local_end: Optional[time] = None           # weekly, wall clock (next day when <= start)
    duration_minutes: Optional[int] = None     # weekly, or a length
    job_id: Optional[int] = None
    customer_id: Optional[int] = None
    id: Optional[int] = None

    @classmethod
    def of(cls, row: MaintenanceWindow) -> "Window":
        days = tuple(int(d) for d in (row.weekdays or "").split(",") if d.strip())
        return cls(kind=row.kind, reason=row.reason, zone=row.zone, starts_at=row.starts_at, ends_at=row.ends_at,
                   weekdays=days, local_start=row.local_start, local_end=row.local_end,
                   duration_minutes=row.duration_minutes, job_id=row.job_id, customer_id=row.customer_id, id=row.id)

    def occurrence(self, day: date) -> tuple[datetime, datetime]:
        """A weekly window's [start, end) in UTC when it starts on local ``day`` (any weekday)."""
        z = ZoneInfo(self.zone)
        start = datetime.combine(day, self.local_start, tzinfo=z)
        if self.duration_minutes is not None:
            start_utc = start.astimezone(timezone.utc)
            return start_utc, start_utc + timedelta(minutes=self.duration_minutes)
        end_day = day if self.local_end > self.local_start else day + timedelta(days=1)
        end = datetime.combine(end_day, self.local_end, tzinfo=z)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def contains(self, moment: datetime) -> bool:
        """Whether the UTC instant ``moment`` lies inside the window: [start, end)."""
        return self.occurrence_at(moment) is not None

    def occurrence_at(self, moment: datetime) -> Optional[tuple[datetime, datetime]]:
        """The occurrence [start, end) that holds ``moment``, or None."""
        if self.kind == ONCE:
            return (self.starts_at, self.ends_at) if self.starts_at <= moment < self.ends_at else None
        local_day = moment.astimezone(ZoneInfo(self.zone)).date()
        for back in range(0, 8):  # an occurrence lasts at most a week
            day = local_day - timedelta(days=back)
            if day.weekday() not in self.weekdays:
                continue
            lo, hi = self.occurrence(day)
            if lo <= moment < hi:
                return lo, hi
        return None

    def next_occurrence(self, moment: datetime) -> Optional[tuple[datetime, datetime]]:
        """The occurrence in force at ``moment`` or the next one to start (None: none to come)."""
        now_in = self.occurrence_at(moment)
        if now_in is not None:
            return now_in
        if self.kind == ONCE:
            return (self.starts_at, self.ends_at) if self.starts_at > moment else None
        local_day = moment.astimezone(ZoneInfo(self.zone)).date()
        for ahead in range(0, 9):
            day = local_day + timedelta(days=ahead)
            if day.weekday() in self.weekdays:
                lo, hi = self.occurrence(day)
                if lo > moment:
                    return lo, hi
        return None

    def describe(self) -> str:
        """In words, in the window's zone."""
        z = ZoneInfo(self.zone)
        if self.kind == ONCE:
            return f"{self.starts_at.astimezone(z):%Y-%m-%d %H:%M} – {self.ends_at.astimezone(z):%Y-%m-%d %H:%M}"
        days = ", ".join(WEEKDAY_NAMES[d] for d in self.weekdays)
        if self.duration_minutes is not None:
            h, m = divmod(self.duration_minutes, 60)
            length = f"for {h} h" + (f" {m} min" if m else "") if h else f"for {m} min"
        else:
            nxt = " (next day)" if self.local_end <= self.local_start else ""
            length = f"until {self.local_end:%H:%M}{nxt}"
        return f"every {days} from {self.local_start:%H:%M} {length}"


def validate_window(w: Window) -> Window:
    """The window when it can be saved; QuietError with what to fix otherwise (nothing is saved)."""
    reason = clean_reason(w.reason)
    if w.kind == ONCE:
        if w.starts_at is None or w.ends_at is None:
            raise QuietError("Give the start and the end of the window.")
        if w.ends_at <= w.starts_at:
            raise QuietError("The window ends before it starts (or has no length): choose an end after the start.")
        if w.ends_at - w.starts_at > MAX_WINDOW:
            raise QuietError("A one-off window lasts at most a year.")
        return Window(**{**w.__dict__, "reason": reason, "weekdays": (), "local_start": None, "local_end": None,
                         "duration_minutes": None})
    if w.kind != WEEKLY:
        raise QuietError("Choose a one-off or a weekly window.")
    if not w.weekdays:
        raise QuietError("Choose at least one day of the week for a weekly window.")
    if w.local_start is None:
        raise QuietError("Give the start time of the weekly window.")
    if (w.duration_minutes is None) == (w.local_end is None):
        raise QuietError("Give either a length (in minutes) or an end time for the weekly window.")
    if w.duration_minutes is not None:
        if w.duration_minutes <= 0:
            raise QuietError("The window has no length: give a length of at least one minute.")
        if timedelta(minutes=w.duration_minutes) > MAX_WEEKLY:
            raise QuietError("A weekly window lasts at most 7 days (10080 minutes).")
    elif w.local_end == w.local_start:
        raise QuietError("The window ends when it starts (no length): choose another end time.")
    ZoneInfo(w.zone)
    return Window(**{**w.__dict__, "reason": reason, "starts_at": None, "ends_at": None})


def window_for(windows: Sequence[Window], job_id: int, customer_id: Optional[int], moment: datetime
               ) -> Optional[Window]:
    """The first window of ``windows`` that covers the job (itself or its customer) at ``moment``."""
    for w in windows:
        if (w.job_id == job_id or (w.customer_id is not None and w.customer_id == customer_id)) \
                and w.contains(moment):
            return w
    return None


def snooze_text(until: datetime, reason: str, zone: ZoneInfo) -> str:
    return f"snoozed until {until.astimezone(zone):%Y-%m-%d %H:%M}: {reason}"


def maintenance_text(w: Window) -> str:
    return f"maintenance window: {w.reason}"


# --- Reading ------------------------------------------------------------------------------------------

def windows_for(job_ids: Iterable[int] = (), customer_ids: Iterable[int] = (), *, all_: bool = False
                ) -> list[Window]:
    """The windows of these jobs and customers (or every window), one query."""
    q = select(MaintenanceWindow).order_by(MaintenanceWindow.id)
    if not all_:
        job_ids, customer_ids = list(set(job_ids)), list(set(customer_ids))
        if not job_ids and not customer_ids:
            return []
        q = q.where(or_(MaintenanceWindow.job_id.in_(job_ids), MaintenanceWindow.customer_id.in_(customer_ids)))
    return [Window.of(r) for r in db.session.execute(q).scalars()]


@dataclass(frozen=True)
class ActiveSnooze:
    id: int
    job_id: Optional[int]
    customer_id: Optional[int]
    until: datetime
    reason: str
    created_by_id: Optional[int]

    @property
    def scope(self) -> str:
        return "job" if self.job_id is not None else "customer"


def active_snoozes(job_ids: Iterable[int], customer_ids: Iterable[int], now: datetime) -> list[ActiveSnooze]:
    """The snoozes in force at ``now`` for these jobs or customers, one query (the partial indexes)."""
    job_ids, customer_ids = list(set(job_ids)), list(set(customer_ids))
    if not job_ids and not customer_ids:
        return []
    rows = db.session.execute(
        select(Snooze.id, Snooze.job_id, Snooze.customer_id, Snooze.until, Snooze.reason, Snooze.created_by_id)
        .where(Snooze.lifted_at.is_(None), Snooze.until > now,
               or_(Snooze.job_id.in_(job_ids), Snooze.customer_id.in_(customer_ids)))
        .order_by(Snooze.until.desc()))
    return [ActiveSnooze(*r) for r in rows]


def snooze_of(snoozes: Sequence[ActiveSnooze], job_id: int, customer_id: Optional[int]) -> Optional[ActiveSnooze]:
    """The snooze that covers a job (its own first, then its customer's), from ``active_snoozes``."""
    own = [s for s in snoozes if s.job_id == job_id]
    if own:
        return own[0]
    return next((s for s in snoozes if s.customer_id is not None and s.customer_id == customer_id), None)


@dataclass
class JobQuiet:
    """What Run Checks and the job page show about a job: its snooze (own or its customer's), the
    maintenance window it is in or the next one, and every window that applies to it."""
    snooze: Optional[ActiveSnooze]
    current: Optional[tuple[Window, datetime, datetime]]
    upcoming: Optional[tuple[Window, datetime, datetime]]
    windows: list[Window]


def job_quiet(job: Job, now: datetime) -> JobQuiet:
    """Two queries: the snoozes in force, the windows."""
    snoozes = active_snoozes([job.id], [job.customer_id], now)
    windows = windows_for([job.id], [job.customer_id])
    current = upcoming = None
    for w in windows:
        occ = w.next_occurrence(now)
        if occ is None:
            continue
        if occ[0] <= now:
            current = current or (w, *occ)
        elif upcoming is None or occ[0] < upcoming[1]:
            upcoming = (w, *occ)
    return JobQuiet(snooze_of(snoozes, job.id, job.customer_id), current, upcoming, windows)


# --- Snoozing ---------------------------------------------------------------------------------------

def _snapshot(s: Snooze) -> dict:
    return {"job_id": s.job_id, "customer_id": s.customer_id, "until": s.until, "reason": s.reason,
            "lifted_at": s.lifted_at}


def snooze(*, job: Optional[Job] = None, customer: Optional[Customer] = None, until: datetime, reason: str,
           user, now: datetime, zone: ZoneInfo) -> tuple[Snooze, bool]:
    """Snooze a job or a customer until ``until``; a snooze in force for the same target is changed
    instead of doubled. Returns (snooze, created). Audited; the caller commits. QuietError for a
    moment that passed or a missing reason (nothing is saved)."""
    if (job is None) == (customer is None):
        raise QuietError("Snooze either a job or a customer.")
    reason = clean_reason(reason)
    check_snooze_until(until, now, zone)
    target = Snooze.job_id == job.id if job is not None else Snooze.customer_id == customer.id
    current = db.session.execute(select(Snooze).where(target, Snooze.lifted_at.is_(None), Snooze.until > now)
                                 .order_by(Snooze.id.desc()).limit(1)).scalar_one_or_none()
    name = f"job '{job.job_name}'" if job is not None else f"customer '{customer.name}'"
    when = f"{until.astimezone(zone):%Y-%m-%d %H:%M}"
    if current is not None:
        before = _snapshot(current)
        current.until, current.reason = until, reason
        audit.record("snooze.change", f"Snooze of {name} changed: until {when} — {reason}", user=user,
                     target_type="snooze", target_id=current.id, before=before, after=_snapshot(current))
        return current, False
    row = Snooze(job_id=job.id if job is not None else None, customer_id=customer.id if customer is not None else None,
                 until=until, reason=reason, created_by_id=getattr(user, "id", None))
    db.session.add(row)
    db.session.flush()
    audit.record("snooze.create", f"Snoozed {name} until {when} — {reason}", user=user, target_type="snooze",
                 target_id=row.id, after=_snapshot(row))
    return row, True


def may_lift(s: Snooze, user, role: str) -> bool:
    """Admins lift any snooze; a reviewer lifts the snoozes they made."""
    return role == "admin" or (s.created_by_id is not None and s.created_by_id == getattr(user, "id", None))


def lift(s: Snooze, user, now: datetime) -> bool:
    """End a snooze now; False when it had ended already. Audited; the caller commits."""
    if s.lifted_at is not None or s.until <= now:
        return False
    before = _snapshot(s)
    s.lifted_at, s.lifted_by_id = now, getattr(user, "id", None)
    what = f"job {s.job_id}" if s.job_id is not None else f"customer {s.customer_id}"
    audit.record("snooze.lift", f"Snooze of {what} lifted ({s.reason})", user=user, target_type="snooze",
                 target_id=s.id, before=before, after=_snapshot(s))
    return True


# --- Maintenance windows ------------------------------------------------------------------------------

def window_from_form(form, zone: ZoneInfo) -> Window:
    """A validated ``Window`` from the admin form (``kind``, ``starts``/``ends`` as local date and
    time, ``weekdays``, ``local_start``, ``local_end`` or ``duration_minutes``, ``reason``,
    ``job_id`` or ``customer_id``); QuietError with what to fix."""
    kind = (form.get("kind") or "").strip()
    common = dict(kind=kind, reason=form.get("reason") or "", zone=zone.key)
    if kind == ONCE:
        w = Window(**common, starts_at=parse_local(form.get("starts"), zone, "start date and time"),
                   ends_at=parse_local(form.get("ends"), zone, "end date and time"))
    elif kind == WEEKLY:
        duration = (form.get("duration_minutes") or "").strip()
        end = (form.get("local_end") or "").strip()
        if duration and not duration.isdigit():
            raise QuietError("Give the length in whole minutes, e.g. 120.")
        w = Window(**common, weekdays=parse_weekdays(form.getlist("weekdays")),
                   local_start=parse_clock(form.get("local_start"), "start time") if form.get("local_start") else None,
                   local_end=parse_clock(end, "end time") if end else None,
                   duration_minutes=int(duration) if duration else None)
    else:
        raise QuietError("Choose a one-off or a weekly window.")
    return validate_window(w)


def _window_snapshot(row: MaintenanceWindow) -> dict:
    return {"job_id": row.job_id, "customer_id": row.customer_id, "kind": row.kind, "starts_at": row.starts_at,
            "ends_at": row.ends_at, "weekdays": row.weekdays, "local_start": row.local_start,
            "local_end": row.local_end, "duration_minutes": row.duration_minutes, "zone": row.zone,
            "reason": row.reason}


def create_window(w: Window, *, job: Optional[Job] = None, customer: Optional[Customer] = None, user
                  ) -> MaintenanceWindow:
    """Save a window for a job or a customer. Audited; the caller commits."""
    if (job is None) == (customer is None):
        raise QuietError("Choose the customer (or open the form from a job) the window is for.")
    w = validate_window(w)
    row = MaintenanceWindow(job_id=job.id if job is not None else None,
                            customer_id=customer.id if customer is not None else None, kind=w.kind,
                            starts_at=w.starts_at, ends_at=w.ends_at,
                            weekdays=",".join(str(d) for d in w.weekdays) or None, local_start=w.local_start,
                            local_end=w.local_end, duration_minutes=w.duration_minutes, zone=w.zone,
                            reason=w.reason, created_by_id=getattr(user, "id", None))
    db.session.add(row)
    db.session.flush()
    name = f"job '{job.job_name}'" if job is not None else f"customer '{customer.name}'"
    audit.record("maintenance.create", f"Maintenance window for {name}: {Window.of(row).describe()} — {w.reason}",
                 user=user, target_type="maintenance_window", target_id=row.id, after=_window_snapshot(row))
    return row


def delete_window(row: MaintenanceWindow, user) -> None:
    audit.record("maintenance.delete", f"Maintenance window {row.id} deleted ({row.reason})", user=user,
                 target_type="maintenance_window", target_id=row.id, before=_window_snapshot(row))
    db.session.delete(row)


def list_windows() -> list[tuple[MaintenanceWindow, Window, str]]:
    """Every window with what it is for (one query)."""
    rows = db.session.execute(
        select(MaintenanceWindow, Job.job_name, Customer.name)
        .outerjoin(Job, Job.id == MaintenanceWindow.job_id)
        .outerjoin(Customer, Customer.id == MaintenanceWindow.customer_id)
        .order_by(MaintenanceWindow.id.desc())).all()
    return [(r, Window.of(r), f"job {job_name}" if r.job_id else f"customer {cname}") for r, job_name, cname in rows]


# --- Held alerts ----------------------------------------------------------------------------------

_HOLD = text("""
UPDATE notification_outbox o SET state = 'held', last_error = h.reason
FROM (SELECT CAST(x ->> 'id' AS integer) AS run_id, x ->> 'reason' AS reason
      FROM json_array_elements(CAST(:held AS json)) AS x) h
WHERE o.state = 'pending' AND o.sent_at IS NULL AND o.last_error IS NULL  -- new rows, not ones an admin released
  AND o.event_key LIKE 'run:' || h.run_id || ':%'
""")


def hold_reasons(runs: Sequence[tuple[int, int, Optional[int], Optional[datetime]]], snoozes: Sequence[ActiveSnooze],
                 windows: Sequence[Window], zone: ZoneInfo) -> dict[int, str]:
    """Which runs' alerts are held and why (no database): ``runs`` are (run id, job id, customer id,
    started_at). A snooze in force wins over a maintenance window."""
    out = {}
    for run_id, job_id, customer_id, started_at in runs:
        s = snooze_of(snoozes, job_id, customer_id)
        if s is not None:
            out[run_id] = snooze_text(s.until, s.reason, zone)
            continue
        w = window_for(windows, job_id, customer_id, started_at) if started_at is not None else None
        if w is not None:
            out[run_id] = maintenance_text(w)
    return out


def hold_for_runs(run_ids: Sequence[int], now: datetime, zone: Optional[ZoneInfo] = None) -> int:
    """Hold the queued (pending) alerts of these runs when their job or customer is snoozed at
    ``now`` or the run started inside a maintenance window: state 'held', the reason in
    ``last_error``. One read of the runs (with whether a snooze in force or a window concerns them
    at all); only when one does, the snoozes and the windows; then ONE UPDATE. Returns the rows held.
    """
    from .timezones import as_zone

    run_ids = list(run_ids)
    if not run_ids:
        return 0
    # the runs, and whether a snooze in force or a window concerns their job at all (the usual
    # answer is no: then this is the only read)
    concerned = or_(
        select(Snooze.id).where(Snooze.lifted_at.is_(None), Snooze.until > now,
                                or_(Snooze.job_id == Job.id, Snooze.customer_id == Job.customer_id)).exists(),
        select(MaintenanceWindow.id).where(or_(MaintenanceWindow.job_id == Job.id,
                                               MaintenanceWindow.customer_id == Job.customer_id)).exists())
    runs = [r[:4] for r in db.session.execute(
        select(JobRun.id, JobRun.job_id, Job.customer_id, JobRun.started_at, concerned)
        .join(Job, Job.id == JobRun.job_id).where(JobRun.id.in_(run_ids))) if r[4]]
    if not runs:
        return 0
    job_ids = [r[1] for r in runs]
    customer_ids = [r[2] for r in runs]
    reasons = hold_reasons(runs, active_snoozes(job_ids, customer_ids, now), windows_for(job_ids, customer_ids),
                           as_zone(zone))
    if not reasons:
        return 0
    held = json.dumps([{"id": k, "reason": v} for k, v in reasons.items()])
    return db.session.execute(_HOLD, {"held": held}).rowcount or 0
