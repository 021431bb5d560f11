"""Migrations: a fresh database upgraded to head matches the models; the latest revision
downgrades and upgrades again."""
import re

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


def test_head_has_the_included_columns_the_models_declare(app):
    """compare_metadata leaves out the INCLUDE columns of an index (postgresql_include); the covering
    index of the dashboard's chart only helps with all of them."""
    declared = {ix.name: list(ix.dialect_options["postgresql"]["include"])
                for table in db.metadata.tables.values() for ix in table.indexes
                if ix.dialect_options["postgresql"]["include"]}
    with db.engine.connect() as conn:
        found = {name: [c.strip() for c in re.search(r"INCLUDE \(([^)]*)\)", indexdef).group(1).split(",")]
                 for name, indexdef in conn.execute(text(
                     "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexdef LIKE '%INCLUDE (%'"))}
    assert found == declared == {"ix_job_runs_started_status": ["effective_status", "override_id"]}


def test_the_index_migration_replaces_the_start_time_index_and_makes_a_missing_event_index(app):
    def indexes():
        with db.engine.connect() as conn:
            return set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename IN ('job_runs', 'audit_logs')")).scalars())

    assert {"ix_job_runs_started_status", "ix_audit_logs_event"} <= indexes() and "ix_job_runs_started" not in indexes()
    downgrade(revision="5bd5f0f4ed03")
    try:
        before = indexes()
        assert "ix_job_runs_started" in before and "ix_job_runs_started_status" not in before
        assert "ix_audit_logs_event" in before  # the initial schema's: the downgrade leaves it
        with db.engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_audit_logs_event"))
    finally:
        upgrade()
    assert {"ix_job_runs_started_status", "ix_audit_logs_event"} <= indexes() and "ix_job_runs_started" not in indexes()
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
    # The worst text renders as Markdown or, when the render runs out of its CPU budget (a busy
    # machine), as the plain-text fallback: the same paragraph either way, up to a trailing newline.
    assert [(kind, id_, html.strip(), version) for kind, id_, html, version in rows] == [
        ("intro", 1, "", v),
        ("item", 1, "<p><strong>old</strong> &lt;b&gt;x&lt;/b&gt;</p>", v),
        ("item", 2, "<p>" + worst + "</p>", v),
        ("news", 1, "<ul>\n<li>one</li>\n</ul>", v),
        ("reply", 1, "<p>a <em>reply</em></p>", v),
    ]


def test_the_secrets_migration_encrypts_clear_values_and_the_downgrade_decrypts_them(app):
    from sqlalchemy import text

    from backend.app import crypto
    from backend.app.models import SystemSettings

    def raw():
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT graph_client_secret, autotask_secret FROM system_settings")).one()

    downgrade(revision="ebc9ef3c9141")
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO system_settings (id, ui_timezone, sandbox_mode, dashboard_first, "
                              "daily_status_rule, company_name, auto_import_enabled, import_interval_minutes, "
                              "import_batch_size, manual_import_batch_size, keep_raw_mails, raw_retention_days, "
                              "autotask_enabled, autotask_environment, report_retention_days, updated_at, "
                              "graph_client_secret, autotask_secret) VALUES (1, 'Europe/Amsterdam', false, false, "
                              "'worst', '', false, 15, 50, 50, true, 90, false, 'sandbox', 90, now(), "
                              "'clear-graph-secret', NULL)"))
    finally:
        upgrade()
    graph, autotask = raw()
    assert graph.startswith("fernet:") and "clear-graph-secret" not in graph and autotask is None
    assert crypto.decrypt(graph) == "clear-graph-secret"
    db.session.expire_all()
    assert db.session.get(SystemSettings, 1).graph_client_secret == "clear-graph-secret"
    db.session.rollback()

    downgrade(revision="ebc9ef3c9141")
    try:
        assert raw() == ("clear-graph-secret", None)
    finally:
        upgrade()
    assert _diff() == []


def test_the_metrics_migration_adds_up_the_import_cycles_already_recorded(app):
    """c5a0e3f1b2d4 creates the totals /metrics reads and starts them from the import history (a
    cycle still running is counted when it ends, by the importer)."""
    downgrade(revision="c4e8a2f61b7d")
    try:
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO import_cycles (trigger, started_at, finished_at, state, fetched, new, duplicates, "
                "auto_processed, to_inbox, failed) VALUES "
                "('auto', '2026-06-01 08:00:00+00', '2026-06-01 08:00:10+00', 'done', 5, 4, 1, 3, 1, 0), "
                "('auto', '2026-06-01 08:15:00+00', '2026-06-01 08:15:02+00', 'done', 2, 2, 0, 2, 0, 0), "
                "('auto', '2026-06-01 08:30:00+00', '2026-06-01 08:30:01+00', 'failed', 0, 0, 0, 0, 0, 1), "
                "('manual', '2026-06-01 09:00:00+00', NULL, 'running', 0, 0, 0, 0, 0, 0)"))
    finally:
        upgrade()
    assert _diff() == []
    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT trigger, state, cycles_total, duration_seconds_total, fetched_total, auto_processed_total, "
            "to_inbox_total, duplicates_total, failed_total, last_duration_seconds, "
            "extract(epoch FROM last_finished_at) FROM import_cycle_stats ORDER BY trigger, state")).all()
    assert [tuple(r) for r in rows] == [
        ("auto", "done", 2, 12.0, 7, 5, 1, 1, 0, 2.0, 1780301702),
        ("auto", "failed", 1, 1.0, 0, 0, 0, 0, 1, 1.0, 1780302601),
    ]
