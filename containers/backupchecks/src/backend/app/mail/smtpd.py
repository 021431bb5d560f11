"""The built-in SMTP receiver: `flask --app backend.app smtpd` (off unless SMTP_LISTEN is set).

An asyncio server of aiosmtpd ``SMTP`` sessions. The rules live in ``services/smtp_receiver.py``
(recipient domains, size, what a mail is, storing it); this module only speaks SMTP:

- RCPT TO a domain not in SMTP_ALLOWED_DOMAINS: 550 5.7.1 (it relays nothing);
- SIZE advertised in EHLO; a bigger MAIL FROM SIZE= or DATA: 552 5.3.4;
- DATA: the message is stored in a worker thread (the database is blocking) with its own app
  context, and the answer (250 after the commit, 554 5.6.0 malformed, 451 4.3.0 database trouble)
  is sent only then; one log line per message, never its content;
- STARTTLS with SMTP_TLS_CERT/SMTP_TLS_KEY; SMTP_REQUIRE_TLS refuses mail before it (530 5.7.0).
  No AUTH: the receiver takes mail for its domains only, from anyone who can reach it.

SIGTERM or Ctrl+C: the listener closes, a message being stored is finished and answered, the
other sessions are told "421 4.3.2" (their clients try again later), and ``run`` returns 0. A
second signal stops the process at once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from aiosmtpd.smtp import SMTP

from ..config import SmtpReceiverConfig
from ..services import smtp_receiver

log = logging.getLogger(__name__)
# aiosmtpd logs every command line at INFO (an AUTH line would carry a password): warnings only.
logging.getLogger("mail.log").setLevel(logging.WARNING)

STORE_THREADS = 4
SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"


class ReceiverError(RuntimeError):
    """The receiver cannot start; the message is one line for the operator."""


class _Handler:
    def __init__(self, receiver: "Receiver"):
        self.receiver = receiver

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refused = smtp_receiver.check_recipient(address, self.receiver.cfg.allowed_domains)
        if refused is not None:
            log.info("smtp refused recipient: peer=%s from=<%s> to=<%s> reply=%s %s", _peer(session),
                     envelope.mail_from, address, refused.code, refused.status)
            return str(refused)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        refused = smtp_receiver.check_size(len(raw), self.receiver.cfg.max_message_bytes)
        if refused is not None:
            delivery = smtp_receiver.Delivery(refused, "refused-size")
        else:
            delivery = await self.receiver.store(raw)
        log.info(smtp_receiver.log_line(_peer(session), envelope.mail_from, envelope.rcpt_tos, len(raw), delivery))
        return str(delivery.reply)


def _peer(session) -> str:
    peer = getattr(session, "peer", None)
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


class _ReceiverSMTP(SMTP):
    # RFC 5321 allows 1000 octets a line; backup products send longer HTML lines, which a strict
    # limit would refuse ("500 Line too long"). The size limit still bounds the whole message.
    line_length_limit = 256 * 1024

    def __init__(self, handler, receiver: "Receiver", **kwargs):
        self._receiver = receiver
        super().__init__(handler, **kwargs)

    def connection_made(self, transport):
        super().connection_made(transport)
        self._receiver.connections.add(self)

    def connection_lost(self, error):
        self._receiver.connections.discard(self)
        super().connection_lost(error)

    async def push(self, status):
        status = self._receiver.rewrite(status)
        if status is not None:
            await super().push(status)


class Receiver:
    """One listener. ``run()`` serves in the foreground until SIGTERM/SIGINT (the CLI command);
    tests may instead ``await serve()`` in a thread's loop and call ``request_stop()``."""

    def __init__(self, app, cfg: SmtpReceiverConfig, *, store: Optional[Callable[[bytes], object]] = None):
        self.app, self.cfg = app, cfg
        self._store = store or smtp_receiver.store
        self.connections: set[_ReceiverSMTP] = set()
        self._pending: set[asyncio.Future] = set()
        self._executor = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="smtp-store")
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self.port: Optional[int] = None
        self._too_big = str(smtp_receiver.too_big(cfg.max_message_bytes))

    # --- what the sessions call -----------------------------------------------------------

    def rewrite(self, status):
        """aiosmtpd's own replies, with the enhanced status codes; None drops the line."""
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
        if text.startswith("552 Error:"):            # MAIL FROM SIZE= too big, or DATA too big
            return self._too_big
        if text.startswith("530 Must issue a STARTTLS"):
            return "530 5.7.0 Must issue a STARTTLS command first"
        if text.startswith("250-AUTH"):             # no AUTH offered: mail for our domains needs none
            return None
        return status

    async def store(self, raw: bytes) -> smtp_receiver.Delivery:
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._store_in_app, raw)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return await future

    def _store_in_app(self, raw: bytes) -> smtp_receiver.Delivery:
        with self.app.app_context():
            return self._store(raw)

    # --- serving --------------------------------------------------------------------------

    def _tls_context(self) -> Optional[ssl.SSLContext]:
        if not self.cfg.tls_cert:
            return None
        for name, path in (("SMTP_TLS_CERT", self.cfg.tls_cert), ("SMTP_TLS_KEY", self.cfg.tls_key)):
            if not os.path.isfile(path):
                raise ReceiverError(f"{name} {path} is not a readable file")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise ReceiverError(f"SMTP_TLS_CERT/SMTP_TLS_KEY could not be loaded: {exc}") from None
        return ctx

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tls = self._tls_context()
        handler = _Handler(self)
        hostname = socket.gethostname()

        def session():
            return _ReceiverSMTP(handler, self, data_size_limit=self.cfg.max_message_bytes, hostname=hostname,
                                 ident="Backupchecks SMTP receiver", tls_context=tls,
                                 require_starttls=self.cfg.require_tls, loop=self._loop)

        try:
            self._server = await self._loop.create_server(session, host=self.cfg.host, port=self.cfg.port)
        except OSError as exc:
            raise ReceiverError(f"cannot listen on {self.cfg.listen}: {exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]

    def request_stop(self) -> None:
        """Thread-safe: ask ``serve()`` to shut down (nothing when it has ended already)."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # closed meanwhile: it has stopped
                pass

    async def serve(self, on_ready: Optional[Callable[[], None]] = None, signals: bool = False) -> None:
        await self.start()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._on_signal)
        if on_ready is not None:
            on_ready()
        await self._stop.wait()
        await self._shutdown()

    def _on_signal(self) -> None:
        print("Stopping: the SMTP receiver finishes the message being stored (SIGTERM or Ctrl+C again stops "
              "at once).", flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_DFL)
        self._stop.set()

    async def _shutdown(self) -> None:
        self._server.close()                      # no new connections
        while self._pending:                      # the messages being stored are finished and answered
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        for _ in range(3):                        # let their sessions push the replies
            await asyncio.sleep(0)
        for session in list(self.connections):
            transport = session.transport
            if transport is not None and not transport.is_closing():
                transport.write(SHUTTING_DOWN)
                transport.close()                 # close() sends what is buffered first
        await self._server.wait_closed()

    def close(self) -> None:
        """After ``serve()``: wait for a store a dropped session left running, free the threads."""
        self._executor.shutdown(wait=True)

    def run(self, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Serve in the foreground until SIGTERM or SIGINT; 0 after a clean stop."""
        try:
            asyncio.run(self.serve(on_ready=on_ready, signals=True))
        finally:
            self.close()
        return 0
