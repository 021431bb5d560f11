"""What one report shows, as plain data: ``ReportData`` with its customers, jobs, runs, failures,
overrides and tickets. ``build.build_report`` fills it from the database; the PDF, the CSV and the
HTML preview only read it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional
from zoneinfo import ZoneInfo

from ..status import FAILED, MISSED, OVERRIDE_SUCCESS, SUCCESS, WARNING, RunColumns
from .periods import Period
from .vocabulary import BUCKETS, OK_STATUSES


@dataclass(slots=True)
class RunRow(RunColumns):
    """A run of the period: the columns the status rules read, its message and review, and what
    the report shows (the shown status and the local day it belongs to)."""
    message: Optional[str]
    reviewed_at: Optional[datetime]
    shown: str = ""
    day: Optional[date] = None


class _Rates:
    """Totals of a ``counts`` Counter of shown statuses: runs, successes (overrides included), rate."""

    counts: Counter

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> int:
        return self.counts[SUCCESS] + self.counts[OVERRIDE_SUCCESS]

    @property
    def success_rate(self) -> Optional[float]:
        return (100.0 * self.ok / self.total) if self.total else None


@dataclass
class JobStats(_Rates):
    id: int
    name: str
    software: str
    backup_type: str
    archived: bool
    runs: list[RunRow] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    day_statuses: dict[date, str] = field(default_factory=dict)


    @property
    def days_total(self) -> int:
        return len(self.day_statuses)

    @property
    def days_ok(self) -> int:
        return sum(1 for s in self.day_statuses.values() if s in OK_STATUSES)

    @property
    def worst(self) -> Optional[str]:
        for s in (FAILED, MISSED, WARNING, OVERRIDE_SUCCESS, SUCCESS):
            if self.counts[s]:
                return s
        return None


@dataclass
class FailureRow:
    started_at: datetime
    job_name: str
    shown: str
    message: str
    reviewed: bool


@dataclass
class OverrideUse:
    id: int
    description: str
    comment: str
    runs: int
    objects: int


@dataclass
class TicketInfo:
    id: int
    code: str
    description: str
    active_from: datetime
    resolved_at: Optional[datetime]


@dataclass
class CustomerReport(_Rates):
    id: int
    name: str
    jobs: list[JobStats] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    daily: dict[date, Counter] = field(default_factory=dict)
    failures: list[FailureRow] = field(default_factory=list)
    failures_total: int = 0
    overrides: list[OverrideUse] = field(default_factory=list)
    tickets: list[TicketInfo] = field(default_factory=list)


    @property
    def days_total(self) -> int:
        return sum(j.days_total for j in self.jobs)

    @property
    def days_ok(self) -> int:
        return sum(j.days_ok for j in self.jobs)


@dataclass
class ReportData(_Rates):
    definition_id: Optional[int]
    name: str
    company: str
    period: Period
    zone: ZoneInfo
    generated_at: datetime        # UTC
    day_rule: str
    content: dict[str, bool]
    intro_html: str               # the definition's intro as stored HTML (rendered when it was saved)
    all_customers: bool
    customers: list[CustomerReport]
    counts: Counter = field(default_factory=Counter)
    daily: dict[date, Counter] = field(default_factory=dict)


    @property
    def job_count(self) -> int:
        return sum(len(c.jobs) for c in self.customers)

    @property
    def generated_local(self) -> str:
        return self.generated_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")


def bucket(shown: str) -> str:
    return shown if shown in BUCKETS else WARNING


def one_line(text: Optional[str], limit: int) -> str:
    """``text`` on one line (runs of white space become one space), cut at ``limit`` characters."""
    s = " ".join((text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
