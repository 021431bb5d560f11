from flask import Blueprint

main_bp = Blueprint("main", __name__)

# One module per page.
from . import (  # noqa: E402,F401
    routes_audit_log,
    routes_autotask,
    routes_customers,
    routes_daily_jobs,
    routes_dashboard,
    routes_feedback,
    routes_health,
    routes_inbox,
    routes_jobs,
    routes_overrides,
    routes_parsers,
    routes_reports,
    routes_run_checks,
    routes_settings,
    routes_tickets,
    routes_users,
)
