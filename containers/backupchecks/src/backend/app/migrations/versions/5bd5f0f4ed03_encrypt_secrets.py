"""encrypt stored secrets; index for the per-user report limit

Revision ID: 5bd5f0f4ed03
Revises: e96ed9b44d61
Create Date: 2026-12-02 10:00:00.000000

The Graph client secret and the Autotask secret in system_settings were stored in clear; they are
encrypted here with the key of APP_ENCRYPTION_KEY (development: derived from APP_SECRET_KEY), in
the format the app reads (``backend.app.crypto``). Downgrading decrypts them again.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5bd5f0f4ed03'
down_revision = 'e96ed9b44d61'
branch_labels = None
depends_on = None

SECRET_COLUMNS = ("graph_client_secret", "autotask_secret")


def _rewrite(convert) -> None:
    """Apply ``convert(stored) -> new`` to every non-empty secret of the settings row(s)."""
    from flask import current_app

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, " + ", ".join(SECRET_COLUMNS) + " FROM system_settings")).mappings().all()
    for row in rows:
        changes = {}
        for column in SECRET_COLUMNS:
            value = row[column]
            if value:
                new = convert(value, current_app.config)
                if new != value:
                    changes[column] = new
        if changes:
            sets = ", ".join(f"{c} = :{c}" for c in changes)
            conn.execute(sa.text(f"UPDATE system_settings SET {sets} WHERE id = :id"), {**changes, "id": row["id"]})


def _encrypt(value, config):
    from backend.app import crypto

    if crypto.is_encrypted(value):
        return value
    if not crypto.can_store(config):
        raise RuntimeError("The database holds secrets in clear and " + crypto.no_key_message())
    return crypto.encrypt(value, config)


def _decrypt(value, config):
    from backend.app import crypto

    return crypto.decrypt(value, config)


def upgrade():
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index('ix_report_runs_created_by_state', ['created_by_id', 'state'], unique=False)
    _rewrite(_encrypt)


def downgrade():
    _rewrite(_decrypt)
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_report_runs_created_by_state')
