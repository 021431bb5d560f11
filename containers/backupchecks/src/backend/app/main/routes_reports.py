from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/reports")
@roles_required("admin", "operator", "reporter", "viewer")
def reports():
    return render_template("main/placeholder.html", title="Reports", doc="reports")
