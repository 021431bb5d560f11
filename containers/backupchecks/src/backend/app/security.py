"""Role guard: one decorator on every route; what a page allows follows the active role.
Also the web side of sessions (start, keep, end, check), the client's address and safe_next."""
from __future__ import annotations

import hashlib
from functools import wraps
from typing import Callable, Optional
from urllib.parse import urlsplit

from flask import abort, current_app, g, request, session, url_for
from flask_login import current_user, login_user, logout_user

from .extensions import login_manager
from .models import ROLES, STAFF_ROLES

# Role groups: who may open a page or take an action. Every route names one of these (or "admin"
# alone); docs/pages/users_and_roles.md says the same in words.
EVERYONE = STAFF_ROLES  # documentation, feedback, own profile, the dashboard (portal users: see PORTAL)
OPERATIONS_READERS = ("admin", "operator", "viewer")  # Inbox, customers, jobs, Daily Jobs, overrides, tickets
OPERATIONS_EDITORS = ("admin", "operator")  # change those: approve mails, edit customers, jobs, overrides, tickets
REVIEWERS = OPERATIONS_EDITORS  # Run Checks: review runs, mark success, tickets and remarks from a run
REPORT_READERS = ("admin", "operator", "reporter", "viewer")  # reports: list, preview, download
REPORT_EDITORS = ("admin", "reporter")  # reports: create, edit, generate, send
# The customer portal (a customer's own staff, read-only, scoped to their customers by services/scope.py).
# Added, on purpose one by one, to exactly the routes that serve portal users: each of those routes
# applies the scope to every query it makes (docs/pages/users_and_roles.md, "Which customers a user sees").
PORTAL_READERS = ("portal",)
SIGNED_IN = EVERYONE + PORTAL_READERS  # own profile, two-factor, the dashboard, the documentation


def roles_required(*roles: str) -> Callable:
    """Allow the view only to logged-in users whose ACTIVE role is one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"bad roles for guard: {roles}")

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.current_role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = tuple(roles)
        return wrapped

    return decorator


def public(view):
    """Mark a view as reachable without login (login, setup, health)."""
    view.allowed_roles = None
    view.is_public = True
    return view


def has_role(*roles: str) -> bool:
    return bool(getattr(current_user, "is_authenticated", False)) and current_user.current_role in roles


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def safe_next(target: Optional[str], default: Optional[str] = None, *, within: str = "/") -> str:
    """``target`` when it is a path on this site (under ``within``), else ``default`` (the dashboard).

    The one check for every "go back to" value taken from a request (``next=``, a form's
    ``next`` field): only a local absolute path; never another host (``//host``, ``/\\host``,
    ``https://…``) and never control characters (CR/LF would break the Location header).
    ``within`` narrows it to one part of the site (the Feedback pages go back to Feedback only)."""
    if (target and target.startswith(within) and target.startswith("/") and not target.startswith("//")
            and "\\" not in target
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target)
            and not urlsplit(target).netloc):
        return target
    return default or url_for("main.dashboard")


# --- Sessions ------------------------------------------------------------------------------
#
# The session is a signed cookie. Two values in it make it revocable and bound:
# - the user's session generation at login: logout, a password change, a role change and
#   deactivation raise users.session_generation, so an older session (a copied cookie too) is
#   refused at its next request; the check reads the user row that is loaded anyway;
# - a hash of the client's address and User-Agent at login (instead of Flask-Login's "strong"
#   protection, which reads X-Forwarded-For as the client sends it).

SESSION_GENERATION = "_generation"
SESSION_BINDING = "_binding"


def client_address() -> str:
    """The client's address. ``request.remote_addr`` is the connecting address, or, only when
    APP_BEHIND_PROXY trusts one reverse proxy (ProxyFix in create_app), the address that proxy
    put in X-Forwarded-For. A client-sent X-Forwarded-For is never read otherwise."""
    return request.remote_addr or "?"


def _session_binding() -> str:
    agent = request.headers.get("User-Agent", "")
    return hashlib.sha256(f"{client_address()}|{agent}".encode()).hexdigest()


def start_session(user) -> None:
    """Log ``user`` in with a new session: nothing from before the login is kept, so the CSRF
    token is new too (a token planted or seen before login is worthless afterwards)."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    login_user(user)
    session[SESSION_GENERATION] = user.session_generation
    session[SESSION_BINDING] = _session_binding()


def keep_session(user) -> None:
    """After ``user``'s sessions were ended (accounts.end_sessions): keep the current one if it
    is that user's own (a password change ends the other sessions, not this one)."""
    if getattr(current_user, "is_authenticated", False) and current_user.id == user.id:
        session[SESSION_GENERATION] = user.session_generation


def end_session() -> None:
    logout_user()
    session.clear()


def session_is_current(user) -> bool:
    """The session was made for this generation of ``user``, at this address and browser."""
    return (session.get(SESSION_GENERATION) == user.session_generation
            and session.get(SESSION_BINDING) == _session_binding())
