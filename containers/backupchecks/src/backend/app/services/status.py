"""The status rules shared by Daily Jobs, Run Checks, the dashboard and reports.

- Severity: Failed is worst, then Missed, Warning, and Success (an overridden
  success sorts just above a plain one, so "worst" shows the override).
- A run's shown status is its *effective* status (after overrides); an
  overridden success reads "Success (override)".
- A run belongs to the day its backup started, in the UI timezone.
- The status of a job on a day with several runs follows the Settings rule:
  "worst" (default), "last" (the run that started last) or "best".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence

from .settings import get_settings

SUCCESS = "Success"
WARNING = "Warning"
FAILED = "Failed"
MISSED = "Missed"
EXPECTED = "Expected"  # Daily Jobs: expected today, no run yet (never stored on a run)
UNKNOWN = "Unknown"  # an object whose report gave no status
OVERRIDE_SUCCESS = "Success (override)"
MAINTENANCE = "Maintenance"  # Daily Jobs: the slot lies in a maintenance window (never stored on a run)

# Worst first: sort keys, "worst first" lists and the queue order use this.
STATUS_ORDER: tuple[str, ...] = (FAILED, MISSED, WARNING, OVERRIDE_SUCCESS, SUCCESS, EXPECTED)
DAY_RULES: tuple[str, ...] = ("worst", "last", "best")

_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
# A run ranked at least this (``status_rank_sql``) is successful: Success or Success (override).
SUCCESSFUL_RANK = _RANK[OVERRIDE_SUCCESS]
SUCCESSFUL: tuple[str, ...] = (OVERRIDE_SUCCESS, SUCCESS)
_CANONICAL = {s.lower(): s for s in STATUS_ORDER}
# An unknown status word is treated like a warning: shown, never hidden as a success.
_UNKNOWN_RANK = _RANK[WARNING]


def canonical_status(status: Optional[str]) -> Optional[str]:
    """One of our statuses in its canonical spelling ('failed ' -> 'Failed'); unknown words come back
    stripped, None stays None. (A vendor's status word is mapped by ``parsers.base.status_from_word``.)"""
    if status is None:
        return None
    s = str(status).strip()
    return _CANONICAL.get(s.lower(), s)


def severity(status: Optional[str]) -> int:
    """0 is worst. Unknown words rank like Warning; None (no run) ranks as Expected."""
    if status is None:
        return _RANK[EXPECTED]
    return _RANK.get(canonical_status(status), _UNKNOWN_RANK)


def worst(statuses: Iterable[Optional[str]]) -> Optional[str]:
    """The worst of the given statuses (None when there are none)."""
    items = [s for s in statuses if s is not None]
    if not items:
        return None
    return canonical_status(min(items, key=severity))


def best(statuses: Iterable[Optional[str]]) -> Optional[str]:
    items = [s for s in statuses if s is not None]
    if not items:
        return None
    return canonical_status(max(items, key=severity))


@dataclass(slots=True)
class RunColumns:
    """The columns of a stored run the status rules read (``display_status``, ``day_run``); the
    pages that load runs as plain rows (Daily Jobs, reports) extend it with what they show."""
    id: int
    job_id: int
    status: str
    effective_status: str
    override_id: Optional[int]
    started_at: datetime
    missed: bool


def display_status(run) -> str:
    """The word a page shows for a run or a run object: its effective status, and
    "Success (override)" when an override made it a success."""
    status = canonical_status(getattr(run, "effective_status", None) or getattr(run, "status", None)) or UNKNOWN
    if status == SUCCESS and getattr(run, "override_id", None):
        return OVERRIDE_SUCCESS
    return status


def status_rank_sql(status_col, override_col=None):
    """A SQL expression ranking a status column like ``severity`` (0 = worst), for sorting
    "worst first" and taking MIN() per job in the database. With ``override_col`` an
    overridden success ranks as "Success (override)"."""
    from sqlalchemy import and_, case

    whens = [(status_col == s, _RANK[s]) for s in (FAILED, MISSED, WARNING)]
    if override_col is not None:
        whens.append((and_(status_col == SUCCESS, override_col.is_not(None)), _RANK[OVERRIDE_SUCCESS]))
    whens.append((status_col == SUCCESS, _RANK[SUCCESS]))
    return case(*whens, else_=_UNKNOWN_RANK)


def status_from_rank(rank: Optional[int]) -> Optional[str]:
    """The status word for a rank from ``status_rank_sql`` (e.g. MIN() of a job's runs)."""
    if rank is None:
        return None
    return STATUS_ORDER[rank] if 0 <= rank < len(STATUS_ORDER) else WARNING


def _run_time(run) -> datetime:
    t = getattr(run, "started_at", None) or getattr(run, "missed_slot", None) or getattr(run, "created_at", None)
    return t or datetime.min.replace(tzinfo=timezone.utc)


def day_run(runs: Sequence, rule: str = "worst"):
    """The run whose status stands for the day under ``rule`` (None without runs).

    worst: the most severe effective status (ties: the later run);
    last: the run that started last (ties: the higher id);
    best: the least severe effective status (ties: the later run).
    """
    if rule not in DAY_RULES:
        raise ValueError(f"Unknown day-status rule '{rule}': use one of {', '.join(DAY_RULES)}.")
    runs = list(runs)
    if not runs:
        return None
    def when(r) -> tuple[float, int]:
        return (_run_time(r).timestamp(), getattr(r, "id", None) or 0)

    if rule == "last":
        return max(runs, key=when)
    if rule == "worst":
        # Lowest rank is worst; among equals the later run.
        return max(runs, key=lambda r: (-severity(display_status(r)), when(r)))
    return max(runs, key=lambda r: (severity(display_status(r)), when(r)))


def day_status(runs: Sequence, rule: str = "worst") -> Optional[str]:
    """The shown status of a job's runs on one day (effective statuses, "Success (override)"
    included), or None without runs (the page then shows Expected or Missed)."""
    chosen = day_run(runs, rule)
    return display_status(chosen) if chosen is not None else None


def configured_day_rule() -> str:
    """The day-status rule chosen in Settings (an unknown value falls back to "worst")."""
    rule = (get_settings().daily_status_rule or "worst").strip().lower()
    return rule if rule in DAY_RULES else "worst"
