from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/daily-jobs")
@roles_required("admin", "operator", "viewer")
def daily_jobs():
    return render_template("main/placeholder.html", title="Daily Jobs", doc="daily_jobs")
