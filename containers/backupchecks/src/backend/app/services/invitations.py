"""Invitations to the customer portal: an admin chooses the customers (and whether mail bodies may
be read), gets a one-time link, and whoever opens it picks a user name and password and becomes a
portal user bound to those customers.

The link holds a secret of 256 random bits; only its SHA-256 is stored, so the table can't be
turned back into links. An invitation is open until it is used (once: a conditional UPDATE claims
it, so two people opening the same link at the same moment make one account), revoked, or
``VALID_FOR`` has passed. Every step is audited.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Iterable, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import PORTAL_ROLE, PortalInvitation, User, utcnow
from . import accounts, audit

VALID_FOR = timedelta(days=7)
LISTED = 50  # the newest invitations the Users page lists


class InvitationError(accounts.AccountError):
    """An invitation that can't be used; ``state`` says why (unknown, used, revoked, expired, empty)."""

    def __init__(self, message: str, state: str = "invalid"):
        super().__init__(message)
        self.state = state


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def state_of(invitation: PortalInvitation, now: datetime) -> str:
    """open, used, revoked or expired."""
    if invitation.used_at is not None:
        return "used"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def create(customer_ids: Iterable[int], *, mail_bodies: bool, note: str, actor,
           now: Optional[datetime] = None) -> tuple[PortalInvitation, str]:
    """A new invitation and its secret (shown once: put it in the link, never stored)."""
    now = now or utcnow()
    customers = accounts.portal_customers(customer_ids)
    note = (note or "").strip()[:200]
    secret = secrets.token_urlsafe(32)
    invitation = PortalInvitation(token_hash=_hash(secret), note=note, mail_bodies=bool(mail_bodies),
                                  created_by_id=getattr(actor, "id", None), created_at=now,
                                  expires_at=now + VALID_FOR)
    invitation.customers = customers
    db.session.add(invitation)
    db.session.flush()
    audit.record("portal_invitation.create",
                 f"Portal invitation{' for ' + note if note else ''}: " + ", ".join(c.name for c in customers)
                 + (" (mail bodies allowed)" if mail_bodies else "") + f", valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC",
                 user=actor, target_type="portal_invitation", target_id=invitation.id,
                 after={"customers": [c.id for c in customers], "mail_bodies": bool(mail_bodies), "note": note,
                        "expires_at": invitation.expires_at.isoformat()})
    return invitation, secret


def revoke(invitation: PortalInvitation, *, actor, now: Optional[datetime] = None) -> bool:
    """Revoke an open invitation (False when it was no longer open)."""
    now = now or utcnow()
    if state_of(invitation, now) != "open":
        return False
    invitation.revoked_at = now
    audit.record("portal_invitation.revoke", f"Portal invitation #{invitation.id} revoked"
                 + (f" ({invitation.note})" if invitation.note else ""), user=actor,
                 target_type="portal_invitation", target_id=invitation.id)
    return True


def get(invitation_id: int) -> Optional[PortalInvitation]:
    return db.session.get(PortalInvitation, invitation_id)


def listed() -> list[PortalInvitation]:
    """The newest invitations with their customers and makers (three queries)."""
    return db.session.execute(
        select(PortalInvitation).options(selectinload(PortalInvitation.customers),
                                         selectinload(PortalInvitation.created_by),
                                         selectinload(PortalInvitation.used_by))
        .order_by(PortalInvitation.created_at.desc(), PortalInvitation.id.desc()).limit(LISTED)
    ).scalars().all()


_REFUSED = {
    "used": "This invitation was already used. Log in with the user name chosen then, or ask for a new invitation.",
    "revoked": "This invitation was withdrawn. Ask your provider for a new one.",
    "expired": "This invitation has expired. Ask your provider for a new one.",
    "empty": "This invitation no longer gives access to any customer. Ask your provider for a new one.",
}


def find(secret: str, now: Optional[datetime] = None) -> PortalInvitation:
    """The open invitation of a link; InvitationError (state ``unknown``, ``used``, ``revoked``,
    ``expired``, ``empty``) otherwise."""
    now = now or utcnow()
    invitation = None
    if secret and len(secret) <= 100:
        invitation = db.session.execute(select(PortalInvitation).where(
            PortalInvitation.token_hash == _hash(secret))).scalar_one_or_none()
    if invitation is None:
        raise InvitationError("There is no invitation at this address. Check the link in your mail.", "unknown")
    state = state_of(invitation, now)
    if state == "open" and not invitation.customers:
        state = "empty"
    if state != "open":
        raise InvitationError(_REFUSED[state], state)
    return invitation


def accept(secret: str, username: str, password: str, now: Optional[datetime] = None) -> User:
    """Make the invitee's portal account (bound to the invitation's customers) and use the
    invitation up; the caller commits and logs the new user in."""
    now = now or utcnow()
    invitation = find(secret, now)
    user = accounts.create_user(username, password, [PORTAL_ROLE], actor=None,
                                customer_ids=[c.id for c in invitation.customers],
                                mail_bodies=invitation.mail_bodies)
    claimed = db.session.execute(
        update(PortalInvitation).where(PortalInvitation.id == invitation.id, PortalInvitation.used_at.is_(None),
                                       PortalInvitation.revoked_at.is_(None), PortalInvitation.expires_at > now)
        .values(used_at=now, used_by_id=user.id).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        raise InvitationError(_REFUSED["used"], "used")
    audit.record("portal_invitation.accept", f"{user.username} accepted portal invitation #{invitation.id}",
                 user=user, target_type="portal_invitation", target_id=invitation.id,
                 after={"user": user.id, "customers": [c.id for c in invitation.customers]})
    return user
