"""Accounts: password hashing, login throttling, user management rules."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import and_, delete, func, or_, select

from ..extensions import db
from ..models import PORTAL_ROLE, ROLES, AuditLog, Customer, LoginAttempt, User, utcnow
from . import audit, locks, scope

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
# A hash to verify against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


class AccountError(ValueError):
    """A rule of account management was broken; the message is shown to the user."""


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
    if PORTAL_ROLE in wanted and len(wanted) > 1:
        raise AccountError("A portal user is a customer's own staff: give them the portal role only.")
    return [r for r in ROLES if r in wanted]


def create_user(username: str, password: str, roles: Iterable[str], *, actor=None,
                customer_ids: Iterable[int] = (), mail_bodies: bool = False) -> User:
    """A new user. A portal user (roles ``["portal"]``) is bound to ``customer_ids`` (at least one)
    and may read their runs' mails only with ``mail_bodies``; for staff both are ignored."""
    username = (username or "").strip()
    if not username or len(username) > 80:
        raise AccountError("A user name of 1 to 80 characters is required.")
    if db.session.execute(select(User.id).where(func.lower(User.username) == username.lower())).first():
        raise AccountError(f"A user named '{username}' already exists.")
    check_password_strength(password, username)
    role_list = normalise_roles(roles)
    customers = portal_customers(customer_ids) if PORTAL_ROLE in role_list else []
    user = User(username=username, password_hash=hash_password(password))
    user.role_list = role_list
    user.active_role = role_list[0]
    if customers:
        user.customers = customers
        user.portal_mail_bodies = bool(mail_bodies)
    db.session.add(user)
    db.session.flush()
    after = {"username": username, "roles": role_list}
    summary = f"Created user {username} ({', '.join(role_list)})"
    if customers:
        after.update(customers=[c.id for c in customers], mail_bodies=user.portal_mail_bodies)
        summary += " for " + ", ".join(c.name for c in customers) + (" (mail bodies allowed)" if mail_bodies else "")
    audit.record("user.create", summary, user=actor, target_type="user", target_id=user.id, after=after)
    return user


def portal_customers(customer_ids: Iterable[int]) -> list[Customer]:
    """The customers a portal user (or an invitation) is bound to: at least one, each existing."""
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        raise AccountError("Choose at least one customer for a portal user.")
    found = db.session.execute(select(Customer).where(Customer.id.in_(ids)).order_by(func.lower(Customer.name))
                               ).scalars().all()
    if len(found) != len(ids):
        raise AccountError("One of the chosen customers no longer exists; choose again.")
    return list(found)


def set_portal_access(user: User, customer_ids: Iterable[int], mail_bodies: bool, *, actor) -> bool:
    """Bind a portal user to ``customer_ids`` and set "may see mail bodies". Audited with the
    customers before and after; the next request of the user already sees the new scope."""
    if not user.is_portal:
        raise AccountError(f"{user.username} is not a portal user: give them the portal role first.")
    customers = portal_customers(customer_ids)
    before = {"customers": sorted(c.id for c in user.customers), "mail_bodies": bool(user.portal_mail_bodies)}
    after = {"customers": sorted(c.id for c in customers), "mail_bodies": bool(mail_bodies)}
    if before == after:
        return False
    names_before = ", ".join(c.name for c in user.customers) or "none"
    user.customers = customers
    user.portal_mail_bodies = bool(mail_bodies)
    scope.forget(user)
    audit.record("user.customers", f"Portal access of {user.username}: {names_before} → "
                 + ", ".join(c.name for c in customers) + (" (mail bodies allowed)" if mail_bodies else ""),
                 user=actor, target_type="user", target_id=user.id, before=before, after=after)
    return True


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


def end_sessions(user: User) -> None:
    """Every session of ``user`` made before now is refused at its next request (their
    generation is older). The caller's own session can be kept with security.keep_session."""
    user.session_generation = (user.session_generation or 0) + 1


def end_remembered_browsers(user: User) -> None:
    """Every "remember this browser" cookie of ``user`` stops counting (services/two_factor.py):
    their credentials changed (password, 2FA) or the account was deactivated."""
    user.credential_generation = (user.credential_generation or 0) + 1


def log_out(user: User) -> None:
    """Logging out ends the user's sessions everywhere, including copies of the cookie."""
    end_sessions(user)
    audit.record("logout", f"{user.username} logged out", user=user)


def set_roles(user: User, roles: Iterable[str], *, actor, customer_ids: Iterable[int] = (),
              mail_bodies: bool = False) -> None:
    """Change the roles (their sessions end). Becoming a portal user needs ``customer_ids``; leaving
    the portal role drops the customer binding (audited); a portal user gets no morning digest."""
    role_list = normalise_roles(roles)
    if _is_active_admin(user) and "admin" not in role_list and _active_admin_count(user.id) == 0:
        raise AccountError("This is the last active admin; make another user admin first.")
    before = user.role_list
    if role_list == before:
        return
    if PORTAL_ROLE in role_list:
        customers = portal_customers(customer_ids)
    user.role_list = role_list
    end_sessions(user)
    audit.record("user.roles", f"Roles of {user.username}: {', '.join(before)} → {', '.join(role_list)}",
                 user=actor, target_type="user", target_id=user.id,
                 before={"roles": before}, after={"roles": role_list})
    if PORTAL_ROLE in role_list:
        user.digest_subscribed = False  # the digest covers every customer
        names = ", ".join(c.name for c in customers)
        user.customers = customers
        user.portal_mail_bodies = bool(mail_bodies)
        audit.record("user.customers", f"Portal access of {user.username}: {names}"
                     + (" (mail bodies allowed)" if mail_bodies else ""), user=actor, target_type="user",
                     target_id=user.id, after={"customers": [c.id for c in customers], "mail_bodies": bool(mail_bodies)})
    elif user.customers or user.portal_mail_bodies:
        dropped = sorted(c.id for c in user.customers)
        user.customers = []
        user.portal_mail_bodies = False
        audit.record("user.customers", f"Portal access of {user.username} removed (no longer a portal user)",
                     user=actor, target_type="user", target_id=user.id, before={"customers": dropped},
                     after={"customers": []})
    scope.forget(user)


def set_active(user: User, active: bool, *, actor) -> None:
    if not active and _is_active_admin(user) and _active_admin_count(user.id) == 0:
        raise AccountError("This is the last active admin; it can't be deactivated.")
    before = user.is_active_user
    user.is_active_user = active
    if not active:
        end_sessions(user)
        end_remembered_browsers(user)
        # For good: activating the user again does not bring their API tokens back.
        from . import api_tokens

        api_tokens.revoke_all_of(user, actor=actor)
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
    end_sessions(user)
    end_remembered_browsers(user)
    audit.record(event, f"Password of {user.username} changed", user=actor, target_type="user", target_id=user.id)


# --- Login and throttling ------------------------------------------------------
#
# Failed logins are counted in the database (login_attempts, one row per refused password),
# so the limits hold across workers and containers. Three limits, within a sliding window of
# LOGIN_THROTTLE_WINDOW_SECONDS:
#
# - per (user name, address): LOGIN_THROTTLE_MAX failures, then that address is refused for
#   that name until the oldest failure leaves the window;
# - per address: ADDRESS_FACTOR × LOGIN_THROTTLE_MAX failures over all names (password spraying);
# - per user name over all addresses: never a refusal, only a growing wait before the password
#   is checked (NAME_DELAY_*), so many addresses guessing one name are slowed down while the
#   real user, from an address of their own, still gets in with the right password.
#
# Refused logins are audited as one "login.failed" row per address and window, updated in
# place with the counts, so an attack can't flood the audit log.

ADDRESS_FACTOR = 4
NAME_DELAY_FACTOR = 4  # the wait starts after NAME_DELAY_FACTOR × LOGIN_THROTTLE_MAX failures for a name
NAME_DELAY_FIRST_SECONDS = 0.5  # doubles with every further failure ...
NAME_DELAY_MAX_SECONDS = 5.0  # ... up to this
AUDIT_MAX_NAMES = 10


class LoginThrottled(AccountError):
    """Too many failed logins from this address; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = max(60, int(retry_after))
        minutes = -(-self.retry_after // 60)
        super().__init__(f"Too many failed logins from your address. Try again in {minutes} "
                         f"minute{'s' if minutes != 1 else ''}, or ask an admin to reset your password.")


@dataclass(frozen=True)
class _Failures:
    pair: int  # this name from this address
    pair_oldest: Optional[datetime]
    address: int  # any name from this address
    address_oldest: Optional[datetime]
    name: int  # this name from any address


def throttle_window() -> timedelta:
    """The window of the login throttle, also the span of one refused-login audit row."""
    return timedelta(seconds=current_app.config.get("LOGIN_THROTTLE_WINDOW_SECONDS", 900))


def _recent_failures(name_key: str, ip: str, since: datetime) -> _Failures:
    """The three counts in one query (the indexes on (username, created_at) and (ip_address, created_at))."""
    a = LoginAttempt
    pair = and_(a.username == name_key, a.ip_address == ip)
    by_ip = a.ip_address == ip
    row = db.session.execute(select(
        func.count().filter(pair), func.min(a.created_at).filter(pair),
        func.count().filter(by_ip), func.min(a.created_at).filter(by_ip),
        func.count().filter(a.username == name_key),
    ).where(a.created_at >= since, or_(a.username == name_key, by_ip))).one()
    return _Failures(*row)


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def name_delay(failures_for_name: int, limit: int) -> float:
    """The wait before checking a password for a name that failed this often (all addresses)."""
    excess = failures_for_name - NAME_DELAY_FACTOR * limit
    if excess < 0:
        return 0.0
    return min(NAME_DELAY_FIRST_SECONDS * 2 ** min(excess, 32), NAME_DELAY_MAX_SECONDS)


def _audit_refused_login(ip: str, username: str, now: datetime, window: timedelta, *, refused: bool) -> None:
    """Count a failed (wrong password) or refused (throttled) login in this address's audit row
    for the window; the first one in a window creates the row."""
    row = db.session.execute(
        select(AuditLog).where(AuditLog.event == "login.failed", AuditLog.ip_address == ip,
                               AuditLog.created_at >= now - window)
        .order_by(AuditLog.id.desc()).limit(1).with_for_update()).scalar_one_or_none()
    if row is None:
        row = audit.record("login.failed", "", username=username or None, user=None, ip_address=ip)
        counts = {"failed": 0, "refused": 0, "user names": []}
    else:
        counts = dict(row.after or {})
    names = list(counts.get("user names") or [])
    if username and username not in names:
        if len(names) < AUDIT_MAX_NAMES:
            names.append(username)
        else:
            counts["more names"] = counts.get("more names", 0) + 1
    counts["user names"] = names
    key = "refused" if refused else "failed"
    counts[key] = counts.get(key, 0) + 1
    counts["last"] = now.isoformat(timespec="seconds")
    row.after = counts  # a new dict, so the JSON column is written
    shown = ", ".join(names) + (f" and {counts['more names']} more" if counts.get("more names") else "")
    summary = f"{counts.get('failed', 0)} failed login(s) from {ip} for {shown or '(no name)'}"
    if counts.get("refused"):
        summary += f"; {counts['refused']} more refused: too many failed logins"
    row.summary = summary[:500]


def _limit() -> int:
    return current_app.config.get("LOGIN_THROTTLE_MAX", 5)


def check_throttle(username: str, ip: str) -> None:
    """Refuse (LoginThrottled) when this address failed too often for this name or over all names;
    wait a little when the name failed often from anywhere. Passwords and second-factor codes
    share these counts (services/two_factor.py), so neither can be guessed faster than the other."""
    username = (username or "").strip()[:80]
    name_key = username.lower()
    ip = (ip or "?")[:64]
    limit = _limit()
    now = utcnow()
    window = throttle_window()
    seen = _recent_failures(name_key, ip, now - window)
    release = []
    if seen.pair >= limit:
        release.append(seen.pair_oldest + window)
    if seen.address >= ADDRESS_FACTOR * limit:
        release.append(seen.address_oldest + window)
    if release:
        _audit_refused_login(ip, username, now, window, refused=True)
        db.session.commit()
        raise LoginThrottled((max(release) - now).total_seconds())
    delay = name_delay(seen.name, limit)
    if delay:
        db.session.commit()  # no transaction held open while waiting
        _wait(delay)


def count_failure(username: str, ip: str) -> None:
    """One refused password or code for ``username`` from ``ip``: counted, audited, committed."""
    username = (username or "").strip()[:80]
    ip = (ip or "?")[:64]
    now = utcnow()
    window = throttle_window()
    db.session.add(LoginAttempt(username=username.lower(), ip_address=ip, created_at=now))
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < now - window))
    _audit_refused_login(ip, username, now, window, refused=False)
    db.session.commit()


def clear_failures(username: str, ip: str) -> None:
    """A success clears this address's failures for the name (not other addresses': the
    per-name wait keeps counting them)."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.username == (username or "").strip()[:80].lower(),
                                                  LoginAttempt.ip_address == (ip or "?")[:64]))


def authenticate(username: str, password: str, ip: str) -> User:
    """Return the user for valid credentials; raise AccountError with a clear message otherwise
    (LoginThrottled when this address tried too often)."""
    username = (username or "").strip()[:80]
    name_key = username.lower()
    check_throttle(username, ip)
    user = db.session.execute(select(User).where(func.lower(User.username) == name_key)).scalar_one_or_none()
    # Exactly one Argon2 verification on every path (a dummy hash for an unknown name), and
    # the deactivated check after it: the time taken says nothing about which names exist.
    password_ok = verify_password(user, password)
    if not password_ok or not user.is_active_user:
        count_failure(username, ip)
        if password_ok:
            raise AccountError("This account is deactivated. Ask an admin to activate it.")
        raise AccountError("Unknown user name or wrong password.")
    clear_failures(username, ip)
    from .oidc import password_login_allowed

    if not password_login_allowed(user):
        audit.record("login.password_refused", f"{user.username}: password login is off (single sign-on only)",
                     user=user, ip_address=ip)
        db.session.commit()
        raise AccountError("Password login is turned off here: use the single sign-on button.")
    return user


def complete_login(user: User, method: str = "password") -> None:
    """The step after a user proved who they are (password or single sign-on): note the login and
    commit. Every login method ends here; the caller then starts the session."""
    user.last_login_at = utcnow()
    if method == "password":
        audit.record("login", f"{user.username} logged in", user=user)
    else:
        audit.record(f"login.{method}", f"{user.username} logged in ({method})", user=user)
    db.session.commit()


def list_users() -> list[User]:
    """Every user, with the customers of the portal users (two queries)."""
    from sqlalchemy.orm import selectinload

    return db.session.execute(select(User).options(selectinload(User.customers)).order_by(User.username)
                              ).scalars().all()
