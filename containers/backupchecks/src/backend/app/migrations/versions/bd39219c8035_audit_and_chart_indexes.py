"""indexes for the Audit log's event list and the dashboard's 30-day chart

Revision ID: bd39219c8035
Revises: 3c8f2a91d4e7
Create Date: 2026-12-04 10:00:00.000000

- The Audit log lists its event names by a loose index scan over ix_audit_logs_event (one probe
  per distinct name). The initial schema made that index; it is created here when a database
  lacks it, and left in place on downgrade (it belongs to the initial schema).
- The dashboard's chart groups 30 days of runs by local day, effective status and "overridden";
  ix_job_runs_started_status holds those columns beside started_at, so the query reads the index
  alone (an index-only scan) instead of one table row per run. It has the key of
  ix_job_runs_started and serves every query that one served, so it replaces it (one index less
  to keep up to date on every imported run).
- The Audit log filtered by a user reads ix_audit_logs_user_time (lower(username), created_at, id)
  newest first instead of the whole log.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bd39219c8035'
down_revision = '3c8f2a91d4e7'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_audit_logs_event ON audit_logs (event)"))
    op.execute(sa.text("CREATE INDEX ix_audit_logs_user_time ON audit_logs (lower(username), created_at, id)"))
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_started_status', ['started_at'], unique=False,
                              postgresql_include=['effective_status', 'override_id'])
        batch_op.drop_index('ix_job_runs_started')


def downgrade():
    op.execute(sa.text("DROP INDEX IF EXISTS ix_audit_logs_user_time"))
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_started', ['started_at'], unique=False)
        batch_op.drop_index('ix_job_runs_started_status')
