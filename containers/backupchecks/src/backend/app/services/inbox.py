"""The Inbox: listing with filters and paging in the database, and the long actions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask import Flask
from sqlalchemy import func, or_, select, true

from ..extensions import db
from ..models import Customer, MailMessage
from . import audit
from .ingest import InboxError, reparse_message
from .search import contains_text
from .tasks import start_task

PER_PAGE = 50
STATUSES = ("Success", "Warning", "Failed")


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
        progress(0, total, f"Re-parsing {total} mails")
        for start in range(0, total, 100):
            chunk = db.session.execute(select(MailMessage).where(MailMessage.id.in_(ids[start:start + 100]))).scalars().all()
            for msg in chunk:
                try:
                    with db.session.begin_nested():
                        if reparse_message(msg):
                            became_runs += 1
                except InboxError:
                    errors += 1
            db.session.commit()
            progress(min(start + 100, total), total, f"Re-parsed {min(start + 100, total)} of {total}")
        return f"Re-parsed {total} mails; {became_runs} became runs of known jobs; {errors} could not be re-parsed."

    return start_task(app, "reparse_all", actor_id, work, synchronous=bool(app.config.get("TASKS_SYNCHRONOUS")))
