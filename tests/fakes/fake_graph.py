"""A fake Microsoft identity platform + Microsoft Graph mail API on 127.0.0.1.

Two HTTPS servers (random free ports, background threads, a throw-away test
CA from :mod:`tests.fakes.tls`) that enforce the protocol as Microsoft documents it and
``backend/app/mail/graph.py`` relies on it:

identity (``authority_host``)
    ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (unknown tenant ->
    400 AADSTS90002) and ``POST /{tenant}/oauth2/v2.0/token`` for the client
    credentials grant (form body, ``client_id``, ``client_secret``, a
    ``/.default`` scope). Wrong secret -> 401 ``invalid_client`` AADSTS7000215,
    expired secret -> AADSTS7000222, unknown app -> 400 AADSTS700016.

Graph (``api_base``, ends in ``/v1.0``)
    ``/users/{mailbox}/mailFolders`` (+ ``/{id}``, ``/{id}/childFolders``,
    ``/{id}/messages``), ``/users/{mailbox}/messages/{id}`` (GET, PATCH),
    ``.../$value`` (raw MIME), ``.../move`` (201, NEW id; the old id is 404
    afterwards), ``/users/{mailbox}/sendMail`` (202, recorded in
    :attr:`FakeGraph.sent_mail`). Every request needs a bearer token minted by
    the fake identity server; the permissions in :attr:`FakeGraph.permissions`
    are bound to a token when it is minted. Paging is ``$top`` (1-1000, default
    10) with an opaque ``$skiptoken`` inside an absolute ``@odata.nextLink``
    that must be requested verbatim. ``$select``, ``$orderby=receivedDateTime``
    and ``$filter`` on ``receivedDateTime`` / ``displayName`` behave as in Graph
    (default message order is newest first; unknown properties -> 400).

Usage::

    with FakeGraph([mime1, mime2]) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        config = GraphConfig(tenant_id=fake.tenant_id, ..., authority_host=fake.authority_host,
                             api_base=fake.api_base)

Fault injection: :meth:`FakeGraph.fail` (any status on the Nth matching
request, with ``Retry-After`` and a delay, or held until the test sets an event), :meth:`FakeGraph.throttle`,
:meth:`FakeGraph.fail_mime_fetch`; wrong secret / unknown tenant / unknown
client by configuring the client differently from the fake (or setting
:attr:`FakeGraph.client_secret`, :attr:`FakeGraph.secret_expired`);
missing permission with ``permissions=`` (and ``jwt_tokens=True`` to mint tokens whose
``roles`` claim lists them, as Entra's do); unknown mailbox with
:attr:`FakeGraph.mailbox_state` or a different mailbox in the client.
All values (tenant, client id, secret, tokens) are random per instance.
"""
from __future__ import annotations

import base64
import email
import html
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.utils import getaddresses, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Optional, Union
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from .tls import fake_tls

DEFAULT_FOLDERS = (
    "Inbox",
    "Inbox/Backup reports",
    "Inbox/Backup reports/Processed",
    "Drafts",
    "Sent Items",
    "Deleted Items",
    "Junk Email",
    "Archive",
    "Outbox",
)
WELL_KNOWN = {
    "Inbox": "inbox",
    "Drafts": "drafts",
    "Sent Items": "sentitems",
    "Deleted Items": "deleteditems",
    "Junk Email": "junkemail",
    "Archive": "archive",
    "Outbox": "outbox",
}
MESSAGE_PROPERTIES = {
    "id", "internetMessageId", "subject", "from", "sender", "receivedDateTime", "sentDateTime",
    "hasAttachments", "isRead", "parentFolderId", "conversationId", "bodyPreview", "body",
    "toRecipients", "ccRecipients", "internetMessageHeaders", "createdDateTime",
    "lastModifiedDateTime", "importance", "webLink",
}
FOLDER_PROPERTIES = {
    "id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount",
    "totalItemCount", "isHidden",
}
MAX_SENDMAIL_BYTES = 4 * 1024 * 1024
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
READ_PERMISSIONS = {"Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"}
MIME_PERMISSIONS = {"Mail.Read", "Mail.ReadWrite"}


def _graph_id(prefix: str = "AAMkAD") -> str:
    """Case-sensitive opaque id with '-', '_', '+' and '=' (catches missing URL-encoding)."""
    return prefix + secrets.token_urlsafe(24) + "-_+" + secrets.token_hex(2) + "=="


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeFolder:
    id: str
    display_name: str
    parent_id: str
    path: str
    well_known: Optional[str] = None
    hidden: bool = False


@dataclass
class FakeMessage:
    id: str
    folder_id: str
    mime: bytes
    internet_message_id: str
    subject: str
    from_name: str
    from_address: str
    received: datetime
    sent: Optional[datetime]
    body_html: str
    body_text: str
    has_attachments: bool
    is_read: bool = False
    conversation_id: str = field(default_factory=lambda: _graph_id("AAQkAD"))


@dataclass
class Fault:
    """One scripted failure. Matches requests by server, method and path substring;
    fires from the ``nth`` matching request on, ``times`` times in a row."""

    status: int
    server: str = "graph"                 # "graph" or "idp"
    method: Optional[str] = None
    path_contains: Optional[str] = None   # substring of the decoded path
    nth: int = 1
    times: int = 1
    retry_after: Optional[str] = None
    code: Optional[str] = None
    delay: float = 0.0                    # seconds to sleep before answering
    hold: Optional[threading.Event] = None  # answer only once the test sets it (at most 120 s)
    seen: int = 0
    fired: int = 0

    def matches(self, server: str, method: str, path: str) -> bool:
        return (
            self.server == server
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


@dataclass
class RequestRecord:
    at: float                 # time.monotonic()
    server: str               # "idp" or "graph"
    method: str
    path: str                 # decoded path, without the query
    query: dict
    status: int = 0


@dataclass
class SentMail:
    to: list[str]
    subject: str
    content_type: str
    body: str
    attachments: list[tuple[str, str, bytes]]
    save_to_sent_items: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        """Clients that give up (timeouts, an untrusted test CA) are expected; stay quiet."""


class FakeGraph:
    """Fake identity platform + Graph mailbox; a context manager (starts/stops the servers)."""

    def __init__(
        self,
        mails: Iterable[Union[bytes, tuple[bytes, datetime]]] = (),
        folders: Iterable[str] = DEFAULT_FOLDERS,
        incoming: str = "Inbox/Backup reports",
        processed: str = "Inbox/Backup reports/Processed",
        *,
        mailbox: str = "backup-reports@contoso.example",
        permissions: Iterable[str] = ("Mail.ReadWrite", "Mail.Send"),
        expires_in: int = 3599,
        page_size: int = 10,
        jwt_tokens: bool = False,
    ):
        self.tenant_id = str(uuid.uuid4())
        self.client_id = str(uuid.uuid4())
        self.client_secret = "fake-secret-" + secrets.token_urlsafe(18)
        self.secret_expired = False
        self.mailbox = mailbox
        #: "ok", "unknown" (404 ErrorInvalidUser) or "rest_disabled" (404 MailboxNotEnabledForRESTAPI)
        self.mailbox_state = "ok"
        self.permissions = set(permissions)
        #: mint tokens shaped like Entra's (a JWT whose ``roles`` claim lists the permissions)
        #: instead of opaque strings; the signature is random, as a client never checks it
        self.jwt_tokens = jwt_tokens
        self.expires_in = expires_in
        self.page_size = page_size
        self.requests: list[RequestRecord] = []
        self.counts: Counter = Counter()          # route name -> number of requests
        self.sent_mail: list[SentMail] = []
        self.faults: list[Fault] = []
        self.moves: list[tuple[str, str]] = []    # (old id, new id)
        self._tokens: dict[str, tuple[float, frozenset]] = {}
        self._cursors: dict[str, tuple[str, dict, int]] = {}
        self._lock = threading.RLock()
        self._servers: list[_Server] = []
        self.authority_host = ""
        self.api_base = ""
        self.ca_bundle = fake_tls().ca_bundle

        self.root = FakeFolder(_graph_id("AQMkAD"), "Top of Information Store", "", "", "msgfolderroot")
        self.folders: dict[str, FakeFolder] = {}
        for path in folders:
            self.add_folder(path)
        self.messages: dict[str, FakeMessage] = {}
        self.incoming = incoming
        self.processed = processed
        base = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)
        for index, mail in enumerate(mails):
            if isinstance(mail, tuple):
                self.add_message(mail[0], incoming, received=mail[1])
            else:
                self.add_message(mail, incoming, received=base + timedelta(minutes=index))

    # -- state helpers (usable by tests) ------------------------------------
    def add_folder(self, path: str, hidden: bool = False) -> FakeFolder:
        parts = [p for p in path.split("/") if p]
        parent = self.root
        for depth, name in enumerate(parts):
            sub = "/".join(parts[: depth + 1])
            found = self.folder_by_path(sub)
            if found is None:
                found = FakeFolder(
                    _graph_id("AQMkAD"), name, parent.id, sub,
                    WELL_KNOWN.get(sub) if depth == 0 else None, hidden and depth == len(parts) - 1,
                )
                self.folders[found.id] = found
            parent = found
        return parent

    def folder_by_path(self, path: str) -> Optional[FakeFolder]:
        path = "/".join(p for p in path.split("/") if p)
        return next((f for f in self.folders.values() if f.path == path), None)

    def add_message(self, mime: bytes, folder: str = None, received: Optional[datetime] = None) -> FakeMessage:
        target = self.folder_by_path(folder or self.incoming)
        if target is None:
            raise ValueError(f"fake has no folder {folder!r}")
        parsed = email.message_from_bytes(mime, policy=policy.default)
        sent = _date(parsed.get("Date"))
        addresses = getaddresses([str(parsed.get("From", ""))])
        name, address = addresses[0] if addresses else ("", "")
        body_html, body_text, has_attachments = _bodies(parsed)
        msg = FakeMessage(
            id=_graph_id(),
            folder_id=target.id,
            mime=mime,
            internet_message_id=str(parsed.get("Message-ID", "") or "").strip(),
            subject=str(parsed.get("Subject", "") or ""),
            from_name=name,
            from_address=address,
            received=received or sent or datetime.now(timezone.utc),
            sent=sent,
            body_html=body_html,
            body_text=body_text,
            has_attachments=has_attachments,
        )
        with self._lock:
            self.messages[msg.id] = msg
        return msg

    def messages_in(self, path: str) -> list[FakeMessage]:
        """Messages currently in the folder at ``path``, oldest first."""
        folder = self.folder_by_path(path)
        if folder is None:
            return []
        with self._lock:
            found = [m for m in self.messages.values() if m.folder_id == folder.id]
        return sorted(found, key=lambda m: m.received)

    def forget(self, path: str) -> int:
        """Drop the messages of the folder at ``path`` and the request and move records kept so far;
        returns how many messages were dropped. For long runs (the soak) that count what they
        need and must not keep every mail and request of a simulated week in memory."""
        folder = self.folder_by_path(path)
        with self._lock:
            gone = [k for k, m in self.messages.items() if folder is not None and m.folder_id == folder.id]
            for k in gone:
                del self.messages[k]
            self.requests.clear()
            self.moves.clear()
        return len(gone)

    @property
    def by_folder(self) -> dict[str, list[FakeMessage]]:
        """Folder path -> its messages (oldest first), for every folder."""
        return {f.path: self.messages_in(f.path) for f in self.folders.values()}

    def config_values(self) -> dict:
        """Keyword arguments for ``GraphConfig`` aimed at this fake."""
        return {"tenant_id": self.tenant_id, "client_id": self.client_id,
                "client_secret": self.client_secret, "mailbox": self.mailbox,
                "incoming_folder": self.incoming, "processed_folder": self.processed,
                "authority_host": self.authority_host, "api_base": self.api_base}

    def env(self) -> dict[str, str]:
        """Environment for an app process (e.g. gunicorn) that should read this fake mailbox."""
        return {"GRAPH_TENANT_ID": self.tenant_id, "GRAPH_CLIENT_ID": self.client_id,
                "GRAPH_CLIENT_SECRET": self.client_secret, "GRAPH_MAILBOX": self.mailbox,
                "GRAPH_INCOMING_FOLDER": self.incoming, "GRAPH_PROCESSED_FOLDER": self.processed,
                "GRAPH_AUTHORITY_HOST": self.authority_host, "GRAPH_API_BASE": self.api_base,
                "REQUESTS_CA_BUNDLE": self.ca_bundle}

    @property
    def token_requests(self) -> int:
        return self.counts["token"]

    @property
    def graph_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.server == "graph"]

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (Graph answers 401 until a new one is fetched)."""
        with self._lock:
            self._tokens.clear()

    # -- fault injection -----------------------------------------------------
    def fail(self, status: int, **kwargs) -> Fault:
        """Script a failure; see :class:`Fault` for the keyword arguments."""
        fault = Fault(status=status, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def throttle(self, nth: int = 1, retry_after: Union[int, str] = 1, times: int = 1, **kwargs) -> Fault:
        """429 with ``Retry-After`` on the Nth (matching) Graph request."""
        return self.fail(429, nth=nth, retry_after=str(retry_after), times=times,
                         code="ApplicationThrottled", **kwargs)

    def fail_mime_fetch(self, message_id: Optional[str] = None, status: int = 503, times: int = 1,
                        retry_after: Optional[str] = None) -> Fault:
        """``status`` on the MIME download (``$value``) of one message (or any)."""
        path = f"/messages/{message_id}/$value" if message_id else "/$value"
        return self.fail(status, method="GET", path_contains=path, times=times, retry_after=retry_after,
                         code="serviceNotAvailable" if status == 503 else None)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "FakeGraph":
        tls = fake_tls()
        for kind in ("idp", "graph"):
            server = _Server(("127.0.0.1", 0), _make_handler(self, kind))
            server.socket = tls.server_context().wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"fake-{kind}", daemon=True)
            thread.start()
            self._servers.append(server)
        self.authority_host = f"https://127.0.0.1:{self._servers[0].server_address[1]}"
        self.api_base = f"https://127.0.0.1:{self._servers[1].server_address[1]}/v1.0"
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self) -> "FakeGraph":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------
    def _handle(self, kind: str, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        path = "/" + "/".join(segments)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        record = RequestRecord(time.monotonic(), kind, req.command, path, query)
        with self._lock:
            self.requests.append(record)
            fault = self._due_fault(kind, req.command, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.hold is not None:
                fault.hold.wait(120)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if kind == "idp":
                status, headers2, payload = fault.status, headers, _json(
                    {"error": fault.code or "temporarily_unavailable",
                     "error_description": f"AADSTS50196: fake fault {fault.status}"})
                headers2["Content-Type"] = "application/json; charset=utf-8"
            else:
                status, headers2, payload = _graph_error(
                    fault.status, fault.code or _default_code(fault.status), "Fake fault injected.", headers)
            record.status = status
            _send(req, status, headers2, payload)
            return
        try:
            if kind == "idp":
                status, headers, payload = self._idp(req, segments, body)
            else:
                status, headers, payload = self._graph(req, segments, query, body, split.query)
        except _Reply as reply:
            status, headers, payload = reply.status, reply.headers, reply.payload
        record.status = status
        _send(req, status, headers, payload)

    def _due_fault(self, kind: str, method: str, path: str) -> Optional[Fault]:
        for fault in self.faults:
            if fault.fired >= fault.times or not fault.matches(kind, method, path):
                continue
            fault.seen += 1
            if fault.seen >= fault.nth:
                fault.fired += 1
                return fault
        return None

    # identity ------------------------------------------------------------------
    def _idp(self, req, segments, body):
        tenant = segments[0] if segments else ""
        rest = "/".join(segments[1:])
        if req.command == "GET" and rest == "v2.0/.well-known/openid-configuration":
            self.counts["discovery"] += 1
            if tenant != self.tenant_id:
                return _idp_error(400, "invalid_tenant", 90002,
                                  f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                                  "tenant ID and are signing into the correct cloud.")
            base = f"{self.authority_host}/{tenant}"
            return 200, {"Content-Type": "application/json"}, _json({
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "tenant_region_scope": "EU",
            })
        if req.command == "POST" and rest == "oauth2/v2.0/token":
            self.counts["token"] += 1
            if tenant != self.tenant_id:
                return _idp_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
            ctype = req.headers.get("Content-Type", "")
            if not ctype.startswith("application/x-www-form-urlencoded"):
                return _idp_error(400, "invalid_request", 900144,
                                  "The request body must contain the following parameter: 'grant_type'.")
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
            if form.get("grant_type") != "client_credentials":
                return _idp_error(400, "unsupported_grant_type", 70003,
                                  "The app requested an unsupported grant type.")
            if form.get("client_id") != self.client_id:
                return _idp_error(400, "unauthorized_client", 700016,
                                  f"Application with identifier '{form.get('client_id')}' was not found in "
                                  f"the directory '{tenant}'.")
            if self.secret_expired:
                return _idp_error(401, "invalid_client", 7000222,
                                  f"The provided client secret keys for app '{self.client_id}' are expired.")
            if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
                return _idp_error(401, "invalid_client", 7000215,
                                  "Invalid client secret provided. Ensure the secret being sent in the "
                                  "request is the client secret value, not the client secret ID, for a "
                                  f"secret added to app '{self.client_id}'.")
            scopes = form.get("scope", "").split()
            if not scopes or any(not s.endswith("/.default") for s in scopes):
                return _idp_error(400, "invalid_scope", 1002012,
                                  "The provided value for scope is not valid. Client credential flows "
                                  "must have a scope value with /.default suffixed to the resource identifier.")
            token = self._mint_token()
            with self._lock:
                self._tokens[token] = (time.time() + self.expires_in, frozenset(self.permissions))
            return 200, {"Content-Type": "application/json"}, _json({
                "token_type": "Bearer", "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in, "access_token": token,
            })
        return _idp_error(404, "invalid_request", 90027, "Unknown endpoint.")

    def _mint_token(self) -> str:
        if not self.jwt_tokens:
            return "fake-at-" + secrets.token_urlsafe(32)
        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(_json(data)).rstrip(b"=").decode("ascii")
        claims = {"aud": "https://graph.microsoft.com", "tid": self.tenant_id, "appid": self.client_id,
                  "exp": int(time.time()) + self.expires_in, "roles": sorted(self.permissions)}
        return (part({"typ": "JWT", "alg": "RS256"}) + "." + part(claims) + "."
                + secrets.token_urlsafe(32))

    # graph -----------------------------------------------------------------------
    def _graph(self, req, segments, query, body, raw_query):
        if not segments or segments[0] != "v1.0":
            return _graph_error(400, "BadRequest", "Invalid version.")
        segments = segments[1:]
        roles = self._authenticate(req)
        if segments[:1] == ["me"]:
            return _graph_error(400, "BadRequest",
                                "/me request is only valid with delegated authentication flow.")
        if len(segments) < 3 or segments[0] != "users":
            return _graph_error(400, "BadRequest", "Resource not found for the segment.")
        user, rest = segments[1], segments[2:]
        if user.lower() != self.mailbox.lower() or self.mailbox_state == "unknown":
            return _graph_error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        if self.mailbox_state == "rest_disabled":
            return _graph_error(404, "MailboxNotEnabledForRESTAPI",
                                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        method = req.command
        with self._lock:
            if rest == ["sendMail"] and method == "POST":
                self.counts["sendMail"] += 1
                return self._send_mail(req, roles, body)
            self._need(roles, READ_PERMISSIONS)
            if rest[0] == "mailFolders":
                if len(rest) == 1 and method == "GET":
                    self.counts["folders"] += 1
                    return self._list_folders(rest, self.root, query, raw_query)
                folder = self._folder(rest[1])
                if len(rest) == 2 and method == "GET":
                    self.counts["folder"] += 1
                    return _ok(self._folder_json(folder, query.get("$select")))
                if len(rest) == 3 and rest[2] == "childFolders" and method == "GET":
                    self.counts["childFolders"] += 1
                    return self._list_folders(rest, folder, query, raw_query)
                if len(rest) == 3 and rest[2] == "messages" and method == "GET":
                    self.counts["messages"] += 1
                    return self._list_messages(rest, folder, req, query)
            if rest[0] == "messages" and len(rest) >= 2:
                msg = self.messages.get(rest[1])
                if msg is None:
                    return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                if len(rest) == 2 and method == "GET":
                    self.counts["message"] += 1
                    return _ok(self._message_json(msg, _select(query, MESSAGE_PROPERTIES), req))
                if len(rest) == 2 and method == "PATCH":
                    self.counts["patch"] += 1
                    self._need(roles, {"Mail.ReadWrite"})
                    changes = _json_body(req, body)
                    if "isRead" in changes:
                        msg.is_read = bool(changes["isRead"])
                    return _ok(self._message_json(msg, None, req))
                if len(rest) == 3 and rest[2] == "$value" and method == "GET":
                    self.counts["mime"] += 1
                    self._need(roles, MIME_PERMISSIONS)
                    return 200, {"Content-Type": "text/plain"}, msg.mime
                if len(rest) == 3 and rest[2] == "move" and method == "POST":
                    self.counts["move"] += 1
                    self._need(roles, {"Mail.ReadWrite"})
                    destination = _json_body(req, body).get("destinationId")
                    if not destination:
                        return _graph_error(400, "ErrorInvalidParameter", "destinationId is required.")
                    target = self._folder(destination)
                    del self.messages[msg.id]
                    old = msg.id
                    msg.id, msg.folder_id = _graph_id(), target.id
                    self.messages[msg.id] = msg
                    self.moves.append((old, msg.id))
                    return 201, {"Content-Type": "application/json"}, _json(self._message_json(msg, None, req))
        return _graph_error(405 if method not in ("GET", "POST", "PATCH") else 400, "BadRequest",
                            f"Unsupported request {method} {'/'.join(rest)}.")

    def _authenticate(self, req) -> frozenset:
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise _Reply(*_graph_error(401, "InvalidAuthenticationToken", "Access token is empty.",
                                       {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}))
        with self._lock:
            entry = self._tokens.get(header[7:].strip())
        if entry is None:
            raise _Reply(*_graph_error(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.",
                                       {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}))
        if entry[0] < time.time():
            raise _Reply(*_graph_error(401, "InvalidAuthenticationToken",
                                       "Lifetime validation failed, the token is expired.",
                                       {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}))
        return entry[1]

    @staticmethod
    def _need(roles: frozenset, any_of: set) -> None:
        if not roles & any_of:
            raise _Reply(*_graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."))

    def _folder(self, ref: str) -> FakeFolder:
        if ref.lower() == "msgfolderroot":
            return self.root
        for folder in self.folders.values():
            if folder.id == ref or (folder.well_known and folder.well_known == ref.lower()):
                return folder
        raise _Reply(*_graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store."))

    def _folder_json(self, folder: FakeFolder, select: Optional[str] = None) -> dict:
        with self._lock:
            children = [f for f in self.folders.values() if f.parent_id == folder.id]
            inside = [m for m in self.messages.values() if m.folder_id == folder.id]
        full = {
            "id": folder.id, "displayName": folder.display_name, "parentFolderId": folder.parent_id,
            "childFolderCount": len(children), "unreadItemCount": sum(not m.is_read for m in inside),
            "totalItemCount": len(inside), "isHidden": folder.hidden,
        }
        if select:
            keep = _select({"$select": select}, FOLDER_PROPERTIES)
            full = {k: v for k, v in full.items() if k in keep or k == "id"}
        return full

    def _page(self, name: str, query: dict, items: list, path: str):
        """Slice ``items`` by $top/$skiptoken; returns (page, nextLink or None)."""
        offset = 0
        token = query.get("$skiptoken")
        options = {k: v for k, v in query.items() if k != "$skiptoken"}
        if token is not None:
            cursor = self._cursors.get(token)
            if cursor is None or cursor[0] != path or cursor[1] != options:
                raise _Reply(*_graph_error(400, "BadRequest", "The $skiptoken is invalid or does not belong "
                                                              "to this query; follow @odata.nextLink verbatim."))
            offset = cursor[2]
        top = self.page_size
        if "$top" in query:
            try:
                top = int(query["$top"])
            except ValueError:
                top = 0
            if not 1 <= top <= 1000:
                raise _Reply(*_graph_error(400, "ErrorInvalidArgument",
                                           "The value of $top must be between 1 and 1000."))
        page = items[offset: offset + top]
        link = None
        if offset + top < len(items):
            nxt = secrets.token_urlsafe(12)
            self._cursors[nxt] = (path, options, offset + top)
            link = (self.api_base.rsplit("/v1.0", 1)[0] + quote(path) + "?"
                    + urlencode({**options, "$skiptoken": nxt}))
        return page, link

    def _list_folders(self, rest, parent: FakeFolder, query, raw_query):
        children = [f for f in self.folders.values() if f.parent_id == parent.id]
        if query.get("includeHiddenFolders", "").lower() != "true":
            children = [f for f in children if not f.hidden]
        flt = query.get("$filter")
        if flt:
            m = re.fullmatch(r"\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*", flt)
            if not m:
                return _graph_error(400, "BadRequest", "Invalid filter clause.")
            wanted = m.group(1).replace("''", "'")
            children = [f for f in children if f.display_name.lower() == wanted.lower()]
        _select(query, FOLDER_PROPERTIES)  # validates
        path = "/v1.0/users/" + self.mailbox + "/" + "/".join(rest)
        page, link = self._page("folders", query, children, path)
        payload = {"@odata.context": f"{self.api_base}/$metadata#users('{self.mailbox}')/mailFolders",
                   "value": [self._folder_json(f, query.get("$select")) for f in page]}
        if link:
            payload["@odata.nextLink"] = link
        return _ok(payload)

    def _list_messages(self, rest, folder: FakeFolder, req, query):
        select = _select(query, MESSAGE_PROPERTIES)
        items = [m for m in self.messages.values() if m.folder_id == folder.id]
        flt, order = query.get("$filter"), query.get("$orderby")
        descending = True
        if order:
            m = re.fullmatch(r"\s*receivedDateTime(?:\s+(asc|desc))?\s*", order)
            if not m:
                return _graph_error(400, "BadRequest", f"Sorting on '{order}' is not supported by this fake.")
            descending = m.group(1) == "desc"
        if flt:
            clauses = [c.strip() for c in re.split(r"\s+and\s+", flt.strip())]
            if order and not clauses[0].startswith("receivedDateTime"):
                return _graph_error(400, "InefficientFilter",
                                    "The restriction or sort order is too complex for this operation.")
            for clause in clauses:
                m = re.fullmatch(r"(receivedDateTime|isRead)\s+(eq|ne|ge|gt|le|lt)\s+(\S+)", clause)
                if not m:
                    return _graph_error(400, "BadRequest", f"Invalid filter clause: {clause}")
                prop, op, raw = m.groups()
                if prop == "isRead":
                    value = raw.lower() == "true"
                    items = [x for x in items if (x.is_read == value) == (op == "eq")]
                    continue
                try:
                    when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                except ValueError:
                    return _graph_error(400, "BadRequest", f"Invalid date literal: {raw}")
                cmp = {"eq": lambda a: a == when, "ne": lambda a: a != when, "ge": lambda a: a >= when,
                       "gt": lambda a: a > when, "le": lambda a: a <= when, "lt": lambda a: a < when}[op]
                items = [x for x in items if cmp(x.received)]
        items.sort(key=lambda x: (x.received, x.id), reverse=descending)
        path = "/v1.0/users/" + self.mailbox + "/" + "/".join(rest)
        page, link = self._page("messages", query, items, path)
        payload = {"@odata.context": f"{self.api_base}/$metadata#users('{self.mailbox}')/messages",
                   "value": [self._message_json(x, select, req) for x in page]}
        if link:
            payload["@odata.nextLink"] = link
        return _ok(payload)

    def _message_json(self, msg: FakeMessage, select: Optional[set], req) -> dict:
        want_text = 'outlook.body-content-type="text"' in req.headers.get("Prefer", "")
        address = {"emailAddress": {"name": msg.from_name, "address": msg.from_address}}
        full = {
            "@odata.etag": 'W/"CQAAABYAAAC' + secrets.token_hex(6) + '"',
            "id": msg.id,
            "createdDateTime": _iso(msg.received),
            "lastModifiedDateTime": _iso(msg.received),
            "receivedDateTime": _iso(msg.received),
            "sentDateTime": _iso(msg.sent or msg.received),
            "hasAttachments": msg.has_attachments,
            "internetMessageId": msg.internet_message_id,
            "subject": msg.subject,
            "bodyPreview": msg.body_text[:255],
            "importance": "normal",
            "parentFolderId": msg.folder_id,
            "conversationId": msg.conversation_id,
            "isRead": msg.is_read,
            "webLink": "https://outlook.office365.com/owa/?ItemID=" + quote(msg.id, safe=""),
            "body": ({"contentType": "text", "content": msg.body_text} if want_text
                     else {"contentType": "html", "content": msg.body_html}),
            "sender": address,
            "from": address,
            "toRecipients": [],
            "ccRecipients": [],
        }
        if select:
            full = {k: v for k, v in full.items() if k in select or k in ("id", "@odata.etag")}
        return full

    def _send_mail(self, req, roles, body):
        self._need(roles, {"Mail.Send"})
        if len(body) > MAX_SENDMAIL_BYTES:
            return _graph_error(413, "RequestBodyTooLarge", "The request body is larger than 4 MB.")
        data = _json_body(req, body)
        message = data.get("message")
        if not isinstance(message, dict):
            return _graph_error(400, "ErrorInvalidParameter", "The 'message' property is required.")
        body_part = message.get("body") or {}
        content_type = str(body_part.get("contentType", "text")).lower()
        if content_type not in ("text", "html"):
            return _graph_error(400, "BadRequest", "body.contentType must be Text or HTML.")
        to = []
        for recipient in message.get("toRecipients") or []:
            addr = ((recipient or {}).get("emailAddress") or {}).get("address")
            if not addr or "@" not in addr:
                return _graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
            to.append(addr)
        if not to:
            return _graph_error(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        attachments = []
        for att in message.get("attachments") or []:
            if att.get("@odata.type") != "#microsoft.graph.fileAttachment" or not att.get("name"):
                return _graph_error(400, "BadRequest", "Attachments need @odata.type fileAttachment and a name.")
            try:
                content = base64.b64decode(att.get("contentBytes", ""), validate=True)
            except ValueError:
                return _graph_error(400, "BadRequest", "contentBytes is not valid base64.")
            attachments.append((att["name"], att.get("contentType", "application/octet-stream"), content))
        self.sent_mail.append(SentMail(to, str(message.get("subject", "")), content_type,
                                       str(body_part.get("content", "")), attachments,
                                       bool(data.get("saveToSentItems", True))))
        return 202, {}, b""


class _Reply(Exception):
    def __init__(self, status, headers, payload):
        super().__init__(status)
        self.status, self.headers, self.payload = status, headers, payload


def _make_handler(fake: FakeGraph, kind: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeGraph/1.0"

        def setup(self):
            # answer in one segment: no Nagle/delayed-ACK 40 ms stalls between header and body
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def _any(self):
            try:
                fake._handle(kind, self)
            except (ConnectionError, TimeoutError, OSError):
                self.close_connection = True

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


def _send(req, status: int, headers: dict, payload: bytes) -> None:
    req.send_response(status)
    for key, value in headers.items():
        req.send_header(key, value)
    req.send_header("Content-Length", str(len(payload)))
    req.send_header("request-id", str(uuid.uuid4()))
    req.end_headers()
    if payload and req.command != "HEAD":
        req.wfile.write(payload)


def _json(data) -> bytes:
    return json.dumps(data).encode("utf-8")


def _ok(data):
    return 200, {"Content-Type": "application/json; odata.metadata=minimal; charset=utf-8"}, _json(data)


def _json_body(req, body: bytes) -> dict:
    if not req.headers.get("Content-Type", "").startswith("application/json"):
        raise _Reply(*_graph_error(415, "UnsupportedMediaType", "Content-Type must be application/json."))
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise _Reply(*_graph_error(400, "BadRequest", "Unable to read JSON request payload.")) from None
    if not isinstance(data, dict):
        raise _Reply(*_graph_error(400, "BadRequest", "The request payload must be a JSON object."))
    return data


def _graph_error(status: int, code: str, message: str, headers: Optional[dict] = None):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    payload = {"error": {"code": code, "message": message,
                         "innerError": {"date": now, "request-id": str(uuid.uuid4()),
                                        "client-request-id": str(uuid.uuid4())}}}
    return status, {**(headers or {}), "Content-Type": "application/json"}, _json(payload)


def _idp_error(status: int, error: str, code: int, description: str):
    payload = {"error": error, "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()}",
               "error_codes": [code], "timestamp": datetime.now(timezone.utc).isoformat(),
               "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
    return status, {"Content-Type": "application/json; charset=utf-8"}, _json(payload)


def _default_code(status: int) -> str:
    return {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout",
            500: "generalException", 401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied",
            404: "ErrorItemNotFound"}.get(status, "BadRequest")


def _select(query: dict, allowed: set) -> Optional[set]:
    raw = query.get("$select")
    if not raw:
        return None
    wanted = {p.strip() for p in raw.split(",") if p.strip()}
    unknown = wanted - allowed
    if unknown:
        raise _Reply(*_graph_error(400, "RequestBroker--ParseUri",
                                   f"Could not find a property named '{sorted(unknown)[0]}'."))
    return wanted


def _date(value) -> Optional[datetime]:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _bodies(parsed) -> tuple[str, str, bool]:
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    body_html = html_part.get_content() if html_part is not None else ""
    body_text = text_part.get_content() if text_part is not None else ""
    if not body_html and body_text:
        body_html = "<html><body><pre>" + html.escape(body_text) + "</pre></body></html>"
    if not body_text and body_html:
        body_text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body_html))).strip()
    has_attachments = any(True for _ in parsed.iter_attachments()) if parsed.is_multipart() else False
    return body_html, body_text, has_attachments


def make_mime(subject: str = "[Success] Backup job 'Fake job'", *, sender: str = "backup@customer.example",
              date: Optional[datetime] = None, body: str = "<p>All objects processed.</p>",
              message_id: Optional[str] = None) -> bytes:
    """A small HTML report mail for tests (no customer data)."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    msg = EmailMessage()
    msg["From"] = f"Backup <{sender}>"
    msg["To"] = "backup-reports@contoso.example"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(domain="fake.example")
    msg.set_content("All objects processed.")
    msg.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return bytes(msg)
