"""The ticket and remark service lives in ``services/tickets.py``; this module only re-exports it,
because operations notes name this path (``backend.app.ticketing_utils``)."""
from .services.tickets import *  # noqa: F401,F403
