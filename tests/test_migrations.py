"""Migrations: a fresh database upgraded to head matches the models; the latest revision
downgrades and upgrades again."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from backend.app.extensions import db


pytestmark = pytest.mark.xdist_group("migrations")


def _diff():
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, db.metadata)


def test_head_matches_the_models(app):
    assert _diff() == []


def test_latest_revision_downgrades_and_upgrades_again(app):
    downgrade(revision="-1")
    assert "users" not in db.inspect(db.engine).get_table_names() or _diff() != []
    upgrade()
    assert _diff() == []


def test_the_secrets_migration_encrypts_clear_values_and_the_downgrade_decrypts_them(app):
    from sqlalchemy import text

    from backend.app import crypto
    from backend.app.models import SystemSettings

    def raw():
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT graph_client_secret, autotask_secret FROM system_settings")).one()

    downgrade(revision="ebc9ef3c9141")
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO system_settings (id, ui_timezone, sandbox_mode, dashboard_first, "
                              "daily_status_rule, company_name, auto_import_enabled, import_interval_minutes, "
                              "import_batch_size, manual_import_batch_size, keep_raw_mails, raw_retention_days, "
                              "autotask_enabled, autotask_environment, report_retention_days, updated_at, "
                              "graph_client_secret, autotask_secret) VALUES (1, 'Europe/Amsterdam', false, false, "
                              "'worst', '', false, 15, 50, 50, true, 90, false, 'sandbox', 90, now(), "
                              "'clear-graph-secret', NULL)"))
    finally:
        upgrade()
    graph, autotask = raw()
    assert graph.startswith("fernet:") and "clear-graph-secret" not in graph and autotask is None
    assert crypto.decrypt(graph) == "clear-graph-secret"
    db.session.expire_all()
    assert db.session.get(SystemSettings, 1).graph_client_secret == "clear-graph-secret"
    db.session.rollback()

    downgrade(revision="ebc9ef3c9141")
    try:
        assert raw() == ("clear-graph-secret", None)
    finally:
        upgrade()
    assert _diff() == []
