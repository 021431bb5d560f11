"""Job schedules: learned from the runs' start times, or set by hand (the manual one wins).

All schedule maths happens in the UI timezone (a "day" is a day there, a
"time" is a wall-clock time there); the results are stored in UTC.

Learning (``infer_schedule``) — the rules the documentation page describes:

* A run belongs to the local day its backup STARTED (a run that starts 23:50
  and mails at 00:10 is the previous day's run). Missed runs never teach.
* The observation window ends at the most recent real run (so a job that stops
  reporting keeps its schedule and keeps showing Missed) and goes back
  ``WEEKLY_WINDOW_DAYS`` days for daily/weekly patterns, ``MONTHLY_WINDOW_DAYS``
  for monthly ones.
* Daily/weekly: for every weekday, the share of those weekdays in the window
  that had a run. A weekday is ON at ``ON_RATIO`` or more, OFF at ``OFF_RATIO``
  or less; anything between is ambiguous. All seven on → Daily; some on → Weekly
  on those weekdays (Mon–Fri is "weekdays"). Runs on OFF days may be at most
  ``MAX_OUTLIER_SHARE`` of all run days. A weekly pattern needs a window of at
  least ``MIN_WEEKLY_SPAN_DAYS`` days and ``MIN_HITS_PER_WEEKDAY`` runs on every
  ON weekday; a young job (shorter window) is Daily when it ran on every day
  but at most ``YOUNG_DAILY_MAX_GAPS``, else it stays Unknown.
* Monthly: the same with days of the month over ``MONTHLY_WINDOW_DAYS`` (at
  least ``MIN_MONTHLY_SPAN_DAYS`` observed, ``MIN_HITS_PER_MONTHDAY`` per day).
* Fewer than ``MIN_OCCURRENCES`` days with a run → Unknown; enough runs but no
  pattern → Irregular. Neither gets missed runs.
* Expected time: the (circular) median of the first start of each scheduled
  day; the window is the 10th–90th percentile of those starts; the grace (how
  long after the expected time a run may still start before it counts as
  missed) is the late spread plus ``GRACE_MARGIN_MINUTES``, clamped between
  ``DEFAULT_GRACE_MINUTES`` and ``MAX_LEARNED_GRACE_MINUTES``.

Wall time → UTC (``local_to_utc``): a wall time that does not exist (02:30 on
the spring-forward day) is shifted forward by the gap (03:30 summer time); an
ambiguous one (02:30 on the autumn day) is the first occurrence (summer time).
"""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..extensions import db
from ..models import Job, JobRun
from . import audit
from .timezones import as_zone, local_day

UTC = timezone.utc

# --- Thresholds (documented in docs/pages/schedules.md) -------------------------------------------
WEEKLY_WINDOW_DAYS = 42          # six of every weekday
MONTHLY_WINDOW_DAYS = 100        # about three months
MIN_OCCURRENCES = 4              # days with a run before anything is learned
ON_RATIO = 0.6                   # a weekday/monthday with runs on >= 60 % of its dates is scheduled
OFF_RATIO = 0.3                  # ... with <= 30 % it is not (an odd extra run)
MAX_OUTLIER_SHARE = 0.2          # runs on unscheduled days: at most 20 % of all run days
MIN_WEEKLY_SPAN_DAYS = 14
MIN_HITS_PER_WEEKDAY = 2
YOUNG_DAILY_MAX_GAPS = 1          # a young job is Daily when it ran on all its days but at most one
MIN_MONTHLY_SPAN_DAYS = 45
MIN_HITS_PER_MONTHDAY = 2
MAX_MONTHDAYS = 10
DEFAULT_GRACE_MINUTES = 120      # a run may start up to 2 h after the expected time
GRACE_MARGIN_MINUTES = 60
MAX_LEARNED_GRACE_MINUTES = 360
MAX_MANUAL_GRACE_MINUTES = 24 * 60
# Which slot a run belongs to: the nearest expected slot, but at most this far from it.
EARLY_LIMIT = timedelta(hours=12)
LATE_LIMIT = timedelta(hours=24)

SCHEDULED_KINDS = ("daily", "weekly", "monthly", "every_n_days")
MANUAL_KINDS = ("weekdays", "monthdays", "every_n_days")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAY_LOOKUP = {n.lower(): i for i, n in enumerate(WEEKDAY_NAMES)}
_WEEKDAY_LOOKUP.update({"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
                        "saturday": 5, "sunday": 6})
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


# --- Wall time <-> UTC ------------------------------------------------------------------------------

def local_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local day (DST rules in the module docstring)."""
    # fold=0: a non-existent time is read with the offset before the gap (so it lands after the
    # gap, shifted forward), an ambiguous one as its first occurrence (PEP 495).
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _parse_hhmm(value) -> time:
    m = _TIME_RE.match(str(value or ""))
    if not m:
        raise ValueError(f"The expected time '{value}' is not in the form HH:MM (for example 22:30).")
    hh, mm = int(m.group(1)), int(m.group(2))
    if hh > 23 or mm > 59:
        raise ValueError(f"The expected time '{value}' is not a time of day (00:00 to 23:59).")
    return time(hh, mm)


def _fmt_minutes(minutes: float) -> str:
    m = int(round(minutes)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


# --- Learning ---------------------------------------------------------------------------------------

def _circular_median(values: list[int]) -> int:
    """The data point with the smallest total distance to the others on a 24 h clock."""
    def dist(a, b):
        d = abs(a - b) % 1440
        return min(d, 1440 - d)
    return min(sorted(values), key=lambda c: sum(dist(c, v) for v in values))


def _signed_offset(value: int, centre: int) -> int:
    d = (value - centre) % 1440
    return d - 1440 if d >= 720 else d


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = q * (len(sorted_values) - 1)
    lo = int(idx)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (idx - lo)


def _time_fields(first_minutes: list[int]) -> dict:
    centre = _circular_median(first_minutes)
    offsets = sorted(_signed_offset(v, centre) for v in first_minutes)
    p10, p90 = _percentile(offsets, 0.1), _percentile(offsets, 0.9)
    grace = int(round(max(0.0, p90) + GRACE_MARGIN_MINUTES))
    grace = max(DEFAULT_GRACE_MINUTES, min(MAX_LEARNED_GRACE_MINUTES, grace))
    return {"time": _fmt_minutes(centre), "window_start": _fmt_minutes(centre + p10),
            "window_end": _fmt_minutes(centre + p90), "grace_minutes": grace}


def _unscheduled(kind: str, reason: str, run_days: int) -> dict:
    return {"kind": kind, "occurrences": run_days, "reason": reason}


def infer_schedule(start_times_utc: Iterable[datetime], zone: ZoneInfo, now: datetime) -> dict:
    """Learn Daily / Weekly / Monthly / Irregular / Unknown from start times (rules: module docstring).

    Returns a JSON-able dict: ``kind`` and, for a schedule, ``weekdays`` (0=Mon) or ``monthdays``,
    ``time`` ("HH:MM" local), ``window_start``/``window_end`` ("HH:MM"), ``grace_minutes``,
    ``occurrences`` (days with a run used), ``observed_from``/``observed_to`` and a ``reason``.
    """
    starts = sorted(t for t in start_times_utc if t is not None and t <= now)
    if not starts:
        return _unscheduled("unknown", "No runs yet.", 0)
    last_day = local_day(starts[-1], zone)

    # First start (minutes after local midnight) of every local day with a run.
    first_by_day: dict[date, int] = {}
    for t in starts:
        lt = t.astimezone(zone)
        d = lt.date()
        if d not in first_by_day:
            first_by_day[d] = lt.hour * 60 + lt.minute

    weekly_from = last_day - timedelta(days=WEEKLY_WINDOW_DAYS - 1)
    recent_days = {d: m for d, m in first_by_day.items() if d >= weekly_from}
    if len(recent_days) < MIN_OCCURRENCES and len(first_by_day) < MIN_OCCURRENCES:
        return _unscheduled("unknown", f"Only {len(first_by_day)} day(s) with a run; "
                                       f"at least {MIN_OCCURRENCES} are needed to learn a schedule.",
                            len(first_by_day))

    result = _infer_weekly(recent_days, last_day) if len(recent_days) >= MIN_OCCURRENCES else None
    if result is None:
        result = _infer_monthly(first_by_day, last_day)
    if result is None and (last_day - min(first_by_day)).days + 1 < MIN_WEEKLY_SPAN_DAYS:
        return _unscheduled("unknown", f"Still learning: runs seen over fewer than {MIN_WEEKLY_SPAN_DAYS} days.",
                            len(first_by_day))
    if result is None:
        n = len(first_by_day)
        if len(recent_days) < MIN_OCCURRENCES and n < MIN_OCCURRENCES * 2:
            return _unscheduled("unknown", "Too few recent runs to learn a schedule.", n)
        return _unscheduled("irregular", "The runs follow no daily, weekly or monthly pattern.", n)
    return result


def _infer_weekly(days: dict[date, int], last_day: date) -> Optional[dict]:
    span_from = min(days)
    span = (last_day - span_from).days + 1
    if span < MIN_WEEKLY_SPAN_DAYS:
        # A young job: daily when it ran on (nearly) every day so far.
        if len(days) >= MIN_OCCURRENCES and span - len(days) <= YOUNG_DAILY_MAX_GAPS:
            return _schedule("daily", list(range(7)), None, list(days.values()), len(days),
                             span_from, last_day, f"Ran on {len(days)} of its first {span} days.")
        return None
    opportunities = [0] * 7
    hits = [0] * 7
    d = span_from
    while d <= last_day:
        opportunities[d.weekday()] += 1
        if d in days:
            hits[d.weekday()] += 1
        d += timedelta(days=1)
    on, ambiguous = [], []
    for wd in range(7):
        ratio = hits[wd] / opportunities[wd] if opportunities[wd] else 0.0
        if ratio >= ON_RATIO and hits[wd] >= MIN_HITS_PER_WEEKDAY:
            on.append(wd)
        elif ratio > OFF_RATIO:
            ambiguous.append(wd)
    if not on or ambiguous:
        return None
    outliers = sum(1 for d in days if d.weekday() not in on)
    if outliers > MAX_OUTLIER_SHARE * len(days):
        return None
    minutes = [m for d, m in days.items() if d.weekday() in on]
    kind = "daily" if len(on) == 7 else "weekly"
    reason = (f"Ran on {sum(hits[w] for w in on)} of {sum(opportunities[w] for w in on)} expected days "
              f"in the last {span} days")
    if outliers:
        reason += f"; {outliers} extra run day(s) ignored"
    return _schedule(kind, on, None, minutes, len(days), span_from, last_day, reason + ".")


def _infer_monthly(days: dict[date, int], last_day: date) -> Optional[dict]:
    span_from_limit = last_day - timedelta(days=MONTHLY_WINDOW_DAYS - 1)
    window = {d: m for d, m in days.items() if d >= span_from_limit}
    if len(window) < 2:
        return None
    span_from = min(window)
    if (last_day - span_from).days + 1 < MIN_MONTHLY_SPAN_DAYS:
        return None
    opportunities: dict[int, int] = defaultdict(int)
    d = span_from
    while d <= last_day:
        opportunities[d.day] += 1
        d += timedelta(days=1)
    hits: dict[int, int] = defaultdict(int)
    for d in window:
        hits[d.day] += 1
    on = sorted(md for md, h in hits.items()
                if h >= MIN_HITS_PER_MONTHDAY and h / opportunities[md] >= ON_RATIO)
    if not on or len(on) > MAX_MONTHDAYS:
        return None
    if any(h / opportunities[md] > OFF_RATIO for md, h in hits.items() if md not in on):
        return None
    outliers = sum(1 for d in window if d.day not in on)
    if outliers > MAX_OUTLIER_SHARE * len(window):
        return None
    minutes = [m for d, m in window.items() if d.day in on]
    reason = f"Ran on day(s) {', '.join(map(str, on))} of the month over {(last_day - span_from).days + 1} days"
    if outliers:
        reason += f"; {outliers} extra run day(s) ignored"
    return _schedule("monthly", None, on, minutes, len(window), span_from, last_day, reason + ".")


def _schedule(kind, weekdays, monthdays, minutes, occurrences, span_from, last_day, reason) -> dict:
    out = {"kind": kind}
    if weekdays is not None:
        out["weekdays"] = sorted(weekdays)
    if monthdays is not None:
        out["monthdays"] = sorted(monthdays)
    out.update(_time_fields(minutes))
    out.update({"occurrences": occurrences, "observed_from": span_from.isoformat(),
                "observed_to": last_day.isoformat(), "reason": reason})
    return out


# --- Manual schedules ---------------------------------------------------------------------------

def _int_list(value, what: str, lo: int, hi: int, names: Optional[dict] = None) -> list[int]:
    if value is None or value == "":
        items = []
    elif isinstance(value, str):
        items = [p for p in re.split(r"[,\s;]+", value) if p]
    elif isinstance(value, (list, tuple, set)):
        items = list(value)
    else:
        raise ValueError(f"The {what} must be a list.")
    out = set()
    for item in items:
        key = str(item).strip().lower()
        if names and key in names:
            out.add(names[key])
            continue
        if isinstance(item, bool):
            raise ValueError(f"'{item}' is not a valid {what[:-1]}.")
        try:
            n = int(key)
        except ValueError:
            raise ValueError(f"'{item}' is not a valid {what[:-1]}.") from None
        if not lo <= n <= hi:
            raise ValueError(f"'{item}' is not a valid {what[:-1]} ({lo} to {hi}).")
        out.add(n)
    if not out:
        raise ValueError(f"Choose at least one of the {what}.")
    return sorted(out)


def _positive_int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"The {what} must be a whole number.")
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"The {what} must be a whole number.") from None
    if not lo <= n <= hi:
        raise ValueError(f"The {what} must be between {lo} and {hi}.")
    return n


def validate_manual_schedule(data: dict, today: Optional[date] = None) -> dict:
    """A clean manual schedule from form or JSON input; ValueError with a message otherwise.

    ``kind``: ``weekdays`` (``weekdays``: 0=Mon … 6=Sun or names), ``monthdays`` (``monthdays``:
    1–31; 29–31 mean the last day in shorter months) or ``every_n_days`` (``every_n_days`` ≥ 1 and an
    ``anchor_date`` YYYY-MM-DD, default today); ``time`` "HH:MM" in the UI timezone;
    ``grace_minutes`` 0–1440 (default 120).
    """
    if not isinstance(data, dict):
        raise ValueError("The schedule must be given as fields.")
    kind = str(data.get("kind") or "").strip().lower()
    if kind not in MANUAL_KINDS:
        raise ValueError("Choose how the job is scheduled: on weekdays, on days of the month, or every N days.")
    out: dict = {"kind": kind}
    if kind == "weekdays":
        out["weekdays"] = _int_list(data.get("weekdays"), "weekdays", 0, 6, _WEEKDAY_LOOKUP)
    elif kind == "monthdays":
        out["monthdays"] = _int_list(data.get("monthdays"), "days of the month", 1, 31)
    else:
        out["every_n_days"] = _positive_int(data.get("every_n_days"), "number of days between runs", 1, 366)
        anchor = data.get("anchor_date")
        if anchor in (None, ""):
            if today is None:
                raise ValueError("Give the date of one run (anchor date) for an every-N-days schedule.")
            anchor_d = today
        elif isinstance(anchor, date):
            anchor_d = anchor
        else:
            try:
                anchor_d = date.fromisoformat(str(anchor).strip())
            except ValueError:
                raise ValueError(f"The anchor date '{anchor}' is not a date (YYYY-MM-DD).") from None
        out["anchor_date"] = anchor_d.isoformat()
    out["time"] = _parse_hhmm(data.get("time")).strftime("%H:%M")
    grace = data.get("grace_minutes")
    out["grace_minutes"] = (DEFAULT_GRACE_MINUTES if grace in (None, "")
                            else _positive_int(grace, "grace (minutes)", 0, MAX_MANUAL_GRACE_MINUTES))
    return out


def _normalise_manual(manual: dict) -> Optional[dict]:
    kind = manual.get("kind")
    base = {"time": manual.get("time"), "grace_minutes": int(manual.get("grace_minutes", DEFAULT_GRACE_MINUTES)),
            "source": "manual"}
    if kind == "weekdays":
        wds = sorted(manual.get("weekdays") or [])
        if not wds:
            return None
        return {"kind": "daily" if len(wds) == 7 else "weekly", "weekdays": wds, **base}
    if kind == "monthdays":
        return {"kind": "monthly", "monthdays": sorted(manual.get("monthdays") or []), **base}
    if kind == "every_n_days":
        return {"kind": "every_n_days", "every_n_days": int(manual.get("every_n_days") or 1),
                "anchor_date": manual.get("anchor_date"), **base}
    return None


def effective_schedule(job: Job) -> Optional[dict]:
    """The schedule that counts for a job: the manual one if set, else the learned one.

    None when the job has neither; a dict with ``kind`` irregular/unknown when learning found no
    pattern (such jobs get no missed runs). A learned or manual schedule carries ``kind``,
    ``weekdays``/``monthdays``/``every_n_days``+``anchor_date``, ``time``, ``grace_minutes``
    and ``source`` ("manual" or "learned").
    """
    if job.manual_schedule:
        norm = _normalise_manual(job.manual_schedule)
        if norm:
            return norm
    if job.learned_schedule:
        return {**job.learned_schedule, "source": "learned"}
    return None


def is_scheduled(schedule: Optional[dict]) -> bool:
    return bool(schedule) and schedule.get("kind") in SCHEDULED_KINDS and bool(schedule.get("time"))


def describe_schedule(schedule: Optional[dict]) -> str:
    """One line for pages: "Daily at 22:00", "Mon–Fri at 21:00", "Monthly on day 1, 15 at 04:00"."""
    if not schedule:
        return "Unknown"
    kind = schedule.get("kind")
    if kind == "irregular":
        return "Irregular"
    if not is_scheduled(schedule):
        return "Unknown"
    at = f" at {schedule['time']}"
    if kind == "daily":
        text = "Daily"
    elif kind == "weekly":
        wds = schedule.get("weekdays") or []
        text = "Mon–Fri" if wds == [0, 1, 2, 3, 4] else ", ".join(WEEKDAY_NAMES[w] for w in wds)
    elif kind == "monthly":
        text = "Monthly on day " + ", ".join(str(d) for d in schedule.get("monthdays") or [])
    else:
        text = f"Every {schedule.get('every_n_days')} days from {schedule.get('anchor_date')}"
    return text + at + (" (set by hand)" if schedule.get("source") == "manual" else "")


# --- Slots ------------------------------------------------------------------------------------------

def _day_matches(schedule: dict, d: date) -> bool:
    kind = schedule["kind"]
    if kind == "daily":
        return True
    if kind == "weekly":
        return d.weekday() in (schedule.get("weekdays") or [])
    if kind == "monthly":
        days = schedule.get("monthdays") or []
        if d.day in days:
            return True
        last = ((d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        return d.day == last and any(md > last for md in days)
    if kind == "every_n_days":
        anchor = date.fromisoformat(schedule["anchor_date"])
        return (d - anchor).days % max(1, int(schedule.get("every_n_days") or 1)) == 0
    return False


def grace_of(schedule: dict) -> timedelta:
    return timedelta(minutes=int(schedule.get("grace_minutes") or DEFAULT_GRACE_MINUTES))


def next_slot(schedule: Optional[dict], after: datetime, zone: ZoneInfo) -> Optional[datetime]:
    """The first expected slot (UTC) strictly after ``after``; None for no schedule."""
    if not is_scheduled(schedule):
        return None
    wall = _parse_hhmm(schedule["time"])
    d = local_day(after, zone) - timedelta(days=1)
    for _ in range(400):
        if _day_matches(schedule, d):
            slot = local_to_utc(d, wall, zone)
            if slot > after:
                return slot
        d += timedelta(days=1)
    return None


def previous_slot(schedule: Optional[dict], at_or_before: datetime, zone: ZoneInfo) -> Optional[datetime]:
    """The last expected slot (UTC) at or before a moment; None for no schedule."""
    if not is_scheduled(schedule):
        return None
    wall = _parse_hhmm(schedule["time"])
    d = local_day(at_or_before, zone) + timedelta(days=1)
    for _ in range(400):
        if _day_matches(schedule, d):
            slot = local_to_utc(d, wall, zone)
            if slot <= at_or_before:
                return slot
        d -= timedelta(days=1)
    return None


def next_expected_run(job_schedule: Optional[dict], after: datetime, zone: ZoneInfo
                      ) -> Optional[tuple[datetime, datetime]]:
    """(slot, deadline) in UTC for the first expected run strictly after ``after``.

    The deadline is the slot plus the schedule's grace (default ``DEFAULT_GRACE_MINUTES``); once it
    has passed without a run the slot counts as missed. None when there is no usable schedule.
    """
    slot = next_slot(job_schedule, after, zone)
    if slot is None:
        return None
    return slot, slot + grace_of(job_schedule)


def slot_window(schedule: dict, slot: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the start times that belong to a slot.

    The nearest slot wins (the split is half-way to the previous and next slots), but a run may be
    at most ``EARLY_LIMIT`` early and ``LATE_LIMIT`` late; the window always reaches the deadline.
    """
    prev_s = previous_slot(schedule, slot - timedelta(microseconds=1), zone)
    next_s = next_slot(schedule, slot, zone)
    lo = slot - EARLY_LIMIT
    if prev_s is not None:
        lo = max(lo, prev_s + (slot - prev_s) / 2)
    hi = slot + LATE_LIMIT
    if next_s is not None:
        hi = min(hi, slot + (next_s - slot) / 2)
    hi = max(hi, slot + grace_of(schedule))
    return lo, hi


def first_open_slot(schedule: Optional[dict], now: datetime, zone: ZoneInfo
                    ) -> Optional[tuple[datetime, datetime]]:
    """The first slot whose deadline is still ahead of ``now`` (it may have started already)."""
    if not is_scheduled(schedule):
        return None
    return next_expected_run(schedule, now - grace_of(schedule), zone)


def first_slot_in_force(schedule: Optional[dict], since: datetime, zone: ZoneInfo
                        ) -> Optional[tuple[datetime, datetime]]:
    """(slot, deadline) of the first slot at or after ``since``, the moment a schedule came into
    force: a schedule set by hand, learned for the first time or restored never expects a slot from
    before it existed (also not one whose grace was still running)."""
    return next_expected_run(schedule, since - timedelta(microseconds=1), zone)


# --- Storing on the job -----------------------------------------------------------------------------

def _apply(job: Job, learned: Optional[dict], now: datetime, zone: ZoneInfo, keep_pending: bool) -> None:
    if learned is not None:
        job.learned_schedule = learned
    sched = effective_schedule(job)
    job.schedule_kind = (sched or {}).get("kind") or "unknown"
    if not is_scheduled(sched):
        job.next_expected_slot = None
        job.next_expected_at = None
        return
    # A slot that is due but not yet checked by the missed-run loop stays pending when the
    # schedule still has it, so relearning never skips a check.
    if keep_pending and job.next_expected_slot is not None and job.next_expected_at is not None \
            and job.next_expected_at <= now:
        pending = job.next_expected_slot
        if next_slot(sched, pending - timedelta(microseconds=1), zone) == pending:
            job.next_expected_at = pending + grace_of(sched)
            return
    if not keep_pending or job.next_expected_slot is None:
        # A new schedule (set or cleared by hand, learned for the first time, the job unarchived)
        # counts from now on.
        nxt = first_slot_in_force(sched, now, zone)
    else:
        nxt = first_open_slot(sched, now, zone)
        reached = local_day(job.next_expected_slot, zone)
        if nxt and local_day(nxt[0], zone) < reached:
            # Relearning may shift the slot the check has reached (a new median time), but never
            # moves the check back to an earlier day's slot, e.g. one before the schedule existed.
            nxt = first_slot_in_force(sched, local_to_utc(reached, time.min, zone), zone)
    job.next_expected_slot, job.next_expected_at = nxt if nxt else (None, None)


def _learning_since(now: datetime) -> datetime:
    return now - timedelta(days=MONTHLY_WINDOW_DAYS + 1)


def recompute_job_schedule(job: Job, now: datetime, zone: Optional[ZoneInfo] = None) -> dict:
    """Relearn one job's schedule from its recent real runs (one query) and store it with the next
    expected slot and deadline. Returns the learned schedule. The caller commits."""
    zone = as_zone(zone)
    starts = db.session.execute(
        select(JobRun.started_at)
        .where(JobRun.job_id == job.id, JobRun.missed.is_(False), JobRun.started_at.is_not(None),
               JobRun.started_at >= _learning_since(now), JobRun.started_at <= now)
    ).scalars().all()
    learned = infer_schedule(starts, zone, now)
    job.learned_at = now
    _apply(job, learned, now, zone, keep_pending=True)
    return learned


def recompute_all_schedules(now: datetime, zone: Optional[ZoneInfo] = None,
                            stale_after: Optional[timedelta] = None) -> int:
    """Relearn every non-archived job (or only those learned longer than ``stale_after`` ago).

    Two queries whatever the number of jobs: the jobs, then the recent run starts of all of them,
    grouped in Python. Returns the number of jobs recomputed. The caller commits.
    """
    zone = as_zone(zone)
    q = select(Job).where(Job.archived.is_(False))
    if stale_after is not None:
        q = q.where((Job.learned_at.is_(None)) | (Job.learned_at <= now - stale_after))
    jobs = db.session.execute(q.order_by(Job.id)).scalars().all()
    if not jobs:
        return 0
    starts: dict[int, list[datetime]] = defaultdict(list)
    ids = [j.id for j in jobs]
    for chunk_start in range(0, len(ids), 5000):
        chunk = ids[chunk_start:chunk_start + 5000]
        rows = db.session.execute(
            select(JobRun.job_id, JobRun.started_at)
            .where(JobRun.job_id.in_(chunk), JobRun.missed.is_(False), JobRun.started_at.is_not(None),
                   JobRun.started_at >= _learning_since(now), JobRun.started_at <= now)
        ).all()
        for job_id, started in rows:
            starts[job_id].append(started)
    for job in jobs:
        learned = infer_schedule(starts.get(job.id, []), zone, now)
        job.learned_at = now
        _apply(job, learned, now, zone, keep_pending=True)
    return len(jobs)


def set_manual_schedule(job: Job, data: dict, actor, now: Optional[datetime] = None,
                        zone: Optional[ZoneInfo] = None) -> dict:
    """Validate and store a schedule set by hand (it wins over the learned one); audited.

    Raises ValueError with a message for the operator on bad input (nothing is changed then).
    Returns the stored schedule. The caller commits.
    """
    zone = as_zone(zone)
    now = now or datetime.now(UTC)
    clean = validate_manual_schedule(data, today=local_day(now, zone))
    before = job.manual_schedule
    job.manual_schedule = clean
    _apply(job, None, now, zone, keep_pending=False)
    audit.record("job.schedule.set", f"Set the schedule of job {job.job_name} by hand: "
                 f"{describe_schedule(_normalise_manual(clean))}", user=actor, target_type="job",
                 target_id=job.id, before={"manual_schedule": before}, after={"manual_schedule": clean})
    db.session.flush()
    return clean


def clear_manual_schedule(job: Job, actor, now: Optional[datetime] = None,
                          zone: Optional[ZoneInfo] = None) -> None:
    """Remove a manual schedule: the learned one counts again; audited. The caller commits."""
    zone = as_zone(zone)
    now = now or datetime.now(UTC)
    before = job.manual_schedule
    if before is None:
        return
    job.manual_schedule = None
    _apply(job, None, now, zone, keep_pending=False)
    audit.record("job.schedule.clear", f"Cleared the manual schedule of job {job.job_name}; "
                 f"the learned schedule counts again", user=actor, target_type="job", target_id=job.id,
                 before={"manual_schedule": before}, after={"manual_schedule": None})
    db.session.flush()
