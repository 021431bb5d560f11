"""The application's pages: one ``routes_*`` module per page, all on ``main_bp`` (``blueprint.py``).
Importing this package registers every route on the blueprint."""
from . import (  # noqa: F401
    routes_api_tokens,
    routes_audit_log,
    routes_autotask,
    routes_badges,
    routes_customers,
    routes_daily_jobs,
    routes_dashboard,
    routes_digest,
    routes_feedback,
    routes_health,
    routes_inbox,
    routes_jobs,
    routes_maintenance,
    routes_metrics,
    routes_notifications,
    routes_overrides,
    routes_parsers,
    routes_reports,
    routes_run_checks,
    routes_settings,
    routes_signin,
    routes_snoozes,
    routes_tickets,
    routes_users,
)
from .blueprint import main_bp  # noqa: F401
