"""login attempts: user names in lower case, index on created_at for pruning

Revision ID: b551f59e9c5d
Revises: ebc9ef3c9141
Create Date: 2026-06-10 08:30:00

Login throttling now counts failures per (user name, address), per address and per user
name; the name is the throttle key in any capitalisation, so it is stored in lower case.
Rows older than the window are deleted, by created_at.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b551f59e9c5d'
down_revision = 'ebc9ef3c9141'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("UPDATE login_attempts SET username = lower(username)"))
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempts_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_created_at'))
