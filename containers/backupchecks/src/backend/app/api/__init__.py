"""The JSON API, version 1, under ``/api/v1/`` (docs/api.md; the description of every path is the
OpenAPI document in ``openapi.py``, served at ``/api/v1/openapi.json``).

A request carries an API token, ``Authorization: Bearer bc_…`` (services/api_tokens.py); the
session cookie is neither read nor written under ``/api/`` and CSRF does not apply. The token acts
as its user in the user's current role, sees only the customers the user may see
(services/scope.py), and a read-only token may only read. Every error is JSON with a stable code
(errors.api_error). Each token may make API_RATE_LIMIT_PER_MINUTE requests a minute
(services/api_rate_limit.py).
"""
from __future__ import annotations

from flask import Blueprint, Flask, request
from flask.sessions import SecureCookieSessionInterface

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")

API_PREFIX = "/api/"


class ApiAwareSessionInterface(SecureCookieSessionInterface):
    """The app's signed-cookie session, except under /api/: there a request starts with an empty
    session whatever cookie it sends, and no session cookie is ever set, so a browser's login
    can't be used (or changed) through the API; only the token counts."""

    def open_session(self, app, request_):
        if request_.path.startswith(API_PREFIX):
            return self.session_class()
        return super().open_session(app, request_)

    def save_session(self, app, session, response):
        if request.path.startswith(API_PREFIX):
            return None
        return super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    from ..extensions import csrf
    from . import auth, routes  # noqa: F401 - the routes register themselves on api_bp

    app.session_interface = ApiAwareSessionInterface()
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
