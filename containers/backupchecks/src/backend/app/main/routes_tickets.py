from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/tickets")
@roles_required("admin", "operator", "viewer")
def tickets():
    return render_template("main/placeholder.html", title="Tickets", doc="tickets")
