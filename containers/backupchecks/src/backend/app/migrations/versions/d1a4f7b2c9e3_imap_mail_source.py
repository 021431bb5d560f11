"""imap mail source: Settings → Mail chooses Microsoft 365 (Graph) or an IMAP mailbox

Revision ID: d1a4f7b2c9e3
Revises: f2b7c9d4e816
Create Date: 2026-12-04 13:20:00.000000

The IMAP password is stored encrypted (EncryptedText: text in the database, Fernet inside), like
the Graph client secret. Existing installations keep importing through Graph (server default).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1a4f7b2c9e3'
down_revision = 'f2b7c9d4e816'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_source', sa.String(length=10), server_default='graph', nullable=False))
        batch_op.add_column(sa.Column('imap_host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('imap_port', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('imap_tls', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('imap_username', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('imap_password', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('imap_folder', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('imap_processed_folder', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('system_settings', schema=None) as batch_op:
        for column in ('imap_processed_folder', 'imap_folder', 'imap_password', 'imap_username', 'imap_tls',
                       'imap_port', 'imap_host', 'mail_source'):
            batch_op.drop_column(column)
