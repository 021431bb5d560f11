from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/run-checks")
@roles_required("admin", "operator")
def run_checks():
    return render_template("main/placeholder.html", title="Run Checks", doc="run_checks")
