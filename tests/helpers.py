"""Test helpers: data builders and the SQL statement counter.

Builders add their row and flush (the row gets its id, nothing is committed): a test builds what
it needs and the test client commits it before each request (tests/conftest.py). A test whose data
must be seen by another connection (a thread, another process, the browser's live server) commits
once, after building, with ``db.session.commit()``.

``queries()`` / ``count_queries()`` / ``page_queries()`` count the statements a piece of code sends,
for the tests that a list page costs the same number of queries for 3 rows as for 300.
"""
from __future__ import annotations

import contextlib
from datetime import datetime, timezone

PASSWORD = "correct-horse-battery"  # test personas only

_HASH_CACHE: dict[str, str] = {}

# Rows the builders flushed and nobody committed yet, per session; and what a rollback threw away.
# A rollback (in the test or in the code under test) that discards built rows would let a test pass
# on data it no longer has: the app fixture fails such a test (commit the data before that point).
_UNCOMMITTED: dict[int, list[str]] = {}
_LOST: list[str] = []


def _add(row):
    from backend.app.extensions import db

    session = db.session()
    session.add(row)
    session.flush()
    _UNCOMMITTED.setdefault(id(session), []).append(f"{type(row).__name__} {row.id if hasattr(row, 'id') else ''}")
    return row


def _committed(session):
    _UNCOMMITTED.pop(id(session), None)


def _rolled_back(session, previous_transaction):
    if not previous_transaction.nested and id(session) in _UNCOMMITTED:
        _LOST.extend(_UNCOMMITTED.pop(id(session)))


def watch_builder_rows() -> None:
    """Start noting built rows that a rollback discards (idempotent; the app fixture calls it)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "after_commit", _committed):
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_soft_rollback", _rolled_back)


def discard_built() -> None:
    """Roll back on purpose, throwing away what the builders made since the last commit."""
    from backend.app.extensions import db

    _UNCOMMITTED.pop(id(db.session()), None)
    db.session.rollback()


def rolled_back_builder_rows() -> list[str]:
    """The built rows a rollback discarded since the last call; forgets them and the uncommitted ones."""
    lost = list(_LOST)
    _LOST.clear()
    _UNCOMMITTED.clear()
    return lost


# --- Builders -------------------------------------------------------------------------------

def make_user(username: str = "user", roles=("viewer",), password: str = PASSWORD, active: bool = True):
    from backend.app.models import User
    from backend.app.services.accounts import hash_password

    if password not in _HASH_CACHE:
        _HASH_CACHE[password] = hash_password(password)
    user = User(username=username, password_hash=_HASH_CACHE[password], is_active_user=active)
    user.role_list = list(roles)
    user.active_role = list(roles)[0]
    return _add(user)


def make_customer(name: str = "Northwind Demo", active: bool = True):
    from backend.app.models import Customer

    return _add(Customer(name=name, active=active))


def make_job(customer=None, job_name: str = "Daily VM Backup", software: str = "Veeam Backup & Replication",
             sender: str = "veeam@example.test", backup_type: str = "Backup Job", **kw):
    from backend.app.models import Job

    customer = customer or make_customer()
    key = "|".join(s.strip().lower() for s in (sender, job_name, software))
    return _add(Job(customer_id=customer.id, job_name=job_name, software=software, sender=sender,
                    backup_type=backup_type, identity_key=key, **kw))


def make_run(job=None, status: str = "Success", started_at: datetime | None = None, **kw):
    from backend.app.models import JobRun

    job = job or make_job()
    return _add(JobRun(job_id=job.id, status=status, effective_status=kw.pop("effective_status", status),
                       started_at=started_at or datetime.now(timezone.utc), **kw))


def make_override(job=None, level: str | None = None, **kw):
    """An override rule: a job rule for ``job``, else a global one; other columns as keywords."""
    from backend.app.models import Override

    level = level or ("job" if job is not None else "global")
    return _add(Override(level=level, job_id=job.id if job is not None else None, **kw))


def make_ticket(code: str = "T-100", description: str = "Disk full", *, job=None, customer=None,
                runs=(), **kw):
    """A ticket row (no audit entry: use the ticket service for that), scoped to ``job`` and/or
    ``customer`` and linked to ``runs``; other columns (active_from, resolved_at...) as keywords."""
    from backend.app.models import Ticket, TicketJobRun, TicketScope

    ticket = Ticket(code=code, description=description, **kw)
    if customer is not None:
        ticket.scopes.append(TicketScope(scope_type="customer", customer_id=customer.id))
    if job is not None:
        ticket.scopes.append(TicketScope(scope_type="job", job_id=job.id))
    _add(ticket)
    for run in runs:
        _add(TicketJobRun(ticket_id=ticket.id, job_run_id=run.id))
    return ticket


def make_mail(from_address: str = "veeam@example.test", subject: str = "Backup report", **kw):
    """A stored mail row (no raw bytes, not parsed unless given); other columns as keywords."""
    from backend.app.models import MailMessage

    return _add(MailMessage(from_address=from_address, subject=subject, **kw))


# --- Counting SQL statements ----------------------------------------------------------------

@contextlib.contextmanager
def queries(expire: bool = False):
    """``with queries() as seen:`` collects the text of every SQL statement sent inside the block.
    ``expire=True`` expires the session first, so a measurement starts from an empty cache as a
    request in production does."""
    from sqlalchemy import event

    from backend.app.extensions import db

    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        seen.append(statement)

    if expire:
        db.session.expire_all()
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def count_queries(fn, log: list | None = None) -> int:
    """How many SQL statements ``fn()`` sends, from an expired session; their text is appended to
    ``log`` when given."""
    with queries(expire=True) as seen:
        fn()
    if log is not None:
        log.extend(seen)
    return len(seen)


def page_queries(client, path: str) -> int:
    """How many SQL statements the page at ``path`` costs (from an expired session; it must answer 200)."""
    responses = []
    n = count_queries(lambda: responses.append(client.get(path)))
    assert responses[0].status_code == 200, responses[0].status_code
    return n
