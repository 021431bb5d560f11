"""notification rules: customers per channel, N consecutive failures, quiet hours

Revision ID: c3f19a7e5d21
Revises: a4e1c7d2f9b0
Create Date: 2026-12-04 12:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f19a7e5d21'
down_revision = 'a4e1c7d2f9b0'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('notification_channels', sa.Column('all_customers', sa.Boolean(), server_default=sa.text('true'), nullable=False))
    op.add_column('notification_channels', sa.Column('min_failures', sa.Integer(), server_default=sa.text('1'), nullable=False))
    op.add_column('notification_channels', sa.Column('quiet_start', sa.Time(), nullable=True))
    op.add_column('notification_channels', sa.Column('quiet_end', sa.Time(), nullable=True))
    op.add_column('notification_channels', sa.Column('quiet_mode', sa.String(length=10), server_default=sa.text("'hold'"), nullable=False))
    op.create_table('notification_channel_customers',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['notification_channels.id'],
                            name=op.f('fk_notification_channel_customers_channel_id_notification_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_notification_channel_customers_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'customer_id', name=op.f('pk_notification_channel_customers'))
    )
    op.create_index(op.f('ix_notification_channel_customers_customer_id'), 'notification_channel_customers', ['customer_id'], unique=False)
    op.add_column('notification_outbox', sa.Column('held_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('alert_after_failures', sa.Integer(), nullable=True))


def downgrade():
    op.drop_column('jobs', 'alert_after_failures')
    op.drop_column('notification_outbox', 'held_until')
    op.drop_index(op.f('ix_notification_channel_customers_customer_id'), table_name='notification_channel_customers')
    op.drop_table('notification_channel_customers')
    op.drop_column('notification_channels', 'quiet_mode')
    op.drop_column('notification_channels', 'quiet_end')
    op.drop_column('notification_channels', 'quiet_start')
    op.drop_column('notification_channels', 'min_failures')
    op.drop_column('notification_channels', 'all_customers')
