"""users.session_generation: sessions can be ended server-side

Revision ID: 5475a541f1dd
Revises: b551f59e9c5d
Create Date: 2026-06-10 08:31:00

The generation is stored in the session at login; logout, a password change, a role change
and deactivation raise it, and a session of an older generation is refused. Sessions made
before this revision carry no generation, so everybody logs in once more after the upgrade.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5475a541f1dd'
down_revision = 'b551f59e9c5d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
