"""An IMAP mailbox as a mail source (IMAPClient): Gmail, Exchange on-premises, any IMAP host.

``source_id`` is ``<folder>:<UIDVALIDITY>:<UID>``: unique for as long as the folder exists
(an IMAP server never gives a UID twice within one UIDVALIDITY). An id from an older
UIDVALIDITY (the folder was recreated or restored) is not trusted: :meth:`fetch_raw` and
:meth:`mark_processed` refuse it, the next listing gives the mails new ids, and the Message-ID
keeps a mail that was stored before from being stored again (ingest's one INSERT checks both).

:meth:`mark_processed` moves the message to the processed folder with MOVE when the server has
the capability (RFC 6851), else with COPY + ``\\Deleted`` + UID EXPUNGE of that one message
(RFC 4315; a plain EXPUNGE when the server has no UIDPLUS). Before that COPY the message gets the
keyword ``$BackupchecksCopied`` (the copy carries it), so a process killed between COPY and EXPUNGE
does not copy it twice: the next attempt finds the marked copy by Message-ID and only expunges.
It returns None: the id the mail was stored under stays its identity.

A connection that drops is not reopened within a cycle: every later call raises the same
``connection_lost`` error at once, so the cycle ends cleanly and the next one starts afresh.
Every failure is a :class:`MailSourceError` with one sentence and never the password.
"""
from __future__ import annotations

import imaplib
import logging
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any, Mapping, Optional

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from ..services.faults import crash_point
from .base import MailSource, MailSourceError, RemoteMessage, decode_header_text, header_date

log = logging.getLogger(__name__)

TLS_MODES = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
HEADERS = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]"
HEADERS_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]"
FETCH_CHUNK = 200  # UIDs per FETCH of the listing
#: marks a message before its COPY in the COPY + EXPUNGE path (no MOVE), carried by the copy
COPY_KEYWORD = b"$BackupchecksCopied"
MESSAGE_ID = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
MESSAGE_ID_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"


@dataclass(frozen=True)
class ImapConfig:
    host: str = ""
    port: Optional[int] = None
    username: str = ""
    password: str = ""
    tls: str = "ssl"
    folder: str = "INBOX"
    processed_folder: str = ""
    timeout: float = 30.0
    ca_file: Optional[str] = None  # extra trust (tests); else the system's certificate store

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **options) -> "ImapConfig":
        tls = (values.get("imap_tls") or "ssl").strip().lower()
        port = values.get("imap_port")
        try:
            port = int(port) if port not in (None, "") else None
        except (TypeError, ValueError):
            port = None
        return cls(host=(values.get("imap_host") or "").strip(), port=port,
                   username=(values.get("imap_username") or "").strip(), password=values.get("imap_password") or "",
                   tls=tls, folder=(values.get("imap_folder") or "INBOX").strip(),
                   processed_folder=(values.get("imap_processed_folder") or "").strip(), **options)

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS.get(self.tls, 993)

    def missing(self) -> list[str]:
        """The labels of required settings that are empty (the processed folder is checked apart)."""
        labels = [("host", "IMAP server"), ("username", "User name"), ("password", "Password"),
                  ("folder", "Incoming folder")]
        return [label for attr, label in labels if not getattr(self, attr)]

    def where(self) -> str:
        return f"{self.host}:{self.effective_port}"


def parse_source_id(source_id: str) -> tuple[str, int, int]:
    """(folder, UIDVALIDITY, UID) of an IMAP source id; MailSourceError 'not_found' when malformed."""
    try:
        folder, validity, uid = source_id.rsplit(":", 2)
        return folder, int(validity), int(uid)
    except (AttributeError, ValueError):
        raise MailSourceError(f"{source_id!r} is not an IMAP message id (folder:uidvalidity:uid).",
                              code="not_found") from None


class ImapMailSource(MailSource):
    name = "imap"

    def __init__(self, config: ImapConfig, *, use_move: Optional[bool] = None):
        self.cfg = config
        self._use_move = use_move  # None: MOVE when the server has it (tests force the COPY path)
        self._client: Optional[IMAPClient] = None
        self._lost: Optional[MailSourceError] = None
        self.uidvalidity: Optional[int] = None

    # -- MailSource --------------------------------------------------------------------------
    def list_messages(self, limit: Optional[int] = None) -> list[RemoteMessage]:
        client = self._selected()
        uids = sorted(self._call(lambda: client.search(["NOT", "DELETED"]), "listing the messages"))
        if limit is not None:
            uids = uids[:limit]  # UIDs grow with arrival: the oldest first
        found: list[RemoteMessage] = []
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]
            data = self._call(lambda: client.fetch(chunk, [HEADERS, "INTERNALDATE"]), "listing the messages")
            for uid in chunk:
                item = data.get(uid)
                if item is None:  # expunged meanwhile by someone else
                    continue
                found.append(self._describe(uid, item))
        return found

    def fetch_raw(self, source_id: str) -> bytes:
        uid = self._uid_of(source_id)
        client = self._selected()
        data = self._call(lambda: client.fetch([uid], ["BODY.PEEK[]"]), "fetching a message")
        item = data.get(uid) or {}
        raw = item.get(b"BODY[]")
        if raw is None:
            raise MailSourceError(f"The message {source_id} is no longer in the folder '{self.cfg.folder}'; it may "
                                  "have been moved or deleted already.", code="not_found")
        return bytes(raw)

    def mark_processed(self, source_id: str) -> Optional[str]:
        uid = self._uid_of(source_id)
        client = self._selected()
        target = self.cfg.processed_folder
        if not target:
            raise MailSourceError("No processed folder is set: choose one under Settings → Mail (or IMAP_PROCESSED_FOLDER).",
                                  code="not_configured")
        use_move = self._use_move if self._use_move is not None else client.has_capability("MOVE")
        try:
            if use_move:
                self._call(lambda: client.move([uid], target), "moving a message")
            else:
                if not self._copied_before(client, uid, target):
                    self._call(lambda: client.copy([uid], target), "copying a message")
                crash_point("imap.after_copy")
                self._call(lambda: client.add_flags([uid], [b"\\Deleted"], silent=True), "flagging a message")
                if client.has_capability("UIDPLUS"):
                    self._call(lambda: client.uid_expunge([uid]), "expunging a message")
                else:
                    self._call(lambda: client.expunge(), "expunging a message")
        except MailSourceError as exc:
            if exc.code == "error" and not self._folder_exists(target):
                raise self._no_folder(target, "processed_folder") from None
            raise
        return None

    def _copied_before(self, client: IMAPClient, uid: int, target: str) -> bool:
        """For COPY + EXPUNGE (no MOVE): whether an earlier attempt already copied this message to
        ``target`` and was cut off before the expunge (the process died). The message is marked
        with :data:`COPY_KEYWORD` before its COPY, and the copy carries the mark; a message found
        marked is looked up in ``target`` by keyword and Message-ID, so it is never copied twice.
        A server that refuses the keyword gets a plain COPY."""
        data = self._call(lambda: client.fetch([uid], ["FLAGS", MESSAGE_ID]), "reading a message's flags")
        item = data.get(uid) or {}
        if COPY_KEYWORD not in tuple(item.get(b"FLAGS") or ()):
            try:
                self._call(lambda: client.add_flags([uid], [COPY_KEYWORD], silent=True), "marking a message")
            except MailSourceError as exc:
                if exc.code != "error":
                    raise
            return False
        raw = bytes(item.get(MESSAGE_ID_KEY) or b"")
        message_id = (BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Message-ID") or "").strip()
        if not message_id:
            return False
        try:
            self._call(lambda: client.select_folder(target, readonly=True), "opening the processed folder")
            found = self._call(lambda: client.search(["KEYWORD", COPY_KEYWORD.decode(), "HEADER", "Message-ID",
                                                      message_id]), "looking for an earlier copy")
        finally:
            validity = self.uidvalidity
            self._select(client)  # back to the incoming folder
            if self.uidvalidity != validity:
                raise MailSourceError(f"The folder '{self.cfg.folder}' changed (UIDVALIDITY) while a message was "
                                      "moved; the next cycle lists it again.", code="stale")
        return bool(found)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    # -- Settings → Mail ---------------------------------------------------------------------
    def folder_tree(self) -> list[dict]:
        """Every selectable folder as [{"path": name, "children": []}] (the server's names, flat)."""
        client = self._connected()
        folders = self._call(lambda: client.list_folders(), "listing the folders")
        out = []
        for flags, _delim, name in folders:
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            out.append({"path": name, "children": []})
        return sorted(out, key=lambda n: (n["path"].upper() != "INBOX", n["path"].lower()))

    def test_connection(self) -> dict:
        """Connect, sign in, open both folders; {"ok", "step", "error", "error_code", "message_count"}."""
        step = "connect"
        try:
            client = self._connected(steps=True)
            step = "incoming_folder"
            info = self._select(client)
            step = "processed_folder"
            if self.cfg.processed_folder and not self._folder_exists(self.cfg.processed_folder):
                raise self._no_folder(self.cfg.processed_folder, "processed_folder")
            return {"ok": True, "step": None, "error": None, "error_code": None,
                    "message_count": info.get(b"EXISTS")}
        except MailSourceError as exc:
            return {"ok": False, "step": exc.details.get("step") or step, "error": exc.message,
                    "error_code": exc.code, "message_count": None}

    # -- connection ----------------------------------------------------------------------------
    def _connected(self, steps: bool = False) -> IMAPClient:
        if self._lost is not None:
            raise self._lost
        if self._client is not None:
            return self._client
        cfg = self.cfg
        if cfg.tls not in TLS_MODES:
            raise MailSourceError(f"Unknown TLS mode {cfg.tls!r}: use ssl, starttls or none.", code="not_configured",
                                  details={"step": "settings"})
        context = self._ssl_context()
        try:
            client = IMAPClient(cfg.host, port=cfg.effective_port, ssl=cfg.tls == "ssl", ssl_context=context,
                                timeout=cfg.timeout)
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from None
        except (socket.timeout, TimeoutError):
            raise MailSourceError(f"The IMAP server {cfg.where()} did not answer within {cfg.timeout:g} seconds; "
                                  "check the host name, the port and any firewall in between.",
                                  code="unreachable", details={"step": "connect"}) from None
        except socket.gaierror:
            raise MailSourceError(f"The IMAP server name '{cfg.host}' is not known (DNS); check the IMAP server "
                                  "setting.", code="unreachable", details={"step": "connect"}) from None
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            raise MailSourceError(f"Cannot reach the IMAP server {cfg.where()} ({_why(exc)}); check the host name "
                                  "and the port, and that the server accepts IMAP connections from here.",
                                  code="unreachable", details={"step": "connect"}) from None
        try:
            if cfg.tls == "starttls":
                try:
                    client.starttls(context)
                except ssl.SSLError as exc:
                    raise self._tls_error(exc) from None
                except (IMAPClientError, imaplib.IMAP4.error) as exc:
                    raise MailSourceError(f"The IMAP server {cfg.where()} does not offer STARTTLS ({_why(exc)}); "
                                          "use TLS mode ssl (usually port 993).", code="tls_failed",
                                          details={"step": "tls"}) from None
            try:
                client.login(cfg.username, cfg.password)
            except LoginError:
                raise MailSourceError(f"The IMAP server {cfg.host} refused the user name or password for "
                                      f"'{cfg.username}'. Check both; for Gmail or Google Workspace use an app "
                                      "password, not the account's password.", code="invalid_secret",
                                      details={"step": "login"}) from None
        except MailSourceError:
            _drop(client)
            raise
        except (OSError, imaplib.IMAP4.abort) as exc:
            _drop(client)
            raise MailSourceError(f"The IMAP server {cfg.where()} closed the connection while signing in "
                                  f"({_why(exc)}); test again in a minute.", code="connection_lost",
                                  details={"step": "login"}) from None
        self._client = client
        return client

    def _ssl_context(self) -> Optional[ssl.SSLContext]:
        if self.cfg.tls == "none":
            return None
        context = ssl.create_default_context()
        if self.cfg.ca_file:
            context.load_verify_locations(cafile=self.cfg.ca_file)
        return context

    def _tls_error(self, exc: ssl.SSLError) -> MailSourceError:
        cfg = self.cfg
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = f"its certificate is not trusted ({exc.verify_message})"
        else:
            why = f"the TLS handshake failed ({exc.reason or type(exc).__name__})"
        hint = ("is the port right for TLS mode ssl (993) or starttls (143)?" if not isinstance(
            exc, ssl.SSLCertVerificationError) else "the server needs a certificate for this host name from a "
            "trusted authority.")
        return MailSourceError(f"No secure connection to the IMAP server {cfg.where()}: {why}; {hint}",
                               code="tls_failed", details={"step": "tls"})

    def _selected(self) -> IMAPClient:
        client = self._connected()
        if self.uidvalidity is None:
            self._select(client)
        return client

    def _select(self, client: IMAPClient) -> dict:
        folder = self.cfg.folder
        try:
            info = client.select_folder(folder)
        except (IMAPClientError, imaplib.IMAP4.error) as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise self._connection_lost(exc, "opening the folder") from None
            raise self._no_folder(folder, "incoming_folder") from None
        except OSError as exc:
            raise self._connection_lost(exc, "opening the folder") from None
        self.uidvalidity = int(info[b"UIDVALIDITY"])
        return info

    def _folder_exists(self, folder: str) -> bool:
        client = self._connected()
        return bool(self._call(lambda: client.folder_exists(folder), "looking up a folder"))

    def _no_folder(self, folder: str, step: str) -> MailSourceError:
        what = "processed" if step == "processed_folder" else "incoming"
        try:
            names = [n["path"] for n in self.folder_tree()]
        except MailSourceError:
            names = []
        listed = ", ".join(names[:20]) or "none"
        return MailSourceError(f"No folder named '{folder}' for {self.cfg.username} on {self.cfg.host} "
                               f"(the {what} folder; folders there: {listed}). Create it, or correct the {what} "
                               "folder under Settings → Mail.", code="unknown_folder",
                               details={"step": step, "folder": folder, "existing": listed})

    def _uid_of(self, source_id: str) -> int:
        folder, validity, uid = parse_source_id(source_id)
        self._selected()
        if folder != self.cfg.folder or validity != self.uidvalidity:
            raise MailSourceError(f"The message id {source_id} is from an earlier state of the folder "
                                  f"'{folder}' (UIDVALIDITY {validity}, now {self.uidvalidity}); the next cycle "
                                  "lists the folder again.", code="stale")
        return uid

    def _call(self, fn, doing: str):
        try:
            return fn()
        except imaplib.IMAP4.abort as exc:
            raise self._connection_lost(exc, doing) from None
        except (OSError, EOFError) as exc:  # socket errors, ssl.SSLEOFError, timeouts
            raise self._connection_lost(exc, doing) from None
        except (IMAPClientError, imaplib.IMAP4.error) as exc:
            raise MailSourceError(f"The IMAP server {self.cfg.host} refused {doing}: {_why(exc)}.", code="error") from None

    def _connection_lost(self, exc: BaseException, doing: str) -> MailSourceError:
        _drop(self._client)
        self._client = None
        self._lost = MailSourceError(
            f"The connection to the IMAP server {self.cfg.where()} dropped while {doing} ({_why(exc)}); what was "
            "stored stays stored, and the next cycle imports what is left.", code="connection_lost")
        return self._lost

    # -- helpers -----------------------------------------------------------------------------
    def _describe(self, uid: int, item: Mapping[bytes, Any]) -> RemoteMessage:
        raw_headers = item.get(HEADERS_KEY) or b""
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(bytes(raw_headers))
        received = header_date(headers.get("Date"))
        internal = item.get(b"INTERNALDATE")
        if received is None and isinstance(internal, datetime):
            received = (internal if internal.tzinfo else internal.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        addresses = getaddresses([str(headers.get("From", ""))])
        message_id = str(headers.get("Message-ID", "") or "").strip()
        return RemoteMessage(source_id=f"{self.cfg.folder}:{self.uidvalidity}:{uid}", internet_message_id=message_id,
                             received_at=received, subject=decode_header_text(headers.get("Subject", "")),
                             from_address=addresses[0][1].lower() if addresses else "")


def _drop(client: Optional[IMAPClient]) -> None:
    if client is None:
        return
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - it is gone either way
        pass


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(text, str) and text.startswith("b'") and text.endswith("'"):
        text = text[2:-1]
    return text[:200] or type(exc).__name__
