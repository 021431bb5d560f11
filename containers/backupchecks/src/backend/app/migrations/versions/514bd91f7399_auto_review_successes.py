"""system_settings.auto_review_successes: "Successful runs need no review"

Revision ID: 514bd91f7399
Revises: bd39219c8035
Create Date: 2026-12-04 10:00:00

Off for every existing installation: imported runs keep going to Run Checks until an admin
turns it on under Settings → General.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '514bd91f7399'
down_revision = 'bd39219c8035'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_review_successes', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.drop_column('auto_review_successes')
