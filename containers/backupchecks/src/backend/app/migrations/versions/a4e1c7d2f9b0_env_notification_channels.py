"""notification channels from NOTIFY_URLS: env_key marks them

Revision ID: a4e1c7d2f9b0
Revises: 7d41c0a9e2b3
Create Date: 2026-12-04 12:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a4e1c7d2f9b0'
down_revision = '7d41c0a9e2b3'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('notification_channels', sa.Column('env_key', sa.String(length=64), nullable=True))
    op.create_unique_constraint(op.f('uq_notification_channels_env_key'), 'notification_channels', ['env_key'])


def downgrade():
    op.drop_constraint(op.f('uq_notification_channels_env_key'), 'notification_channels', type_='unique')
    op.drop_column('notification_channels', 'env_key')
