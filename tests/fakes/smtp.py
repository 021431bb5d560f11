"""A real SMTP server on loopback for the tests (aiosmtpd), with STARTTLS on the test CA of
``tests/fakes/tls.py``.

It records every message it accepts (``messages``: envelope sender, recipients and the parsed
``email.message.EmailMessage``) and answers what it is told:

* ``fail_data(n, code=451)``: the next ``n`` messages are refused at DATA with a temporary error;
* ``refuse_recipient(addr, code=550)``: RCPT TO that address is refused (permanently by default);
* ``user``/``password``: AUTH (PLAIN, LOGIN) is required before MAIL and is only offered after
  STARTTLS (``auth_require_tls``), as on any well-configured submission server;
* ``starttls=False``: a plain server that offers no STARTTLS; ``implicit_tls=True``: TLS from the
  first byte (port 465 style).

Clients trust the test CA with ``SSL_CERT_FILE=<ca_bundle>`` (``ssl.create_default_context``
reads it), so the client code under test verifies the certificate as it would in production.

    with FakeSMTP(user="mailer", password="pw") as smtp:
        ... send to smtp.host:smtp.port with STARTTLS ...
        (msg,) = smtp.messages
"""
from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .tls import fake_tls
from tests.ports import free_port as _free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: email.message.EmailMessage = field(repr=False)
    auth_user: Optional[str] = None
    tls: bool = False


class _Handler:
    def __init__(self, fake: "FakeSMTP"):
        self.fake = fake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.fake.refused.get(address.lower())
        if code is not None:
            text = "Requested action not taken: mailbox unavailable" if code >= 500 else "Try again later"
            return f"{code} 5.1.1 <{address}>: {text}" if code >= 500 else f"{code} 4.2.0 <{address}>: {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.fake.lock:
            self.fake.data_attempts += 1
            if self.fake.data_failures > 0:
                self.fake.data_failures -= 1
                return f"{self.fake.data_failure_code} 4.3.0 Temporary local problem, try again later"
            raw = envelope.original_content or envelope.content
            if isinstance(raw, str):
                raw = raw.encode()
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            login = getattr(session, "auth_data", None)
            user = login.login.decode() if isinstance(login, LoginPassword) else None
            transport = getattr(server, "transport", None)
            tls = transport is not None and transport.get_extra_info("ssl_object") is not None
            self.fake.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed, user,
                                               tls or session.ssl is not None))
        return "250 2.0.0 Message accepted for delivery"


class FakeSMTP:
    def __init__(self, *, user: Optional[str] = None, password: Optional[str] = None, starttls: bool = True,
                 implicit_tls: bool = False):
        """``starttls``: offered and required before anything else; ``implicit_tls``: TLS from the first
        byte (SMTPS, port 465 style) instead."""
        self.user, self.password = user, password
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.messages: list[Received] = []
        self.refused: dict[str, int] = {}
        self.data_failures = 0
        self.data_failure_code = 451
        self.data_attempts = 0
        self.auth_failures = 0
        self.lock = threading.Lock()
        self.ca_bundle = fake_tls().ca_bundle
        kwargs = {}
        if implicit_tls:
            starttls = False
            kwargs.update(ssl_context=fake_tls().server_context())
        if starttls:
            kwargs.update(tls_context=fake_tls().server_context(), require_starttls=True)
        if user is not None:
            # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; an implicit-TLS connection is
            # encrypted from the first byte, so AUTH is safe there anyway.
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=starttls)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                      server_hostname="localhost", **kwargs)

    # -- what to answer --------------------------------------------------------------------------
    def fail_data(self, times: int, code: int = 451) -> None:
        with self.lock:
            self.data_failures, self.data_failure_code = times, code

    def refuse_recipient(self, address: str, code: int = 550) -> None:
        self.refused[address.lower()] = code

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        if not ok:
            self.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "FakeSMTP":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "FakeSMTP":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
