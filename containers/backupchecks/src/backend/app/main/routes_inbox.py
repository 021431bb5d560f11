from flask import render_template

from ..security import roles_required
from . import main_bp


@main_bp.route("/inbox")
@roles_required("admin", "operator", "viewer")
def inbox():
    return render_template("main/placeholder.html", title="Inbox", doc="inbox")


@main_bp.route("/inbox/deleted")
@roles_required("admin")
def inbox_deleted():
    return render_template("main/placeholder.html", title="Deleted mails", doc="inbox")
