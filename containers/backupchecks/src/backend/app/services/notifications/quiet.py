"""Quiet hours: whether a moment falls in a channel's quiet period, and when that period ends.

Pure: no database, no clock. The window is given in local wall-clock times of one zone (the UI
timezone) and may cross midnight (22:00–07:00). On the nights the clocks change, a wall time that
does not exist (it falls in the spring-forward gap) means the first instant after the gap, and a
wall time that happens twice (autumn) means the first time the clock shows it.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

UTC = timezone.utc


def wall_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) the clocks in ``tz`` show ``wall`` on ``day``: the first time when it happens
    twice, the end of the gap when it does not happen at all."""
    local = datetime.combine(day, wall, tzinfo=tz)  # fold=0: the first of two, or the offset before a gap
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap: fold=1 reads the wall time with the offset after the change, which puts it before
    # the change; fold=0 after it. The change lies between: find it to the second.
    lo = local.replace(fold=1).astimezone(UTC)  # still the old offset
    hi = instant  # already the new offset
    before = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def is_quiet(now_utc: datetime, start: time, end: time, tz: ZoneInfo) -> Optional[datetime]:
    """When ``now_utc`` is within the quiet hours ``start``–``end`` (local times in ``tz``; the start
    counts, the end does not), the instant (UTC) they end; else None. ``start == end`` is no window."""
    if now_utc.tzinfo is None:
        raise ValueError("is_quiet needs a timezone-aware datetime (times are stored in UTC)")
    if start == end:
        return None
    today = now_utc.astimezone(tz).date()
    crosses_midnight = end < start
    # Only a window that started yesterday (crossing midnight) or today can hold now.
    for first_day in (today - timedelta(days=1), today):
        begins = wall_to_utc(first_day, start, tz)
        ends = wall_to_utc(first_day + timedelta(days=1 if crosses_midnight else 0), end, tz)
        if begins <= now_utc < ends:
            return ends
    return None
