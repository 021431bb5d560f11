"""Autotask tickets from runs: created once per reference (``BC-run-<id>``), linked by number,
resolved from Backupchecks (completed in Autotask first), and the Run Checks block."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask import has_request_context, request
from sqlalchemy import func, select

from ...extensions import db
from ...models import Customer, Job, JobRun, Ticket, TicketJobRun, User, utcnow
from ...psa import PsaError, PsaNotFoundError, PsaTicket, PsaValidationError
from ..tickets import TicketingError, create_ticket, open_tickets_for_job
from ..tickets import resolve_ticket as resolve_internal
from .. import audit
from ..settings import get_settings, ui_zone
from .client import AutotaskServiceError, _fail, autotask_client
from .mapping import check_customers, ticket_block_reason
from .poll import _still_open

MAX_OBJECTS_IN_DESCRIPTION = 30


@dataclass
class TicketOutcome:
    ticket: Ticket           # the internal ticket
    number: str
    created: bool            # a new Autotask ticket was made
    message: str


def reference_for_run(run: JobRun) -> str:
    """The stable reference (Autotask externalID) of the ticket to create for ``run``.

    ``BC-run-<id>``; when the run already followed Autotask tickets that are resolved now,
    ``BC-run-<id>-<n>`` with n = those tickets + 1. It only changes once a ticket is saved, so a
    retry after a lost answer or a failed commit asks for the same reference and finds its ticket.
    """
    previous = db.session.execute(
        select(func.count(func.distinct(Ticket.autotask_ticket_id)))
        .join(TicketJobRun, TicketJobRun.ticket_id == Ticket.id)
        .where(TicketJobRun.job_run_id == run.id, Ticket.autotask_ticket_id.is_not(None))).scalar_one()
    if previous == 0 and run.autotask_ticket_id is not None:
        previous = 1
    return f"BC-run-{run.id}" if previous == 0 else f"BC-run-{run.id}-{previous + 1}"


def deep_link(job_id: int) -> Optional[str]:
    """/run-checks?job=<id> on the configured Backupchecks address (else the address of this request)."""
    base = (get_settings().autotask_base_url or "").strip().rstrip("/")
    if not base and has_request_context():
        base = request.host_url.rstrip("/")
    return f"{base}/run-checks?job={job_id}" if base else None


def ticket_text(run: JobRun) -> tuple[str, str]:
    """Title and description of the Autotask ticket for a run."""
    job = run.job
    customer = job.customer
    status = run.effective_status or run.status
    title = f"Backup {status.lower()}: {job.job_name} ({customer.name})"
    when = run.started_at or run.missed_slot
    lines = [
        "Backupchecks reports a backup that needs attention.",
        "",
        f"Customer: {customer.name}",
        f"Job: {job.job_name}" + (f" ({job.software}" + (f" · {job.backup_type}" if job.backup_type else "") + ")"
                                  if job.software else ""),
        f"Status: {status}" + (" (missed: no report arrived)" if run.missed else ""),
    ]
    if when:
        lines.append(f"Run: {when.astimezone(ui_zone()).strftime('%Y-%m-%d %H:%M %Z')}")
    if (run.message or "").strip():
        lines += ["", "Message:", run.message.strip()[:2000]]
    bad = [o for o in run.objects if (o.effective_status or o.status) in ("Failed", "Warning", "Missed")]
    bad.sort(key=lambda o: ((o.effective_status or o.status) != "Failed", o.name.lower()))
    if bad:
        lines += ["", "Objects with problems:"]
        for o in bad[:MAX_OBJECTS_IN_DESCRIPTION]:
            text = f"- {o.name}" + (f" ({o.type})" if o.type else "") + f": {o.effective_status or o.status}"
            if (o.message or "").strip():
                text += f" — {o.message.strip()[:300]}"
            lines.append(text)
        if len(bad) > MAX_OBJECTS_IN_DESCRIPTION:
            lines.append(f"… and {len(bad) - MAX_OBJECTS_IN_DESCRIPTION} more")
    link = deep_link(job.id)
    if link:
        lines += ["", f"Open in Backupchecks: {link}"]
    return title, "\n".join(lines)


def open_autotask_tickets_for_job(job_id: int) -> list[Ticket]:
    return [t for t in open_tickets_for_job(job_id) if t.autotask_ticket_id is not None]


def _load_run(run_id: int, lock: bool = True) -> JobRun:
    run = db.session.get(JobRun, run_id)
    if run is None:
        raise AutotaskServiceError("That run no longer exists.")
    if lock:
        # One ticket action per job at a time: two operators clicking "create" for two runs of the
        # same job must not make two Autotask tickets. Held while Autotask answers.
        db.session.execute(select(Job.id).where(Job.id == run.job_id).with_for_update())
    return run


def _link_run(run: JobRun, ticket: Ticket, actor: Optional[User], number: str, *, stamp: bool = True) -> bool:
    """Link ``run`` to the internal ticket (and store the Autotask ticket on the run); True if new."""
    exists = db.session.get(TicketJobRun, (ticket.id, run.id)) is not None
    if not exists:
        db.session.add(TicketJobRun(ticket_id=ticket.id, job_run_id=run.id, linked_at=utcnow()))
    if stamp and run.autotask_ticket_id is None:
        run.autotask_ticket_id = ticket.autotask_ticket_id
        run.autotask_ticket_number = number
        run.autotask_ticket_created_at = utcnow()
        run.autotask_ticket_created_by_id = getattr(actor, "id", None)
    db.session.flush()
    return not exists


def _new_internal_ticket(run: JobRun, at: PsaTicket, description: str, actor: Optional[User]) -> Ticket:
    active_from = run.started_at if run.started_at and run.started_at <= utcnow() else None
    try:
        ticket = create_ticket(at.number or f"AT{at.id}", description, [{"type": "job", "job_id": run.job_id}],
                               actor, active_from=active_from, run=run)
    except TicketingError as exc:  # pragma: no cover - the scope is the run's own job
        raise AutotaskServiceError(str(exc)) from None
    ticket.autotask_ticket_id = at.id
    run.autotask_ticket_id = at.id
    run.autotask_ticket_number = at.number
    run.autotask_ticket_created_at = utcnow()
    run.autotask_ticket_created_by_id = getattr(actor, "id", None)
    db.session.flush()
    return ticket


def _company_refused(s, customer: Customer, exc: PsaError) -> AutotaskServiceError:
    """Autotask refused the customer's company: check the mapping again and say why."""
    db.session.rollback()
    customer = db.session.get(Customer, customer.id)
    try:
        with autotask_client(s) as client:
            check_customers([customer], client, None)
        db.session.commit()
    except PsaError:
        db.session.rollback()
    reason = ticket_block_reason(customer)
    return AutotaskServiceError(f"No Autotask ticket made: {reason}" if reason else exc.message)


def create_ticket_for_run(run_id: int, actor: Optional[User]) -> TicketOutcome:
    """Create the Autotask ticket for a run (or link the job's open one). Commits."""
    s = get_settings()
    if not s.autotask_enabled:
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    run = _load_run(run_id)
    job = run.job
    existing = _still_open(s, open_autotask_tickets_for_job(job.id))
    if existing:
        ticket = existing[0]
        new = _link_run(run, ticket, actor, ticket.code)
        audit.record("autotask.ticket_linked", f"Linked run {run.id} of {job.job_name} to open Autotask ticket "
                     f"{ticket.code}", user=actor, target_type="job_run", target_id=run.id,
                     after={"ticket_id": ticket.id, "autotask_ticket_id": ticket.autotask_ticket_id,
                            "reason": "the job already has an open Autotask ticket"})
        db.session.commit()
        return TicketOutcome(ticket, ticket.code, False,
                             f"{job.job_name} already has open Autotask ticket {ticket.code}; "
                             + ("this run is now linked to it." if new else "this run was already linked to it."))
    customer = job.customer
    title, description = ticket_text(run)
    reference = reference_for_run(run)
    try:
        with autotask_client(s) as client:
            if customer.autotask_company_id is not None and customer.autotask_mapping_status is None:
                check_customers([customer], client, actor)  # imported mapping, never checked: check it now
            reason = ticket_block_reason(customer)
            if reason:
                db.session.commit()  # keep the check's result
                raise AutotaskServiceError(f"No Autotask ticket made: {reason}")
            at = client.create_ticket(
                company_id=customer.autotask_company_id, title=title, description=description,
                reference=reference, queue_id=s.autotask_default_queue_id,
                priority=s.autotask_default_priority_id, status=s.autotask_default_status_id,
                source=s.autotask_default_source_id)
    except PsaValidationError as exc:
        if any("companyid" in e.lower() for e in exc.errors):
            raise _company_refused(s, customer, exc) from None
        raise _fail(exc, f"ticket for run {run_id}") from None
    except PsaError as exc:
        raise _fail(exc, f"ticket for run {run_id}") from None
    ticket = _new_internal_ticket(run, at, title if not description else f"{title}\n\n{description}", actor)
    audit.record("autotask.ticket_created", f"Created Autotask ticket {at.number} for run {run.id} of "
                 f"{job.job_name} ({customer.name})", user=actor, target_type="job_run", target_id=run.id,
                 after={"autotask_ticket_id": at.id, "ticket_number": at.number, "ticket_id": ticket.id,
                        "company_id": customer.autotask_company_id, "reference": reference})
    db.session.commit()
    return TicketOutcome(ticket, at.number, True,
                         f"Autotask ticket {at.number} created for {job.job_name}; it follows this job's next runs "
                         "until it is completed.")


def link_ticket_by_number(run_id: int, number: str, actor: Optional[User]) -> TicketOutcome:
    """Link a run to an existing Autotask ticket given by its number (e.g. T20240502.0007). Commits."""
    number = (number or "").strip()
    if not number:
        raise AutotaskServiceError("Type the Autotask ticket number, e.g. T20240502.0007.")
    if len(number) > 50:
        raise AutotaskServiceError("An Autotask ticket number has at most 50 characters.")
    s = get_settings()
    if not s.autotask_enabled:
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    run = _load_run(run_id)
    try:
        with autotask_client(s) as client:
            at = client.find_ticket_by_number(number)
    except PsaError as exc:
        raise _fail(exc, "ticket lookup") from None
    if at is None:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask has no ticket with number {number} (or the API user can't see it). "
                                   "Check the number; nothing was linked.")
    if at.completed:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask ticket {at.number} is already completed ({at.status_label}); "
                                   "nothing was linked.")
    ticket = db.session.execute(select(Ticket).where(Ticket.autotask_ticket_id == at.id,
                                                     Ticket.resolved_at.is_(None))
                                .order_by(Ticket.id).limit(1)).scalar_one_or_none()
    if ticket is None:
        ticket = _new_internal_ticket(run, at, at.title or f"Autotask ticket {at.number}", actor)
    else:
        _link_run(run, ticket, actor, at.number)
    audit.record("autotask.ticket_linked", f"Linked run {run.id} of {run.job.job_name} to Autotask ticket "
                 f"{at.number}", user=actor, target_type="job_run", target_id=run.id,
                 after={"autotask_ticket_id": at.id, "ticket_number": at.number, "ticket_id": ticket.id})
    db.session.commit()
    note = ""
    mapped = run.job.customer.autotask_company_id
    if mapped is not None and at.company_id is not None and at.company_id != mapped:
        note = f" Note: that ticket belongs to another Autotask company (id {at.company_id})."
    return TicketOutcome(ticket, at.number, False,
                         f"Run linked to Autotask ticket {at.number}; it follows this job's next runs." + note)


def resolve_ticket(ticket_id: int, actor: Optional[User], note: str = "") -> str:
    """Resolve an internal ticket; an Autotask-backed one gets a note and is completed in Autotask first.

    Nothing changes in Backupchecks when Autotask can't be reached. Commits; returns a message.
    """
    note = (note or "").strip()
    ticket = db.session.execute(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).scalar_one_or_none()
    if ticket is None:
        raise AutotaskServiceError("That ticket no longer exists.")
    if ticket.resolved_at is not None:
        db.session.rollback()
        raise AutotaskServiceError(f"Ticket {ticket.code} is already resolved.")
    outcome = f"Ticket {ticket.code} resolved."
    if ticket.autotask_ticket_id is not None:
        who = getattr(actor, "username", None) or "Backupchecks"
        text = (note + "\n\n" if note else "") + f"Resolved in Backupchecks by {who}."
        try:
            with autotask_client() as client:
                try:
                    at = client.get_ticket(ticket.autotask_ticket_id)
                except PsaNotFoundError:
                    at = None
                if at is None:
                    outcome = (f"Ticket {ticket.code} resolved; it no longer exists in Autotask (deleted or merged), "
                               "so nothing was sent there.")
                elif at.completed:
                    outcome = f"Ticket {ticket.code} resolved; it was already completed in Autotask."
                else:
                    client.complete_ticket(ticket.autotask_ticket_id, text)
                    outcome = f"Ticket {ticket.code} resolved and completed in Autotask (with a note)."
        except PsaError as exc:
            raise _fail(exc, f"completing ticket {ticket.code}") from None
    try:
        resolve_internal(ticket, actor, note)
    except TicketingError as exc:
        db.session.rollback()
        raise AutotaskServiceError(str(exc)) from None
    if ticket.autotask_ticket_id is not None:
        audit.record("autotask.ticket_completed", f"Completed Autotask ticket {ticket.code} from Backupchecks",
                     user=actor, target_type="ticket", target_id=ticket.id,
                     after={"autotask_ticket_id": ticket.autotask_ticket_id, "note": note or None})
    db.session.commit()
    return outcome


# ------------------------------------------------------------------- Run Checks block


@dataclass
class RunView:
    enabled: bool
    block_reason: Optional[str]
    open_tickets: list[Ticket]


def run_checks_view(job: Job) -> RunView:
    """What the Autotask block on a Run Checks card needs (one query)."""
    s = get_settings()
    if not s.autotask_enabled:
        return RunView(False, None, [])
    return RunView(True, ticket_block_reason(job.customer), open_autotask_tickets_for_job(job.id))
