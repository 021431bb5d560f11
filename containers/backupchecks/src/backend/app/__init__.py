"""Backupchecks: the application factory.

This file runs before any module of the package loads (``backend.app.parsers`` too), so the imports
of Flask and of the application's modules sit inside the functions below, not at the top: there
they would load Flask, every model and every route (about two seconds) for a script that only
parses mails, and put this package in an import cycle with each module that does ``from .. import``.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Mapping, Optional

__all__ = ["create_app"]

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_version() -> str:
    candidates = [os.environ.get("APP_VERSION_FILE"),
                  os.path.join(SRC_DIR, "version.txt"),
                  os.path.join(SRC_DIR, "..", "..", "..", "version.txt"),
                  "/app/version.txt"]
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
    return "unknown"


def _running_cli_command() -> bool:
    """True under `flask <command>`: a CLI command never starts the background loops."""
    import click

    return click.get_current_context(silent=True) is not None


def _load_config(app, config: Optional[Mapping[str, Any]]) -> None:
    """The environment's settings (then ``config``'s), checked; the embedded PostgreSQL when no
    database is configured. A refused setting stops the process with one line, no stack trace."""
    from . import config as config_module
    from .embedded_pg import EmbeddedPostgresError

    try:
        app.config.update(config_module.load_config(os.environ, app.instance_path))
        if config:
            app.config.update(config)
        config_module.check_config(app.config)
        config_module.check_encryption_key(app.config)
        if not app.config.get("SQLALCHEMY_DATABASE_URI"):
            _start_embedded_postgres(app)
    except (config_module.ConfigError, EmbeddedPostgresError) as exc:
        _refuse_to_start(exc)
    app.config["APP_VERSION"] = _read_version()


def _refuse_to_start(exc: Exception) -> None:
    # One line for the operator, no stack trace; the process stops.
    print(f"Backupchecks cannot start: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


def _start_embedded_postgres(app) -> None:
    """No database configured, not production (check_config refused that): the embedded PostgreSQL
    of `make run` with its data in the instance folder; ``app.extensions["embedded_postgres"]``
    is the handle the entry point stops."""
    from . import embedded_pg

    pg = embedded_pg.start(app.config["EMBEDDED_PGDATA"])
    app.config["SQLALCHEMY_DATABASE_URI"] = pg.url
    app.extensions["embedded_postgres"] = pg


def _init_extensions(app) -> None:
    from .extensions import csrf, db, login_manager, migrate, ping_idle_connections

    db.init_app(app)
    with app.app_context():
        ping_idle_connections(db.engine)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)


def _register_web(app) -> None:
    """Request hooks, error pages, template helpers, the blueprints and the CLI commands."""
    from . import api, cli, errors, filters, web
    from .auth import auth_bp
    from .docs import doc_bp
    from .main import main_bp
    from .services import markdown_render, metrics

    metrics.init_app(app)  # first: its request timer is the first hook in and the last out
    web.init_app(app)  # before the blueprints: their routes use its <id:…> converter
    errors.init_app(app)
    filters.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(doc_bp)
    api.init_app(app)  # /api/v1/: token, not session; no CSRF
    cli.init_app(app)
    markdown_render.init_app(app)  # Markdown is rendered when it is saved


def _check_secrets_key(app) -> None:
    """Production without APP_ENCRYPTION_KEY while secrets are stored: refuse to start."""
    from .services.settings import SettingsError, check_secrets_key

    try:
        check_secrets_key(app)
    except SettingsError as exc:
        _refuse_to_start(exc)


def _start_background(app) -> None:
    """Register the background loops; start the runner unless switched off or under a CLI command."""
    from .services import autotask, digest_delivery, importer, markdown_render, missed_runs, notifications, reports
    from .services.background import start_background_jobs

    importer.start_auto_importer(app)
    reports.register(app)
    markdown_render.register(app)
    missed_runs.register(app)
    autotask.register(app)
    notifications.register(app)
    digest_delivery.register(app)
    if app.config.get("BACKGROUND_JOBS") and not _running_cli_command():
        start_background_jobs(app)


def create_app(config: Optional[Mapping[str, Any]] = None):
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = Flask(
        __name__,
        template_folder=os.path.join(SRC_DIR, "templates"),
        static_folder=os.path.join(SRC_DIR, "static"),
        instance_path=os.environ.get("APP_INSTANCE_PATH") or os.path.join(SRC_DIR, "..", "..", "..", "instance"),
    )
    app.instance_path = os.path.abspath(app.instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    _load_config(app, config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    _init_extensions(app)
    _register_web(app)
    _check_secrets_key(app)
    if app.config.get("RUN_MIGRATIONS"):
        from .services.migrations import upgrade_under_lock
        upgrade_under_lock(app)
    if app.config.get("APP_BEHIND_PROXY"):
        # Trust one proxy's X-Forwarded-* headers (client address, scheme, host).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    _start_background(app)
    return app
