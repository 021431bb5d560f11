"""stored Markdown HTML: feedback, replies, news and report intros are rendered when saved

Revision ID: e96ed9b44d61
Revises: 5475a541f1dd
Create Date: 2026-12-04 09:00:00.000000

Adds the HTML column beside each Markdown column and ``html_version``, then renders the existing rows
with the running code's renderer (services/markdown_render.py) and stamps them with its VERSION, in
batches by id. A row whose render is slow or nests too deep is stored as plain text by the renderer
itself, so this step stays bounded.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e96ed9b44d61'
down_revision = '5475a541f1dd'
branch_labels = None
depends_on = None

# (table, Markdown column, HTML column)
FIELDS = (
    ("feedback_items", "description", "description_html"),
    ("feedback_replies", "body", "body_html"),
    ("news_items", "body", "body_html"),
    ("report_definitions", "intro_markdown", "intro_html"),
)
BATCH = 200


def upgrade():
    for table, _source, html in FIELDS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column(html, sa.Text(), server_default='', nullable=False))
            batch_op.add_column(sa.Column('html_version', sa.Integer(), server_default='0', nullable=False))

    # The renderer of the app being migrated (the package's own name, however it was imported).
    from importlib import import_module

    from flask import current_app
    renderer = import_module(current_app.import_name + ".services.markdown_render")

    conn = op.get_bind()
    for table, source, html in FIELDS:
        t = sa.table(table, sa.column('id', sa.Integer), sa.column(source, sa.Text), sa.column(html, sa.Text),
                     sa.column('html_version', sa.Integer))
        last = 0
        while True:
            rows = conn.execute(sa.select(t.c.id, t.c[source]).where(t.c.id > last).order_by(t.c.id)
                                .limit(BATCH)).all()
            if not rows:
                break
            for row_id, text in rows:
                conn.execute(t.update().where(t.c.id == row_id)
                             .values({html: renderer.render(text), 'html_version': renderer.VERSION}))
            last = rows[-1][0]


def downgrade():
    for table, _source, html in FIELDS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('html_version')
            batch_op.drop_column(html)
