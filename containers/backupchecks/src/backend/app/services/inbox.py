"""The Inbox: listing with filters and paging in the database, and what users do to its mails
(approve to a customer, delete, restore, purge, re-parse one or all). Storing and parsing a mail is
``ingest``'s."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask import Flask
from sqlalchemy import func, or_, select, true

from ..extensions import db
from ..models import Customer, Job, MailMessage, utcnow
from ..parsers.rules import PREFIX as RULE_PREFIX, RuleSet
from . import audit
from .customers import CustomerError, find_or_create_customer
from .ingest import (
    create_run_from_message,
    find_job_for,
    message_identity_key,
    normalise_identity_part,
    parse_into,
)
from .notifications import enqueue_run_events
from .parser_rules import load_ruleset
from .search import contains_text
from .tasks import start_task

PER_PAGE = 50
STATUSES = ("Success", "Warning", "Failed")


class InboxError(ValueError):
    pass


@dataclass
class InboxFilters:
    software: str = ""
    status: str = ""
    q: str = ""
    parsed: str = ""  # "" | "yes" | "no"
    page: int = 1

    @property
    def active(self) -> bool:
        """True when any filter narrows the list (paging does not)."""
        return bool(self.software or self.status in STATUSES or self.q or self.parsed in ("yes", "no"))


def list_messages(f: InboxFilters, state: str = "inbox") -> tuple[list[MailMessage], int, list[str]]:
    """One page of messages in a state, newest first; a count query, a page query, the software list."""
    q = select(MailMessage).where(MailMessage.state == state)
    if f.software:
        q = q.where(MailMessage.software == f.software)
    if f.status in STATUSES:
        q = q.where(MailMessage.overall_status == f.status)
    if f.parsed == "no":
        q = q.where(or_(MailMessage.parsed.is_(False), MailMessage.is_report.is_(False)))
    elif f.parsed == "yes":
        q = q.where(MailMessage.parsed.is_(True), MailMessage.is_report.is_(True))
    if f.q:
        q = q.where(contains_text([MailMessage.subject, MailMessage.from_address, MailMessage.job_name], f.q))
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = db.session.execute(
        q.order_by(MailMessage.received_at.desc().nulls_last(), MailMessage.id.desc())
        .limit(PER_PAGE).offset((max(1, f.page) - 1) * PER_PAGE)
    ).scalars().all()
    software = db.session.execute(select(MailMessage.software).where(MailMessage.state == state,
                                                                     MailMessage.software.is_not(None))
                                  .distinct().order_by(MailMessage.software)).scalars().all()
    return rows, total, software


def count_messages(state: str = "inbox") -> int:
    """How many messages are in a state, whatever the filters (one count query)."""
    return db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.state == state)).scalar_one()


def customer_names() -> list[str]:
    return db.session.execute(select(Customer.name).where(Customer.active.is_(True)).order_by(Customer.name)).scalars().all()


# --- Who sees which mail: the one rule every route of a mail goes through ----------------------

def sees_deleted(user) -> bool:
    """Deleted mails are for the admin role only (the active role, as every page decides)."""
    return getattr(user, "current_role", None) == "admin"


def _visible_to(user):
    """The SQL condition for the mails ``user`` may see, read, download or act on."""
    return true() if sees_deleted(user) else MailMessage.state != "deleted"


def visible_message(msg_id: int, user) -> Optional[MailMessage]:
    """The mail when ``user`` may see it; None when it does not exist or is hidden from them
    (a deleted mail for anyone but an admin), so the page answers 404 either way."""
    return db.session.execute(select(MailMessage).where(MailMessage.id == msg_id, _visible_to(user))
                              ).scalar_one_or_none()


def messages_by_ids(ids: list[int], *, user, state: Optional[str] = None) -> list[MailMessage]:
    """The mails of ``ids`` that ``user`` may see (optionally only those in ``state``), oldest first."""
    if not ids:
        return []
    q = select(MailMessage).where(MailMessage.id.in_(ids), _visible_to(user))
    if state:
        q = q.where(MailMessage.state == state)
    return db.session.execute(q.order_by(MailMessage.received_at.asc().nulls_last(), MailMessage.id)).scalars().all()


# --- Actions on mails -------------------------------------------------------------------------

def get_or_create_customer(name: str, actor) -> Customer:
    """The customer an approval goes to: found by name or created by the customer service."""
    if not " ".join((name or "").split()):
        raise InboxError("Choose a customer or type the name of a new one.")
    try:
        return find_or_create_customer(name, actor, source="from the Inbox")
    except CustomerError as exc:
        raise InboxError(str(exc)) from None


def approve_message(msg: MailMessage, customer: Customer, actor) -> tuple[Job, int]:
    """Create (or find) the job for this mail under the customer, make its run, then process the
    other Inbox mails of the same job. Returns the job and how many mails became runs."""
    if msg.state != "inbox":
        raise InboxError("This mail is no longer in the Inbox (someone else may have handled it).")
    key = message_identity_key(msg)
    if key is None:
        raise InboxError("Only a parsed backup report can be approved: this mail has no software and "
                         "job name. Re-parse it after a parser update, or delete it.")
    job = db.session.execute(select(Job).where(Job.identity_key == key)).scalar_one_or_none()
    if job is not None and job.archived:
        raise InboxError(f"The job '{job.job_name}' exists but is archived; unarchive it under Jobs first.")
    if job is None:
        job = Job(customer_id=customer.id, sender=msg.from_address, job_name=msg.job_name, software=msg.software,
                  backup_type=msg.backup_type, identity_key=key)
        db.session.add(job)
        db.session.flush()
        audit.record("job.create", f"Approved job {msg.job_name} ({msg.software}) for {customer.name}",
                     user=actor, target_type="job", target_id=job.id,
                     after={"customer": customer.name, "job_name": job.job_name, "software": job.software,
                            "sender": job.sender})
    elif job.customer_id != customer.id:
        raise InboxError(f"This job already belongs to customer '{job.customer.name}'.")
    processed = process_inbox_for_job(job)
    return job, processed


def process_inbox_for_job(job: Job) -> int:
    """Turn every Inbox mail of this job into a run (oldest first). One query for the candidates.

    The identity is normalised for case and spacing, so the query narrows by sender and software
    (case-insensitive) and the normalised key decides; a job name compared in SQL would miss
    "Daily  VM Backup" for "Daily VM Backup"."""
    candidates = db.session.execute(
        select(MailMessage).where(MailMessage.state == "inbox", MailMessage.parsed.is_(True),
                                  MailMessage.is_report.is_(True),
                                  func.lower(MailMessage.from_address) == normalise_identity_part(job.sender),
                                  func.lower(MailMessage.software) == normalise_identity_part(job.software))
        .order_by(MailMessage.received_at.asc().nulls_last(), MailMessage.id)
    ).scalars().all()
    runs = [create_run_from_message(m, job, notify=False) for m in candidates
            if message_identity_key(m) == job.identity_key]
    enqueue_run_events(runs)  # one statement for all of them
    return len(runs)


def delete_message(msg: MailMessage, actor) -> None:
    if msg.state == "deleted":
        return
    before = msg.state
    msg.state, msg.deleted_at, msg.deleted_by_id = "deleted", utcnow(), getattr(actor, "id", None)
    audit.record("inbox.delete", f"Deleted mail '{msg.subject[:120]}'", user=actor, target_type="mail",
                 target_id=msg.id, before={"state": before}, after={"state": "deleted"})


def restore_message(msg: MailMessage, actor) -> None:
    if msg.state != "deleted":
        raise InboxError("Only deleted mails can be restored.")
    msg.state, msg.deleted_at, msg.deleted_by_id = "inbox", None, None
    audit.record("inbox.restore", f"Restored mail '{msg.subject[:120]}'", user=actor, target_type="mail",
                 target_id=msg.id, before={"state": "deleted"}, after={"state": "inbox"})


def purge_message(msg: MailMessage, actor) -> None:
    if msg.state != "deleted":
        raise InboxError("Delete the mail first; only deleted mails can be removed permanently.")
    audit.record("inbox.purge", f"Permanently removed mail '{msg.subject[:120]}'", user=actor,
                 target_type="mail", target_id=msg.id)
    db.session.delete(msg)


def reparse_message(msg: MailMessage, rules: Optional[RuleSet] = None) -> bool:
    """Re-run the parsers (with the users' ``rules``; None: load them) over the stored raw mail; an
    Inbox mail of a known job becomes a run."""
    if msg.raw is None:
        raise InboxError("The raw mail is no longer stored (raw-mail retention), so it can't be re-parsed.")
    parse_into(msg, msg.raw, rules)
    if msg.state == "inbox":
        job = find_job_for(msg)
        if job is not None:
            create_run_from_message(msg, job)
            return True
    return False


def reparse(msg: MailMessage, actor) -> bool:
    """Re-parse one mail (audited); True when it became a run of a known job. The caller commits."""
    fields = ("parser_name", "software", "job_name", "overall_status", "parsed")
    before = {f: getattr(msg, f) for f in fields}
    became_run = reparse_message(msg)
    after = {f: getattr(msg, f) for f in fields}
    b, a = audit.changed_fields(before, after)
    if became_run:
        a["became_run"] = True
    audit.record("inbox.reparse", f"Re-parsed mail '{(msg.subject or '')[:120]}'", user=actor,
                 target_type="mail", target_id=msg.id, before=b, after=a)
    return became_run


def start_reparse_all(app: Flask, actor) -> object:
    """Re-parse every stored mail in the background (progress on the page); ``tasks.TaskBusy``
    when it already runs."""
    actor_id = getattr(actor, "id", None)
    audit.record("inbox.reparse_all", "Started re-parsing all stored mails", user=actor)  # committed with the task

    def work(progress):
        ids = db.session.execute(select(MailMessage.id).where(MailMessage.raw.is_not(None),
                                                              MailMessage.state != "deleted")
                                 .order_by(MailMessage.id)).scalars().all()
        total, became_runs, errors = len(ids), 0, 0
        rules = load_ruleset()  # the users' parser rules, once for all the mails
        progress(0, total, f"Re-parsing {total} mails")
        for start in range(0, total, 100):
            chunk = db.session.execute(select(MailMessage).where(MailMessage.id.in_(ids[start:start + 100]))).scalars().all()
            for msg in chunk:
                try:
                    with db.session.begin_nested():
                        if reparse_message(msg, rules):
                            became_runs += 1
                except InboxError:
                    errors += 1
            db.session.commit()
            progress(min(start + 100, total), total, f"Re-parsed {min(start + 100, total)} of {total}")
        return f"Re-parsed {total} mails; {became_runs} became runs of known jobs; {errors} could not be re-parsed."

    return start_task(app, "reparse_all", actor_id, work)


def start_try_rules_on_inbox(app: Flask, actor) -> object:
    """"Try the rules on the Inbox" (Parsers page): re-parse the Inbox mails with the users' rules in the
    background, through the same path as re-parse; the final message counts the mails a rule now reads
    (job proposals waiting for approval) and those that became runs of known jobs. ``tasks.TaskBusy``
    when it already runs."""
    actor_id = getattr(actor, "id", None)
    audit.record("inbox.try_rules", "Started trying the parser rules on the Inbox", user=actor)

    def work(progress):
        ids = db.session.execute(select(MailMessage.id).where(MailMessage.state == "inbox",
                                                              MailMessage.raw.is_not(None))
                                 .order_by(MailMessage.id)).scalars().all()
        total, became_runs, proposals, errors = len(ids), 0, 0, 0
        rules = load_ruleset()
        progress(0, total, f"Trying the rules on {total} Inbox mails")
        for start in range(0, total, 100):
            chunk = db.session.execute(select(MailMessage).where(MailMessage.id.in_(ids[start:start + 100]))).scalars().all()
            for msg in chunk:
                try:
                    with db.session.begin_nested():
                        if reparse_message(msg, rules):
                            became_runs += 1
                        elif msg.parsed and msg.is_report and (msg.parser_name or "").startswith(RULE_PREFIX):
                            proposals += 1
                except InboxError:
                    errors += 1
            db.session.commit()
            progress(min(start + 100, total), total, f"Tried {min(start + 100, total)} of {total}")
        return (f"Tried the rules on {total} Inbox mails: {became_runs} became runs of known jobs, "
                f"{proposals} are now read by a rule and wait in the Inbox for approval (job proposals)"
                + (f"; {errors} could not be re-parsed" if errors else "") + ".")

    return start_task(app, "try_rules_on_inbox", actor_id, work)
