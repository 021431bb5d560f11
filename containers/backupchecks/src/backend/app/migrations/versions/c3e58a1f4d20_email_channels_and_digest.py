"""e-mail channels, mail sending (SMTP) settings and the scheduled morning digest

Revision ID: c3e58a1f4d20
Revises: c3f19a7e5d21
Create Date: 2026-12-04 12:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e58a1f4d20'
down_revision = 'c3f19a7e5d21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification_channels') as b:
        b.alter_column('target_url', existing_type=sa.Text(), nullable=True)
        b.add_column(sa.Column('recipients', sa.Text(), nullable=True))
        b.add_column(sa.Column('transport', sa.String(length=10), nullable=True))
    with op.batch_alter_table('system_settings') as b:
        b.add_column(sa.Column('smtp_host', sa.String(length=255), nullable=True))
        b.add_column(sa.Column('smtp_port', sa.Integer(), nullable=True))
        b.add_column(sa.Column('smtp_security', sa.String(length=10), nullable=True))
        b.add_column(sa.Column('smtp_username', sa.String(length=255), nullable=True))
        b.add_column(sa.Column('smtp_password', sa.Text(), nullable=True))
        b.add_column(sa.Column('smtp_from', sa.String(length=320), nullable=True))
        b.add_column(sa.Column('digest_enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        b.add_column(sa.Column('digest_time', sa.String(length=5), server_default='08:00', nullable=False))
        b.add_column(sa.Column('digest_recipients', sa.Text(), nullable=True))
        b.add_column(sa.Column('digest_transport', sa.String(length=10), server_default='graph', nullable=False))
    with op.batch_alter_table('users') as b:
        b.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        b.add_column(sa.Column('digest_subscribed', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        b.add_column(sa.Column('digest_all_clear', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.create_table('digest_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('all_clear', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=40), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digest_deliveries')),
    sa.UniqueConstraint('day', 'recipient', name='uq_digest_deliveries_day_recipient')
    )
    op.create_index('ix_digest_deliveries_due', 'digest_deliveries', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))


def downgrade():
    op.drop_index('ix_digest_deliveries_due', table_name='digest_deliveries',
                  postgresql_where=sa.text("state = 'pending'"))
    op.drop_table('digest_deliveries')
    with op.batch_alter_table('users') as b:
        for c in ('digest_all_clear', 'digest_subscribed', 'email'):
            b.drop_column(c)
    with op.batch_alter_table('system_settings') as b:
        for c in ('digest_transport', 'digest_recipients', 'digest_time', 'digest_enabled', 'smtp_from',
                  'smtp_password', 'smtp_username', 'smtp_security', 'smtp_port', 'smtp_host'):
            b.drop_column(c)
    op.execute("DELETE FROM notification_channels WHERE target_url IS NULL")
    with op.batch_alter_table('notification_channels') as b:
        b.drop_column('transport')
        b.drop_column('recipients')
        b.alter_column('target_url', existing_type=sa.Text(), nullable=False)
