"""Two-factor authentication (TOTP): users' secret, last used time-step and credential generation;
recovery_codes; system_settings' 2FA policy

Revision ID: a7c3e9f2d514
Revises: d1a4f7b2c9e3
Create Date: 2026-12-04 14:20:00

Nobody has 2FA and nobody must have it after the upgrade: an admin turns the requirement on.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c3e9f2d514'
down_revision = 'd1a4f7b2c9e3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('credential_generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('two_factor_required_roles', sa.String(length=120), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('two_factor_remember_allowed', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    )
    op.create_index(op.f('ix_recovery_codes_user_id'), 'recovery_codes', ['user_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_recovery_codes_user_id'), table_name='recovery_codes')
    op.drop_table('recovery_codes')
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.drop_column('two_factor_remember_allowed')
        batch_op.drop_column('two_factor_required_roles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('credential_generation')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret')
