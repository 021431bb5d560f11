"""The words every part of a report shares: what a report can contain, its periods, schedules and
formats, the status columns of its tables, and ``ReportError`` for what a user can fix."""
from __future__ import annotations

from ..status import FAILED, MISSED, OVERRIDE_SUCCESS, SUCCESS, WARNING

CONTENT_KEYS: tuple[str, ...] = ("summary", "success_rate", "chart", "failures", "overrides", "tickets")
CONTENT_LABELS = {
    "summary": "Summary per customer",
    "success_rate": "Success rate per job",
    "chart": "Runs-per-day chart",
    "failures": "Failures and missed runs, with their messages",
    "overrides": "Overrides applied",
    "tickets": "Tickets open in the period",
}
PERIODS = {"last_7_days": "Last 7 days", "last_month": "Last calendar month", "custom": "Custom range"}
SCHEDULES = {"none": "Not scheduled", "weekly": "Weekly", "monthly": "Monthly"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FORMATS = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}

# Columns of the tables, worst last so a reader sees the good news first; an unknown status word
# counts as a warning (status.py ranks it like one).
BUCKETS: tuple[str, ...] = (SUCCESS, OVERRIDE_SUCCESS, WARNING, FAILED, MISSED)
OK_STATUSES = frozenset({SUCCESS, OVERRIDE_SUCCESS})
PROBLEM_STATUSES = frozenset({FAILED, MISSED})


class ReportError(ValueError):
    """A problem the user can fix; the message says how."""
