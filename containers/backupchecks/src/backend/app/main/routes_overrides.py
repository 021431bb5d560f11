from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/overrides")
@roles_required("admin", "operator", "viewer")
def overrides():
    return render_template("main/placeholder.html", title="Overrides", doc="overrides")
