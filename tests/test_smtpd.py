"""The built-in SMTP receiver on loopback (mail/smtpd.py): smtplib sends, the database tells what
was stored. In a thread of this process on the test database, and as the real command
(`flask --app backend.app smtpd`) in a subprocess for SIGTERM.

Waiting uses deadlines (time.monotonic) only to give up; nothing asserts a duration."""
from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from backend.app.config import SmtpReceiverConfig
from tests.fakes.tls import fake_tls
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
DOMAIN = "backups.example.com"
TO = f"reports@{DOMAIN}"


def crlf(raw: bytes) -> bytes:
    """As an SMTP client sends a mail: every line ends in CRLF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@contextmanager
def receiving(app, **overrides):
    """The receiver in a thread (its own event loop) on a free loopback port; yields it."""
    from backend.app.extensions import db
    from backend.app.mail.smtpd import Receiver

    db.session.commit()  # what the test built is visible to the receiver's sessions
    cfg = SmtpReceiverConfig(**{"host": "127.0.0.1", "port": 0, "allowed_domains": (DOMAIN,),
                                "max_message_bytes": 1 << 20, **overrides})
    receiver = Receiver(app, cfg)
    ready, failed = threading.Event(), []

    def serve():
        try:
            asyncio.run(receiver.serve(on_ready=ready.set))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failed.append(exc)
            ready.set()
        finally:
            receiver.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30) and not failed, failed
    try:
        yield receiver
    finally:
        receiver.request_stop()
        thread.join(30)
        assert not thread.is_alive()


def client(receiver) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", receiver.port, timeout=30)


def mail_rows():
    from backend.app.extensions import db
    from backend.app.models import MailMessage

    db.session.rollback()  # a new snapshot: what the receiver committed
    return db.session.query(MailMessage).order_by(MailMessage.id).all()


def test_sample_mails_arrive_once_each_and_become_runs_or_inbox_items(app):
    from backend.app.extensions import db
    from backend.app.models import JobRun
    from tests.test_importer import _known_jobs, corpus_mails

    mails = corpus_mails(33, tag="smtp")
    known = _known_jobs(mails)
    expected_runs = sum(1 for m in mails if m.identity in known)
    assert expected_runs
    with receiving(app) as receiver, client(receiver) as smtp:
        for m in mails:
            assert smtp.sendmail(m.sender or "nas@site.example", [TO], crlf(m.raw)) == {}
        # sent again (a client whose 250 got lost): stored once
        for m in mails[:5]:
            assert smtp.sendmail(m.sender or "nas@site.example", [TO], crlf(m.raw)) == {}
    rows = mail_rows()
    assert len(rows) == 33
    assert sorted(r.internet_message_id for r in rows) == sorted(m.message_id for m in mails)
    assert {r.source for r in rows} == {"smtp"}
    assert all(r.raw is not None and r.raw.endswith(b"\r\n") for r in rows)
    assert sum(1 for r in rows if r.state == "processed") == expected_runs
    assert {r.state for r in rows} <= {"processed", "inbox"}
    assert db.session.query(JobRun).count() == expected_runs


def test_the_same_mail_twice_is_stored_once_and_answered_250_both_times(app):
    from tests.corpus import corpus_mail

    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    with receiving(app) as receiver:
        for _ in range(2):
            with client(receiver) as smtp:
                smtp.ehlo()
                smtp.mail("nas@site.example")
                smtp.rcpt(TO)
                code, text = smtp.data(raw)
                assert code == 250, text
    assert len(mail_rows()) == 1


def test_relaying_to_a_foreign_domain_is_refused_at_rcpt_with_550(app):
    with receiving(app) as receiver, client(receiver) as smtp:
        smtp.ehlo()
        smtp.mail("nas@site.example")
        code, text = smtp.rcpt("someone@gmail.com")
        assert (code, text.split()[0]) == (550, b"5.7.1"), text
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("nas@site.example", ["someone@gmail.com"], b"From: a@b.example\r\n\r\nx\r\n")
    assert mail_rows() == []


def test_an_oversized_mail_is_refused_with_552_and_nothing_stored(app):
    from tests.corpus import corpus_mail

    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    big = raw + b"x" * 70 + b"\r\n"
    big = big + (b"y" * 998 + b"\r\n") * 80   # about 80 kB
    with receiving(app, max_message_bytes=64 * 1024) as receiver, client(receiver) as smtp:
        code, lines = smtp.ehlo()
        assert b"SIZE 65536" in lines
        # the client declares the size (MAIL FROM SIZE=): refused before the data
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            smtp.sendmail("nas@site.example", [TO], big)
        assert (declared.value.smtp_code, declared.value.smtp_error.split()[0]) == (552, b"5.3.4")
        # and without SIZE=: refused at the end of DATA
        smtp.rset()
        smtp.mail("nas@site.example")
        smtp.rcpt(TO)
        code, text = smtp.data(big)
        assert (code, text.split()[0]) == (552, b"5.3.4"), text
        # the session goes on: a mail within the limit is taken
        assert smtp.sendmail("nas@site.example", [TO], raw) == {}
    assert len(mail_rows()) == 1


def test_a_malformed_mail_is_refused_with_554_and_not_stored(app):
    with receiving(app) as receiver, client(receiver) as smtp:
        smtp.ehlo()
        smtp.mail("nas@site.example")
        smtp.rcpt(TO)
        code, text = smtp.data(b"this is not a mail\r\njust lines\r\n")
        assert (code, text.split()[0]) == (554, b"5.6.0"), text
        assert b"Malformed message" in text
    assert mail_rows() == []


def test_a_database_that_fails_answers_451_and_the_mail_arrives_when_sent_again(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from backend.app.services import smtp_receiver
    from tests.corpus import corpus_mail

    real = smtp_receiver.ingest_message

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    with receiving(app) as receiver, client(receiver) as smtp:
        monkeypatch.setattr(smtp_receiver, "ingest_message", down)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("nas@site.example", [TO], raw)
        assert (refused.value.smtp_code, refused.value.smtp_error.split()[0]) == (451, b"4.3.0")
        assert mail_rows() == []
        monkeypatch.setattr(smtp_receiver, "ingest_message", real)
        assert smtp.sendmail("nas@site.example", [TO], raw) == {}
    assert len(mail_rows()) == 1


def _tls_client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=fake_tls().ca_bundle)


def test_starttls_with_a_test_certificate(app):
    from tests.corpus import corpus_mail

    tls = fake_tls()
    with receiving(app, tls_cert=tls.cert_chain, tls_key=tls.key) as receiver, \
            smtplib.SMTP("localhost", receiver.port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.starttls(context=_tls_client_context())
        assert code == 220
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # nothing to log in to
        assert smtp.sendmail("nas@site.example", [TO], crlf(corpus_mail("v03_vbr_backup_failed.eml"))) == {}
    assert len(mail_rows()) == 1


def test_with_tls_required_mail_before_starttls_is_refused(app):
    tls = fake_tls()
    with receiving(app, tls_cert=tls.cert_chain, tls_key=tls.key, require_tls=True) as receiver, \
            smtplib.SMTP("localhost", receiver.port, timeout=30) as smtp:
        smtp.ehlo()
        code, text = smtp.mail("nas@site.example")
        assert (code, text.split()[0]) == (530, b"5.7.0"), text
        smtp.starttls(context=_tls_client_context())
        smtp.ehlo()
        assert smtp.mail("nas@site.example")[0] == 250


def test_one_log_line_per_message_without_its_content(app, caplog):
    from tests.corpus import corpus_mail

    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    with caplog.at_level("INFO", logger="backend.app.mail.smtpd"):
        with receiving(app) as receiver, client(receiver) as smtp:
            smtp.sendmail("nas@site.example", [TO], raw)
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("nas@site.example", ["x@gmail.com"], raw)
    lines = [r.getMessage() for r in caplog.records if r.name == "backend.app.mail.smtpd"]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"smtp inbox: peer=127.0.0.1:") and f"from=<nas@site.example> to=<{TO}> " \
        f"size={len(raw)} reply=250 2.0.0 message=" in lines[0]
    assert lines[1].startswith("smtp refused recipient: ") and "to=<x@gmail.com> reply=550 5.7.1" in lines[1]
    assert not any("Veeam" in line or "Subject" in line for line in lines)


def test_a_stop_while_a_mail_is_being_stored_finishes_and_answers_it_first(app, monkeypatch):
    """request_stop() is what SIGTERM does: the listener closes, the store under way is committed
    and answered 250 (then the session is told 421 and the receiver ends)."""
    from backend.app.services import smtp_receiver
    from tests.corpus import corpus_mail

    storing, release = threading.Event(), threading.Event()
    real = smtp_receiver.ingest_message

    def slow(*args, **kwargs):
        storing.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(smtp_receiver, "ingest_message", slow)
    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    replies = []
    with receiving(app) as receiver:
        smtp = client(receiver)
        sender = threading.Thread(target=lambda: replies.append(smtp.sendmail("nas@site.example", [TO], raw)))
        sender.start()
        assert storing.wait(30)
        receiver.request_stop()
        with pytest.raises(OSError):  # the listener is closed while the mail is still being stored
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                socket.create_connection(("127.0.0.1", receiver.port), timeout=5).close()
        release.set()
        sender.join(30)
        smtp.close()
    assert replies == [{}]  # 250
    assert len(mail_rows()) == 1


# --- the real command in a subprocess ------------------------------------------------------------

@contextmanager
def smtpd_process(app, **env_vars):
    from sqlalchemy.engine import make_url

    from backend.app.extensions import db

    db.session.commit()
    port = _free_port()
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=False)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC), "DATABASE_URL": url,
           "RUN_MIGRATIONS": "false", "SMTP_LISTEN": f"127.0.0.1:{port}", "SMTP_ALLOWED_DOMAINS": DOMAIN,
           **env_vars}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "backend.app", "smtpd"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _stop(proc) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err


@pytest.mark.slow
def test_the_command_exits_0_on_sigterm_while_idle(app):
    with smtpd_process(app) as (proc, port):
        code, output = _stop(proc)
    assert code == 0, output
    assert "Backupchecks SMTP receiver stopped." in output


@pytest.mark.slow
def test_the_command_stores_a_mail_and_exits_0_on_sigterm_after_it(app):
    from tests.corpus import corpus_mail

    raw = crlf(corpus_mail("v03_vbr_backup_failed.eml"))
    with smtpd_process(app) as (proc, port):
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert smtp.sendmail("nas@site.example", [TO], raw) == {}
        code, output = _stop(proc)   # the session is still open: it is told 421 and closed
        smtp.close()
    assert code == 0, output
    assert "smtp inbox: peer=127.0.0.1:" in output and "Backupchecks SMTP receiver stopped." in output
    (row,) = mail_rows()
    assert (row.source, row.raw) == ("smtp", raw)


@pytest.mark.slow
def test_the_command_answers_451_while_its_database_is_unreachable(app):
    """No database behind the process (a port nothing listens on): the client is told to try again."""
    from tests.corpus import corpus_mail

    dead = f"postgresql://postgres@127.0.0.1:{_free_port()}/none"
    with smtpd_process(app, DATABASE_URL=dead) as (proc, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("nas@site.example", [TO], crlf(corpus_mail("v03_vbr_backup_failed.eml")))
        code, output = _stop(proc)
    assert (refused.value.smtp_code, refused.value.smtp_error.split()[0]) == (451, b"4.3.0")
    assert code == 0, output
    assert "smtp retry-later: " in output


def test_the_stacks_health_check_passes_against_a_listening_receiver(app):
    """The smtpd service's health check (deploy/backupchecks-stack.yml), run as Docker would run it."""
    from tests.deploy.test_compose import filled_env, stack

    test = stack(filled_env())["services"]["smtpd"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    with receiving(app) as receiver:
        env = {**os.environ, "SMTP_LISTEN": f"127.0.0.1:{receiver.port}"}
        healthy = subprocess.run([sys.executable, *test[2:]], env=env, capture_output=True, text=True, timeout=60)
    assert healthy.returncode == 0, healthy.stderr
    env = {**os.environ, "SMTP_LISTEN": f"127.0.0.1:{_free_port()}"}
    down = subprocess.run([sys.executable, *test[2:]], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode != 0


def test_the_command_refuses_to_run_when_the_receiver_is_off(app):
    result = app.test_cli_runner().invoke(args=["smtpd"])
    assert result.exit_code == 1
    assert "The SMTP receiver is off: set SMTP_LISTEN" in result.output
