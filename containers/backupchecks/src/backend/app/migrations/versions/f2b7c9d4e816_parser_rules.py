"""parser rules: parsers users define without code

Revision ID: f2b7c9d4e816
Revises: c5a0e3f1b2d4
Create Date: 2026-12-04 13:30:00

One row per rule (Parsers page → Your own rules): its name, order, before/after the built-in
parsers, the rule itself as JSON, and the last time its regexes ran out of time on a mail.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2b7c9d4e816'
down_revision = 'c5a0e3f1b2d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('parser_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=90), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('placement', sa.String(length=10), server_default='after', nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('last_timeout_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_timeout_subject', sa.String(length=300), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("placement IN ('before', 'after')", name=op.f('ck_parser_rules_placement')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_parser_rules_created_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parser_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_parser_rules_name'))
    )
    op.create_index('ix_parser_rules_position', 'parser_rules', ['position'], unique=False)


def downgrade():
    op.drop_index('ix_parser_rules_position', table_name='parser_rules')
    op.drop_table('parser_rules')
