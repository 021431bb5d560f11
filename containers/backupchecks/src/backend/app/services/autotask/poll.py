"""The poll: internal tickets whose Autotask ticket is completed (or gone) are resolved, in the
background runner and before a job's open ticket is reused."""
from __future__ import annotations

import logging
from typing import Optional

from flask import Flask
from sqlalchemy import select

from ...extensions import db
from ...models import Ticket
from ...psa import AutotaskClient, PsaError, PsaNotFoundError, PsaTicket
from ..tickets import TicketingError, resolve_ticket as resolve_internal
from ..background import register_loop
from ..settings import get_settings, ui_zone
from .client import AutotaskServiceError, autotask_client, is_configured

log = logging.getLogger(__name__)

POLL_BATCH = 200
DEFAULT_POLL_SECONDS = 300


def _closed_note(client: AutotaskClient, at_id: int, at: Optional[PsaTicket]) -> Optional[str]:
    """The resolution note when Autotask ticket ``at_id`` is completed or gone; None while it is open.

    ``at`` is the ticket as a batch read returned it (None: not returned, so it is read once more on
    its own and counts as gone only when Autotask says it doesn't exist). Other errors propagate.
    """
    if at is None:
        try:
            at = client.get_ticket(at_id)
        except PsaNotFoundError:
            return f"Autotask ticket {at_id} no longer exists in Autotask (deleted or merged)."
    if not at.completed:
        return None
    when = at.completed_at.astimezone(ui_zone()).strftime("%Y-%m-%d %H:%M") if at.completed_at else ""
    return f"Completed in Autotask ({at.number}, status {at.status_label or at.status}{', ' + when if when else ''})."


def _resolve_closed(ticket: Ticket, note: str) -> bool:
    """Resolve the internal ticket of a closed Autotask ticket (actor: none, the poll); False if already done."""
    try:
        with db.session.begin_nested():
            resolve_internal(ticket, None, note)
        return True
    except TicketingError:
        return False  # resolved meanwhile (by a user or another poll): nothing to do


def _still_open(s, tickets: list[Ticket]) -> list[Ticket]:
    """Of the job's open Autotask-backed tickets, those still open in Autotask (the others are resolved
    now, as the poll would). When Autotask can't be asked, all count as open."""
    if not tickets:
        return tickets
    try:
        with autotask_client(s) as client:
            found = client.get_tickets([t.autotask_ticket_id for t in tickets])
            still = []
            for t in tickets:
                note = _closed_note(client, t.autotask_ticket_id, found.get(t.autotask_ticket_id))
                if note is None:
                    still.append(t)
                else:
                    _resolve_closed(t, note)
            return still
    except PsaError as exc:
        log.info("Autotask: could not check the job's open tickets (%s); treating them as open", exc.message)
        return tickets


def poll_open_tickets(batch_size: Optional[int] = None) -> dict[str, int]:
    """Resolve internal tickets whose Autotask ticket is completed (or gone). Commits per batch.

    Reads the open Autotask-backed tickets in batches with one query each
    (``get_tickets``); a ticket Autotask doesn't return is read once more on its
    own and counts as gone only when Autotask says it doesn't exist. ``batch_size``: POLL_BATCH.
    """
    batch_size = batch_size or POLL_BATCH
    counts = {"checked": 0, "resolved": 0, "gone": 0, "errors": 0}
    s = get_settings()
    if not (s.autotask_enabled and is_configured(s)):
        return counts
    rows = db.session.execute(select(Ticket.id, Ticket.autotask_ticket_id)
                              .where(Ticket.resolved_at.is_(None), Ticket.autotask_ticket_id.is_not(None))
                              .order_by(Ticket.id)).all()
    if not rows:
        return counts
    with autotask_client(s, interactive=False) as client:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            try:
                found = client.get_tickets([at_id for _, at_id in chunk])
            except PsaError as exc:
                log.warning("Autotask poll: %s", exc.message)
                counts["errors"] += 1
                break  # Autotask is not answering: try again next time
            for ticket_id, at_id in chunk:
                counts["checked"] += 1
                try:
                    note = _closed_note(client, at_id, found.get(at_id))
                except PsaError as exc:
                    log.warning("Autotask poll, ticket %s: %s", at_id, exc.message)
                    counts["errors"] += 1
                    continue
                if note is None:
                    continue
                if found.get(at_id) is None:
                    counts["gone"] += 1
                if _resolve_closed(db.session.get(Ticket, ticket_id), note):
                    counts["resolved"] += 1
            db.session.commit()
    if counts["resolved"]:
        log.info("Autotask poll: %s of %s open tickets resolved", counts["resolved"], counts["checked"])
    return counts


def _poll_step(app: Flask) -> None:
    try:
        poll_open_tickets()
    except AutotaskServiceError as exc:
        db.session.rollback()
        log.warning("Autotask poll skipped: %s", exc)


def _poll_interval(app: Flask) -> float:
    return float(app.config.get("AUTOTASK_POLL_SECONDS") or DEFAULT_POLL_SECONDS)


def register(app: Flask) -> None:
    """Called by create_app: the poll runs in the single background runner (leader lock)."""
    register_loop("autotask_poll", _poll_step, _poll_interval)
