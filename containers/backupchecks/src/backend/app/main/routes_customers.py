from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/customers")
@roles_required("admin", "operator", "viewer")
def customers():
    return render_template("main/placeholder.html", title="Customers", doc="customers")
