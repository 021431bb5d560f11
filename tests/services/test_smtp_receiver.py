"""The SMTP receiver's rules without the protocol (services/smtp_receiver.py) and its configuration
(config.smtp_receiver_config). The receiver on a socket: tests/test_smtpd.py."""
from __future__ import annotations

import pytest

from backend.app.config import ConfigError, smtp_receiver_config
from backend.app.services import smtp_receiver
from backend.app.services.smtp_receiver import Reply, check_message, check_recipient, check_size
from tests.corpus import corpus_mail

DOMAINS = ("backups.example.com", "reports.example.net")


# --- configuration ---------------------------------------------------------------------------

def test_unset_listen_means_off():
    assert smtp_receiver_config({}) is None
    assert smtp_receiver_config({"SMTP_LISTEN": " ", "SMTP_ALLOWED_DOMAINS": "x.example"}) is None


def test_a_full_configuration():
    cfg = smtp_receiver_config({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "Backups.Example.com., x.example",
                                "SMTP_TLS_CERT": "/c.pem", "SMTP_TLS_KEY": "/k.pem", "SMTP_REQUIRE_TLS": "true",
                                "SMTP_MAX_MESSAGE_MB": "10"})
    assert (cfg.host, cfg.port, cfg.allowed_domains) == ("0.0.0.0", 2525, ("backups.example.com", "x.example"))
    assert (cfg.tls_cert, cfg.tls_key, cfg.require_tls, cfg.max_message_bytes) == ("/c.pem", "/k.pem", True, 10 << 20)
    assert smtp_receiver_config({"SMTP_LISTEN": "[::]:25", "SMTP_ALLOWED_DOMAINS": "x.example"}).listen == "[::]:25"
    assert smtp_receiver_config({"SMTP_LISTEN": "127.0.0.1:25", "SMTP_ALLOWED_DOMAINS": "x.example"}) \
        .max_message_bytes == 25 << 20  # the default


@pytest.mark.parametrize("env,reason", [
    ({"SMTP_LISTEN": "2525"}, "SMTP_LISTEN must be host:port"),
    ({"SMTP_LISTEN": "0.0.0.0:99999"}, "SMTP_LISTEN must be host:port"),
    ({"SMTP_LISTEN": "0.0.0.0:2525"}, "SMTP_ALLOWED_DOMAINS is empty"),
    ({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "ops@x.example"}, "must be domain names"),
    ({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "x.example", "SMTP_TLS_CERT": "/c.pem"},
     "go together"),
    ({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "x.example", "SMTP_REQUIRE_TLS": "1"},
     "SMTP_REQUIRE_TLS needs a certificate"),
    ({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "x.example", "SMTP_MAX_MESSAGE_MB": "0"}, "at least 1"),
    ({"SMTP_LISTEN": "0.0.0.0:2525", "SMTP_ALLOWED_DOMAINS": "x.example", "SMTP_MAX_MESSAGE_MB": "big"},
     "whole number"),
])
def test_a_configuration_that_cannot_work_is_refused_with_one_line(env, reason):
    with pytest.raises(ConfigError, match=reason):
        smtp_receiver_config(env)


# --- recipients, size, what a mail is ---------------------------------------------------------

@pytest.mark.parametrize("address", ["veeam@backups.example.com", "Any.One@BACKUPS.EXAMPLE.COM",
                                     "nas@reports.example.net.", "<x@backups.example.com>"])
def test_mail_for_an_allowed_domain_is_accepted(address):
    assert check_recipient(address, DOMAINS) is None


@pytest.mark.parametrize("address", ["someone@gmail.com", "x@sub.backups.example.com", "postmaster",
                                     "x@backups.example.com@evil.example", "x@example.com"])
def test_any_other_recipient_is_relaying_and_refused_with_550_5_7_1(address):
    reply = check_recipient(address, DOMAINS)
    assert (reply.code, reply.status) == (550, "5.7.1")
    assert str(reply).startswith("550 5.7.1 Relaying denied")


def test_the_size_limit():
    assert check_size(1000, 1000) is None
    reply = check_size(1001, 1000)
    assert (reply.code, reply.status) == (552, "5.3.4")
    assert str(smtp_receiver.too_big(25 << 20)) == "552 5.3.4 Message too big: this server accepts at most 25 MB"


def test_a_report_is_a_mail():
    assert check_message(corpus_mail("v03_vbr_backup_failed.eml")) is None
    assert check_message(b"From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n") is None
    # a stray line in the headers: read as the body's start, as mail servers do (not refused)
    assert check_message(b"From: a@b.example\r\nnot a header\r\nSubject: x\r\n\r\nbody\r\n") is None


@pytest.mark.parametrize("raw,reason", [
    (b"", "it is empty"),
    (b"\r\n\r\n", "it is empty"),
    (b"this is not a mail\r\nat all\r\n", "does not start with a header block"),
    (b"Subject: no sender\r\n\r\nbody\r\n", "it has no From header"),
])
def test_a_malformed_message_is_refused_with_554_5_6_0_and_a_short_reason(raw, reason):
    reply = check_message(raw)
    assert (reply.code, reply.status) == (554, "5.6.0")
    assert reason in reply.text and len(str(reply)) < 100


def test_the_log_line_says_who_what_and_how_it_ended_but_never_the_content():
    delivery = smtp_receiver.Delivery(Reply(250, "2.0.0", "Stored as message 7"), "inbox", 7)
    line = smtp_receiver.log_line("10.0.0.5:40000", "nas@site.example", ["bc@backups.example.com"], 1234, delivery)
    assert line == ("smtp inbox: peer=10.0.0.5:40000 from=<nas@site.example> to=<bc@backups.example.com> size=1234 "
                    "reply=250 2.0.0 message=7")


# --- storing: the one home of storing a mail ------------------------------------------------------

def test_a_received_mail_is_stored_once_like_an_import(app):
    from backend.app.extensions import db
    from backend.app.models import MailMessage

    raw = corpus_mail("v03_vbr_backup_failed.eml")
    first = smtp_receiver.store(raw)
    assert (first.reply.code, first.outcome) == (250, "inbox")
    again = smtp_receiver.store(raw)
    assert (again.reply.code, again.reply.status, again.outcome) == (250, "2.0.0", "duplicate")
    (row,) = db.session.query(MailMessage).all()
    assert (row.id, row.source, row.raw, row.state) == (first.message_id, "smtp", raw, "inbox")
    from backend.app.services.ingest import content_source_id
    assert row.source_id == content_source_id(raw)
    assert row.parsed and row.software


def test_a_malformed_mail_is_not_stored(app):
    from backend.app.extensions import db
    from backend.app.models import MailMessage

    delivery = smtp_receiver.store(b"garbage without headers\r\n")
    assert (delivery.reply.code, delivery.outcome) == (554, "malformed")
    assert db.session.query(MailMessage).count() == 0


def test_a_database_that_fails_answers_451_so_the_client_tries_again(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from backend.app.extensions import db
    from backend.app.models import MailMessage

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(smtp_receiver, "ingest_message", down)
    delivery = smtp_receiver.store(corpus_mail("v03_vbr_backup_failed.eml"))
    assert (str(delivery.reply), delivery.outcome) == (
        "451 4.3.0 Temporary failure storing the message, try again later", "retry-later")
    assert db.session.query(MailMessage).count() == 0
