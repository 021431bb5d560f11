from flask import render_template

from ..security import EVERYONE, roles_required
from . import main_bp


@main_bp.route("/")
@roles_required(*EVERYONE)
def dashboard():
    from ..services.dashboard import dashboard_data
    return render_template("main/dashboard.html", data=dashboard_data())
