"""Backupchecks: the application factory.

Imports of Flask and friends stay inside create_app so that the pure parts of
the package (``backend.app.parsers``) load fast without them.
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
    try:
        import click
        return click.get_current_context(silent=True) is not None
    except Exception:  # noqa: BLE001
        return False


def _register_background_loops(app) -> None:
    from .services import importer, markdown_render, reports
    importer.start_auto_importer(app)
    reports.register(app)
    markdown_render.register(app)
    try:
        from .services import missed_runs
    except ImportError:  # pragma: no cover
        return
    if hasattr(missed_runs, "register"):
        missed_runs.register(app)
    try:
        from .services import autotask_service
    except ImportError:  # pragma: no cover - not in this build
        return
    if hasattr(autotask_service, "register"):
        autotask_service.register(app)


def _start_embedded_postgres(app) -> None:
    """No database configured, not production (check_config refused that): the embedded PostgreSQL
    of `make run` with its data in the instance folder; ``app.extensions["embedded_postgres"]``
    is the handle the entry point stops."""
    from . import embedded_pg

    pg = embedded_pg.start(app.config["EMBEDDED_PGDATA"])
    app.config["SQLALCHEMY_DATABASE_URI"] = pg.url
    app.extensions["embedded_postgres"] = pg


def create_app(config: Optional[Mapping[str, Any]] = None):
    from flask import Flask

    from . import config as config_module
    from .embedded_pg import EmbeddedPostgresError
    from .extensions import csrf, db, login_manager, migrate

    app = Flask(
        __name__,
        template_folder=os.path.join(SRC_DIR, "templates"),
        static_folder=os.path.join(SRC_DIR, "static"),
        instance_path=os.environ.get("APP_INSTANCE_PATH") or os.path.join(SRC_DIR, "..", "..", "..", "instance"),
    )
    app.instance_path = os.path.abspath(app.instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        app.config.update(config_module.load_config(os.environ, app.instance_path))
        if config:
            app.config.update(config)
        config_module.check_config(app.config)
        config_module.check_encryption_key(app.config)
        if not app.config.get("SQLALCHEMY_DATABASE_URI"):
            _start_embedded_postgres(app)
    except (config_module.ConfigError, EmbeddedPostgresError) as exc:
        # One line for the operator, no stack trace; the process stops.
        print(f"Backupchecks cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    app.config["APP_VERSION"] = _read_version()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    from . import web
    web.init_app(app)

    from .auth import auth_bp
    from .main import main_bp
    from .docs import doc_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(doc_bp)

    from . import cli
    cli.init_app(app)

    from .services import markdown_render
    markdown_render.init_app(app)  # Markdown is rendered when it is saved

    from .services.settings import SettingsError, check_secrets_key
    try:
        check_secrets_key(app)  # production without APP_ENCRYPTION_KEY while secrets are stored
    except SettingsError as exc:
        print(f"Backupchecks cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None

    if app.config.get("RUN_MIGRATIONS"):
        from .services.migrations import upgrade_under_lock
        upgrade_under_lock(app)

    if app.config.get("APP_BEHIND_PROXY"):
        # Trust one proxy's X-Forwarded-* headers (client address, scheme, host).
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    _register_background_loops(app)
    if app.config.get("BACKGROUND_JOBS") and not _running_cli_command():
        from .services.background import start_background_jobs
        start_background_jobs(app)

    return app
