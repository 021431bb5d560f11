"""Schema migrations at start-up, once, under a cross-process lock."""
from __future__ import annotations

import logging

from flask import Flask

from .locks import hold_lock

log = logging.getLogger(__name__)


def upgrade_under_lock(app: Flask) -> None:
    """Apply Alembic migrations to head; several workers or containers wait for each other."""
    from flask_migrate import upgrade

    from ..extensions import db

    with app.app_context():
        with hold_lock(db.engine, "backupchecks-migrations"):
            upgrade()
        db.engine.dispose()  # don't hand forked workers a shared connection
    log.info("database schema is up to date")
