"""Two-factor authentication: TOTP (RFC 6238, pyotp) as the second step after primary authentication.

The one home of every 2FA rule:

- who needs a second factor (``needs_second_factor``: enrolled, or required for a role they hold);
- the half-logged-in state between the password (or, later, SSO) and the code: ``begin_second_step``
  keeps only the user's id and session generation in the session, without logging in, so no page
  but the code step (or the forced enrolment) and logout can be opened; ``complete_second_step``
  then starts the real session (security.start_session);
- codes: 6 digits, 30 s steps, ±1 step for clock skew, each step accepted once per user
  (``users.totp_last_step``); wrong codes count as failed logins (accounts.check_throttle /
  count_failure), so guessing a code is throttled exactly like guessing a password;
- ten recovery codes, shown once, stored as HMAC-SHA256 with a pepper derived from the app's
  secret key (``recovery_codes``); a used one is deleted;
- "remember this browser": a signed cookie bound to the user and their ``credential_generation``
  (raised by a password change, enabling, disabling or resetting 2FA, and deactivation), valid
  30 days, offered only when an admin allows it;
- the policy (roles that must have 2FA, remembering allowed) and every change audited.

SSO sign-in calls ``needs_second_factor(user)`` and ``begin_second_step(user, next_url)`` after its
own primary authentication, exactly as the password login does.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from datetime import datetime, timedelta
from typing import Iterable, Optional

import pyotp
import segno
from flask import current_app, session
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, or_, select, update

from ..extensions import db
from ..models import ROLES, RecoveryCode, User, utcnow
from . import accounts, audit
from .settings import get_settings

ISSUER = "Backupchecks"
STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1  # steps before and after now, for clock skew
RECOVERY_CODE_COUNT = 10
REMEMBER_DAYS = 30
REMEMBER_COOKIE = "bc_2fa_remember"
PENDING_KEY = "_2fa_pending"


class TwoFactorError(accounts.AccountError):
    """A 2FA rule was broken; the message is shown to the user."""


# --- Policy ----------------------------------------------------------------------------------

def required_roles() -> list[str]:
    raw = get_settings().two_factor_required_roles or ""
    return [r for r in ROLES if r in raw.split(",")]


def required_for(user: User) -> bool:
    """An admin requires 2FA for one of the roles ``user`` holds."""
    return bool(set(required_roles()) & set(user.role_list))


def needs_second_factor(user: User) -> bool:
    """After primary authentication: does ``user`` still need the second step (a code, or enrolment)?"""
    return user.has_two_factor or required_for(user)


def remember_allowed() -> bool:
    return bool(get_settings().two_factor_remember_allowed)


def set_policy(roles: Iterable[str], remember: bool, *, actor) -> bool:
    """Save which roles must have 2FA and whether browsers may be remembered; True when changed."""
    wanted = [r for r in ROLES if r in set(roles)]
    settings = get_settings()
    before = {"required_roles": required_roles(), "remember_allowed": bool(settings.two_factor_remember_allowed)}
    after = {"required_roles": wanted, "remember_allowed": bool(remember)}
    if before == after:
        return False
    settings.two_factor_required_roles = ",".join(wanted)
    settings.two_factor_remember_allowed = bool(remember)
    audit.record("settings.two_factor", f"2FA required for: {', '.join(wanted) or 'nobody'}; "
                 f"remember this browser {'allowed' if remember else 'not allowed'}",
                 user=actor, target_type="settings", before=before, after=after)
    return True


# --- The half-logged-in state ----------------------------------------------------------------

def begin_second_step(user: User, next_url: Optional[str] = None) -> None:
    """After the password (or SSO): nothing of the session before is kept and nobody is logged in;
    the session only says whose code is awaited (or that they must enrol first)."""
    session.clear()
    session[PENDING_KEY] = {"user": user.id, "generation": user.session_generation,
                            "enrol": not user.has_two_factor, "next": next_url or ""}


def pending_user() -> Optional[User]:
    """The user whose second step this session awaits, while still valid (active, same generation)."""
    state = session.get(PENDING_KEY)
    if not isinstance(state, dict):
        return None
    user = db.session.get(User, state.get("user")) if isinstance(state.get("user"), int) else None
    if user is None or not user.is_active_user or user.session_generation != state.get("generation"):
        session.pop(PENDING_KEY, None)
        return None
    return user


def pending_next() -> str:
    state = session.get(PENDING_KEY)
    return (state or {}).get("next") or "" if isinstance(state, dict) else ""


def complete_second_step(user: User, *, how: str) -> None:
    """The second factor was given: log in for real (a new session) and audit it."""
    from ..security import start_session

    audit.record("login.second_factor", f"{user.username} gave their second factor ({how})", user=user)
    db.session.commit()
    start_session(user)


# --- Secrets and codes -----------------------------------------------------------------------

def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def start_enrolment(user: User) -> str:
    """A new secret for ``user`` (not in force until confirmed with a code); an unconfirmed one is
    kept, so reloading the page keeps the QR code the phone may already have scanned."""
    if user.has_two_factor:
        raise TwoFactorError("Two-factor authentication is already on.")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        audit.record("user.2fa_enrolment_started", f"{user.username} started setting up two-factor authentication",
                     user=user, target_type="user", target_id=user.id)
    return user.totp_secret


def provisioning_uri(user: User) -> str:
    return _totp(user.totp_secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_data_uri(text: str) -> str:
    """The QR code of ``text`` as an SVG data: URI (made here, no outside service; the CSP allows data: images)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgns=True)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def formatted_secret(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _current_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _accept_totp(user: User, code: str, now: datetime) -> bool:
    """The code of a step within ±VALID_WINDOW of now that is later than the last step used."""
    code = "".join(code.split())
    if not (user.totp_secret and len(code) == DIGITS and code.isdigit()):
        return False
    totp = _totp(user.totp_secret)
    last = user.totp_last_step if user.totp_last_step is not None else -1
    current = _current_step(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step > last and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            # Claimed with a conditional UPDATE: of two requests with the same code at the same
            # moment only one moves the step on, the other is refused like a replay.
            claimed = db.session.execute(
                update(User).where(User.id == user.id,
                                   or_(User.totp_last_step.is_(None), User.totp_last_step < step))
                .values(totp_last_step=step)).rowcount
            return claimed == 1
    return False


def _pepper() -> bytes:
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), b"backupchecks 2fa recovery codes",
                    hashlib.sha256).digest()


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _hash_recovery(code: str) -> str:
    return hmac.new(_pepper(), _normalise_recovery(code).encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    """Ten new codes (the old ones are gone), returned in clear once; 10 characters each (50 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash_recovery(c)) for c in codes)
    return codes


def recovery_codes_left(user: User) -> int:
    return len(db.session.execute(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id)).all())


def _use_recovery_code(user: User, code: str) -> bool:
    if len(_normalise_recovery(code)) != 10:
        return False
    used = db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                          RecoveryCode.code_hash == _hash_recovery(code))
                              .returning(RecoveryCode.id)).first()
    return used is not None


def verify(user: User, code: str, ip: str, *, now: Optional[datetime] = None,
           recovery: bool = True) -> str:
    """Check a code (or, with ``recovery``, a recovery code) of ``user``; answer "code" or
    "recovery code". Throttled and counted like a password; raises TwoFactorError when wrong."""
    accounts.check_throttle(user.username, ip)
    now = now or utcnow()
    if _accept_totp(user, code or "", now):
        how = "code"
    elif recovery and _use_recovery_code(user, code or ""):
        how = "recovery code"
    else:
        accounts.count_failure(user.username, ip)
        raise TwoFactorError("That code is not right (or was used already). Enter the current code from your app"
                             + (", or one of your recovery codes." if recovery else "."))
    accounts.clear_failures(user.username, ip)
    return how


# --- Changes (audited; the caller commits) -----------------------------------------------------

def confirm_enrolment(user: User, code: str, ip: str, *, now: Optional[datetime] = None) -> list[str]:
    """Switch 2FA on once a code from the new secret is right; answer the recovery codes (in clear,
    once). The user's other sessions and remembered browsers end."""
    if user.has_two_factor:
        raise TwoFactorError("Two-factor authentication is already on.")
    if not user.totp_secret:
        raise TwoFactorError("Start again: no secret was made yet.")
    verify(user, code, ip, now=now, recovery=False)
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(user)
    accounts.end_sessions(user)
    accounts.end_remembered_browsers(user)
    audit.record("user.2fa_enabled", f"{user.username} switched on two-factor authentication", user=user,
                 target_type="user", target_id=user.id, after={"two_factor": True})
    return codes


def regenerate_recovery_codes(user: User, code: str, ip: str) -> list[str]:
    """New recovery codes (the old ones stop working); needs a current code."""
    if not user.has_two_factor:
        raise TwoFactorError("Two-factor authentication is off.")
    verify(user, code, ip, recovery=False)
    codes = _new_recovery_codes(user)
    audit.record("user.2fa_recovery_codes", f"{user.username} made new recovery codes", user=user,
                 target_type="user", target_id=user.id)
    return codes


def disable(user: User, ip: str, *, code: str = "", password: str = "") -> None:
    """Switch 2FA off; needs a current code or the password. Not while a role requires it."""
    if not user.has_two_factor:
        raise TwoFactorError("Two-factor authentication is already off.")
    if required_for(user):
        raise TwoFactorError("An admin requires two-factor authentication for your role; it can't be switched off.")
    if code:
        verify(user, code, ip)
    else:
        accounts.check_throttle(user.username, ip)
        if not accounts.verify_password(user, password or ""):
            accounts.count_failure(user.username, ip)
            raise TwoFactorError("Enter a current code or your password to switch it off.")
    _clear(user)
    audit.record("user.2fa_disabled", f"{user.username} switched off two-factor authentication", user=user,
                 target_type="user", target_id=user.id, before={"two_factor": True}, after={"two_factor": False})


def admin_reset(user: User, *, actor, actor_name: Optional[str] = None) -> None:
    """An admin (or ops with ``flask reset-2fa``, ``actor_name`` "cli") clears ``user``'s 2FA (a lost
    phone): their sessions end; they enrol again when required."""
    had = user.has_two_factor
    _clear(user)
    audit.record("user.2fa_reset", f"Two-factor authentication of {user.username} reset", user=actor,
                 username=actor_name, target_type="user", target_id=user.id, before={"two_factor": had},
                 after={"two_factor": False})


def _clear(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    accounts.end_sessions(user)
    accounts.end_remembered_browsers(user)


# --- Remember this browser -------------------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="backupchecks-2fa-remember")


def remember_cookie(user: User, *, now: Optional[datetime] = None) -> tuple[str, int]:
    """The cookie's value and max-age for "remember this browser" of ``user``."""
    now = now or utcnow()
    expires = int((now + timedelta(days=REMEMBER_DAYS)).timestamp())
    value = _serializer().dumps({"u": user.id, "c": user.credential_generation or 0, "e": expires})
    return value, REMEMBER_DAYS * 86400


def is_remembered(user: User, cookie: Optional[str], *, now: Optional[datetime] = None) -> bool:
    """The cookie remembers this browser for ``user``: allowed, theirs, unexpired, same credentials."""
    if not cookie or not remember_allowed() or not user.has_two_factor:
        return False
    try:
        data = _serializer().loads(cookie)
    except BadSignature:
        return False
    now = now or utcnow()
    return (isinstance(data, dict) and data.get("u") == user.id
            and data.get("c") == (user.credential_generation or 0)
            and isinstance(data.get("e"), int) and data["e"] > now.timestamp())
