"""Zones and local days, the one home for them: a run belongs to the day its backup started, in the
UI timezone (Settings → General, read by ``settings.ui_zone``)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Optional, Union
from zoneinfo import ZoneInfo

from .settings import ui_zone

Zone = Union[ZoneInfo, str]

# The days a page or command accepts: far outside them the calendar maths overflows, and no backup
# report is dated there.
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(2999, 12, 31)


def as_zone(zone: Optional[Zone] = None) -> ZoneInfo:
    """``zone`` as a ZoneInfo (a name is looked up); None means the UI timezone."""
    if zone is None:
        return ui_zone()
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(str(zone))


def local_day(moment: datetime, zone: Optional[Zone] = None) -> date:
    """The calendar day (in ``zone``) of a moment: a run belongs to the day its backup started."""
    if moment.tzinfo is None:
        raise ValueError("local_day needs a timezone-aware datetime (times are stored in UTC)")
    return moment.astimezone(as_zone(zone)).date()


def day_bounds_utc(day: date, zone: Optional[Zone] = None) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day as UTC datetimes; 23 or 25 hours long on DST days."""
    z = as_zone(zone)
    start = datetime.combine(day, time.min, tzinfo=z)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=z)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def parse_day(value: Optional[str], zone: Optional[Zone] = None, today: Optional[date] = None) -> date:
    """A YYYY-MM-DD from a URL (empty -> today in ``zone``); ValueError with a clear message."""
    if value is None or not str(value).strip():
        return today or datetime.now(as_zone(zone)).date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"'{str(value)[:40]}' is not a date: use YYYY-MM-DD, e.g. 2026-03-29.") from None


def check_day_in_range(day: date) -> date:
    """``day`` when it is within FIRST_DAY..LAST_DAY; ValueError with a clear message otherwise."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day.isoformat()} is out of range; choose a date between "
                         f"{FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}.")
    return day


def local_instant(day: date, at: time, zone: Optional[Zone] = None) -> datetime:
    """The UTC moment a wall-clock time ``at`` on ``day`` happens in ``zone``. A time that does not
    exist that day (the spring DST gap, e.g. 02:30 on the last Sunday of March in Europe/Amsterdam)
    is the first valid instant after it (03:00 local); a time that happens twice (the autumn fold)
    is its first occurrence."""
    z = as_zone(zone)
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    for minutes in range(0, 24 * 60):
        candidate = wall + timedelta(minutes=minutes)
        moment = candidate.replace(tzinfo=z, fold=0).astimezone(timezone.utc)
        if moment.astimezone(z).replace(tzinfo=None) == candidate:
            return moment
    raise ValueError(f"{wall} never happens in {z.key}")  # pragma: no cover - no zone skips a day's every minute
