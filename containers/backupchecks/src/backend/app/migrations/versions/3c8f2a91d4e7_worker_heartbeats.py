"""worker_heartbeats: each process that runs the background runner says it is alive

Revision ID: 3c8f2a91d4e7
Revises: 5bd5f0f4ed03
Create Date: 2026-12-04 09:30:00.000000

The background loops can run in a worker container of their own; its health check reads the
heartbeat its runner writes every few seconds (one row per host and process).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c8f2a91d4e7'
down_revision = '5bd5f0f4ed03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('worker_heartbeats',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('leader', sa.Boolean(), nullable=False),
    sa.Column('step', sa.String(length=60), nullable=True),
    sa.PrimaryKeyConstraint('hostname', 'pid', name=op.f('pk_worker_heartbeats'))
    )


def downgrade():
    op.drop_table('worker_heartbeats')
