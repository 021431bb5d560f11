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
