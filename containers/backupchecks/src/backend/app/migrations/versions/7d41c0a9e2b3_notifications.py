"""notifications: channels and the outbox of events to deliver

Revision ID: 7d41c0a9e2b3
Revises: 514bd91f7399
Create Date: 2026-12-04 11:15:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d41c0a9e2b3'
down_revision = '514bd91f7399'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notification_channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('target_url', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('on_failed', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('on_missed', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('on_warning', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('on_recovery', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_channels'))
    )
    op.create_table('notification_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=40), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['notification_channels.id'],
                            name=op.f('fk_notification_outbox_channel_id_notification_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_outbox')),
    sa.UniqueConstraint('channel_id', 'event_key', name='uq_notification_outbox_channel_id_event_key')
    )
    op.create_index('ix_notification_outbox_due', 'notification_outbox', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))


def downgrade():
    op.drop_index('ix_notification_outbox_due', table_name='notification_outbox',
                  postgresql_where=sa.text("state = 'pending'"))
    op.drop_table('notification_outbox')
    op.drop_table('notification_channels')
