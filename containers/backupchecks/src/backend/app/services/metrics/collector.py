"""The business metrics, read from the database when Prometheus scrapes.

Every web process can answer a scrape, and the numbers are the deployment's, not the process's: a
handful of aggregate statements, one per table (``QUERIES``), whatever the number of rows, and no
statement per row. ``mail_messages`` is counted from ``ix_mail_messages_state_received``; the loop
and import totals are a few rows written by the background process (``recording.py``).
"""
from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator

from flask import Flask
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from sqlalchemy import text

from ...extensions import db
from ...models import STATUSES

log = logging.getLogger(__name__)

PREFIX = "backupchecks_"
# Label values that are always shown (0 when no row has them), so an alert on a state that has no
# rows yet still finds its series; a value not listed here appears when a row has it.
MAIL_STATES = ("inbox", "processed", "ignored", "error", "deleted")
OUTBOX_STATES = ("pending", "sent", "failed", "given_up")
MAIL_OUTCOMES = {"processed": "auto_processed_total", "inbox": "to_inbox_total",
                 "duplicate": "duplicates_total", "failed": "failed_total"}

QUERIES = {
    "mail": "SELECT state, count(*) FROM mail_messages GROUP BY state",
    "runs": ("SELECT effective_status, count(*), count(*) FILTER (WHERE reviewed_at IS NULL), "
             "count(*) FILTER (WHERE missed) FROM job_runs GROUP BY effective_status"),
    "outbox": "SELECT state, count(*) FROM notification_outbox GROUP BY state",
    "loops": ("SELECT loop, steps_total, failures_total, duration_seconds_total, "
              "extract(epoch FROM last_success_at) FROM background_loop_stats ORDER BY loop"),
    "imports": ("SELECT trigger, state, cycles_total, duration_seconds_total, auto_processed_total, "
                "to_inbox_total, duplicates_total, failed_total, extract(epoch FROM last_finished_at) "
                "FROM import_cycle_stats ORDER BY trigger, state"),
}


def _by_label(known: Iterable[str], rows) -> dict[str, float]:
    counts = {value: 0 for value in known}
    for value, count in rows:
        counts[value or ""] = counts.get(value or "", 0) + count
    return counts


def _gauge_by(name: str, doc: str, label: str, counts: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def mail_families(rows) -> Iterator[Metric]:
    yield _gauge_by("mail_messages", "Stored mails by state (inbox, processed, ignored, error, deleted).",
                    "state", _by_label(MAIL_STATES, rows))


def run_families(rows) -> Iterator[Metric]:
    rows = list(rows)
    yield _gauge_by("job_runs", "Job runs by status after overrides (Success, Warning, Failed, Missed).",
                    "status", _by_label(STATUSES, [(s, n) for s, n, _, _ in rows]))
    yield _gauge_by("job_runs_unreviewed", "Job runs nobody has reviewed yet, by status after overrides.",
                    "status", _by_label(STATUSES, [(s, u) for s, _, u, _ in rows]))
    yield GaugeMetricFamily(PREFIX + "job_runs_missed",
                            "Missed runs the missed-run generator created (and no late run replaced).",
                            value=sum(m for _, _, _, m in rows))


def outbox_families(rows) -> Iterator[Metric]:
    yield _gauge_by("notification_outbox",
                    "Notification messages by delivery state (finished ones leave after NOTIFY_LOG_DAYS).",
                    "state", _by_label(OUTBOX_STATES, rows))


def loop_families(rows) -> Iterator[Metric]:
    steps = SummaryMetricFamily(PREFIX + "background_loop_step_duration_seconds",
                                "Steps of each background loop (count) and the time they took (sum).",
                                labels=["loop"])
    failures = CounterMetricFamily(PREFIX + "background_loop_failures",
                                   "Steps of each background loop that failed with an error.", labels=["loop"])
    last_success = GaugeMetricFamily(PREFIX + "background_loop_last_success_timestamp_seconds",
                                     "When each background loop last finished a step without an error "
                                     "(Unix time).", labels=["loop"])
    for loop, steps_total, failures_total, duration_total, success_epoch in rows:
        steps.add_metric([loop], count_value=steps_total, sum_value=duration_total)
        failures.add_metric([loop], failures_total)
        if success_epoch is not None:
            last_success.add_metric([loop], float(success_epoch))
    yield from (steps, failures, last_success)


def import_families(rows) -> Iterator[Metric]:
    cycles = SummaryMetricFamily(PREFIX + "import_cycle_duration_seconds",
                                 "Mail import cycles by trigger (auto, manual, cli) and outcome (done, failed): "
                                 "how many (count) and how long they took (sum).", labels=["trigger", "state"])
    last = GaugeMetricFamily(PREFIX + "import_cycle_last_finished_timestamp_seconds",
                             "When the last import cycle of this trigger and outcome ended (Unix time).",
                             labels=["trigger", "state"])
    mails = {outcome: 0 for outcome in MAIL_OUTCOMES}
    for trigger, state, count, duration, processed, inbox, duplicates, failed, last_epoch in rows:
        cycles.add_metric([trigger, state], count_value=count, sum_value=duration)
        if last_epoch is not None:
            last.add_metric([trigger, state], float(last_epoch))
        for outcome, n in zip(MAIL_OUTCOMES, (processed, inbox, duplicates, failed)):
            mails[outcome] += n
    mail_total = CounterMetricFamily(PREFIX + "import_mails",
                                     "Mails handled by import cycles, by outcome: processed (became a run), inbox "
                                     "(waits in the Inbox), duplicate (stored before), failed (stays in the "
                                     "mailbox).", labels=["outcome"])
    for outcome, n in mails.items():
        mail_total.add_metric([outcome], n)
    yield from (cycles, last, mail_total)


FAMILIES = {"mail": mail_families, "runs": run_families, "outbox": outbox_families,
            "loops": loop_families, "imports": import_families}


class DatabaseCollector:
    """A prometheus_client collector: ``collect()`` asks the database (``QUERIES``) at every scrape."""

    def __init__(self, app: Flask):
        self.app = app

    def describe(self) -> list:
        return []  # nothing at registration: the database is only asked when scraped

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: list[Metric] = []
        up = 1
        try:
            with self.app.app_context():  # a session of its own, closed when done
                for key, sql in QUERIES.items():
                    families.extend(FAMILIES[key](db.session.execute(text(sql)).all()))
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying the database did not
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            families, up = [], 0
        yield from families
        yield GaugeMetricFamily(PREFIX + "database_up", "1 when the database answered this scrape's queries.",
                                value=up)
        yield GaugeMetricFamily(PREFIX + "metrics_database_seconds",
                                "Time this scrape spent reading the database.", value=time.perf_counter() - started)
