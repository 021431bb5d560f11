"""Accounts: password hashing, login throttling, user management rules."""
from __future__ import annotations

from datetime import timedelta
from typing import Iterable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import ROLES, LoginAttempt, User, utcnow
from . import audit, locks

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
# A hash to verify against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


class AccountError(ValueError):
    """A rule of account management was broken; the message is shown to the user."""


class LoginThrottled(AccountError):
    pass


class SetupClosed(AccountError):
    """First-run setup was already done (perhaps a moment ago, by someone else)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: Optional[User], password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, username: str = "") -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if username and password.lower() == username.lower():
        raise AccountError("The password may not be the user name.")


def has_users() -> bool:
    return db.session.execute(select(User.id).limit(1)).first() is not None


def normalise_roles(roles: Iterable[str]) -> list[str]:
    wanted = {r.strip().lower() for r in roles if r and r.strip()}
    unknown = wanted - set(ROLES)
    if unknown:
        raise AccountError(f"Unknown role(s): {', '.join(sorted(unknown))}. Roles are {', '.join(ROLES)}.")
    if not wanted:
        raise AccountError("Give the user at least one role.")
    return [r for r in ROLES if r in wanted]


def create_user(username: str, password: str, roles: Iterable[str], *, actor=None) -> User:
    username = (username or "").strip()
    if not username or len(username) > 80:
        raise AccountError("A user name of 1 to 80 characters is required.")
    if db.session.execute(select(User.id).where(func.lower(User.username) == username.lower())).first():
        raise AccountError(f"A user named '{username}' already exists.")
    check_password_strength(password, username)
    role_list = normalise_roles(roles)
    user = User(username=username, password_hash=hash_password(password))
    user.role_list = role_list
    user.active_role = role_list[0]
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", f"Created user {username} ({', '.join(role_list)})", user=actor,
                 target_type="user", target_id=user.id, after={"username": username, "roles": role_list})
    return user


def create_first_admin(username: str, password: str) -> User:
    """The first admin of a new installation, created at most once.

    The "no users yet" check and the insert run under a transaction lock (held until the
    caller commits), so two people sending the setup form at the same moment get one admin
    and one SetupClosed, never two admins."""
    locks.lock_for_transaction(db.session, "first-run-setup")
    if has_users():
        raise SetupClosed("Backupchecks was set up a moment ago by someone else. "
                          "Log in, or ask that admin for an account.")
    return create_user(username, password, ["admin"])


def _active_admin_count(exclude_id: Optional[int] = None) -> int:
    q = select(func.count(User.id)).where(User.is_active_user.is_(True), User.roles.like("%admin%"))
    if exclude_id is not None:
        q = q.where(User.id != exclude_id)
    return db.session.execute(q).scalar_one()


def _is_active_admin(user: User) -> bool:
    return user.is_active_user and "admin" in user.role_list


def set_roles(user: User, roles: Iterable[str], *, actor) -> None:
    role_list = normalise_roles(roles)
    if _is_active_admin(user) and "admin" not in role_list and _active_admin_count(user.id) == 0:
        raise AccountError("This is the last active admin; make another user admin first.")
    before = user.role_list
    user.role_list = role_list
    audit.record("user.roles", f"Roles of {user.username}: {', '.join(before)} → {', '.join(role_list)}",
                 user=actor, target_type="user", target_id=user.id,
                 before={"roles": before}, after={"roles": role_list})


def set_active(user: User, active: bool, *, actor) -> None:
    if not active and _is_active_admin(user) and _active_admin_count(user.id) == 0:
        raise AccountError("This is the last active admin; it can't be deactivated.")
    before = user.is_active_user
    user.is_active_user = active
    audit.record("user.activate" if active else "user.deactivate",
                 f"{'Activated' if active else 'Deactivated'} user {user.username}", user=actor,
                 target_type="user", target_id=user.id, before={"active": before}, after={"active": active})


def delete_user(user: User, *, actor) -> None:
    if _is_active_admin(user) and _active_admin_count(user.id) == 0:
        raise AccountError("This is the last active admin; it can't be deleted.")
    if actor is not None and actor.id == user.id:
        raise AccountError("You can't delete your own account.")
    audit.record("user.delete", f"Deleted user {user.username}", user=actor, target_type="user",
                 target_id=user.id, before={"username": user.username, "roles": user.role_list})
    db.session.delete(user)


def set_password(user: User, password: str, *, actor, event: str = "user.password_reset") -> None:
    check_password_strength(password, user.username)
    user.password_hash = hash_password(password)
    audit.record(event, f"Password of {user.username} changed", user=actor, target_type="user", target_id=user.id)


# --- Login and throttling ------------------------------------------------------

def _recent_failures(username: str, ip: str) -> tuple[int, int]:
    window = timedelta(seconds=current_app.config.get("LOGIN_THROTTLE_WINDOW_SECONDS", 900))
    since = utcnow() - window
    by_user = db.session.execute(select(func.count(LoginAttempt.id)).where(
        func.lower(LoginAttempt.username) == username.lower(), LoginAttempt.created_at >= since)).scalar_one()
    by_ip = db.session.execute(select(func.count(LoginAttempt.id)).where(
        LoginAttempt.ip_address == ip, LoginAttempt.created_at >= since)).scalar_one()
    return by_user, by_ip


def authenticate(username: str, password: str, ip: str) -> User:
    """Return the user for valid credentials; raise AccountError with a clear message otherwise."""
    username = (username or "").strip()
    limit = current_app.config.get("LOGIN_THROTTLE_MAX", 5)
    by_user, by_ip = _recent_failures(username, ip)
    if by_user >= limit or by_ip >= limit * 4:
        minutes = current_app.config.get("LOGIN_THROTTLE_WINDOW_SECONDS", 900) // 60
        audit.record("login.throttled", f"Login for '{username}' refused: too many failed attempts",
                     username=username[:80], commit=True)
        raise LoginThrottled(f"Too many failed logins. Wait {minutes} minutes and try again, "
                             "or ask an admin to reset your password.")
    user = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()
    # Exactly one Argon2 verification on every path (a dummy hash for an unknown name), and
    # the deactivated check after it: the time taken says nothing about which names exist.
    password_ok = verify_password(user, password)
    if not password_ok or not user.is_active_user:
        db.session.add(LoginAttempt(username=username[:80], ip_address=ip[:64]))
        audit.record("login.failed", f"Failed login for '{username[:80]}'", username=username[:80],
                     user=None)
        db.session.commit()
        if password_ok:
            raise AccountError("This account is deactivated. Ask an admin to activate it.")
        raise AccountError("Unknown user name or wrong password.")
    # Successful login clears the user's failures.
    db.session.execute(LoginAttempt.__table__.delete().where(
        or_(func.lower(LoginAttempt.username) == username.lower())))
    user.last_login_at = utcnow()
    audit.record("login", f"{user.username} logged in", user=user)
    db.session.commit()
    return user


def list_users() -> list[User]:
    return db.session.execute(select(User).order_by(User.username)).scalars().all()
