"""Settings → Mail, Imports and Maintenance: each saves on its own, secrets are write-only,
environment values win, and the live Graph checks talk to a real (fake) Graph over HTTPS."""
import time

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.mail import graph as graph_module
from backend.app.models import AuditLog, ImportCycle, MailMessage, SystemSettings
from tests.fakes.fake_graph import FakeGraph, make_mime

from .conftest import post_form

TENANT = "0a1b2c3d-0000-4000-8000-00000000000a"
CLIENT = "0a1b2c3d-0000-4000-8000-00000000000b"


def mail_form(**over):
    data = {"graph_tenant_id": TENANT, "graph_client_id": CLIENT, "graph_mailbox": "backups@example.test",
            "graph_incoming_folder": "Inbox/Backup reports", "graph_processed_folder": "Inbox/Backup reports/Processed",
            "graph_client_secret": ""}
    data.update(over)
    return data


def settings_row():
    row = db.session.get(SystemSettings, 1)
    db.session.refresh(row)
    return row


def test_client_secret_is_write_only_and_masked_in_the_audit_log(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/mail", mail_form(graph_client_secret="s3cr3t-value-for-test"), follow_redirects=True)
    assert "Mail settings saved" in r.get_data(as_text=True)
    assert settings_row().graph_client_secret == "s3cr3t-value-for-test"
    page = c.get("/settings?section=mail").get_data(as_text=True)
    assert "s3cr3t-value-for-test" not in page and "A secret is stored" in page
    # Saving again with an empty secret field keeps the stored secret.
    post_form(c, "/settings/mail", mail_form(graph_mailbox="other@example.test"))
    assert settings_row().graph_client_secret == "s3cr3t-value-for-test"
    entries = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail")).scalars().all()
    assert entries and all("s3cr3t" not in str(e.after) + str(e.before) for e in entries)
    assert entries[0].after["graph_client_secret"] == "••••••"


@pytest.mark.parametrize("field,value,message", [
    ("graph_tenant_id", "not-a-guid", "Tenant ID must be a GUID"),
    ("graph_mailbox", "backups", "Mailbox must be an address"),
    ("graph_processed_folder", "Inbox/Backup reports", "must differ from the incoming folder"),
])
def test_bad_mail_values_are_refused_and_nothing_is_saved(as_user, field, value, message):
    c = as_user("admin")
    r = post_form(c, "/settings/mail", mail_form(**{field: value, "graph_client_secret": "x"}))
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    row = settings_row()
    assert row.graph_tenant_id is None and row.graph_client_secret is None


def test_environment_values_win_and_the_page_says_so(app, as_user):
    app.config["GRAPH_ENV_OVERRIDES"] = {"graph_mailbox": "env-box@example.test", "graph_client_secret": "from-env"}
    try:
        c = as_user("admin")
        page = c.get("/settings?section=mail").get_data(as_text=True)
        assert "env-box@example.test" in page and "Set by the environment (GRAPH_MAILBOX)" in page
        assert "from-env" not in page
        post_form(c, "/settings/mail", mail_form(graph_mailbox="ignored@example.test", graph_client_secret="ignored"))
        row = settings_row()
        assert row.graph_mailbox is None and row.graph_client_secret is None
    finally:
        app.config["GRAPH_ENV_OVERRIDES"] = {}


def test_imports_section_validates_numbers(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/imports", {"import_interval_minutes": "often", "import_batch_size": "50",
                                           "manual_import_batch_size": "50", "raw_retention_days": "90"})
    assert r.status_code == 400 and "Interval (minutes) must be a whole number" in r.get_data(as_text=True)
    r = post_form(c, "/settings/imports", {"auto_import_enabled": "on", "import_interval_minutes": "5",
                                           "import_batch_size": "20", "manual_import_batch_size": "100",
                                           "keep_raw_mails": "on", "raw_retention_days": "30"}, follow_redirects=True)
    assert "Imports settings saved" in r.get_data(as_text=True)
    row = settings_row()
    assert row.auto_import_enabled and row.import_interval_minutes == 5 and row.raw_retention_days == 30


@pytest.fixture
def graph(monkeypatch, app):
    graph_module.reset_token_cache()
    mails = [make_mime(f"[Success] Nightly {i}", message_id=f"<settings-{i}@fake.example>") for i in range(3)]
    with FakeGraph(mails) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        app.config.update(GRAPH_AUTHORITY_HOST=fake.authority_host, GRAPH_API_BASE=fake.api_base,
                          GRAPH_CLIENT_OPTIONS={"timeout": 5, "max_retry_wait": 1, "backoff_base": 0.01})
        row = db.session.get(SystemSettings, 1) or SystemSettings(id=1)
        row.graph_tenant_id, row.graph_client_id, row.graph_client_secret = fake.tenant_id, fake.client_id, fake.client_secret
        row.graph_mailbox = fake.mailbox
        row.graph_incoming_folder, row.graph_processed_folder = "Inbox/Backup reports", "Inbox/Backup reports/Processed"
        db.session.add(row)
        db.session.commit()
        yield fake
        app.config.update(GRAPH_AUTHORITY_HOST="https://login.microsoftonline.com",
                          GRAPH_API_BASE="https://graph.microsoft.com/v1.0", GRAPH_CLIENT_OPTIONS=None)
    graph_module.reset_token_cache()


def test_test_connection_and_folder_picker_against_graph(as_user, graph):
    c = as_user("admin")
    r = post_form(c, "/settings/mail/test", {}, follow_redirects=True)
    assert "Connection works: the incoming folder holds 3 message(s)" in r.get_data(as_text=True)
    folders = c.get("/settings/mail/folders").json
    assert folders["ok"] and "Inbox/Backup reports/Processed" in folders["folders"]


def test_test_connection_shows_the_actionable_error_for_a_wrong_secret(as_user, graph):
    row = db.session.get(SystemSettings, 1)
    row.graph_client_secret = "wrong-secret"
    db.session.commit()
    r = post_form(as_user("admin"), "/settings/mail/test", {}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "Connection failed" in text and "client secret" in text.lower()


def test_import_now_runs_in_the_background_and_lists_the_cycle(as_user, graph):
    c = as_user("admin")
    r = post_form(c, "/settings/imports/run", {})
    task_url = "/tasks/" + r.headers["Location"].split("task=")[1]
    deadline = time.time() + 30
    while time.time() < deadline:
        state = c.get(task_url).json
        if state["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert state["state"] == "done", state
    assert "3 fetched, 3 new" in state["message"]
    db.session.expire_all()
    assert db.session.execute(select(MailMessage)).scalars().all().__len__() == 3
    assert len(graph.messages_in("Inbox/Backup reports/Processed")) == 3
    page = c.get("/settings?section=imports").get_data(as_text=True)
    assert 'id="import-cycles"' in page
    cycle = db.session.execute(select(ImportCycle)).scalar_one()
    assert cycle.trigger == "manual" and cycle.new == 3


def test_maintenance_purge_and_info(as_user):
    c = as_user("admin")
    page = c.get("/settings?section=maintenance").get_data(as_text=True)
    assert "Schema revision" in page
    r = post_form(c, "/settings/maintenance", {"action": "purge_raw", "days": "zero"}, follow_redirects=True)
    assert "Nothing was purged" in r.get_data(as_text=True)
    r = post_form(c, "/settings/maintenance", {"action": "purge_raw", "days": "30"}, follow_redirects=True)
    assert "Removed the raw bytes of 0 mail(s)" in r.get_data(as_text=True)


def test_maintenance_recompute_schedules_learns_from_runs(as_user):
    from datetime import datetime, timedelta, timezone

    from backend.app.models import Job

    from .conftest import make_customer, make_job, make_run
    job = make_job(make_customer("Schedule Testing"), "Nightly")
    start = datetime.now(timezone.utc).replace(hour=20, minute=0, second=0, microsecond=0)
    for d in range(1, 15):
        make_run(job, "Success", start - timedelta(days=d))
    r = post_form(as_user("admin"), "/settings/maintenance", {"action": "recompute_schedules"}, follow_redirects=True)
    assert "Schedules recomputed" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Job, job.id).schedule_kind == "daily"
