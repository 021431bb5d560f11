"""Portal invitations; the customers a generated report covers

Revision ID: c4a9e2d7f310
Revises: c3e5a7b9d1f2
Create Date: 2026-12-04 16:30:00

No invitation exists after the upgrade; reports generated before it have no customer list, so the
customer portal does not show them (staff see them as before).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4a9e2d7f310'
down_revision = 'c3e5a7b9d1f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'portal_invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('note', sa.String(length=200), server_default='', nullable=False),
        sa.Column('mail_bodies', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_by_id', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_portal_invitations_created_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['used_by_id'], ['users.id'],
                                name=op.f('fk_portal_invitations_used_by_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_invitations')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_portal_invitations_token_hash')),
    )
    op.create_table(
        'portal_invitation_customers',
        sa.Column('invitation_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['invitation_id'], ['portal_invitations.id'],
                                name=op.f('fk_portal_invitation_customers_invitation_id_portal_invitations'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_portal_invitation_customers_customer_id_customers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('invitation_id', 'customer_id', name=op.f('pk_portal_invitation_customers')),
    )
    op.create_index(op.f('ix_portal_invitation_customers_customer_id'), 'portal_invitation_customers',
                    ['customer_id'], unique=False)
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_ids', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_column('customer_ids')
    op.drop_index(op.f('ix_portal_invitation_customers_customer_id'), table_name='portal_invitation_customers')
    op.drop_table('portal_invitation_customers')
    op.drop_table('portal_invitations')
