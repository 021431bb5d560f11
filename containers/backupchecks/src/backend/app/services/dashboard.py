"""Figures for the dashboard: today's counts, the 30-day success rate, the last import, news.

The rules match Run Checks and Daily Jobs (services/status.py):

- Today's cards count JOBS by their day status, from the very rows Daily Jobs lists for today
  (``daily_jobs.day_counts``; which slots are missed is ``missed_runs.slot_verdict``), so a card
  and the Daily Jobs page it opens always show the same number.
- The chart counts RUNS: a run belongs to the local day (UI timezone) its backup started; a missed
  run to the day of its expected slot (its ``started_at``). Counts use the *effective* status: a
  run an override made a success counts as a success.
- The success rate of a day is successes (overrides included) / all runs (missed included);
  a day without runs has no rate (a gap in the chart, "—" in the table). The page runs a fixed
  number of queries whatever the data size.
- Today and yesterday are counted on every view (one grouped query over two days). The 28 days
  before them are counted once and kept per process (``_past_days``) while nothing that changes
  them happened: no new run (the highest run id), no change to an override or a job (their row
  versions), for at most ``PAST_DAYS_TTL``. So the chart's cost does not grow with a year of runs.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, literal, select, text

from ..extensions import db
from ..models import ImportCycle, JobRun, utcnow
from . import markdown_render
from . import news
from . import customers as customers_service
from .daily_jobs import build_day, day_counts
from .jobs import list_jobs
from .db_errors import DATABASE_FAILED
from .settings import get_settings, ui_zone
from .status import FAILED, MISSED, OVERRIDE_SUCCESS, SUCCESS, WARNING, configured_day_rule
from .timezones import day_bounds_utc, local_day

CHART_DAYS = 30
CARD_STATUSES = (SUCCESS, WARNING, FAILED, MISSED)


@dataclass
class DayFigures:
    day: date
    counts: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def success(self) -> int:
        """Successes, overrides included."""
        return self.counts.get(SUCCESS, 0) + self.counts.get(OVERRIDE_SUCCESS, 0)

    @property
    def by_override(self) -> int:
        return self.counts.get(OVERRIDE_SUCCESS, 0)

    @property
    def rate(self) -> Optional[float]:
        """Success rate in percent (one decimal), None without runs."""
        return round(100.0 * self.success / self.total, 1) if self.total else None


def day_status_counts(zone: ZoneInfo, first: date, last: date) -> dict[date, Counter]:
    """{local day: Counter(status -> runs)} for the days first..last, in ONE query. The status is
    the effective one, with overridden successes apart as "Success (override)"; PostgreSQL groups
    by local day (``timezone(:tz, started_at)``)."""
    lo, _ = day_bounds_utc(first, zone)
    _, hi = day_bounds_utc(last, zone)
    in_range = (JobRun.started_at >= lo, JobRun.started_at < hi)
    out: dict[date, Counter] = {}
    local = cast(func.timezone(literal(zone.key), JobRun.started_at), Date)
    overridden = JobRun.override_id.is_not(None)
    rows = db.session.execute(
        select(local.label("day"), JobRun.effective_status, overridden, func.count())
        .where(*in_range).group_by(local, JobRun.effective_status, overridden)).all()
    for day, status, by_override, n in rows:
        out.setdefault(day, Counter())[_key(status, by_override)] += n
    return out


def _key(status: str, by_override: bool) -> str:
    """The counter key: the effective status, "Success (override)" for an overridden success."""
    return OVERRIDE_SUCCESS if status == SUCCESS and by_override else status


PAST_DAYS_TTL = 300  # seconds a process keeps the counts of the days before yesterday at most

# What the counts of past days depend on besides their runs' rows: a new run (late, missed or
# re-parsed) raises the highest id; overrides and jobs change their row versions.
_PAST_FINGERPRINT = text(
    "SELECT (SELECT max(id) FROM job_runs), o.*, j.* FROM"
    " (SELECT count(*), coalesce(sum(hashtextextended(xmin::text || ctid::text, 0)), 0) FROM overrides) o,"
    " (SELECT count(*), coalesce(sum(hashtextextended(xmin::text || ctid::text, 0)), 0) FROM jobs) j")
_past_lock = threading.Lock()
_past_cache: dict[tuple, tuple[tuple, float, dict]] = {}


def _past_days(zone: ZoneInfo, first: date, last: date) -> dict[date, Counter]:
    """``day_status_counts`` for days that are over, kept while their fingerprint holds."""
    key = (str(db.engine.url), zone.key, first, last)
    fingerprint = tuple(db.session.execute(_PAST_FINGERPRINT).one())
    with _past_lock:
        kept = _past_cache.get(key)
    if kept and kept[0] == fingerprint and time.monotonic() - kept[1] < PAST_DAYS_TTL:
        return kept[2]
    counts = day_status_counts(zone, first, last)
    with _past_lock:
        if len(_past_cache) > 16:
            _past_cache.clear()
        _past_cache[key] = (fingerprint, time.monotonic(), counts)
    return counts


def chart_days(zone: ZoneInfo, today: date, days: int = CHART_DAYS) -> list[DayFigures]:
    """The last ``days`` local days ending today, oldest first, each with its counts."""
    first = today - timedelta(days=days - 1)
    recent = max(first, today - timedelta(days=1))
    counts = dict(_past_days(zone, first, recent - timedelta(days=1))) if recent > first else {}
    counts.update(day_status_counts(zone, recent, today))
    return [DayFigures(d, counts.get(d, Counter())) for d in (first + timedelta(days=i) for i in range(days))]


def chart_summary(series: list[DayFigures]) -> dict:
    """Overall figures for the heading and the chart's text alternative."""
    total = sum(d.total for d in series)
    success = sum(d.success for d in series)
    with_runs = [d for d in series if d.total]
    lowest = min(with_runs, key=lambda d: (d.rate, d.day)) if with_runs else None
    return {"total": total, "success": success,
            "rate": round(100.0 * success / total, 1) if total else None,
            "lowest": lowest, "days_with_runs": len(with_runs)}


def run_totals() -> tuple[int, bool]:
    """(unreviewed runs, whether any run exists at all) in one query."""
    unreviewed = select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None)).scalar_subquery()
    any_run = select(JobRun.id).exists()
    n, has = db.session.execute(select(unreviewed, any_run)).one()
    return int(n or 0), bool(has)


@dataclass
class ImportStatus:
    cycle: Optional[ImportCycle]
    level: str  # success|info|warning|danger
    headline: str
    error: Optional[str] = None
    advice: Optional[str] = None


def import_status(cycle: Optional[ImportCycle], now: Optional[datetime] = None) -> ImportStatus:
    """What the last import cycle means for the reader, with what to do when it went wrong."""
    now = now or utcnow()
    settings = get_settings()
    if cycle is None:
        return ImportStatus(None, "info", "No mail has been imported yet.",
                            advice="Connect the mailbox under Settings → Mail, or upload .eml files in the Inbox.")
    if cycle.state == "running":
        return ImportStatus(cycle, "info", "An import is running.")
    if cycle.state == "failed" and (cycle.error or "").startswith(DATABASE_FAILED):
        return ImportStatus(
            cycle, "danger", "The last import failed: the database could not store mail.", error=cycle.error,
            advice="Nothing was lost: the mails that were not stored stay in the mailbox and the next import "
                   "takes them. Check the database: free space on its disk, and that the PostgreSQL container "
                   "runs (Troubleshooting).")
    if cycle.state == "failed":
        return ImportStatus(
            cycle, "danger", "The last import failed.", error=cycle.error or "No reason was recorded.",
            advice="Nothing was lost: mails stay in the mailbox and the next import tries them again. "
                   "Check Settings → Mail (tenant, client ID, client secret, mailbox, folders) and press "
                   "\"Test connection\"; the Troubleshooting page lists common causes.")
    if cycle.failed or cycle.error:
        n = cycle.failed
        return ImportStatus(
            cycle, "warning", f"{n} mail{'s' if n != 1 else ''} could not be imported." if n else "The last import reported a problem.",
            error=cycle.error,
            advice="Those mails stay in the mailbox and the next import tries them again. If the same "
                   "error repeats, check Settings → Mail and the Troubleshooting page.")
    if settings.auto_import_enabled:
        interval = max(1, settings.import_interval_minutes or 15)
        stale_after = timedelta(minutes=max(60, 3 * interval))
        if cycle.started_at and now - cycle.started_at > stale_after:
            return ImportStatus(
                cycle, "warning", "No import for a while.",
                advice=f"Automatic import every {interval} min is on, but the last one started longer ago "
                       "than that. Check that the app container runs (Troubleshooting), or import now "
                       "under Settings → Imports.")
    return ImportStatus(cycle, "success", "The last import went well.")


def last_import() -> Optional[ImportCycle]:
    return db.session.execute(
        select(ImportCycle).order_by(ImportCycle.started_at.desc(), ImportCycle.id.desc()).limit(1)
    ).scalar_one_or_none()


def todays_cards(zone: ZoneInfo, now: datetime, rule: str) -> tuple[dict[str, int], int]:
    """({status: jobs} for the four cards, jobs that are a success by override) for the local day
    of ``now``: the counts of the Daily Jobs rows of that day (Success includes overrides)."""
    shown = day_counts(local_day(now, zone), zone, now, rule)
    counts = {s: shown.get(s, 0) for s in CARD_STATUSES}
    counts[SUCCESS] += shown.get(OVERRIDE_SUCCESS, 0)
    return counts, shown.get(OVERRIDE_SUCCESS, 0)


def dashboard_data(include_all_news: bool = False, now: Optional[datetime] = None) -> dict:
    """Everything the dashboard shows as seen at ``now`` (UTC), in a fixed number of queries: the
    settings (1), today's Daily Jobs rows (2), the 30-day counts (1), run totals (1), the last
    import (1), visible news (1), and for admins all news (1)."""
    zone = ui_zone()
    now = now or utcnow()
    today = local_day(now, zone)
    counts, by_override = todays_cards(zone, now, configured_day_rule())
    series = chart_days(zone, today)
    unreviewed, has_runs = run_totals()
    cycle = last_import()
    visible = news.visible_news(now)
    managed = news.all_news() if include_all_news else []
    return {
        "today": today,
        "counts": counts,
        "today_by_override": by_override,
        "unreviewed": unreviewed,
        "has_runs": has_runs,
        "last_cycle": cycle,
        "import": import_status(cycle, now),
        "series": series,
        "summary": chart_summary(series),
        "chart": {
            "labels": [d.day.strftime("%d %b") for d in series],
            "days": [d.day.isoformat() for d in series],
            "rates": [d.rate for d in series],
            "success": [d.success for d in series],
            "totals": [d.total for d in series],
        },
        "news": [(item, markdown_render.html_of(item)) for item in visible],  # stored HTML
        "all_news": [(item, news.state(item, now)) for item in managed],
    }


# --- The customer portal's dashboard ------------------------------------------------------------------

PORTAL_JOBS = 500  # the jobs the portal dashboard lists (a customer's own staff: a few dozen at most)


def portal_dashboard_data(user, now: Optional[datetime] = None) -> dict:
    """What a portal user's dashboard shows, only of their customers (``scope``): the customers, today's
    Daily Jobs counts (the same rows as their Daily Jobs page) and their jobs with the last run.
    Constant queries: the customers (1), today's rows (2-3), the jobs (2)."""
    zone = ui_zone()
    now = now or utcnow()
    today = local_day(now, zone)
    view = build_day(today, zone, now, rule=configured_day_rule(), user=user, per_page=1, with_links=False)
    jobs = list_jobs(user=user, per_page=PORTAL_JOBS)
    return {"today": today, "customers": customers_service.choices(user), "counts": view.counts,
            "jobs": jobs.rows, "jobs_total": jobs.total}
