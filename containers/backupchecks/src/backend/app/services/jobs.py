"""Jobs: the grouped list, the detail with its run history, archive, delete, JSON export and import.

Lists filter, sort and page in the database with a constant number of queries per page. Every
change is audited; the caller commits (or rolls back on ``JobError``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from ..extensions import db
from ..models import Customer, Job, JobRun, MailMessage, User
from . import audit, scope
from .customers import NAME_MAX, search_filter
from .search import contains_text, starts_with_text
from .ingest import job_identity_key
from .schedules import describe_schedule, effective_schedule, recompute_job_schedule
from .settings import ui_zone
from .tickets import remarks_for_runs, tickets_for_runs

UTC = timezone.utc
PER_PAGE = 50
RUNS_PER_PAGE = 20
EXPORT_FORMAT = "backupchecks-jobs"
EXPORT_VERSION = 1
MAX_IMPORT_JOBS = 10000
MAX_IMPORT_BYTES = 20 * 1024 * 1024  # an export of 10,000 jobs is a few MB
MAX_IMPORT_DEPTH = 16  # an export nests five levels: {"jobs": [{"manual_schedule": {"weekdays": [...]}}]}
SORTS = ("customer", "job", "software", "type", "schedule", "last_run", "status")
# Status filter values: the last run's status as shown (override included) or "none" (no run yet).
STATUS_FILTERS = ("Success", "Success (override)", "Warning", "Failed", "Missed", "none")


class JobError(ValueError):
    """A rule was broken; the message is shown to the user as is."""


# --- The list --------------------------------------------------------------------------------------

@dataclass
class JobRow:
    job: Job
    customer_name: str
    last_started: Optional[datetime]
    last_status: Optional[str]
    last_override: bool

    @property
    def customer_id(self) -> int:
        return self.job.customer_id


@dataclass
class JobPage:
    rows: list[JobRow]
    total: int
    page: int
    per_page: int


def _last_run_columns():
    """The newest run's start, effective status and override id as correlated scalar subqueries.

    Each one is an index lookup per job (``ix_job_runs_job_started`` read backwards, first row); with
    the default sort PostgreSQL evaluates them for the page's rows only (after ORDER BY ... LIMIT).
    A join on "the newest run id" instead made PostgreSQL hash every run of every job.
    """
    def newest(column):
        return (select(column).where(JobRun.job_id == Job.id, JobRun.started_at.is_not(None))
                .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                .limit(1).correlate(Job).scalar_subquery())
    return newest(JobRun.started_at), newest(JobRun.effective_status), newest(JobRun.override_id)


def _last_severity():
    """The newest run's severity (Failed 0, Missed 1, Warning 2, Success 3), for sorting; one lookup."""
    st = JobRun.effective_status
    rank = case((st == "Failed", 0), (st == "Missed", 1), (st == "Warning", 2), (st == "Success", 3), else_=4)
    return (select(rank).where(JobRun.job_id == Job.id, JobRun.started_at.is_not(None))
            .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1).correlate(Job).scalar_subquery())


def _filtered(stmt, last_status, last_override, *, archived, customer_id, software, status, q, user=None):
    stmt = stmt.join(Customer, Customer.id == Job.customer_id).where(Job.archived.is_(archived))
    if user is not None:
        stmt = scope.restrict(stmt, Job.customer_id, user)
    if customer_id:
        stmt = stmt.where(Job.customer_id == customer_id)
    if software:
        stmt = stmt.where(Job.software == software)
    if status == "none":
        stmt = stmt.where(~select(JobRun.id).where(JobRun.job_id == Job.id).correlate(Job).exists())
    elif status == "Success (override)":
        stmt = stmt.where(last_status == "Success", last_override.is_not(None))
    elif status == "Success":
        stmt = stmt.where(last_status == "Success", last_override.is_(None))
    elif status in STATUS_FILTERS:
        stmt = stmt.where(last_status == status)
    if q:
        stmt = stmt.where(search_filter(q.strip()))
    return stmt


def list_jobs(*, archived: bool = False, customer_id: Optional[int] = None, software: str = "",
              status: str = "", q: str = "", sort: str = "customer", direction: str = "asc",
              page: int = 1, per_page: int = PER_PAGE, user=None) -> JobPage:
    """One page of jobs, grouped by customer (customer name is always the first order key; the sort
    orders the customers by name or the jobs inside each customer). Two queries whatever the size.
    With ``user``: only the jobs of the customers that user may see (``scope``)."""
    last_started, last_status, last_override = _last_run_columns()
    filters = dict(archived=archived, customer_id=customer_id, software=software, status=status, q=q, user=user)
    stmt = _filtered(select(Job, Customer.name, last_started, last_status, last_override),
                     last_status, last_override, **filters)
    total = db.session.execute(_filtered(select(func.count(Job.id)).select_from(Job), last_status, last_override,
                                         **filters)).scalar_one()

    severity = func.coalesce(_last_severity(), 5)  # no run yet: after every status
    keys = {"job": func.lower(Job.job_name), "software": func.lower(Job.software),
            "type": func.lower(Job.backup_type), "schedule": Job.schedule_kind,
            "last_run": last_started, "status": severity}
    desc = direction == "desc"
    customer_key = func.lower(Customer.name)
    order = [customer_key.desc() if desc and sort == "customer" else customer_key.asc(), Job.customer_id]
    if sort in keys:
        k = keys[sort]
        order.append(k.desc().nullslast() if desc else k.asc().nullslast())
    order += [func.lower(Job.job_name), Job.id]
    page = max(1, page)
    result = db.session.execute(stmt.order_by(*order).limit(per_page).offset((page - 1) * per_page)).all()
    rows = [JobRow(job, cname, started, st, bool(ov) and st == "Success") for job, cname, started, st, ov in result]
    return JobPage(rows, total, page, per_page)


def filter_choices() -> tuple[list, list[str]]:
    """(customers [(id, name)], software names) for the filter controls; two queries."""
    customers = db.session.execute(select(Customer.id, Customer.name).order_by(func.lower(Customer.name))).all()
    software = db.session.execute(select(Job.software).where(Job.software != "").distinct()
                                  .order_by(Job.software)).scalars().all()
    return customers, software


# --- The job picker --------------------------------------------------------------------------------
#
# Forms that scope something to one job (a ticket, a remark, an override) do not list every job:
# the user types part of the customer or job name and chooses one of a few suggestions
# (/jobs/lookup, static/js/pages/job_picker.js). A form sent without a choice (no JavaScript, or
# typed and sent at once) still works: ``job_from_picker`` takes the one job the text names.

LOOKUP_LIMIT = 20  # suggestions per answer
LOOKUP_MAX_TEXT = 200  # characters of search text
LOOKUP_MAX_WORDS = 8
LABEL_SEPARATOR = " · "


class JobLookupError(ValueError):
    """The search text can't be used, or names no job or several; the message is shown as is."""


@dataclass(frozen=True)
class JobMatch:
    id: int
    job_name: str
    customer_id: int
    customer_name: str
    software: str
    backup_type: Optional[str]
    archived: bool

    @property
    def label(self) -> str:
        """What the picker's box shows for the chosen job: "Customer · Job"."""
        return f"{self.customer_name}{LABEL_SEPARATOR}{self.job_name}"

    def as_json(self) -> dict:
        return {"id": self.id, "job_name": self.job_name, "customer_id": self.customer_id,
                "customer_name": self.customer_name, "software": self.software,
                "backup_type": self.backup_type or "", "archived": self.archived, "label": self.label}


@dataclass(frozen=True)
class JobLookup:
    jobs: list[JobMatch]
    more: bool  # more jobs match than ``jobs`` holds: type more to narrow them down

    def as_json(self) -> dict:
        return {"jobs": [j.as_json() for j in self.jobs], "more": self.more, "limit": LOOKUP_LIMIT}


def _match_columns():
    return (select(Job.id, Job.job_name, Job.customer_id, Customer.name, Job.software, Job.backup_type, Job.archived)
            .join(Customer, Customer.id == Job.customer_id))


def lookup_words(text: Optional[str]) -> list[str]:
    """The words of a search text; each must appear in the customer or the job name. The label's
    separator is no word, so a chosen job's label typed (or sent) back finds that job."""
    text = text or ""
    if len(text) > LOOKUP_MAX_TEXT:
        raise JobLookupError(f"The search text is too long: at most {LOOKUP_MAX_TEXT} characters.")
    if any((ord(ch) < 32 and not ch.isspace()) or ord(ch) == 127 for ch in text):
        raise JobLookupError("The search text holds control characters: type part of the customer or job name.")
    words = text.replace(LABEL_SEPARATOR.strip(), " ").split()
    if len(words) > LOOKUP_MAX_WORDS:
        raise JobLookupError(f"The search text has {len(words)} words: use at most {LOOKUP_MAX_WORDS}.")
    return words


def lookup_jobs(text: Optional[str] = "", *, customer_id: Optional[int] = None, include_archived: bool = False,
                limit: int = LOOKUP_LIMIT) -> JobLookup:
    """Up to ``limit`` jobs whose customer or job name contains every word of ``text`` (ignoring case;
    % and _ are the characters themselves), best first: the job named exactly (its name or its label),
    then job names that start with the text, then by customer and job name. No text: the first jobs
    in that order. Only jobs of ``customer_id`` when given; archived jobs only with
    ``include_archived``. One query, whatever the number of jobs."""
    words = lookup_words(text)
    stmt = _match_columns()
    if not include_archived:
        stmt = stmt.where(Job.archived.is_(False))
    if customer_id is not None:
        stmt = stmt.where(Job.customer_id == customer_id)
    for word in words:
        stmt = stmt.where(contains_text([Customer.name, Job.job_name], word))
    order = []
    if words:
        typed = " ".join((text or "").split()).lower()
        label = func.lower(Customer.name + LABEL_SEPARATOR + Job.job_name)
        order.append(case((func.lower(Job.job_name) == typed, 0), (label == typed, 0),
                          (starts_with_text(Job.job_name, " ".join(words)), 1), else_=2))
    order += [func.lower(Customer.name), Customer.id, func.lower(Job.job_name), Job.id]
    rows = db.session.execute(stmt.order_by(*order).limit(limit + 1)).all()
    return JobLookup([JobMatch(*row) for row in rows[:limit]], more=len(rows) > limit)


def _row_id(value) -> Optional[int]:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2 ** 31 else None


def job_match(job_id) -> Optional[JobMatch]:
    """The job (archived or not) as the picker shows it, or None when there is no such job; one query."""
    row_id = _row_id(job_id)
    if row_id is None:
        return None
    row = db.session.execute(_match_columns().where(Job.id == row_id)).one_or_none()
    return JobMatch(*row) if row else None


def _named(job: JobMatch) -> str:
    return job.label + (f" ({job.software})" if job.software else "")


def job_from_picker(job_id, text: Optional[str], *, customer_id: Optional[int] = None):
    """The job a form's picker sent, as the job id to save ("" for none).

    ``text`` is what the picker's box shows. None (a form without the box: Run Checks, a script):
    ``job_id`` as sent. The chosen job's label: that job. Anything else was typed without choosing a
    suggestion: the job whose name or label it is exactly, else the only job (not archived, of
    ``customer_id`` when given) it matches; no job or several are refused with ``JobLookupError``
    naming a few. Two queries at most."""
    if text is None:
        return job_id
    typed = " ".join(text.split())
    if not typed:
        return ""
    chosen = job_match(job_id)
    if chosen is not None and chosen.label.lower() == typed.lower():
        return str(chosen.id)
    found = lookup_jobs(typed, customer_id=customer_id)
    exact = [j for j in found.jobs if typed.lower() in (j.label.lower(), j.job_name.lower())]
    if len(exact) == 1:
        return str(exact[0].id)
    if len(found.jobs) == 1 and not found.more:
        return str(found.jobs[0].id)
    if not found.jobs:
        scope = " of the chosen customer" if customer_id is not None else ""
        raise JobLookupError(f"No job{scope} matches '{typed}': type part of the customer or job name "
                             f"and choose one of the suggestions.")
    count = f"more than {LOOKUP_LIMIT}" if found.more else str(len(found.jobs))
    examples = "; ".join(_named(j) for j in found.jobs[:3]) + ("; …" if found.more or len(found.jobs) > 3 else "")
    raise JobLookupError(f"'{typed}' matches {count} jobs ({examples}): type more of the customer or job "
                         f"name, or choose one of the suggestions.")


# --- The detail ------------------------------------------------------------------------------------

@dataclass
class RunHistory:
    runs: list[JobRun]
    total: int
    page: int
    per_page: int
    tickets: dict[int, list] = field(default_factory=dict)
    remarks: dict[int, list] = field(default_factory=dict)


def get_job(job_id: int) -> Optional[Job]:
    """The job with its customer; one query."""
    return db.session.execute(
        select(Job).join(Customer, Customer.id == Job.customer_id).options(contains_eager(Job.customer))
        .where(Job.id == job_id)
    ).unique().scalar_one_or_none()


def run_history(job: Job, page: int = 1, per_page: int = RUNS_PER_PAGE, with_links: bool = True) -> RunHistory:
    """A page of the job's runs, newest first, with objects, reviewer, tickets and remarks.

    Count, runs (+ reviewer), objects, tickets, remarks: five queries whatever the page holds.
    """
    total = db.session.execute(select(func.count(JobRun.id)).where(JobRun.job_id == job.id)).scalar_one()
    page = max(1, page)
    runs = db.session.execute(
        select(JobRun).where(JobRun.job_id == job.id)
        .outerjoin(User, User.id == JobRun.reviewed_by_id).options(contains_eager(JobRun.reviewed_by),
                                                                   selectinload(JobRun.objects))
        .order_by(JobRun.started_at.desc().nullslast(), JobRun.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).unique().scalars().all()
    history = RunHistory(list(runs), total, page, per_page)
    ids = [r.id for r in runs]
    if ids and with_links:
        history.tickets = tickets_for_runs(ids)
        history.remarks = remarks_for_runs(ids)
    return history


def run_mail(job: Job, run_id: int) -> Optional[MailMessage]:
    """The mail a run of ``job`` was made from (None: no such run of this job, no mail, or a deleted
    mail). One query; the caller has checked that the user may see the job."""
    return db.session.execute(
        select(MailMessage).join(JobRun, JobRun.mail_message_id == MailMessage.id)
        .where(JobRun.id == run_id, JobRun.job_id == job.id, MailMessage.state != "deleted")
    ).scalar_one_or_none()


def page_of_run(job: Job, run_id: int, per_page: int = RUNS_PER_PAGE) -> Optional[int]:
    """The page of ``run_history`` that holds one of the job's runs (None when the job has no such
    run), in two queries: its start, then the runs listed before it (newer, or as new with a higher id)."""
    if not isinstance(run_id, int) or not 0 < run_id < 2 ** 31:
        return None
    run = db.session.execute(select(JobRun.started_at).where(JobRun.id == run_id, JobRun.job_id == job.id)
                             ).one_or_none()
    if run is None:
        return None
    started = run[0]
    if started is None:
        newer = or_(JobRun.started_at.is_not(None), JobRun.id > run_id)
    else:
        newer = or_(JobRun.started_at > started, and_(JobRun.started_at == started, JobRun.id > run_id))
    before = db.session.execute(select(func.count(JobRun.id)).where(JobRun.job_id == job.id, newer)).scalar_one()
    return before // per_page + 1


def schedule_of(job: Job) -> tuple[Optional[dict], str]:
    """(effective schedule, one-line description); no query."""
    sched = effective_schedule(job)
    return sched, describe_schedule(sched)


# --- Changing --------------------------------------------------------------------------------------

def archive_job(job: Job, actor, now: Optional[datetime] = None) -> bool:
    """Archive: the job leaves /jobs, gets no new runs (ingest skips it) and no missed runs."""
    if job.archived:
        return False
    now = now or datetime.now(UTC)
    job.archived, job.archived_at = True, now
    job.next_expected_at = job.next_expected_slot = None
    audit.record("job.archive", f"Archived job {job.job_name}", user=actor, target_type="job",
                 target_id=job.id, before={"archived": False}, after={"archived": True})
    return True


def unarchive_job(job: Job, actor, now: Optional[datetime] = None) -> bool:
    """Unarchive: the schedule is learned again from now on, so the archived period gets no missed runs."""
    if not job.archived:
        return False
    now = now or datetime.now(UTC)
    job.archived, job.archived_at = False, None
    recompute_job_schedule(job, now)
    audit.record("job.unarchive", f"Unarchived job {job.job_name}", user=actor, target_type="job",
                 target_id=job.id, before={"archived": True}, after={"archived": False})
    return True


def run_count(job: Job) -> int:
    return db.session.execute(select(func.count(JobRun.id)).where(JobRun.job_id == job.id)).scalar_one()


def delete_job(job: Job, actor, confirm_runs: Optional[int]) -> int:
    """Delete a job with its runs. ``confirm_runs`` must equal the number of runs the confirmation
    named (a run that arrived since then makes it refuse). Returns the number of runs deleted."""
    runs = run_count(job)
    if confirm_runs is None:
        raise JobError(f"Confirm deleting job {job.job_name} and its {runs} run{'s' if runs != 1 else ''}.")
    if confirm_runs != runs:
        raise JobError(f"Job {job.job_name} now has {runs} runs, not the {confirm_runs} you confirmed. "
                       f"Nothing was deleted: check again.")
    name, jid, customer = job.job_name, job.id, job.customer.name if job.customer else ""
    # Runs, objects, ticket/remark links and job overrides go by ON DELETE CASCADE; mails stay.
    db.session.execute(delete(Job).where(Job.id == jid).execution_options(synchronize_session=False))
    db.session.expunge(job)
    audit.record("job.delete", f"Deleted job {name} of {customer} with {runs} runs", user=actor,
                 target_type="job", target_id=jid,
                 before={"job_name": name, "customer": customer, "sender": job.sender, "software": job.software,
                         "runs": runs})
    return runs


def set_schedule(job: Job, data: dict, actor) -> dict:
    """The manual schedule form: services.schedules validates, stores and audits it."""
    from .schedules import set_manual_schedule
    try:
        return set_manual_schedule(job, data, actor)
    except ValueError as exc:
        raise JobError(f"Schedule not saved: {exc}") from None


def clear_schedule(job: Job, actor) -> None:
    from .schedules import clear_manual_schedule
    clear_manual_schedule(job, actor)


def set_alert_after_failures(job: Job, value, actor) -> bool:
    """The job's own "after N failures in a row" for notifications (empty: each channel's own N);
    audited. Returns whether it changed; JobError with the form's message."""
    from .notifications.channels import ChannelError, parse_failures

    try:
        n = parse_failures(value, "“After N failures in a row”")
    except ChannelError as exc:
        raise JobError(f"Not saved: {exc}") from None
    if n == job.alert_after_failures:
        return False
    before = job.alert_after_failures
    job.alert_after_failures = n
    audit.record("job.notifications", f"Changed the notification rule of job {job.job_name}", user=actor,
                 target_type="job", target_id=job.id, before={"alert_after_failures": before},
                 after={"alert_after_failures": n})
    return True


# --- JSON export and import -------------------------------------------------------------------------

def export_json() -> dict:
    """All jobs (archived included) as a JSON-able document; one query."""
    rows = db.session.execute(
        select(Job, Customer.name).join(Customer, Customer.id == Job.customer_id)
        .order_by(func.lower(Customer.name), func.lower(Job.job_name), Job.id)
    ).all()
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "jobs": [{"customer": cname, "sender": j.sender, "job_name": j.job_name, "software": j.software,
                  "backup_type": j.backup_type, "manual_schedule": j.manual_schedule, "archived": bool(j.archived)}
                 for j, cname in rows],
    }


@dataclass
class JobImportLine:
    row: int
    customer: str
    job_name: str
    action: str  # created | skipped
    detail: str = ""


@dataclass
class JobImportReport:
    lines: list[JobImportLine] = field(default_factory=list)
    customers_created: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for x in self.lines if x.action == action)

    @property
    def summary(self) -> str:
        created, customers = self.count("created"), len(self.customers_created)
        text = f"{created} job{'s' if created != 1 else ''} created, {self.count('skipped')} skipped"
        if customers:
            text += f", {customers} customer{'s' if customers != 1 else ''} created"
        return text


class JobImportError(JobError):
    """The file was refused; ``errors`` lists every problem by job number. Nothing was imported."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"Nothing was imported: {len(errors)} problem{'s' if len(errors) != 1 else ''} in the file.")


def _text(item: dict, key: str, required: bool, limit: int, problems: list[str]) -> str:
    value = item.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(f"{key} must be text")
        return ""
    value = " ".join(value.split())
    if required and not value:
        problems.append(f"{key} is missing")
    if len(value) > limit:
        problems.append(f"{key} is longer than {limit} characters")
    return value


def nesting_depth(value, stop_after: int) -> int:
    """How deeply lists and dicts nest in a parsed JSON value (a scalar is 0), counted without
    recursion; stops counting once past ``stop_after``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > stop_after:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_jobs_json(data: bytes) -> list[dict]:
    """Validate the whole document; clean rows, or JobImportError naming every bad job by number."""
    if not data or not data.strip():
        raise JobImportError(["The file is empty."])
    if len(data) > MAX_IMPORT_BYTES:
        raise JobImportError([f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; a jobs export "
                              "is far smaller. Split it."])
    too_deep = JobImportError([f"The file nests lists and objects more than {MAX_IMPORT_DEPTH} levels deep; "
                               "a jobs export nests five. This is not a Backupchecks jobs export."])
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise JobImportError(["The file is not UTF-8 text."]) from None
    except RecursionError:  # thousands of levels: the parser gives up before the stack does
        raise too_deep from None
    except json.JSONDecodeError as exc:
        raise JobImportError([f"The file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."]) from None
    if nesting_depth(doc, MAX_IMPORT_DEPTH) > MAX_IMPORT_DEPTH:
        raise too_deep
    if isinstance(doc, dict):
        if doc.get("format") not in (None, EXPORT_FORMAT):
            raise JobImportError([f"This is not a Backupchecks jobs export (format '{doc.get('format')}')."])
        items = doc.get("jobs")
    else:
        items = doc
    if not isinstance(items, list):
        raise JobImportError(["The file must hold a list of jobs (a 'jobs' list, as the export writes)."])
    if not items:
        raise JobImportError(["The file holds no jobs."])
    if len(items) > MAX_IMPORT_JOBS:
        raise JobImportError([f"The file holds more than {MAX_IMPORT_JOBS} jobs; split it."])
    try:
        from .schedules import validate_manual_schedule
    except ImportError:  # pragma: no cover
        validate_manual_schedule = None
    today = datetime.now(UTC).date()
    errors, clean = [], []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(f"Job {number}: must be an object with customer, job_name, sender, software.")
            continue
        problems: list[str] = []
        customer = _text(item, "customer", True, NAME_MAX, problems)
        job_name = _text(item, "job_name", True, 500, problems)
        sender = _text(item, "sender", False, 320, problems)
        software = _text(item, "software", False, 120, problems)
        backup_type = _text(item, "backup_type", False, 120, problems) or None
        archived = item.get("archived", False)
        if not isinstance(archived, bool):
            problems.append("archived must be true or false")
        manual = item.get("manual_schedule")
        if manual is not None:
            if validate_manual_schedule is None:
                problems.append("manual schedules cannot be imported in this version")
            else:
                try:
                    manual = validate_manual_schedule(manual, today=today)
                except ValueError as exc:
                    problems.append(f"manual_schedule: {exc}")
        if problems:
            label = f" ({job_name})" if job_name else ""
            errors.append(f"Job {number}{label}: " + "; ".join(problems) + ".")
            continue
        clean.append({"row": number, "customer": customer, "job_name": job_name, "sender": sender,
                      "software": software, "backup_type": backup_type, "archived": archived,
                      "manual_schedule": manual,
                      "identity_key": job_identity_key(sender, job_name, software)})
    if errors:
        raise JobImportError(errors)
    return clean


def import_jobs_json(data: bytes, actor, now: Optional[datetime] = None) -> JobImportReport:
    """Validate everything first; then create missing customers and the jobs whose identity (sender,
    job name, software) does not exist yet, skipping the others with a reason. The caller commits."""
    rows = parse_jobs_json(data)
    now = now or datetime.now(UTC)
    zone = ui_zone()
    keys = {r["identity_key"] for r in rows}
    existing = dict(db.session.execute(
        select(Job.identity_key, Customer.name).join(Customer, Customer.id == Job.customer_id)
        .where(Job.identity_key.in_(keys))).all())
    names = {r["customer"].lower() for r in rows}
    customers = {c.name.lower(): c for c in db.session.execute(
        select(Customer).where(func.lower(Customer.name).in_(names))).scalars()}
    report = JobImportReport()
    seen: dict[str, int] = {}
    new_jobs: list[Job] = []
    for r in rows:
        key = r["identity_key"]
        if key in existing:
            report.lines.append(JobImportLine(r["row"], r["customer"], r["job_name"], "skipped",
                                              f"already exists (customer {existing[key]})"))
            continue
        if key in seen:
            report.lines.append(JobImportLine(r["row"], r["customer"], r["job_name"], "skipped",
                                              f"same job as job {seen[key]} in this file"))
            continue
        seen[key] = r["row"]
        customer = customers.get(r["customer"].lower())
        created_customer = customer is None
        if customer is None:
            customer = Customer(name=r["customer"], active=True)
            db.session.add(customer)
            customers[r["customer"].lower()] = customer
            report.customers_created.append(r["customer"])
        job = Job(customer=customer, sender=r["sender"], job_name=r["job_name"], software=r["software"],
                  backup_type=r["backup_type"], identity_key=key, archived=r["archived"],
                  archived_at=now if r["archived"] else None, manual_schedule=r["manual_schedule"])
        db.session.add(job)
        _apply_imported_schedule(job, now, zone)
        new_jobs.append(job)
        detail = "customer created" if created_customer else ""
        report.lines.append(JobImportLine(r["row"], r["customer"], r["job_name"], "created", detail))
    db.session.flush()
    audit.record("job.import", f"Imported jobs from JSON: {report.summary}", user=actor, target_type="job",
                 after={"jobs_created": [j.id for j in new_jobs][:500],
                        "customers_created": report.customers_created[:200]})
    return report


def _apply_imported_schedule(job: Job, now: datetime, zone) -> None:
    """Kind and next expected slot from an imported manual schedule (no query)."""
    if not job.manual_schedule:
        return
    from .schedules import effective_schedule, first_slot_in_force, is_scheduled
    sched = effective_schedule(job)
    job.schedule_kind = (sched or {}).get("kind") or "unknown"
    if job.archived or not is_scheduled(sched):
        return
    nxt = first_slot_in_force(sched, now, zone)
    if nxt:
        job.next_expected_slot, job.next_expected_at = nxt
