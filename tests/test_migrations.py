"""Migrations: a fresh database upgraded to head matches the models; the latest revision
downgrades and upgrades again."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from backend.app.extensions import db
from backend.app.services import markdown_render


pytestmark = pytest.mark.xdist_group("migrations")


def _diff():
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, db.metadata)


def test_head_matches_the_models(app):
    assert _diff() == []


def test_latest_revision_downgrades_and_upgrades_again(app):
    downgrade(revision="-1")
    assert "users" not in db.inspect(db.engine).get_table_names() or _diff() != []
    upgrade()
    assert _diff() == []


def test_stored_markdown_migration_renders_the_rows_that_exist(app):
    """e96ed9b44d61 adds the HTML columns and fills them for existing rows, bounded even for a text that
    Python-Markdown alone would need minutes for."""
    downgrade(revision="ebc9ef3c9141")
    worst = "[" * 20_000  # allowed before the 10,000-character limit
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO feedback_items (id, kind, title, description, status, created_at, updated_at) "
                          "VALUES (1, 'bug', 'Old', '**old** <b>x</b>', 'open', now(), now()), "
                          "(2, 'bug', 'Worst', :worst, 'open', now(), now())"), {"worst": worst})
        conn.execute(text("INSERT INTO feedback_replies (id, item_id, body, created_at) "
                          "VALUES (1, 1, 'a *reply*', now())"))
        conn.execute(text("INSERT INTO news_items (id, title, body, created_at, updated_at) "
                          "VALUES (1, 'N', '- one', now(), now())"))
        conn.execute(text("INSERT INTO report_definitions (id, name, all_customers, period, intro_markdown, schedule, "
                          "created_at, updated_at) VALUES (1, 'R', true, 'last_month', '', 'none', now(), now())"))
    upgrade()
    assert _diff() == []
    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT 'item', id, description_html, html_version FROM feedback_items UNION ALL "
            "SELECT 'reply', id, body_html, html_version FROM feedback_replies UNION ALL "
            "SELECT 'news', id, body_html, html_version FROM news_items UNION ALL "
            "SELECT 'intro', id, intro_html, html_version FROM report_definitions ORDER BY 1, 2")).all()
    v = markdown_render.VERSION
    assert [tuple(r) for r in rows] == [
        ("intro", 1, "", v),
        ("item", 1, "<p><strong>old</strong> &lt;b&gt;x&lt;/b&gt;</p>", v),
        ("item", 2, "<p>" + worst + "</p>", v),
        ("news", 1, "<ul>\n<li>one</li>\n</ul>", v),
        ("reply", 1, "<p>a <em>reply</em></p>", v),
    ]
