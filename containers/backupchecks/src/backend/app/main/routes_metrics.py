"""GET /metrics: the Prometheus metrics, for a scraper with the bearer token (``METRICS_TOKEN``).

No login, session or CSRF token: the token is the credential. Without ``METRICS_TOKEN`` the page
does not exist (404). The rules are in ``services/metrics``."""
from flask import Response, abort, current_app, request

from ..security import public
from ..services import metrics
from .blueprint import main_bp


@main_bp.route("/metrics", endpoint="metrics")
@public
def metrics_page():
    access = metrics.authorize(current_app.config.get("METRICS_TOKEN"), request.headers.get("Authorization"))
    if access is metrics.Access.OFF:
        abort(404)
    if access is metrics.Access.DENIED:
        return Response("A valid bearer token is required (Authorization: Bearer <METRICS_TOKEN>).\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="backupchecks-metrics"', "Cache-Control": "no-store"},
                        mimetype="text/plain")
    body, content_type = metrics.exposition(current_app)
    return Response(body, 200, {"Cache-Control": "no-store"}, content_type=content_type)
