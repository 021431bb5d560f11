"""Autotask PSA: settings, customer ↔ company mapping, tickets from runs (being built)."""
from . import main_bp  # noqa: F401
