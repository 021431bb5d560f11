"""Ingest: one raw mail in, stored once, parsed, and turned into a run when its job is known.

Invariants (docs/architecture.md): a message is imported once (same Internet
Message-ID or same source id adds nothing, backed by unique constraints);
nothing is lost (a mail that fails to parse is stored with its error and shown
in the Inbox); a message never stops the batch it is in. A database that can't work
now (a full disk, a lost connection, a restart: ``db_errors.database_unavailable``)
is not the mail's fault: ``ingest_message`` stores nothing and raises, so the mail
stays in its mailbox and is taken again, instead of landing in the Inbox without its run.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from flask import g
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import Job, JobRun, MailMessage, RunObject, utcnow
from .notifications import enqueue_run_events
from ..parsers.base import ParseResult
from ..parsers.normalize import normalize
from ..parsers.registry import parse_message
from ..parsers.rules import RuleSet
from . import audit, parser_rules
from .db_errors import database_unavailable
from .faults import crash_point
from .missed_runs import reconcile_late_run
from .overrides import apply_overrides
from .settings import auto_review_successes, get_settings
from .status import SUCCESS, canonical_status
from .tickets import link_open_internal_tickets_to_run

log = logging.getLogger(__name__)

MAX_SUMMARY = 2000


@dataclass
class IngestOutcome:
    state: str                 # duplicate | processed | inbox | failed
    message_id: Optional[int] = None
    run_id: Optional[int] = None
    error: Optional[str] = None
    reviewed_on_arrival: bool = False  # its new run was successful and marked reviewed on arrival


DEFAULT_RAW_MAX_MB = 25


def raw_limit_bytes() -> int:
    """The largest raw mail kept (``MAIL_RAW_MAX_MB``, default 25 MB): a bigger one is still parsed
    and stored, only without its raw copy (attachments included), so the store stays bounded."""
    from flask import current_app

    return int(current_app.config.get("MAIL_RAW_MAX_MB") or DEFAULT_RAW_MAX_MB) * 1024 * 1024


def kept_raw(raw: bytes, keep_raw: bool) -> Optional[bytes]:
    """The raw bytes to store for a mail: none when raw mails are not kept or it is over the limit."""
    return raw if keep_raw and len(raw) <= raw_limit_bytes() else None

def normalise_identity_part(value: Optional[str]) -> str:
    return re.sub(r"\s+", " ", (value or "")).strip().lower()


def job_identity_key(sender: Optional[str], job_name: Optional[str], software: Optional[str]) -> str:
    """Sender + job name + software, normalised for case and spacing."""
    return "|".join(normalise_identity_part(v) for v in (sender, job_name, software))


def message_identity_key(msg: MailMessage) -> Optional[str]:
    if not (msg.parsed and msg.is_report and msg.job_name and msg.software):
        return None
    return job_identity_key(msg.from_address, msg.job_name, msg.software)


def _internet_message_id(value: Optional[str]) -> Optional[str]:
    value = _no_nul(value or "").strip()
    return value[:998] or None


def _no_nul(value):
    """PostgreSQL text can't hold NUL characters (a mail may carry them, e.g. in a header)."""
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


_TEXT_FIELDS = ("from_address", "subject", "body_text", "body_html", "parser_name", "parse_reason", "parse_error",
                "software", "backup_type", "job_name", "overall_status")


def _clean_text_fields(msg: MailMessage) -> None:
    for attr in _TEXT_FIELDS:
        value = getattr(msg, attr)
        if isinstance(value, str) and "\x00" in value:
            setattr(msg, attr, _no_nul(value))


_COPY_PREFIX = re.compile(r"^\s*(?:re|fw|fwd|wg|aw|tr|sv|vs|antw|doorst|rif|r|i)\s*(?:\[\d+\])?\s*:", re.I)


def is_copy(nm) -> bool:
    """A forwarded copy of a report or a reply quoting it (not the report as the product sent it)."""
    return bool(getattr(nm, "forwarded", False) or _COPY_PREFIX.match(getattr(nm, "raw_subject", "") or ""))


def _apply_parse(msg: MailMessage, result: ParseResult, copy: bool = False) -> None:
    msg.parsed = bool(result.parsed)
    msg.is_report = bool(result.is_report)
    msg.parser_name = result.parser
    msg.parse_reason = (result.reason or "")[:1000] or None
    msg.parse_error = result.error
    msg.software = result.software
    msg.backup_type = result.backup_type
    msg.job_name = (result.job_name or None) and result.job_name[:500]
    msg.overall_status = result.overall_status
    msg.parse_result = {
        "started_at": result.started_at.isoformat() if result.started_at else None,
        "ended_at": result.ended_at.isoformat() if result.ended_at else None,
        "objects": [{"name": _no_nul(o.name), "type": _no_nul(o.type), "status": o.status,
                     "message": _no_nul(o.message)} for o in result.objects],
        "message": _no_nul(result.message) or None,  # the report's reason, not tied to an object
        "copy": copy,  # a forwarded copy or a reply: see create_run_from_message
    }
    _clean_text_fields(msg)


def parse_mail(nm, rules: Optional[RuleSet]) -> ParseResult:
    """The registry's result for a normalised mail with the users' rules of this batch (``None``: load
    them, one query); a rule whose regexes ran out of time on it is noted on the rule."""
    if rules is None:
        rules = parser_rules.load_ruleset()
    result = parse_message(nm, rules=rules)
    parser_rules.record_timeouts(result, nm.subject or nm.raw_subject or "")
    return result


def parse_into(msg: MailMessage, raw: bytes, rules: Optional[RuleSet] = None) -> None:
    """(Re-)parse raw bytes into the message's parse fields. Never raises."""
    try:
        nm = normalize(raw)
    except Exception as exc:  # noqa: BLE001
        msg.parsed, msg.parse_error = False, _no_nul(f"{type(exc).__name__}: {exc}")
        msg.parse_reason = "the mail could not be read"
        return
    _apply_parse(msg, parse_mail(nm, rules), copy=is_copy(nm))


# Built once (the key is a parameter): no statement to build or cache key to compute per mail.
_JOB_BY_IDENTITY = select(Job).where(Job.identity_key == bindparam("key"), Job.archived.is_(False))


def find_job_for(msg: MailMessage) -> Optional[Job]:
    key = message_identity_key(msg)
    if not key:
        return None
    return db.session.execute(_JOB_BY_IDENTITY, {"key": key}).scalar_one_or_none()


def _parse_iso(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def create_run_from_message(msg: MailMessage, job: Job, *, review_successes_at: Optional[datetime] = None,
                            notify: bool = True) -> JobRun:
    """A job run with its objects from a parsed message; overrides applied, tickets linked.
    With ``review_successes_at`` a new run whose effective status is a success (also by an
    override) is reviewed at that moment, without a reviewer ("Successful runs need no review").
    ``notify=False``: the caller queues the run's notification (``enqueue_run_events``) with others."""
    pr = msg.parse_result or {}
    reported_start = _parse_iso(pr.get("started_at"))
    started = reported_start or msg.received_at or msg.imported_at or utcnow()
    status = msg.overall_status or "Warning"
    if reported_start is not None and pr.get("copy"):
        # The same report seen again in a forwarded copy or a reply quoting it: when the job
        # already has a run that started at exactly this time, no second run is made.
        same = db.session.execute(select(JobRun).where(JobRun.job_id == job.id, JobRun.missed.is_(False),
                                                       JobRun.started_at == reported_start).limit(1)).scalar_one_or_none()
        if same is not None:
            msg.job_id, msg.state = job.id, "processed"
            msg.parse_reason = ((msg.parse_reason or "") + f" — same report as run {same.id}; no second run")[:1000]
            return same
    objects = pr.get("objects") or []
    # The run's message: the report's own reason (e.g. a notification's error line), then the
    # message of every object with a problem.
    lines = [pr["message"]] if pr.get("message") else []
    lines += [f"{o.get('name')}: {o.get('message')}" for o in objects
              if o.get("status") not in (None, "Success") and o.get("message")]
    # override_id is given (None) so that the overrides' verdict, decided before the first flush,
    # goes into the INSERT instead of an UPDATE after it.
    run = JobRun(job_id=job.id, mail_message_id=msg.id, status=status, effective_status=status,
                 override_id=None, started_at=started, ended_at=_parse_iso(pr.get("ended_at")),
                 message="\n".join(lines)[:MAX_SUMMARY] or None)
    run.objects = [RunObject(name=(o.get("name") or "")[:500] or "(unnamed)", type=o.get("type"),
                             status=o.get("status"), effective_status=o.get("status"), override_id=None,
                             message=o.get("message")) for o in objects]
    db.session.add(run)
    msg.job_id = job.id
    msg.state = "processed"
    if job.backup_type is None and msg.backup_type:
        job.backup_type = msg.backup_type
    if job.last_run_at is None or (started and started >= job.last_run_at):
        job.last_run_at, job.last_status = started, status
    after_run_created(run, review_successes_at=review_successes_at, notify=notify)
    return run


def after_run_created(run: JobRun, *, review_successes_at: Optional[datetime] = None, notify: bool = True) -> None:
    """Hooks every new real run goes through: late-run reconciliation, overrides, reviewed on
    arrival when successful (``review_successes_at``), tickets, its notification (unless ``notify``
    is off because the caller queues a batch).

    The run may still be unsaved: the late-run and override lookups read other rows only, so
    they run without flushing it, and the run is stored once, with its final effective status,
    by the flush before the ticket links (which need its id)."""
    with db.session.no_autoflush:
        reconcile_late_run(run)
        apply_overrides(run)
    if review_successes_at is not None and run.reviewed_at is None and not run.missed \
            and canonical_status(run.effective_status) == SUCCESS:
        # Reviewed by nobody at the moment it was created: see JobRun.reviewed_on_arrival.
        run.reviewed_at = run.created_at = review_successes_at
        run.reviewed_by_id = None
    link_open_internal_tickets_to_run(run)
    if notify:
        enqueue_run_events([run])


def content_source_id(raw: bytes) -> str:
    """The source id of a mail that has no id of its own (an uploaded file, a mail received over
    SMTP): its content's hash, so the same bytes handed in again are a duplicate even without a
    Message-ID header."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def ingest_message(raw: bytes, *, source: str = "upload", source_id: Optional[str] = None,
                   keep_raw: bool = True, auto_review: Optional[bool] = None,
                   audit_auto_review: bool = True, rules: Optional[RuleSet] = None) -> IngestOutcome:
    """Store one mail exactly once, parse it, and process it when its job is known. Commits.

    ``auto_review`` ("Successful runs need no review"; None: the setting) marks a new successful
    run reviewed on arrival (``IngestOutcome.reviewed_on_arrival``). A run so marked is audited
    here, one entry for this mail, unless ``audit_auto_review`` is False: an import of many mails
    (an import cycle, an upload of several files) counts them and records one entry for all.

    ``rules``: the users' parser rules, loaded once by a batch (``parser_rules.load_ruleset``);
    None loads them for this mail.

    The statements of a mail of a known job: the job lookup, one INSERT of the mail (which is also
    the duplicate check), the late-run and override lookups, the run and its objects, the ticket
    links, one commit. A mail whose run can't be made is stored again on its own, in the Inbox,
    with the error; when the database itself can't work (``db_errors.database_unavailable``)
    nothing is stored and the error is raised."""
    try:
        nm = normalize(raw)
        imid = _internet_message_id(nm.message_id)
    except Exception:  # noqa: BLE001 - unreadable: still stored, with its error
        nm, imid = None, None
    # The run hooks read settings (the UI timezone); get_settings() commits when it has to create
    # the row, which must not happen in the middle of this mail's transaction.
    get_settings()
    msg = MailMessage(source=source, source_id=source_id, internet_message_id=imid, imported_at=utcnow(),
                      raw=kept_raw(raw, keep_raw), raw_size=len(raw),
                      raw_sha256=hashlib.sha256(raw).hexdigest(), state="inbox")
    if nm is not None:
        msg.from_address = (nm.from_address or "")[:320]
        msg.subject = (nm.subject or nm.raw_subject or "")[:1000]
        msg.received_at = nm.date.astimezone(timezone.utc) if nm.date and nm.date.tzinfo else None
        msg.body_text = nm.text
        msg.body_html = nm.html or None
        try:
            _apply_parse(msg, parse_mail(nm, rules), copy=is_copy(nm))
        except Exception as exc:  # noqa: BLE001 - registry never raises, but be safe
            msg.parsed, msg.parse_error = False, str(exc)
    else:
        msg.parsed, msg.parse_reason = False, "the mail could not be read (not RFC 822?)"
    _clean_text_fields(msg)
    # The job first, so a mail of a known job is stored as processed in its one INSERT.
    job, run_error = None, None
    try:
        job = find_job_for(msg)
    except Exception as exc:  # noqa: BLE001 - keep the message, show the error
        if database_unavailable(exc):
            _rollback()
            raise  # nothing stored: the mail stays where it came from and is taken again
        log.exception("looking up the job of a mail failed")
        _rollback()
        msg.parse_error = _run_failed(exc)
    if job is not None:
        msg.job_id, msg.state = job.id, "processed"
    try:
        values = _insert_message(msg)
    except Exception as exc:  # noqa: BLE001 - the database refused a parsed field: keep the mail anyway
        _rollback()
        if database_unavailable(exc):
            raise  # not the mail's fault (a full disk, a lost connection): nothing stored, taken again
        log.exception("storing the parsed fields of a mail failed; storing it with the error")
        return _store_unparsed(raw, source, source_id, imid, keep_raw,
                               f"Storing the parsed mail failed ({type(exc).__name__}); re-parse it after an update.")
    if values is None:
        db.session.commit()  # nothing of this mail was written; ends the job lookup's transaction
        return IngestOutcome("duplicate")
    crash_point("ingest.after_insert")
    run_id, reviewed = None, False
    if job is not None:
        if auto_review is None:
            auto_review = auto_review_successes()
        moment = msg.imported_at if auto_review else None
        try:
            run = create_run_from_message(msg, job, review_successes_at=moment)
            db.session.flush()
            run_id = run.id
            reviewed = moment is not None and run.reviewed_by_id is None and run.reviewed_at == moment
        except Exception as exc:  # noqa: BLE001 - keep the message, show the error
            if database_unavailable(exc):
                # Not the mail's fault: storing it without its run would lose the run for good
                # (the importer moves a stored mail out of the mailbox). Nothing is stored.
                _rollback()
                raise
            log.exception("creating a run for message %s failed", values["id"])  # not msg.id: no reload
            _rollback()
            run_error = exc
    if run_error is not None:
        # Nothing of the run is kept: the mail alone, in the Inbox, with the error.
        values.update(state="inbox", job_id=None, parse_error=_run_failed(run_error))
        values.pop("id", None)
        msg = MailMessage(**values)
        if _insert_message(msg) is None:
            db.session.commit()
            return IngestOutcome("duplicate")  # a concurrent import stored it meanwhile
    state, message_id = msg.state, msg.id   # read before the commit expires them (no reload of the row)
    if reviewed and audit_auto_review:
        record_reviewed_on_arrival([run_id], target_type="mail", target_id=message_id)
    crash_point("ingest.before_commit")
    db.session.commit()
    return IngestOutcome(state, message_id=message_id, run_id=run_id, reviewed_on_arrival=reviewed)


def record_reviewed_on_arrival(run_ids: list[int], *, target_type: str, target_id, what: str = "") -> None:
    """The audit entry of one import: how many successful runs it marked reviewed on arrival
    ("Successful runs need no review"). Nothing when it marked none. Committed by the caller."""
    n = len(run_ids)
    if not n:
        return
    audit.record("run.reviewed_on_arrival",
                 f"{n} successful run{'s' if n != 1 else ''} marked reviewed on arrival{what}",
                 target_type=target_type, target_id=target_id, after={"count": n, "run_ids": sorted(run_ids)})


def _run_failed(exc: Exception) -> str:
    return _no_nul(f"Creating the run failed: {type(exc).__name__}: {exc}")


def _rollback() -> None:
    """Roll back this mail's transaction. A settings row this request or step created in it is
    gone with it, so the cached one is forgotten (get_settings() reads or creates it again)."""
    db.session.rollback()
    g.pop("system_settings", None)


def _store_unparsed(raw: bytes, source: str, source_id: Optional[str], imid: Optional[str], keep_raw: bool,
                    error: str) -> IngestOutcome:
    """Nothing is lost: the raw mail with its error only, shown in the Inbox."""
    msg = MailMessage(source=source, source_id=source_id, internet_message_id=imid, imported_at=utcnow(),
                      raw=kept_raw(raw, keep_raw), raw_size=len(raw), raw_sha256=hashlib.sha256(raw).hexdigest(),
                      state="inbox", parsed=False, parse_error=error)
    if _insert_message(msg) is None:
        db.session.commit()
        return IngestOutcome("duplicate")
    db.session.commit()
    return IngestOutcome("inbox", message_id=msg.id, error=error)


_MAIL_TABLE = MailMessage.__table__
_MAIL_COLUMNS = tuple((MailMessage.__mapper__.get_property_by_column(c).key, c)
                      for c in _MAIL_TABLE.columns if not c.primary_key)


def _insert_mail_statement():
    """INSERT INTO mail_messages (…) VALUES (…) ON CONFLICT DO NOTHING RETURNING id, as a typed
    text() statement: SQLAlchemy caches its compiled form (it does not cache the PostgreSQL
    dialect's insert().on_conflict_do_nothing(), which would be compiled again for every mail)."""
    columns = [c for _, c in _MAIL_COLUMNS]
    names = ", ".join(f'"{c.name}"' for c in columns)
    binds = ", ".join(f":{c.name}" for c in columns)
    return (text(f'INSERT INTO "{_MAIL_TABLE.name}" ({names}) VALUES ({binds}) ON CONFLICT DO NOTHING RETURNING id')
            .bindparams(*(bindparam(c.name, type_=c.type) for c in columns))
            .columns(_MAIL_TABLE.c.id))


_INSERT_MAIL = _insert_mail_statement()


def _column_default(column):
    d = column.default
    if d is None:
        return None
    return d.arg(None) if d.is_callable else d.arg


def _insert_message(msg: MailMessage) -> Optional[dict]:
    """Store a new mail in ONE statement: INSERT … ON CONFLICT DO NOTHING RETURNING id. None when
    the unique constraints (same source id, same Message-ID) say it is stored already; else the
    values stored, and ``msg`` is in the session as that row (as if loaded: no UPDATE follows
    unless it is changed)."""
    values = {}
    for key, column in _MAIL_COLUMNS:
        if key not in msg.__dict__:
            setattr(msg, key, _column_default(column))
        values[key] = getattr(msg, key)
    new_id = db.session.execute(_INSERT_MAIL, {c.name: values[k] for k, c in _MAIL_COLUMNS}).scalar()
    if new_id is None:
        return None
    msg.id = new_id
    make_transient_to_detached(msg)
    db.session.add(msg)
    values["id"] = new_id
    return values
