"""Customer status badges (unauthenticated status URLs for NOC screens)

Revision ID: d3a9c5e7f1b2
Revises: b8d2f4a61c07
Create Date: 2026-12-04 16:00:00

No customer has a badge after the upgrade.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd3a9c5e7f1b2'
down_revision = 'b8d2f4a61c07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'customer_badges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('key', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_customer_badges_customer_id_customers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_badges')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_customer_badges_key_hash')),
    )
    op.create_index(op.f('ix_customer_badges_customer_id'), 'customer_badges', ['customer_id'], unique=False)
    op.create_index('uq_customer_badges_live', 'customer_badges', ['customer_id'], unique=True,
                    postgresql_where=sa.text('revoked_at IS NULL'))


def downgrade():
    op.drop_index('uq_customer_badges_live', table_name='customer_badges')
    op.drop_index(op.f('ix_customer_badges_customer_id'), table_name='customer_badges')
    op.drop_table('customer_badges')
