"""snoozes and maintenance windows

Revision ID: c4e8a2f61b7d
Revises: c3e58a1f4d20
Create Date: 2026-12-04 13:00:00

A snooze holds the alerts of a job or a customer until a moment; a maintenance window (one-off or
weekly) also keeps missed runs from being made for the slots inside it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a2f61b7d'
down_revision = 'c3e58a1f4d20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('snoozes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(job_id IS NULL) <> (customer_id IS NULL)', name=op.f('ck_snoozes_one_target')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_snoozes_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_snoozes_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_snoozes_created_by_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lifted_by_id'], ['users.id'], name=op.f('fk_snoozes_lifted_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snoozes'))
    )
    op.create_index('ix_snoozes_job_active', 'snoozes', ['job_id', 'until'], unique=False,
                    postgresql_where=sa.text('lifted_at IS NULL'))
    op.create_index('ix_snoozes_customer_active', 'snoozes', ['customer_id', 'until'], unique=False,
                    postgresql_where=sa.text('lifted_at IS NULL'))
    op.create_table('maintenance_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('weekdays', sa.String(length=20), nullable=True),
    sa.Column('local_start', sa.Time(), nullable=True),
    sa.Column('local_end', sa.Time(), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(job_id IS NULL) <> (customer_id IS NULL)',
                       name=op.f('ck_maintenance_windows_one_target')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_maintenance_windows_job_id_jobs'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_maintenance_windows_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_maintenance_windows_created_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )
    op.create_index('ix_maintenance_windows_job', 'maintenance_windows', ['job_id'], unique=False)
    op.create_index('ix_maintenance_windows_customer', 'maintenance_windows', ['customer_id'], unique=False)


def downgrade():
    op.drop_index('ix_maintenance_windows_customer', table_name='maintenance_windows')
    op.drop_index('ix_maintenance_windows_job', table_name='maintenance_windows')
    op.drop_table('maintenance_windows')
    op.drop_index('ix_snoozes_customer_active', table_name='snoozes', postgresql_where=sa.text('lifted_at IS NULL'))
    op.drop_index('ix_snoozes_job_active', table_name='snoozes', postgresql_where=sa.text('lifted_at IS NULL'))
    op.drop_table('snoozes')
