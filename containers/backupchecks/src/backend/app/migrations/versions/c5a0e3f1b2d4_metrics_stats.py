"""metrics: background loop and import cycle totals for the Prometheus metrics

Revision ID: c5a0e3f1b2d4
Revises: c4e8a2f61b7d
Create Date: 2026-12-04 13:00:00.000000

The background loops run in the worker process, not in the web processes that answer /metrics, so
each loop step and each import cycle adds itself to a row here that a scrape reads. The import
cycles already recorded are added up once, so the counters start from the history.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5a0e3f1b2d4'
down_revision = 'c4e8a2f61b7d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('background_loop_stats',
    sa.Column('loop', sa.String(length=60), nullable=False),
    sa.Column('steps_total', sa.BigInteger(), nullable=False),
    sa.Column('failures_total', sa.BigInteger(), nullable=False),
    sa.Column('duration_seconds_total', sa.Float(), nullable=False),
    sa.Column('last_step_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_duration_seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('loop', name=op.f('pk_background_loop_stats'))
    )
    op.create_table('import_cycle_stats',
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('cycles_total', sa.BigInteger(), nullable=False),
    sa.Column('duration_seconds_total', sa.Float(), nullable=False),
    sa.Column('fetched_total', sa.BigInteger(), nullable=False),
    sa.Column('new_total', sa.BigInteger(), nullable=False),
    sa.Column('duplicates_total', sa.BigInteger(), nullable=False),
    sa.Column('auto_processed_total', sa.BigInteger(), nullable=False),
    sa.Column('to_inbox_total', sa.BigInteger(), nullable=False),
    sa.Column('failed_total', sa.BigInteger(), nullable=False),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_duration_seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('trigger', 'state', name=op.f('pk_import_cycle_stats'))
    )
    # The finished cycles so far (a cycle still running is counted when it ends).
    op.execute("""
        INSERT INTO import_cycle_stats (trigger, state, cycles_total, duration_seconds_total, fetched_total,
                                        new_total, duplicates_total, auto_processed_total, to_inbox_total,
                                        failed_total, last_finished_at, last_duration_seconds)
        SELECT trigger, state, count(*),
               coalesce(sum(greatest(0, extract(epoch FROM finished_at - started_at))), 0),
               sum(fetched), sum(new), sum(duplicates), sum(auto_processed), sum(to_inbox), sum(failed),
               max(finished_at),
               (array_agg(greatest(0, extract(epoch FROM finished_at - started_at))
                          ORDER BY finished_at DESC))[1]
        FROM import_cycles
        WHERE state <> 'running' AND finished_at IS NOT NULL
        GROUP BY trigger, state
    """)


def downgrade():
    op.drop_table('import_cycle_stats')
    op.drop_table('background_loop_stats')
