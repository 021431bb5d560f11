"""Role guard: one decorator on every route; what a page allows follows the active role."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import abort, request
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
