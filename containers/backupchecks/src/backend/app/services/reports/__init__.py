"""Reports: backup status per customer over a period, as PDF, CSV or an HTML preview.

The figures come from the same rules as Run Checks and Daily Jobs (``services.status``): a run
counts with its *effective* status, an overridden success is "Success (override)", missed runs
are runs with status Missed, a run belongs to the local day its backup started, and a job's
status on a day follows the day rule from Settings.

The package, in the order a report is made:

- ``vocabulary``: contents, periods, schedules, formats, status columns, ``ReportError``;
- ``periods``: the whole local days a report covers and how they read;
- ``definitions``: the definition form, saving (audited) and the mailing schedule;
- ``data``: ``ReportData``, what one report shows, as plain data;
- ``build``: ``build_report`` fills it in a constant number of queries;
- ``pdf`` and ``csv_export``: the two files, pure rendering of a ``ReportData``;
- ``runs``: asking for a report and generating it in the background (a ``ReportRun`` is its
  task row, see ``services.tasks``), the lists the pages show, retention;
- ``delivery``: mailing generated reports through Microsoft Graph, retried with back-off;
- ``loop``: the reports loop in the single background runner (schedules, orphans, delivery).

Callers import the package (``from ..services import reports``) and use the names below.
"""
from .build import build_report
from .csv_export import CSV_COLUMNS, render_csv
from .data import CustomerReport, JobStats, ReportData, RunRow
from .definitions import (
    content_flags,
    customer_choices,
    customer_names,
    definition_values,
    delete_definition,
    intro_html,
    list_definitions,
    next_delivery,
    parse_recipients,
    save_definition,
    schedule_text,
    visible_to,
)
from .delivery import DELIVERY_BACKOFF, MAX_DELIVERY_ATTEMPTS, deliver_run, delivery_body, retry_delivery
from .loop import LOOP_INTERVAL_SECONDS, ORPHAN_AFTER, STALE_RUNNING, queue_scheduled, register, run_loop_step
from .pdf import render_pdf
from .periods import Period, period_days, period_for, period_label, period_text, run_period
from .runs import (
    MAX_ACTIVE_PER_USER,
    failed_deliveries,
    generate_run,
    purge_expired,
    recent_runs,
    request_report,
    run_status,
    run_visible_to,
    save_retention,
    start_generation,
    visible_run,
)
from .vocabulary import (
    BUCKETS,
    CONTENT_KEYS,
    CONTENT_LABELS,
    FORMATS,
    PERIODS,
    SCHEDULES,
    WEEKDAYS,
    ReportError,
)

__all__ = [
    "BUCKETS", "CONTENT_KEYS", "CONTENT_LABELS", "CSV_COLUMNS", "DELIVERY_BACKOFF", "FORMATS",
    "LOOP_INTERVAL_SECONDS", "MAX_ACTIVE_PER_USER", "MAX_DELIVERY_ATTEMPTS", "ORPHAN_AFTER", "PERIODS",
    "SCHEDULES", "STALE_RUNNING", "WEEKDAYS", "CustomerReport", "JobStats", "Period", "ReportData",
    "ReportError", "RunRow", "build_report", "content_flags", "customer_choices", "customer_names",
    "definition_values", "delete_definition", "deliver_run", "delivery_body", "failed_deliveries",
    "generate_run", "intro_html", "list_definitions", "next_delivery", "parse_recipients", "period_days",
    "period_for", "period_label", "period_text", "purge_expired", "queue_scheduled", "recent_runs",
    "register", "render_csv", "render_pdf", "request_report", "retry_delivery", "run_loop_step", "run_period",
    "run_status", "save_definition", "save_retention", "schedule_text", "start_generation",
]
