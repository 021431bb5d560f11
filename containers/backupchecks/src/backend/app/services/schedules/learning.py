"""Learning a job's schedule from its runs' start times.

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
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from .slots import DEFAULT_GRACE_MINUTES, local_day

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
GRACE_MARGIN_MINUTES = 60
MAX_LEARNED_GRACE_MINUTES = 360


def _fmt_minutes(minutes: float) -> str:
    m = int(round(minutes)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


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
