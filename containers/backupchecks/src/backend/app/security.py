"""Role guard: one decorator on every route; what a page allows follows the active role."""
from __future__ import annotations

from functools import wraps
from typing import Callable, Optional
from urllib.parse import urlsplit

from flask import abort, request, url_for
from flask_login import current_user

from .extensions import login_manager
from .models import ROLES

EVERYONE = ROLES  # documentation, feedback, own profile


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


def safe_next(target: Optional[str], default: Optional[str] = None) -> str:
    """``target`` when it is a path on this site, else ``default`` (the dashboard).

    The one check for every "go back to" value taken from a request (``next=``, a form's
    ``next`` field): only a local absolute path; never another host (``//host``, ``/\\host``,
    ``https://…``) and never control characters (CR/LF would break the Location header)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target)
            and not urlsplit(target).netloc):
        return target
    return default or url_for("main.dashboard")
