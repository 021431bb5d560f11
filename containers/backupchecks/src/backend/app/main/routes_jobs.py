from flask import render_template

from ..extensions import db
from ..models import Job
from ..security import roles_required
from . import main_bp


@main_bp.route("/jobs")
@roles_required("admin", "operator", "viewer")
def jobs():
    return render_template("main/placeholder.html", title="Jobs", doc="jobs")


@main_bp.route("/jobs/archived")
@roles_required("admin")
def jobs_archived():
    return render_template("main/placeholder.html", title="Archived jobs", doc="jobs")


@main_bp.route("/jobs/<int:job_id>")
@roles_required("admin", "operator", "viewer")
def job_detail(job_id: int):
    job = db.get_or_404(Job, job_id)
    return render_template("main/placeholder.html", title=f"Job {job.job_name}", doc="jobs")
