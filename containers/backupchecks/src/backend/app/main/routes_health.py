from flask import jsonify
from sqlalchemy import text

from ..extensions import db
from ..security import public
from .blueprint import main_bp


@main_bp.route("/health")
@public
def health():
    """200 when the database answers, 503 when it does not (for Docker and load balancers)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        return jsonify({"status": "error", "database": "unreachable", "detail": type(exc).__name__}), 503
    return jsonify({"status": "ok", "database": "ok"})
