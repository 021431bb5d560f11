"""E-mail notification channels: delivered to a real SMTP server on loopback (STARTTLS, AUTH) or
through the fake Graph's sendMail; 4xx tried again, 5xx and a refused login failed with the reason;
Settings → Notifications → Mail sending (validation, the password write-only and masked, the
environment winning); "Send test"."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.mail import graph as graph_module
from backend.app.models import AuditLog, NotificationChannel, NotificationOutbox
from backend.app.services.mail_transport import AddressError, parse_addresses
from backend.app.services.settings import get_settings
from tests.clock import TEST_NOW
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.smtp import FakeSMTP

from .conftest import post_form

T0 = TEST_NOW + timedelta(seconds=30)
PAYLOAD = {"event": "failed", "job": "Daily VM Backup", "customer": "Northwind", "message": "disk full",
           "started_at": "2026-06-10T02:00:00+00:00"}


@pytest.fixture
def smtp(app, monkeypatch):
    with FakeSMTP(user="mailer", password="s3cret-pw") as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.ca_bundle)
        monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
        s = get_settings()
        s.smtp_host, s.smtp_port, s.smtp_security = fake.host, fake.port, "starttls"
        s.smtp_username, s.smtp_password, s.smtp_from = "mailer", "s3cret-pw", "backupchecks@msp.example"
        db.session.commit()
        yield fake


@pytest.fixture
def graph(app, monkeypatch):
    graph_module.reset_token_cache()
    with FakeGraph([]) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        s = get_settings()
        s.graph_tenant_id, s.graph_client_id, s.graph_client_secret = fake.tenant_id, fake.client_id, fake.client_secret
        s.graph_mailbox = fake.mailbox
        db.session.commit()
        monkeypatch.setitem(app.config, "GRAPH_AUTHORITY_HOST", fake.authority_host)
        monkeypatch.setitem(app.config, "GRAPH_API_BASE", fake.api_base)
        monkeypatch.setitem(app.config, "GRAPH_ENV_OVERRIDES", {})
        monkeypatch.setitem(app.config, "GRAPH_CLIENT_OPTIONS",
                            {"timeout": 5, "max_attempts": 2, "max_retry_wait": 1, "backoff_base": 0.01})
        yield fake
    graph_module.reset_token_cache()


def _email_channel(recipients="ops@northwind.example, oncall@northwind.example", transport="smtp"):
    ch = NotificationChannel(name="Ops mail", kind="email", recipients=recipients, transport=transport)
    db.session.add(ch)
    db.session.commit()
    return ch


def _queue(key="run:1:failed"):
    from backend.app.services.notifications import enqueue

    n = enqueue(key, "failed", PAYLOAD)
    db.session.commit()
    return n


def _rows():
    db.session.expire_all()
    return db.session.execute(select(NotificationOutbox).order_by(NotificationOutbox.id)).scalars().all()


def _send(now=T0):
    from backend.app.services.notifications import send_due

    return send_due(now, timeout=5)


def test_a_failure_alert_reaches_the_smtp_server_over_starttls_with_auth(smtp):
    _email_channel()
    assert _queue() == 1
    assert _send()["sent"] == 1
    (got,) = smtp.messages
    assert got.tls and got.auth_user == "mailer"
    assert got.mail_from == "backupchecks@msp.example"
    assert got.rcpt_tos == ["ops@northwind.example", "oncall@northwind.example"]
    msg = got.message
    assert msg["Subject"] == "Backup failed: Northwind / Daily VM Backup"
    assert msg["From"] == "backupchecks@msp.example"
    assert msg["To"] == "ops@northwind.example, oncall@northwind.example"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "disk full" in text and "Started: Wed 10 Jun 2026" in text
    assert "<h2" in html and "disk full" in html
    (row,) = _rows()
    assert row.state == "sent" and row.attempts == 1


def test_html_part_escapes_the_run_message(smtp):
    _email_channel()
    from backend.app.services.notifications import enqueue

    enqueue("run:2:failed", "failed", {**PAYLOAD, "message": "<script>alert(1)</script>"})
    db.session.commit()
    _send()
    html = smtp.messages[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_451_twice_then_delivered_once(smtp):
    _email_channel()
    _queue()
    smtp.fail_data(2)
    assert _send(T0)["retry"] == 1
    (row,) = _rows()
    assert row.state == "pending" and "451" in row.last_error
    assert _send(T0)["sent"] == 0  # not due yet: backoff
    assert _send(row.next_attempt_at + timedelta(seconds=1))["retry"] == 1
    row = _rows()[0]
    assert _send(row.next_attempt_at + timedelta(seconds=1))["sent"] == 1
    assert _send(row.next_attempt_at + timedelta(hours=5))["sent"] == 0
    assert len(smtp.messages) == 1 and smtp.data_attempts == 3
    row = _rows()[0]
    assert row.state == "sent" and row.attempts == 3


def test_550_unknown_recipient_fails_with_the_servers_reason(smtp):
    _email_channel(recipients="nobody@northwind.example")
    smtp.refuse_recipient("nobody@northwind.example")
    _queue()
    assert _send()["failed"] == 1
    (row,) = _rows()
    assert row.state == "failed"
    assert "nobody@northwind.example" in row.last_error and "550" in row.last_error
    assert "mailbox unavailable" in row.last_error
    assert smtp.messages == []


def test_one_refused_recipient_of_two_still_delivers_to_the_other(smtp):
    _email_channel()
    smtp.refuse_recipient("oncall@northwind.example")
    _queue()
    assert _send()["sent"] == 1
    assert smtp.messages[0].rcpt_tos == ["ops@northwind.example"]


def test_wrong_password_fails_with_a_clear_message(smtp):
    get_settings().smtp_password = "wrong"
    db.session.commit()
    _email_channel()
    _queue()
    assert _send()["failed"] == 1
    (row,) = _rows()
    assert row.state == "failed"
    assert "refused the user name or password" in row.last_error and "535" in row.last_error
    assert "wrong" not in row.last_error.replace("wrong password", "")


def test_connection_refused_is_tried_again(smtp, app):
    _email_channel()
    get_settings().smtp_port = 1  # nothing listens there
    db.session.commit()
    _queue()
    assert _send()["retry"] == 1
    assert "Cannot talk to the SMTP server" in _rows()[0].last_error


def test_smtp_not_configured_fails_clearly(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    _email_channel()
    _queue()
    assert _send()["failed"] == 1
    assert "SMTP sending is not configured" in _rows()[0].last_error


def test_environment_wins_over_the_settings(smtp, app, monkeypatch):
    get_settings().smtp_host = "unused.invalid"
    db.session.commit()
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {"smtp_host": smtp.host, "smtp_from": "env@msp.example"})
    _email_channel()
    _queue()
    assert _send()["sent"] == 1
    assert smtp.messages[0].mail_from == "env@msp.example"


def _settings_for(fake, security):
    s = get_settings()
    s.smtp_host, s.smtp_port, s.smtp_security = fake.host, fake.port, security
    s.smtp_username, s.smtp_password, s.smtp_from = "mailer", "pw", "backupchecks@msp.example"
    db.session.commit()


def test_implicit_tls_ssl_mode(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    with FakeSMTP(user="mailer", password="pw", implicit_tls=True) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", fake.ca_bundle)
        _settings_for(fake, "ssl")
        _email_channel()
        _queue()
        out = _send()
        assert out["sent"] == 1, _rows()[0].last_error
        assert fake.messages[0].tls and fake.messages[0].auth_user == "mailer"


def test_starttls_required_but_not_offered_fails_clearly(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    with FakeSMTP(starttls=False) as fake:
        _settings_for(fake, "starttls")
        _email_channel()
        _queue()
        assert _send()["failed"] == 1
        assert fake.messages == []
    assert "does not offer STARTTLS" in _rows()[0].last_error


def test_an_untrusted_certificate_fails_clearly(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with FakeSMTP(user="mailer", password="pw") as fake:
        _settings_for(fake, "starttls")
        _email_channel()
        _queue()
        assert _send()["failed"] == 1
        assert fake.messages == []
    assert "could not be verified" in _rows()[0].last_error


def test_no_security_sends_in_the_clear_without_login(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    with FakeSMTP(starttls=False) as fake:
        _settings_for(fake, "none")
        get_settings().smtp_username = None
        db.session.commit()
        _email_channel()
        _queue()
        assert _send()["sent"] == 1
        assert not fake.messages[0].tls


def test_graph_transport_sends_through_sendmail(graph):
    _email_channel(recipients="ops@northwind.example", transport="graph")
    _queue()
    assert _send()["sent"] == 1
    (mail,) = graph.sent_mail
    assert mail.to == ["ops@northwind.example"]
    assert mail.subject == "Backup failed: Northwind / Daily VM Backup"
    assert "disk full" in mail.body


def test_graph_without_mail_send_fails_with_a_clear_message(app, monkeypatch):
    graph_module.reset_token_cache()
    with FakeGraph([], permissions=("Mail.ReadWrite",)) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        s = get_settings()
        s.graph_tenant_id, s.graph_client_id, s.graph_client_secret = fake.tenant_id, fake.client_id, fake.client_secret
        s.graph_mailbox = fake.mailbox
        db.session.commit()
        monkeypatch.setitem(app.config, "GRAPH_AUTHORITY_HOST", fake.authority_host)
        monkeypatch.setitem(app.config, "GRAPH_API_BASE", fake.api_base)
        monkeypatch.setitem(app.config, "GRAPH_ENV_OVERRIDES", {})
        _email_channel(recipients="ops@northwind.example", transport="graph")
        _queue()
        assert _send()["failed"] == 1
    graph_module.reset_token_cache()
    assert "Mail.Send" in _rows()[0].last_error


def test_graph_503_is_tried_again(graph):
    graph.fail(503, times=5)
    _email_channel(recipients="ops@northwind.example", transport="graph")
    _queue()
    assert _send()["retry"] == 1


# --- Channels and settings on the page ----------------------------------------------------------

def test_addresses_are_validated():
    assert parse_addresses("a@x.example; B@y.example, a@x.example") == ["a@x.example", "B@y.example"]
    with pytest.raises(AddressError):
        parse_addresses("ops@northwind")


def test_add_an_email_channel_on_the_page(as_user):
    client = as_user("admin")
    r = post_form(client, "/settings/notifications", {"name": "Ops mail", "kind": "email",
                                                      "recipients": "ops@northwind.example", "transport": "smtp",
                                                      "on_failed": "on", "enabled": "on"})
    assert r.status_code == 302
    ch = db.session.execute(select(NotificationChannel)).scalar_one()
    assert ch.kind == "email" and ch.recipients == "ops@northwind.example" and ch.transport == "smtp"
    assert ch.target_url is None
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "notification_channel.create")).scalar_one()
    assert entry.after["recipients"] == "ops@northwind.example"


def test_a_bad_recipient_is_refused_and_nothing_saved(as_user):
    client = as_user("admin")
    r = post_form(client, "/settings/notifications", {"name": "Ops mail", "kind": "email",
                                                      "recipients": "ops@", "transport": "smtp"})
    assert r.status_code == 400 and "is not a mail address" in r.get_data(as_text=True)
    assert db.session.execute(select(NotificationChannel)).first() is None


def test_send_test_button_for_an_email_channel(smtp, as_user):
    ch = _email_channel(recipients="ops@northwind.example")
    client = as_user("admin")
    r = post_form(client, f"/settings/notifications/{ch.id}/test", {}, token_from="/settings/notifications",
                  follow_redirects=True)
    assert "Test message delivered to Ops mail" in r.get_data(as_text=True)
    (got,) = smtp.messages
    assert got.message["Subject"] == "Backupchecks test"


def test_mail_sending_settings_saved_audited_password_masked(as_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    client = as_user("admin")
    r = post_form(client, "/settings/notifications/mail-sending",
                  {"smtp_host": "smtp.msp.example", "smtp_port": "", "smtp_security": "ssl",
                   "smtp_username": "mailer", "smtp_password": "pa55-word", "smtp_from": "bc@msp.example"})
    assert r.status_code == 302
    db.session.expire_all()
    s = get_settings()
    assert (s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_from) == ("smtp.msp.example", 465, "ssl", "bc@msp.example")
    assert s.smtp_password == "pa55-word"
    stored = db.session.execute(db.text("SELECT smtp_password FROM system_settings")).scalar()
    assert stored.startswith("fernet:")
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail_sending")).scalar_one()
    assert "pa55-word" not in str(entry.after) and entry.after["smtp_password"] == "••••••"
    page = client.get("/settings/notifications").get_data(as_text=True)
    assert "pa55-word" not in page and "stored; leave empty to keep it" in page
    # an empty password keeps the stored one
    post_form(client, "/settings/notifications/mail-sending",
              {"smtp_host": "smtp.msp.example", "smtp_security": "ssl", "smtp_username": "mailer",
               "smtp_password": "", "smtp_from": "bc@msp.example"})
    db.session.expire_all()
    assert get_settings().smtp_password == "pa55-word"


@pytest.mark.parametrize("field,value,message", [
    ("smtp_port", "70000", "port must be a number"),
    ("smtp_from", "not-an-address", "is not a mail address"),
    ("smtp_security", "tls13", "Security must be"),
])
def test_mail_sending_validation_saves_nothing(as_user, app, monkeypatch, field, value, message):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
    client = as_user("admin")
    form = {"smtp_host": "smtp.msp.example", "smtp_port": "587", "smtp_security": "starttls",
            "smtp_from": "bc@msp.example", field: value}
    r = post_form(client, "/settings/notifications/mail-sending", form)
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    db.session.expire_all()
    assert get_settings().smtp_host is None


def test_environment_values_are_shown_read_only(as_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {"smtp_host": "env-smtp.example", "smtp_password": "envpw"})
    page = as_user("admin").get("/settings/notifications").get_data(as_text=True)
    assert "env-smtp.example" in page and "Set by SMTP_HOST" in page and "envpw" not in page


def test_mail_sending_is_for_admins_only(as_user):
    r = post_form(as_user("operator"), "/settings/notifications/mail-sending", {"smtp_host": "x.example"},
                  token_from="/")
    assert r.status_code == 403


def test_the_page_lists_and_edits_an_email_channel(as_user):
    ch = _email_channel(recipients="ops@northwind.example")
    client = as_user("admin")
    page = client.get("/settings/notifications").get_data(as_text=True)
    assert "ops@northwind.example" in page and "SMTP" in page
    page = client.get(f"/settings/notifications/{ch.id}").get_data(as_text=True)
    assert 'value="ops@northwind.example"' in page
    r = post_form(client, f"/settings/notifications/{ch.id}/edit",
                  {"name": "Ops mail", "kind": "email", "recipients": "ops@northwind.example, cto@northwind.example",
                   "transport": "graph", "on_failed": "on", "enabled": "on"})
    assert r.status_code == 302
    db.session.expire_all()
    ch = db.session.get(NotificationChannel, ch.id)
    assert ch.recipients == "ops@northwind.example, cto@northwind.example" and ch.transport == "graph"
    # switching to a webhook needs a URL
    r = post_form(client, f"/settings/notifications/{ch.id}/edit", {"name": "Ops mail", "kind": "webhook"})
    assert r.status_code == 400 and "Enter the channel&#39;s URL" in r.get_data(as_text=True)
