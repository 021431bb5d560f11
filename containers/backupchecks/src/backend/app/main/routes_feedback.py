from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/feedback")
@roles_required("admin", "operator", "reporter", "viewer")
def feedback():
    return render_template("main/placeholder.html", title="Feedback", doc="feedback")
