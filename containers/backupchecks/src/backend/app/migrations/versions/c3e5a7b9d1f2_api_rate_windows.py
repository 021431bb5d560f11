"""JSON API: the rate limit's current window of each token; the index of the run list's order

Revision ID: c3e5a7b9d1f2
Revises: d3a9c5e7f1b2
Create Date: 2026-12-04 16:30:00

One row per token, reused when a new minute starts; nothing to migrate. The run list pages by
(coalesce(started_at, created_at), id): one index in that order.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e5a7b9d1f2'
down_revision = 'd3a9c5e7f1b2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_rate_windows',
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_api_rate_windows_token_id_api_tokens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_id', name=op.f('pk_api_rate_windows')),
    )
    op.create_index('ix_job_runs_run_time', 'job_runs', [sa.text('coalesce(started_at, created_at)'), 'id'],
                    unique=False)


def downgrade():
    op.drop_index('ix_job_runs_run_time', table_name='job_runs')
    op.drop_table('api_rate_windows')
