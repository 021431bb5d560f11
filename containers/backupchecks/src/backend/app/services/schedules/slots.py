"""Schedule slots: wall time <-> UTC and the expected slots of a schedule, all in the UI timezone
(a "day" is a day there, a "time" is a wall-clock time there); the results are in UTC.

Wall time → UTC (``local_to_utc``): a wall time that does not exist (02:30 on
the spring-forward day) is shifted forward by the gap (03:30 summer time); an
ambiguous one (02:30 on the autumn day) is the first occurrence (summer time).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from ..timezones import local_day  # noqa: F401 (schedules.local_day is the same function)

UTC = timezone.utc

DEFAULT_GRACE_MINUTES = 120      # a run may start up to 2 h after the expected time
# Which slot a run belongs to: the nearest expected slot, but at most this far from it.
EARLY_LIMIT = timedelta(hours=12)
LATE_LIMIT = timedelta(hours=24)

SCHEDULED_KINDS = ("daily", "weekly", "monthly", "every_n_days")
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


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


def is_scheduled(schedule: Optional[dict]) -> bool:
    return bool(schedule) and schedule.get("kind") in SCHEDULED_KINDS and bool(schedule.get("time"))


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
