"""Error pages: one handler per status code, HTML for pages and JSON for ``/api/`` and JSON clients.

Under ``/api/`` every error has the API's shape, ``{"error": {"code": "...", "message": "..."}}``
with a stable code (``API_CODES``; docs/api.md lists them), whoever raised it: the API's own checks
(backend/app/api/) and these handlers alike.

No handler shows a stack trace; every one that follows a database error rolls the session back
first, so nothing is half-saved.
"""
from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import DataError, InterfaceError, OperationalError

from .extensions import db


#: The API's error code for each status these handlers answer (the API's own checks add more:
#: missing, invalid_token, token_expired, token_revoked, user_inactive, read_only_token, bad_cursor,
#: rate_limited).
API_CODES = {400: "bad_request", 403: "forbidden_role", 404: "not_found",
             405: "method_not_allowed", 413: "too_large", 500: "server_error",
             503: "database_unavailable"}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, code: str, message: str, *, field: str | None = None, headers=None):
    """The API's error answer: ``{"error": {"code", "message"[, "field"]}}`` with ``status``."""
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    response = jsonify({"error": error})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_page(code: int, message: str):
    """The error answer for this request: JSON for the API and JSON clients, else the error page."""
    if is_api_request():
        if code == 503:
            message = "The database does not answer. Nothing was saved; try again in a minute."
        elif code == 500:
            message = "Something went wrong on our side. Nothing was half-saved; try again."
        return api_error(code, API_CODES.get(code, "error"), message)
    if request.path.startswith("/health") or (request.accept_mimetypes.best == "application/json"):
        body = {"status": "error", "code": code, "message": message}
        if code == 503:
            body["database"] = "unreachable"
        return jsonify(body), code
    try:
        return render_template("error.html", code=code, message=message), code
    except Exception:  # noqa: BLE001 - never a stack trace, even when templates can't load settings
        db.session.rollback()
    try:  # the layout and the context processors read the database: this page, rendered without them, does not
        page = current_app.jinja_env.get_template("error_bare.html")
        return page.render(code=code, message=message, request=request), code
    except Exception:  # noqa: BLE001
        return (f"<!doctype html><title>Error {code}</title><h1>Error {code}</h1><p>{escape(message)}</p>", code)


def csrf_error(err):
    return error_page(400, "The form expired or was sent without its security token. "
                           "Nothing was changed: reload the page and try again.")


def bad_request(err):
    return error_page(400, getattr(err, "description", None) or "The request was not understood.")


def forbidden(err):
    if is_api_request():
        return error_page(403, "The token's user may not do this in their current role.")
    role = current_user.current_role if current_user.is_authenticated else None
    return error_page(403, f"Your active role ({role or 'none'}) may not open this page. "
                           "Switch role in the top bar if you hold another one, or ask an admin.")


def not_found(err):
    if is_api_request():
        return error_page(404, "There is nothing at this address: no such resource, or not one this "
                               "token may see.")
    return error_page(404, "There is nothing at this address. It may have been deleted.")


def not_allowed(err):
    return error_page(405, "This address does not accept that kind of request.")


def too_large(err):
    return error_page(413, "The upload is too large. Nothing was saved.")


def database_down(err):
    db.session.rollback()
    current_app.logger.error("database unavailable: %s", type(err).__name__)
    if getattr(getattr(err, "orig", None), "sqlstate", None) == "53100":  # disk_full
        return error_page(503, "The database's disk is full. Nothing was saved; free space on the PostgreSQL "
                               "volume and try again (docs: Troubleshooting).")
    return error_page(503, "The database does not answer. Nothing was saved; try again in a minute. "
                           "If this lasts, check the PostgreSQL container (docs: Troubleshooting).")


def _out_of_range(err: DataError) -> bool:
    """A number too large for its column (an id typed into a form or a query string)."""
    return getattr(getattr(err, "orig", None), "sqlstate", None) == "22003"  # numeric_value_out_of_range


def data_error(err):
    """An id beyond any row (e.g. 2^31 in a form's list of ids): there is nothing there. Other
    data errors stay server errors."""
    db.session.rollback()
    if _out_of_range(err):
        return not_found(err)
    current_app.logger.exception("database refused a value")
    return server_error(err)


def server_error(err):
    db.session.rollback()
    return error_page(500, "Something went wrong on our side. Nothing was half-saved; "
                           "try again, and report it under Feedback if it repeats.")


#: What each handler answers: a status code or an exception class.
HANDLERS = (
    (CSRFError, csrf_error),
    (400, bad_request),
    (403, forbidden),
    (404, not_found),
    (405, not_allowed),
    (413, too_large),
    (OperationalError, database_down),
    (InterfaceError, database_down),
    (DataError, data_error),
    (500, server_error),
)


def init_app(app: Flask) -> None:
    for code_or_exception, handler in HANDLERS:
        app.register_error_handler(code_or_exception, handler)
