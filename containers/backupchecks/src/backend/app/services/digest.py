"""The morning digest: what went wrong with the backups of one local day, in a few lines per job.

What a user expects at 08:00 is the night's backups, so the default day is **yesterday** in the UI
timezone: the jobs expected or run on that calendar day (a run belongs to the day its backup started).
A nightly job scheduled at 23:00 belongs to yesterday; one at 02:00 today belongs to today's Daily Jobs
and the next digest.

The digest is read from the Daily Jobs rows of that day (``daily_jobs.build_day``), so the digest and
the Daily Jobs page always agree: the same statuses under the same Settings rule (worst/last/best), the
same Missed rules, and an overridden success is a success. On top of those rows it adds, in one query
each whatever the number of jobs: the open tickets and remarks covering each listed job
(``tickets.open_counts_for_jobs``) and the runs waiting in Run Checks.

The digest is content only: ``render_text``, ``render_html`` and ``subject`` turn it into a mail's
parts; sending it is someone else's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..extensions import db
from ..models import Customer, Job, JobRun, utcnow
from .daily_jobs import build_day
from .status import FAILED, MISSED, STATUS_ORDER, WARNING, configured_day_rule, severity
from .tickets import open_counts_for_jobs
from .timezones import local_day

# The statuses the digest lists, worst first; the others are only counted.
LISTED = (FAILED, MISSED, WARNING)
ERROR_LINE_MAX = 160
_ALL_ROWS = 1_000_000  # build_day's page size: every row of the day on one page


@dataclass
class DigestJob:
    job_id: int
    job_name: str
    software: str
    backup_type: Optional[str]
    status: str
    detail: str                # the error line (the run's message, first line), or for Missed the expected time
    open_tickets: int
    open_remarks: int
    link: str                  # Run Checks for this job


@dataclass
class DigestCustomer:
    customer_id: int
    name: str
    jobs: list[DigestJob] = field(default_factory=list)

    @property
    def status(self) -> str:
        return min((j.status for j in self.jobs), key=severity)


@dataclass
class Digest:
    day: date
    zone: str
    generated_at: datetime           # UTC
    rule: str
    counts: dict[str, int]           # shown status -> jobs, exactly as Daily Jobs counts them
    customers: list[DigestCustomer]  # worst first, then by name
    unreviewed_runs: int             # runs waiting in Run Checks (all days)
    unreviewed_jobs: int
    daily_jobs_url: str
    run_checks_url: str

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)

    @property
    def missed(self) -> int:
        return self.counts.get(MISSED, 0)

    @property
    def warnings(self) -> int:
        return self.counts.get(WARNING, 0)

    @property
    def is_all_clear(self) -> bool:
        return not (self.failed or self.missed or self.warnings)

    @property
    def jobs_listed(self) -> int:
        return sum(len(c.jobs) for c in self.customers)

    @property
    def count_lines(self) -> list[tuple[str, int]]:
        """(status, jobs) for every status of the day with at least one job, worst first."""
        return [(s, self.counts[s]) for s in STATUS_ORDER if self.counts.get(s)]


def default_day(now: datetime, zone: ZoneInfo) -> date:
    """The day a digest made at ``now`` is about: yesterday in ``zone`` (the night's backups)."""
    return local_day(now, zone) - timedelta(days=1)


def link(base_url: Optional[str], path: str, **params) -> str:
    """``path`` with its query on ``base_url`` (absolute), or the relative path when there is none."""
    base = (base_url or "").strip().rstrip("/")
    query = f"?{urlencode(params)}" if params else ""
    return f"{base}{path}{query}"


def default_base_url() -> Optional[str]:
    """The Backupchecks address configured for links from outside the app (Settings → Autotask)."""
    from .settings import get_settings

    return (get_settings().autotask_base_url or "").strip().rstrip("/") or None


def error_line(message: Optional[str], limit: int = ERROR_LINE_MAX) -> str:
    """The first non-empty line of a run's message, shortened to ``limit`` characters."""
    for line in (message or "").splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
    return ""


def _detail(row, zone: ZoneInfo) -> str:
    if row.status == MISSED:
        if row.slot is not None:
            return f"no run arrived; expected at {row.slot.astimezone(zone):%H:%M}"
        return "no run arrived"
    run = row.status_run
    return error_line(getattr(run, "preview", None)) if run is not None else ""


def unreviewed_counts() -> tuple[int, int]:
    """(runs, jobs) waiting for review in Run Checks; one query."""
    runs, jobs = db.session.execute(
        select(func.count(JobRun.id), func.count(func.distinct(JobRun.job_id)))
        .join(Job, Job.id == JobRun.job_id).join(Customer, Customer.id == Job.customer_id)
        .where(JobRun.reviewed_at.is_(None))).one()
    return int(runs), int(jobs)


def build_digest(day: Optional[date] = None, zone: Optional[ZoneInfo] = None, now: Optional[datetime] = None,
                 rule: Optional[str] = None, base_url: Optional[str] = None) -> Digest:
    """The digest of ``day`` (a local day in ``zone``; default yesterday) as seen at ``now`` (UTC;
    default the clock). ``rule`` defaults to the Settings rule, ``zone`` to the UI timezone. Links are
    absolute on ``base_url``, relative without one. A constant number of queries."""
    from .settings import ui_zone

    now = now or utcnow()
    zone = zone or ui_zone()
    rule = rule or configured_day_rule()
    day = day or default_day(now, zone)
    view = build_day(day, zone, now, rule, per_page=_ALL_ROWS, with_links=False)
    rows = [r for g in view.groups for r in g.rows if r.status in LISTED]
    counts = open_counts_for_jobs([r.job.id for r in rows])

    customers: dict[int, DigestCustomer] = {}
    for row in rows:
        tickets, remarks = counts.get(row.job.id, (0, 0))
        customer = customers.setdefault(row.customer_id, DigestCustomer(row.customer_id, row.customer_name))
        customer.jobs.append(DigestJob(
            job_id=row.job.id, job_name=row.job.job_name, software=row.job.software or "",
            backup_type=row.job.backup_type, status=row.status, detail=_detail(row, zone),
            open_tickets=tickets, open_remarks=remarks, link=link(base_url, "/run-checks", job=row.job.id)))
    for customer in customers.values():
        customer.jobs.sort(key=lambda j: (severity(j.status), j.job_name.lower(), j.job_id))
    ordered = sorted(customers.values(), key=lambda c: (severity(c.status), c.name.lower(), c.customer_id))
    runs, jobs = unreviewed_counts()
    return Digest(day=day, zone=zone.key, generated_at=now, rule=rule, counts=dict(view.counts),
                  customers=ordered, unreviewed_runs=runs, unreviewed_jobs=jobs,
                  daily_jobs_url=link(base_url, "/daily-jobs", date=day.isoformat()),
                  run_checks_url=link(base_url, "/run-checks"))


# --- Rendering --------------------------------------------------------------------------------

def subject(digest: Digest) -> str:
    """'Backups 2026-12-03: 3 failed, 2 missed, 5 warnings' or 'Backups 2026-12-03: all clear'."""
    if digest.is_all_clear:
        return f"Backups {digest.day.isoformat()}: all clear"
    parts = []
    if digest.failed:
        parts.append(f"{digest.failed} failed")
    if digest.missed:
        parts.append(f"{digest.missed} missed")
    if digest.warnings:
        parts.append(f"{digest.warnings} warning{'s' if digest.warnings != 1 else ''}")
    return f"Backups {digest.day.isoformat()}: {', '.join(parts)}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def notes(job: DigestJob) -> str:
    """'2 open tickets, 1 open remark' (empty when there are none)."""
    parts = []
    if job.open_tickets:
        parts.append(_plural(job.open_tickets, "open ticket"))
    if job.open_remarks:
        parts.append(_plural(job.open_remarks, "open remark"))
    return ", ".join(parts)


def review_line(digest: Digest) -> str:
    if not digest.unreviewed_runs:
        return "Run Checks: nothing waiting for review."
    return (f"Run Checks: {_plural(digest.unreviewed_runs, 'run')} of "
            f"{_plural(digest.unreviewed_jobs, 'job')} waiting for review.")


def render_text(digest: Digest) -> str:
    """The digest as plain text: for a terminal and the text part of a mail."""
    title = subject(digest)
    lines = [title, "=" * len(title), ""]
    counts = ", ".join(f"{s}: {n}" for s, n in digest.count_lines) or "no jobs expected or run"
    lines += [f"Jobs on {digest.day.isoformat()} ({digest.zone}): {counts}", ""]
    if digest.is_all_clear:
        lines += ["All clear: nothing failed, was missed or warned.", ""]
    for customer in digest.customers:
        lines.append(f"{customer.name} ({customer.status})")
        for job in customer.jobs:
            software = f" [{job.software}]" if job.software else ""
            lines.append(f"  - {job.status}: {job.job_name}{software}")
            if job.detail:
                lines.append(f"      {job.detail}")
            extra = notes(job)
            if extra:
                lines.append(f"      {extra}")
            lines.append(f"      {job.link}")
        lines.append("")
    lines += [review_line(digest), f"  {digest.run_checks_url}",
              f"Daily Jobs for {digest.day.isoformat()}:", f"  {digest.daily_jobs_url}"]
    return "\n".join(lines) + "\n"


def render_html(digest: Digest) -> str:
    """The digest as a mail's HTML part (templates/mail/digest.html: inline styles, every value escaped)."""
    from flask import current_app

    # The app's Jinja environment (autoescaping .html) without the page context: a mail has no request.
    template = current_app.jinja_env.get_template("mail/digest.html")
    return template.render(digest=digest, subject=subject(digest), notes=notes, review_line=review_line(digest))
