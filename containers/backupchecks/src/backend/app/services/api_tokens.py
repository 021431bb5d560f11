"""API tokens: made per user, shown once, stored hashed, listed with their last use, revocable.

A token is ``bc_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, with the
first characters (``prefix``) to tell tokens apart in lists; a secret of 256 random bits needs no
slow hash. A token acts as its user in the user's current role (a portal user's token sees what
the portal user sees, services/scope.py); a read-only token may only read.

``authenticate`` is the one check of a presented token: unknown, revoked, expired, or belonging
to an inactive user or a user without a role, it raises ``TokenError`` with a stable code.
Creating and revoking are audited; the caller commits.

Who may have which token (one home for the rule, used by the user menu's page and the CLI through
``issue``): read-write only when the user's *active* role can change something through the API
(``WRITE_ROLES``: admin, operator); a viewer, reporter or portal user gets read-only tokens. A token
still acts in its user's role at each request, so a read-write token of someone whose role is later
lowered can do no more than that role. The expiry is a day in the UI timezone: the token works
until the end of that day. Deactivating a user revokes their tokens for good (``accounts.set_active``
calls ``revoke_all_of``; ``authenticate`` refuses an inactive user's tokens anyway): activating
them again does not bring old tokens back.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import contains_eager

from ..extensions import db
from ..models import ApiToken, User, utcnow
from . import audit

TOKEN_PREFIX = "bc_"
WRITE_ROLES = ("admin", "operator")  # the roles whose API actions change something
NAME_MAX = 100
# The last use is written at most this often per token (one UPDATE, not one per request).
LAST_USED_EVERY = timedelta(minutes=1)


class TokenError(Exception):
    """A token that can't be used. ``code`` is stable (the API's error code); the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user: User, name: str, *, read_only: bool = False, expires_at: Optional[datetime] = None,
                 now: Optional[datetime] = None, actor: Optional[User] = None,
                 actor_name: Optional[str] = None) -> NewToken:
    """A new token for ``user`` (added to the session, audited; the caller commits). ``actor_name``
    names an actor that is no user in the audit log (``cli``).
    ValueError with a message for a missing or too long name or an expiry in the past."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the token a name, e.g. the script or dashboard that will use it.")
    if len(name) > NAME_MAX:
        raise ValueError(f"The name may be at most {NAME_MAX} characters.")
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise ValueError("The expiry date must be in the future.")
    if not user.role_list or not user.is_active_user:
        raise ValueError("An inactive user or a user without a role can't have a token.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_secret(secret), prefix=secret[:10],
                     read_only=bool(read_only), created_at=now, expires_at=expires_at)
    db.session.add(token)
    db.session.flush()
    audit.record("api_token.create", f"API token '{name}' created for {user.username}", user=actor, username=actor_name,
                 target_type="api_token", target_id=token.id,
                 after={"user": user.username, "name": name, "read_only": token.read_only,
                        "expires_at": expires_at})
    return NewToken(token=token, secret=secret)


def authenticate(secret: str, *, now: Optional[datetime] = None, ip_address: Optional[str] = None) -> ApiToken:
    """The live token for ``secret`` (its ``user`` loaded), its last use noted; TokenError otherwise.
    Codes: ``invalid_token`` (unknown or malformed), ``token_revoked``, ``token_expired``,
    ``user_inactive`` (the user was deactivated or has no role)."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenError("invalid_token", "The token is missing or not a Backupchecks API token.")
    token = db.session.execute(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret))).scalar_one_or_none()
    if token is None:
        raise TokenError("invalid_token", "The token is not known.")
    now = now or utcnow()
    if token.revoked_at is not None:
        raise TokenError("token_revoked", "The token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenError("token_expired", "The token has expired.")
    user = token.user
    if user is None or not user.is_active_user or not user.role_list:
        raise TokenError("user_inactive", "The token's user is deactivated or has no role.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY or token.last_used_ip != ip_address:
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id)
                           .values(last_used_at=now, last_used_ip=ip_address))
        token.last_used_at, token.last_used_ip = now, ip_address
        db.session.commit()
    return token


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first."""
    return list(db.session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())).scalars())


def state(token: ApiToken, now: Optional[datetime] = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def revoke(token: ApiToken, *, actor: Optional[User] = None, now: Optional[datetime] = None,
           actor_name: Optional[str] = None) -> bool:
    """Revoke ``token`` (audited; the caller commits). False when it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now or utcnow()
    audit.record("api_token.revoke", f"API token '{token.name}' of {token.user.username} revoked", user=actor,
                 username=actor_name,
                 target_type="api_token", target_id=token.id, before={"state": "active"},
                 after={"state": "revoked"})
    return True


def revoke_all_of(user: User, *, actor: Optional[User] = None, now: Optional[datetime] = None) -> int:
    """Revoke every live token of ``user`` (when the user is deactivated); the number revoked."""
    count = 0
    for token in tokens_of(user):
        count += revoke(token, actor=actor, now=now)
    return count


def may_write(user: User) -> bool:
    """May ``user`` be given a read-write token? Only when their active role can change something
    through the API (admin, operator); everyone else gets read-only tokens."""
    return bool(user.role_list) and user.current_role in WRITE_ROLES


def expiry_of_day(value: Optional[str], *, zone: ZoneInfo, now: datetime) -> Optional[datetime]:
    """The moment a token whose expiry date is ``value`` (YYYY-MM-DD, a day in ``zone``) stops
    working: the end of that local day. Empty: None (the token does not expire). ValueError with a
    message for a bad date or a day before today."""
    from .timezones import check_day_in_range, day_bounds_utc, local_day

    text = (value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text[:40]}' is not a date: use YYYY-MM-DD, e.g. 2027-01-31.") from None
    check_day_in_range(day)  # its own message: "… is out of range; choose a date between …"
    if day < local_day(now, zone):
        raise ValueError(f"The expiry date {day.isoformat()} is in the past: choose today or a later day, "
                         "or leave it empty for a token that does not expire.")
    return day_bounds_utc(day, zone)[1]


def issue(user: User, name: str, *, read_only: bool, expires_on: Optional[str] = None,
          zone: Optional[ZoneInfo] = None, now: Optional[datetime] = None, actor: Optional[User] = None,
          actor_name: Optional[str] = None) -> NewToken:
    """A token made on a user's request (the user menu, ``flask create-token``): the rules above on
    access and expiry, then ``create_token``. ValueError with a message when refused."""
    from .settings import ui_zone

    now = now or utcnow()
    if not read_only and user.role_list and not may_write(user):
        raise ValueError(f"A {user.current_role} can only have read-only tokens: read-write tokens are for the "
                         f"roles that change things ({', '.join(WRITE_ROLES)}).")
    expires_at = expiry_of_day(expires_on, zone=zone or ui_zone(), now=now)
    return create_token(user, name, read_only=read_only, expires_at=expires_at, now=now, actor=actor,
                        actor_name=actor_name)


def token_of(user: User, token_id: int) -> Optional[ApiToken]:
    """The token with this id when it is ``user``'s own (another user's id: None, as if unknown)."""
    return db.session.execute(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
                              ).scalar_one_or_none()


def all_tokens() -> list[ApiToken]:
    """Every user's tokens (for admins), by user name, live ones first, newest first; one query."""
    return list(db.session.execute(
        select(ApiToken).join(ApiToken.user).options(contains_eager(ApiToken.user))
        .order_by(User.username, ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(),
                  ApiToken.id.desc())).scalars())
