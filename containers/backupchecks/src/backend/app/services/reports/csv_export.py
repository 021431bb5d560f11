"""The CSV of a report: one row per run of the period, safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io

from .data import ReportData, one_line


CSV_COLUMNS = ("customer", "job", "software", "backup_type", "run_id", "started_at", "day", "status",
               "effective_status", "shown_status", "overridden", "missed", "reviewed", "message")


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; a leading apostrophe stops that."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render_csv(data: ReportData) -> bytes:
    """One row per run of the period, with the status as stored, the effective status and the word
    the pages show; times in the UI timezone (ISO 8601 with offset)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for cust in data.customers:
        for job in cust.jobs:
            for r in job.runs:
                w.writerow([_csv_safe(cust.name), _csv_safe(job.name), _csv_safe(job.software),
                            _csv_safe(job.backup_type), r.id,
                            r.started_at.astimezone(data.zone).isoformat(timespec="seconds"), r.day.isoformat(),
                            r.status, r.effective_status, r.shown, "yes" if r.override_id else "no",
                            "yes" if r.missed else "no", "yes" if r.reviewed_at else "no",
                            _csv_safe(one_line(r.message, 2000))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 correctly

