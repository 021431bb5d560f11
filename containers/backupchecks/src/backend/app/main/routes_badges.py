"""GET /badge/<key>.svg and /badge/<key>.json: a customer's status for NOC screens, without login.

The key in the URL is the credential (192 random bits): an unknown, malformed or revoked key is a
bare 404, the same for all. The rules are in ``services/badges.py``; the badge is made and revoked
on the customer's edit page (``routes_customers``)."""
from flask import Response, jsonify

from ..security import public
from ..services import badges
from .blueprint import main_bp

# Short-lived: a NOC screen polls, and a revoked badge must stop answering soon.
_HEADERS = {"Cache-Control": "no-cache, max-age=0", "X-Content-Type-Options": "nosniff"}
_SVG_POLICY = "default-src 'none'; sandbox"


def _not_found() -> Response:
    return Response("Not found\n", 404, {**_HEADERS, "Cache-Control": "no-store"}, mimetype="text/plain")


@main_bp.route("/badge/<key>.<fmt>", endpoint="badge")
@public
def badge(key: str, fmt: str):
    if fmt not in badges.FORMATS:
        return _not_found()
    found = badges.find(key)
    if found is None:
        return _not_found()
    status = badges.badge_status(found)
    if fmt == "json":
        response = jsonify(status.as_json())
        response.headers.update(_HEADERS)
        # A NOC dashboard on another origin may read it: no cookie is needed or sent along.
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response
    return Response(badges.svg_of(status), 200, {**_HEADERS, "Content-Security-Policy": _SVG_POLICY},
                    mimetype="image/svg+xml")
