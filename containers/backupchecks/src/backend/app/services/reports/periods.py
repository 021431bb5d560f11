"""The period a report covers: whole local days in the UI timezone, how it reads, and the UTC
bounds the queries use."""
from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from ...models import ReportDefinition, ReportRun
from ..timezones import day_bounds_utc
from .vocabulary import PERIODS, ReportError


@dataclass(frozen=True)
class Period:
    start: date          # first day, inclusive (UI timezone)
    end: date            # last day, inclusive
    start_utc: datetime  # [start_utc, end_utc) in UTC
    end_utc: datetime

    @property
    def days(self) -> list[date]:
        n = (self.end - self.start).days + 1
        return [self.start + timedelta(days=i) for i in range(n)]

    @property
    def label(self) -> str:
        return period_label(self.start, self.end)


def period_label(start: date, end: date) -> str:
    """How a period of whole days reads everywhere (pages, PDF cover, mail subject):

    one day "15 May 2024"; a whole calendar month "May 2024"; within a month "1–15 May 2024";
    across months "28 April – 3 May 2024"; across years "28 December 2023 – 3 January 2024".
    ValueError when the period ends before it starts."""
    if end < start:
        raise ValueError(f"The period ends ({end.isoformat()}) before it starts ({start.isoformat()}).")
    if start == end:
        return f"{start.day} {start.strftime('%B %Y')}"
    if start.year == end.year and start.month == end.month:
        if start.day == 1 and end.day == monthrange(end.year, end.month)[1]:
            return start.strftime("%B %Y")
        return f"{start.day}–{end.day} {end.strftime('%B %Y')}"
    if start.year == end.year:
        return f"{start.day} {start.strftime('%B')} – {end.day} {end.strftime('%B %Y')}"
    return f"{start.day} {start.strftime('%B %Y')} – {end.day} {end.strftime('%B %Y')}"


def period_text(defn: ReportDefinition, zone: ZoneInfo, today: Optional[date] = None) -> str:
    """A definition's period as the report list and the definition page describe it: a custom range
    is its dates ("1–15 May 2024"); a relative period its name and the days it covers when the report
    is made ``today`` (default: today in ``zone``), e.g. "Last calendar month · currently October 2026"."""
    if defn.period == "custom":
        if not defn.custom_start or not defn.custom_end or defn.custom_end < defn.custom_start:
            return "Custom range (its dates are missing: edit the report)"
        return period_label(defn.custom_start, defn.custom_end)
    name = PERIODS.get(defn.period)
    if name is None:
        return f"Unknown period '{defn.period}'"
    return f"{name} · currently {period_for(defn, zone, today).label}"


def period_days(kind: str, today: date, custom_start: Optional[date] = None,
                custom_end: Optional[date] = None) -> tuple[date, date]:
    """The inclusive local days a period covers, seen from ``today`` (the day itself is never included
    by the relative periods: a report describes days that are over)."""
    if kind == "last_7_days":
        return today - timedelta(days=7), today - timedelta(days=1)
    if kind == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if kind == "custom":
        if not custom_start or not custom_end:
            raise ReportError("A custom period needs a start and an end date.")
        if custom_end < custom_start:
            raise ReportError("The end date of the custom period lies before its start date.")
        return custom_start, custom_end
    raise ReportError(f"Unknown period '{kind}': use last 7 days, last calendar month or a custom range.")


def period_for(defn: ReportDefinition, zone: ZoneInfo, today: Optional[date] = None) -> Period:
    today = today or datetime.now(zone).date()
    start, end = period_days(defn.period, today, defn.custom_start, defn.custom_end)
    start_utc = day_bounds_utc(start, zone)[0]
    end_utc = day_bounds_utc(end, zone)[1]
    return Period(start, end, start_utc, end_utc)


def run_period(run: ReportRun, zone: ZoneInfo) -> Period:
    """The period a queued or generated report covers (stored as UTC bounds, the end exclusive)."""
    return Period(run.period_start.astimezone(zone).date(),
                  (run.period_end.astimezone(zone) - timedelta(seconds=1)).date(),
                  run.period_start, run.period_end)
