"""Settings → Mail, Imports and Maintenance: each saves on its own, secrets are write-only,
environment values win, and the live Graph checks talk to a real (fake) Graph over HTTPS."""
import contextlib
import html
import logging
import re
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
    r = post_form(c, "/settings/mail", mail_form(**{field: value, "graph_client_secret": "typed-x"}))
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and message in page and "Nothing was saved" in page
    # the form comes back as typed, the secret typed in this request included
    assert input_value(page, field) == value and input_value(page, "graph_client_secret") == "typed-x"
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


def test_the_page_says_whether_the_smtp_receiver_is_on_and_where_it_listens(app, as_user):
    from backend.app.config import smtp_receiver_config

    c = as_user("admin")
    page = c.get("/settings?section=mail").get_data(as_text=True)
    assert 'id="smtp-receiver"' in page and ">off</span>" in page
    app.config["SMTP_RECEIVER"] = smtp_receiver_config({
        "SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "backups.example.com", "SMTP_TLS_CERT": "/c.pem",
        "SMTP_TLS_KEY": "/k.pem"})
    try:
        page = c.get("/settings?section=mail").get_data(as_text=True)
        assert ">on</span>" in page
        assert ("listening on 0.0.0.0:2525 for backups.example.com; at most 25 MB per message; STARTTLS offered"
                in page)
        assert "/k.pem" not in page
    finally:
        app.config["SMTP_RECEIVER"] = None


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
def start_graph(monkeypatch, app):
    """start_graph(**FakeGraph kwargs) -> a running FakeGraph with three mails, the app aimed at it
    (endpoints as from the environment) and its values saved under Settings → Mail."""
    stack = contextlib.ExitStack()

    def start(**kwargs):
        graph_module.reset_token_cache()
        mails = [make_mime(f"[Success] Nightly {i}", message_id=f"<settings-{i}@fake.example>") for i in range(3)]
        fake = stack.enter_context(FakeGraph(mails, **kwargs))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        app.config.update(GRAPH_AUTHORITY_HOST=fake.authority_host, GRAPH_API_BASE=fake.api_base,
                          GRAPH_CLIENT_OPTIONS={"timeout": 5, "max_retry_wait": 1, "backoff_base": 0.01})
        store_mail_settings(**graph_values(fake))
        return fake

    yield start
    stack.close()
    app.config.update(GRAPH_AUTHORITY_HOST="https://login.microsoftonline.com",
                      GRAPH_API_BASE="https://graph.microsoft.com/v1.0", GRAPH_CLIENT_OPTIONS=None)
    graph_module.reset_token_cache()


@pytest.fixture
def graph(start_graph):
    return start_graph()


def graph_values(fake, **over):
    """The Settings → Mail values that reach ``fake`` (the secret included)."""
    values = {"graph_tenant_id": fake.tenant_id, "graph_client_id": fake.client_id,
              "graph_client_secret": fake.client_secret, "graph_mailbox": fake.mailbox,
              "graph_incoming_folder": "Inbox/Backup reports",
              "graph_processed_folder": "Inbox/Backup reports/Processed"}
    values.update(over)
    return values


def store_mail_settings(**values):
    row = db.session.get(SystemSettings, 1) or SystemSettings(id=1)
    for key, value in values.items():
        setattr(row, key, value)
    db.session.add(row)
    db.session.commit()


def press_test_connection(client, form):
    """Press Test connection with ``form`` typed in Settings → Mail; the page the admin lands on."""
    r = post_form(client, "/settings/mail/test", form, token_from="/settings?section=mail", follow_redirects=True)
    assert r.status_code == 200
    return r.get_data(as_text=True)


def input_value(page, name):
    m = re.search(r'<input[^>]*\bname="' + re.escape(name) + r'"[^>]*>', page)
    assert m, f"no input {name!r} on the page"
    v = re.search(r'\bvalue="([^"]*)"', m.group(0))
    return html.unescape(v.group(1)) if v else ""


def step_states(page):
    """{step label: "ok" | "failed" | "not checked"} from the test result's checklist."""
    box = page[page.index('id="mail-test-result"'):]
    box = box[:box.index("</ul>")]
    found = re.findall(r'<span class="badge[^"]*">(✓ ok|✗ failed|not checked)</span>\s*([^<]+?)\s*</li>', box)
    return {label: {"✓ ok": "ok", "✗ failed": "failed"}.get(state, state) for state, label in found}


def mail_row_values():
    row = settings_row()
    return {f: getattr(row, f) for f in ("graph_tenant_id", "graph_client_id", "graph_client_secret", "graph_mailbox",
                                          "graph_incoming_folder", "graph_processed_folder")}


def test_test_connection_tries_the_typed_values_without_saving_them(as_user, graph):
    # Stored: yesterday's half-right values. Typed: the right ones, a new secret included.
    old = graph_values(graph, graph_tenant_id=TENANT, graph_client_secret="old-stored-secret-value",
                       graph_mailbox="old-box@example.test", graph_incoming_folder="Inbox")
    store_mail_settings(**old)
    c = as_user("admin")

    page = press_test_connection(c, graph_values(graph))

    assert "Connection works" in page
    assert f"got a token from tenant {graph.tenant_id}" in page and f"opened the mailbox {graph.mailbox}" in page
    assert "incoming folder &#39;Inbox/Backup reports&#39; (3 message(s))" in page
    assert "processed folder &#39;Inbox/Backup reports/Processed&#39;" in page
    assert "Testing saved nothing" in page
    assert set(step_states(page).values()) == {"ok"}
    # the form comes back as typed, the secret typed in this request included ...
    for name, value in graph_values(graph).items():
        assert input_value(page, name) == value
    # ... and nothing was saved; the stored secret never reaches the page
    assert mail_row_values() == old
    assert "old-stored-secret-value" not in page
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail_test")).scalar_one()
    assert entry.after == {"ok": True, "step": None, "code": None, "source": "graph"}
    assert graph.client_secret not in str(entry.before) + str(entry.after) + entry.summary


def test_a_blank_secret_field_tests_the_stored_secret_and_keeps_it_hidden(as_user, graph):
    page = press_test_connection(as_user("admin"), graph_values(graph, graph_client_secret=""))

    assert "Connection works" in page
    assert graph.client_secret not in page and input_value(page, "graph_client_secret") == ""
    assert "A secret is stored" in page


def test_remove_the_stored_secret_ticked_tests_without_a_secret(as_user, graph):
    page = press_test_connection(as_user("admin"), graph_values(graph, graph_client_secret="", clear_secret="on"))

    assert "Fill in Client secret, then test again." in page
    assert step_states(page)["Settings filled in"] == "failed" and step_states(page)["Sign-in (token)"] == "not checked"
    assert settings_row().graph_client_secret == graph.client_secret
    assert 'name="clear_secret" checked' in page


WRONG_SECRET = "typed-wrong-secret-value"


@pytest.mark.parametrize("case,typed,step,expected", [
    ("wrong secret", {"graph_client_secret": WRONG_SECRET}, "Sign-in (token)",
     ["The tenant refused the client secret (AADSTS7000215)", "Certificates &amp; secrets into Client secret"]),
    ("expired secret", {}, "Sign-in (token)", ["The client secret has expired (AADSTS7000222)"]),
    ("unknown tenant", {"graph_tenant_id": "00000000-0000-4000-8000-000000000bad"}, "Sign-in (token)",
     ["No tenant with this ID", "00000000-0000-4000-8000-000000000bad", "(AADSTS90002)", "into Tenant ID"]),
    ("unknown app", {"graph_client_id": "11111111-2222-4333-8444-555555555555"}, "Sign-in (token)",
     ["No app with this client ID in the tenant", "11111111-2222-4333-8444-555555555555", "(AADSTS700016)"]),
    ("unknown mailbox", {"graph_mailbox": "nobody@contoso.example"}, "Mailbox",
     ["No mailbox nobody@contoso.example", "(ErrorInvalidUser)"]),
    ("mailbox without Exchange Online", {}, "Mailbox",
     ["No mailbox backup-reports@contoso.example", "(MailboxNotEnabledForRESTAPI)"]),
    ("no permission", {}, "Mailbox",
     ["The app has no Mail.ReadWrite permission on this mailbox (backup-reports@contoso.example)",
      "ErrorAccessDenied", "grant admin consent"]),
    ("read-only permission", {}, "Mail.ReadWrite permission",
     ["The app has no Mail.ReadWrite permission on this mailbox", "its token grants only Mail.Read"]),
    ("unknown incoming folder", {"graph_incoming_folder": "Inbox/Backup reportz"}, "Incoming folder",
     ["No folder named &#39;Inbox/Backup reportz&#39; in backup-reports@contoso.example",
      "there is no &#39;Backup reportz&#39; inside &#39;Inbox&#39;", "Backup reports", "Correct Incoming folder"]),
    ("unknown processed folder", {"graph_processed_folder": "Done"}, "Processed folder",
     ["No folder named &#39;Done&#39; in backup-reports@contoso.example", "at the top of the mailbox",
      "Correct Processed folder"]),
    ("no processed folder", {"graph_processed_folder": ""}, "Processed folder",
     ["no processed folder is set: fill in Processed folder"]),
    ("empty fields", {"graph_tenant_id": "", "graph_mailbox": " "}, "Settings filled in",
     ["Fill in Tenant ID and Mailbox, then test again."]),
    ("not a GUID", {"graph_client_id": "my-app"}, "Settings filled in", ["Client ID must be a GUID"]),
    ("not an address", {"graph_mailbox": "backups"}, "Settings filled in",
     ["Mailbox must be an address like backups@example.com."]),
])
def test_test_connection_names_the_first_failing_step(as_user, start_graph, caplog, case, typed, step, expected):
    fake = start_graph(**{"no permission": {"permissions": ()},
                          "read-only permission": {"permissions": ("Mail.Read",), "jwt_tokens": True},
                          }.get(case, {}))
    fake.secret_expired = case == "expired secret"
    fake.mailbox_state = "rest_disabled" if case == "mailbox without Exchange Online" else "ok"
    before = mail_row_values()
    caplog.set_level(logging.DEBUG)

    page = press_test_connection(as_user("admin"), graph_values(fake, **typed))

    assert "Connection test: failed" in page and "Connection works" not in page
    for text in expected:
        assert text in page
    states = step_states(page)
    assert states[step] == "failed"
    labels = list(states)
    assert all(states[label] == "ok" for label in labels[:labels.index(step)])
    assert all(states[label] == "not checked" for label in labels[labels.index(step) + 1:])
    assert "Settings → Mail" not in page.split('id="mail-test-result"')[1].split("</ul>")[0]
    # the typed values stay in the form; nothing is saved; no secret is logged
    for name, value in graph_values(fake, **typed).items():
        assert input_value(page, name) == value
    assert mail_row_values() == before
    assert fake.client_secret not in caplog.text and WRONG_SECRET not in caplog.text
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail_test")).scalar_one()
    assert entry.after["ok"] is False and f"failed at {step}" in entry.summary


def test_environment_values_win_in_the_test_and_are_named(app, as_user, graph):
    app.config["GRAPH_ENV_OVERRIDES"] = {"graph_mailbox": "nobody@contoso.example",
                                         "graph_client_secret": graph.client_secret}
    try:
        c = as_user("admin")
        # the page sends no mailbox (the field is disabled); a hand-made post must not win either
        page = press_test_connection(c, graph_values(graph, graph_mailbox="ignored@example.test",
                                               graph_client_secret="typed-but-ignored"))
    finally:
        app.config["GRAPH_ENV_OVERRIDES"] = {}
    assert "No mailbox nobody@contoso.example" in page
    assert "Enter the mailbox&#39;s primary address in the environment variable GRAPH_MAILBOX" in page
    assert "Set by the environment (GRAPH_MAILBOX)" in page and "Set by the environment (GRAPH_CLIENT_SECRET)" in page
    assert graph.client_secret not in page and "typed-but-ignored" not in page


def test_the_typed_secret_comes_back_only_in_the_test_response(as_user, graph):
    c = as_user("admin")
    page = press_test_connection(c, graph_values(graph, graph_client_secret=WRONG_SECRET))
    assert input_value(page, "graph_client_secret") == WRONG_SECRET

    later = c.get("/settings?section=mail").get_data(as_text=True)
    assert WRONG_SECRET not in later and graph.client_secret not in later
    assert input_value(later, "graph_client_secret") == ""


def test_only_admins_may_test_the_mail_connection(as_user, graph):
    r = post_form(as_user("operator"), "/settings/mail/test", graph_values(graph))
    assert r.status_code == 403
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail_test")).first() is None


def test_folder_picker_lists_the_saved_mailbox_folders(as_user, graph):
    folders = as_user("admin").get("/settings/mail/folders").json
    assert folders["ok"] and "Inbox/Backup reports/Processed" in folders["folders"]


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


def test_maintenance_recompute_schedules_learns_from_runs(as_user, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from backend.app.main import routes_settings
    from backend.app.models import Job

    from .conftest import make_customer, make_job, make_run
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(routes_settings, "utcnow", lambda: now)  # the page's clock
    job = make_job(make_customer("Schedule Testing"), "Nightly")
    start = now.replace(hour=20)
    for d in range(1, 15):
        make_run(job, "Success", start - timedelta(days=d))
    r = post_form(as_user("admin"), "/settings/maintenance", {"action": "recompute_schedules"}, follow_redirects=True)
    assert "Schedules recomputed" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Job, job.id).schedule_kind == "daily"
