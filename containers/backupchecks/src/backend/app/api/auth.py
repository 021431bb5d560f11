"""Who is calling: the Bearer token of each API request, the rate limit, and the role guard.

``authenticate_request`` runs before every API view (but the public OpenAPI document): it checks
the token (services/api_tokens.authenticate), counts the request against the token's rate limit
and makes the token's user the request's user, so the services audit the change as that user
("via API token <name>"). ``api_roles`` is the API's role guard: the roles (the user's current
role) that may call a view, and whether it changes something (then a read-only token gets 403).
"""
from __future__ import annotations

from functools import wraps
from typing import Callable, Optional

from flask import current_app, g, request

from ..errors import api_error
from ..models import ROLES
from ..security import client_address
from ..services import api_rate_limit
from ..services.api_data import InvalidParameter
from ..services.api_tokens import TokenError, authenticate
from . import api_bp

REALM = 'Bearer realm="Backupchecks API"'


class ApiError(Exception):
    """An API answer other than success: HTTP ``status``, a stable ``code``, a message for people."""

    def __init__(self, status: int, code: str, message: str, *, field: Optional[str] = None,
                 headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'
                                                 if code != "missing" else REALM})


@api_bp.errorhandler(ApiError)
def _api_error(err: ApiError):
    return api_error(err.status, err.code, err.message, field=err.field, headers=err.headers)


@api_bp.errorhandler(InvalidParameter)
def _invalid_parameter(err: InvalidParameter):
    return api_error(400, err.code, err.message, field=err.field)


def bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise unauthorized("missing", "Send an API token: Authorization: Bearer bc_…")
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise unauthorized("invalid_token", "The Authorization header must be 'Bearer <token>'.")
    return secret.strip()


@api_bp.before_request
def authenticate_request():
    view = _requested_view()
    if view is None or getattr(view, "is_public", False):
        return None
    try:
        token = authenticate(bearer_secret(), ip_address=client_address())
    except TokenError as exc:
        raise unauthorized(exc.code, exc.message) from None
    rate = api_rate_limit.count_request(token.id)
    g.api_rate = rate
    if not rate.allowed:
        raise ApiError(429, "rate_limited",
                       f"More than {rate.limit} requests in a minute with this token; try again in "
                       f"{rate.reset_seconds} s.", headers={"Retry-After": str(rate.reset_seconds)})
    g.api_token = token
    g._login_user = token.user  # Flask-Login's current_user for this request: the token's user
    g.audit_via = f"API token '{token.name}'"
    return None


@api_bp.after_request
def rate_headers(response):
    rate = g.get("api_rate")
    if rate is not None:
        response.headers.update(rate.headers())
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _requested_view():
    return current_app.view_functions.get(request.endpoint or "")


def api_roles(*roles: str, write: bool = False) -> Callable:
    """Allow the view to tokens whose user's CURRENT role is one of ``roles``; with ``write`` only
    to read-write tokens. Checked in this order: read-only token (403 read_only_token), role
    (403 forbidden_role)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"bad roles for API guard: {roles}")

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            token = g.get("api_token")
            if token is None:  # authenticate_request always sets it; never answer without it
                raise unauthorized("missing", "Send an API token: Authorization: Bearer bc_…")
            if write and token.read_only:
                raise ApiError(403, "read_only_token", "This token is read-only: create a read-write "
                                                       "token to make changes.")
            if token.user.current_role not in roles:
                raise ApiError(403, "forbidden_role", f"The token's user may not do this in their current "
                                                      f"role ({token.user.current_role}).")
            return view(*args, **kwargs)

        wrapped.allowed_roles = tuple(roles)
        wrapped.api_write = write
        return wrapped

    return decorator


def public(view):
    """A view without a token (the OpenAPI document)."""
    view.allowed_roles = None
    view.is_public = True
    return view
