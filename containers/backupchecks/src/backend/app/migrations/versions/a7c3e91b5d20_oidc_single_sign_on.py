"""single sign-on with OpenID Connect: Settings → Sign-in and the IdP subject on users

Revision ID: a7c3e91b5d20
Revises: a7c3e9f2d514
Create Date: 2026-12-04 14:20:00.000000

The client secret is stored encrypted (EncryptedText: text in the database, Fernet inside), like
the Graph client secret. SSO is off until configured.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c3e91b5d20'
down_revision = 'a7c3e9f2d514'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=600), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_oidc_subject'), ['oidc_subject'])
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('oidc_tenant_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('oidc_client_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_client_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('oidc_allowed_domains', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('oidc_allowed_tenants', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('oidc_button_label', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('oidc_jit_enabled', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))
        batch_op.add_column(sa.Column('oidc_default_role', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('oidc_role_mapping', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('oidc_password_break_glass_only', sa.Boolean(),
                                      server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('oidc_break_glass_user_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_system_settings_oidc_break_glass_user_id_users'), 'users',
                                    ['oidc_break_glass_user_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_system_settings_oidc_break_glass_user_id_users'), type_='foreignkey')
        for column in ('oidc_break_glass_user_id', 'oidc_password_break_glass_only', 'oidc_role_mapping',
                       'oidc_default_role', 'oidc_jit_enabled', 'oidc_button_label', 'oidc_allowed_tenants',
                       'oidc_allowed_domains', 'oidc_client_secret', 'oidc_client_id', 'oidc_tenant_id',
                       'oidc_issuer'):
            batch_op.drop_column(column)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_oidc_subject'), type_='unique')
        batch_op.drop_column('oidc_subject')
