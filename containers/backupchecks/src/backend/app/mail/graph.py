"""Microsoft 365 mailbox as a mail source, through Microsoft Graph (app-only).

Signing in (the OAuth client credentials grant with msal, one application and token cache per
tenant and client for the whole process) is ``graph_signin``'s. Graph is called with ``requests``;
TLS is verified the standard way, so ``REQUESTS_CA_BUNDLE`` applies to both endpoints.

How Graph is used (setup: docs/configuration.md):

* folders are configured as paths of display names from the mailbox root
  (``Inbox/Backup reports``) and resolved to ids once per source object;
* messages are listed oldest first with a tight ``$select``, following
  ``@odata.nextLink`` verbatim;
* the raw MIME comes from ``/messages/{id}/$value``;
* a move returns the message with a NEW id (the old one is gone);
* 429 honours ``Retry-After`` (capped), 503/504 back off exponentially, both a
  bounded number of times; after that a :class:`MailSourceError`.

Every failure an operator can fix becomes a :class:`MailSourceError` whose
message says what is wrong and where to fix it; secrets and tokens are never
part of a message or a log line.
"""
from __future__ import annotations

import base64
import logging
import random
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import quote

import msal
import requests

from .base import MailSource, MailSourceError, RemoteMessage
from .graph_signin import (  # noqa: F401 (reset_token_cache: callers import it from here)
    API_BASE_HINT,
    AUTHORITY_HINT,
    GRAPH_SCOPES,
    SETTINGS_HINT,
    GraphConfig,
    build_msal_app,
    check_roles,
    msal_app,
    network_error,
    reset_token_cache,
    short_error,
    unknown_tenant_error,
)

log = logging.getLogger(__name__)

MESSAGE_SELECT = "id,internetMessageId,subject,from,receivedDateTime"
FOLDER_SELECT = "id,displayName,childFolderCount,totalItemCount"
#: well-known folder names Graph accepts instead of an id (first path part only;
#: lets "Inbox/..." work on mailboxes whose Inbox is called e.g. "Postvak IN")
WELL_KNOWN_FOLDERS = {
    "inbox": "inbox", "archive": "archive", "drafts": "drafts", "sentitems": "sentitems",
    "sent items": "sentitems", "deleteditems": "deleteditems", "deleted items": "deleteditems",
    "junkemail": "junkemail", "junk email": "junkemail", "outbox": "outbox",
}
SENDMAIL_LIMIT_BYTES = 4 * 1024 * 1024  # Graph's request size limit for sendMail with JSON
MAX_FOLDER_DEPTH = 12


# -- the mail source ------------------------------------------------------------------------------

class GraphMailSource(MailSource):
    name = "graph"

    def __init__(self, config: GraphConfig, *, sleep: Callable[[float], None] = time.sleep,
                 shared_token_cache: bool = True):
        """``shared_token_cache=False`` gives this source its own msal application, so it asks
        Microsoft Entra for a new token instead of reusing a cached one (the connection test:
        it must see a permission granted a minute ago, and must not touch the importer's cache)."""
        self.config = config
        self._shared_token_cache = shared_token_cache
        self._own_app: Optional[msal.ConfidentialClientApplication] = None
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": "Backupchecks"})
        self._api = config.api_base.rstrip("/")
        self._user_url = f"{self._api}/users/{quote(config.mailbox.strip(), safe='@')}"
        self._folder_ids: dict[str, str] = {}

    def close(self) -> None:
        self._session.close()

    # -- MailSource ----------------------------------------------------------------
    def list_messages(self, limit: Optional[int] = None) -> list[RemoteMessage]:
        """Messages in the incoming folder, oldest first, at most ``limit`` (all when None)."""
        folder_id = self.resolve_folder(self.config.incoming_folder, setting="Incoming folder")
        top = max(1, min(self.config.page_size, limit or self.config.page_size, 1000))
        url: Optional[str] = f"{self._user_url}/mailFolders/{_seg(folder_id)}/messages"
        params: Optional[dict] = {"$select": MESSAGE_SELECT, "$orderby": "receivedDateTime asc", "$top": top}
        found: list[RemoteMessage] = []
        while url and (limit is None or len(found) < limit):
            data = self._get_json(url, params, what="list the messages of the incoming folder")
            for item in data.get("value", []):
                found.append(_remote(item))
            url, params = data.get("@odata.nextLink"), None   # the link carries every query option
        return found[:limit] if limit is not None else found

    def fetch_raw(self, source_id: str) -> bytes:
        """The raw RFC 822 bytes (``/messages/{id}/$value``)."""
        resp = self._request("GET", f"{self._user_url}/messages/{_seg(source_id)}/$value",
                             what=f"download message {source_id!r}", headers={"Accept": "*/*"},
                             permission="Mail.Read")
        return resp.content

    def mark_processed(self, source_id: str) -> Optional[str]:
        """Move the message to the processed folder; returns its NEW id (Graph ids change on move)."""
        if not (self.config.processed_folder or "").strip():
            raise MailSourceError(
                f"No processed folder is set, so imported mail cannot be moved out of the incoming "
                f"folder. Choose one under {SETTINGS_HINT} → Processed folder.", code="not_configured")
        folder_id = self.resolve_folder(self.config.processed_folder, setting="Processed folder")
        try:
            resp = self._request("POST", f"{self._user_url}/messages/{_seg(source_id)}/move",
                                 json={"destinationId": folder_id}, expect=(200, 201), idempotent=False,
                                 what=f"move message {source_id!r} to the processed folder",
                                 permission="Mail.ReadWrite")
        except MailSourceError as exc:
            if exc.code == "not_found":  # the folder may be gone: resolve it again next time
                self._folder_ids.clear()
            raise
        return _json(resp).get("id")

    # -- folders ---------------------------------------------------------------------
    def folder_tree(self) -> list[dict]:
        """The mailbox's folders for a folder picker: [{id, display_name, path, children}, ...]."""
        def build(url: str, parent_path: str, depth: int) -> list[dict]:
            nodes = []
            for item in self._children(url):
                path = f"{parent_path}/{item['displayName']}" if parent_path else item["displayName"]
                children = []
                if item.get("childFolderCount") and depth < MAX_FOLDER_DEPTH:
                    children = build(f"{self._user_url}/mailFolders/{_seg(item['id'])}/childFolders",
                                     path, depth + 1)
                nodes.append({"id": item["id"], "display_name": item["displayName"], "path": path,
                              "children": children})
            return nodes

        return build(f"{self._user_url}/mailFolders", "", 1)

    def resolve_folder(self, path: str, setting: str = "Incoming folder") -> str:
        """The id of the folder at ``path`` (display names from the mailbox root, '/'-separated)."""
        parts = [p.strip() for p in (path or "").split("/") if p.strip()]
        if not parts:
            raise MailSourceError(f"The folder path is empty; choose a folder under {SETTINGS_HINT} → {setting}.",
                                  code="unknown_folder", details={"folder": "", "path": "", "setting": setting})
        key = "/".join(parts).lower()
        if key in self._folder_ids:
            return self._folder_ids[key]
        url = f"{self._user_url}/mailFolders"
        folder_id = ""
        for depth, part in enumerate(parts):
            children = self._children(url)
            match = next((c for c in children if c["displayName"] == part), None) or next(
                (c for c in children if c["displayName"].lower() == part.lower()), None)
            if match is None and depth == 0 and part.lower() in WELL_KNOWN_FOLDERS:
                match = self._get_json(f"{self._user_url}/mailFolders/{WELL_KNOWN_FOLDERS[part.lower()]}",
                                       {"$select": FOLDER_SELECT}, what=f"open the folder {part!r}",
                                       not_found_ok=True)
            if not match:
                where = "at the top of the mailbox" if depth == 0 else f"inside {'/'.join(parts[:depth])!r}"
                names = ", ".join(sorted(c["displayName"] for c in children)[:15]) or "none"
                raise MailSourceError(
                    f"The folder {part!r} (from {path!r}) does not exist {where} in mailbox "
                    f"{self.config.mailbox}. Folders there: {names}. Correct {SETTINGS_HINT} → {setting}.",
                    code="unknown_folder",
                    details={"folder": part, "path": "/".join(parts), "parent": "/".join(parts[:depth]),
                             "existing": names, "setting": setting})
            folder_id = match["id"]
            url = f"{self._user_url}/mailFolders/{_seg(folder_id)}/childFolders"
        self._folder_ids[key] = folder_id
        return folder_id

    def _children(self, url: str) -> list[dict]:
        items: list[dict] = []
        params: Optional[dict] = {"$select": FOLDER_SELECT, "$top": 100}
        next_url: Optional[str] = url
        while next_url:
            data = self._get_json(next_url, params, what="list the mailbox folders")
            items.extend(data.get("value", []))
            next_url, params = data.get("@odata.nextLink"), None
        return items

    # -- settings page ---------------------------------------------------------------
    def test_connection(self) -> dict:
        """Check sign-in, mailbox, permission and folders, in that order; never raises.

        Returns ``{"ok", "token", "mailbox", "incoming_folder_id", "processed_folder_id",
        "message_count", "error", "error_code", "error_details", "step"}``; ``step`` is the
        first step that failed (``"settings"``, ``"token"``, ``"mailbox"``, ``"permission"``,
        ``"incoming_folder"``, ``"processed_folder"``), None when all passed.
        """
        report: dict[str, Any] = {"ok": False, "token": False, "mailbox": False,
                                  "incoming_folder_id": None, "processed_folder_id": None,
                                  "message_count": None, "error": None, "error_code": None,
                                  "error_details": {}, "step": "settings"}
        try:
            missing = self.config.missing()
            if missing:
                raise MailSourceError(f"Fill in {', '.join(missing)} under {SETTINGS_HINT}.",
                                      code="not_configured", details={"missing": missing})
            report["step"] = "token"
            token = self._token()
            report["token"] = True
            report["step"] = "mailbox"
            self._get_json(f"{self._user_url}/mailFolders/inbox", {"$select": "id"}, what="open the mailbox")
            report["mailbox"] = True
            report["step"] = "permission"
            check_roles(token, "Mail.ReadWrite")
            report["step"] = "incoming_folder"
            incoming = self.resolve_folder(self.config.incoming_folder, setting="Incoming folder")
            report["incoming_folder_id"] = incoming
            folder = self._get_json(f"{self._user_url}/mailFolders/{_seg(incoming)}",
                                    {"$select": "id,totalItemCount"}, what="count the incoming messages")
            report["message_count"] = folder.get("totalItemCount")
            if (self.config.processed_folder or "").strip():
                report["step"] = "processed_folder"
                report["processed_folder_id"] = self.resolve_folder(self.config.processed_folder,
                                                                    setting="Processed folder")
            report["ok"], report["step"] = True, None
        except MailSourceError as exc:
            report["error"], report["error_code"], report["error_details"] = exc.message, exc.code, exc.details
        except Exception as exc:  # noqa: BLE001 - the settings page shows it instead of a 500
            log.exception("Graph connection test failed unexpectedly")
            report["error"], report["error_code"] = f"Unexpected error: {type(exc).__name__}.", "error"
        return report

    # -- sending -------------------------------------------------------------------------
    def send_mail(self, to: Sequence[str], subject: str, html_body: str,
                  attachments: Iterable[tuple[str, str, bytes]] = (), save_to_sent_items: bool = True) -> None:
        """Send an HTML mail from the mailbox (POST /users/{mailbox}/sendMail; needs Mail.Send)."""
        recipients = [a.strip() for a in to if a and a.strip()]
        if not recipients:
            raise MailSourceError("The mail has no recipients; add at least one address.", code="error")
        files = [{"@odata.type": "#microsoft.graph.fileAttachment", "name": name,
                  "contentType": ctype or "application/octet-stream",
                  "contentBytes": base64.b64encode(content).decode("ascii")}
                 for name, ctype, content in attachments]
        payload = {"message": {"subject": subject, "body": {"contentType": "HTML", "content": html_body},
                               "toRecipients": [{"emailAddress": {"address": a}} for a in recipients],
                               **({"attachments": files} if files else {})},
                   "saveToSentItems": bool(save_to_sent_items)}
        size = sum(len(f["contentBytes"]) for f in files) + len(html_body.encode("utf-8"))
        if size > SENDMAIL_LIMIT_BYTES - 64 * 1024:
            raise MailSourceError(
                f"The mail is too large to send through Microsoft Graph ({size // 1024} KB encoded, "
                f"the limit is 4 MB); send fewer or smaller attachments.", code="too_large")
        self._request("POST", f"{self._user_url}/sendMail", json=payload, expect=(202,), idempotent=False,
                      what="send a mail", permission="Mail.Send")

    # -- plumbing ---------------------------------------------------------------------------
    def _app(self) -> msal.ConfidentialClientApplication:
        if self._shared_token_cache:
            return msal_app(self.config)
        if self._own_app is None:
            self._own_app = build_msal_app(self.config)
        return self._own_app

    def _token(self) -> str:
        missing = self.config.missing()
        if missing:
            raise MailSourceError(f"Fill in {', '.join(missing)} under {SETTINGS_HINT}.", code="not_configured")
        app = self._app()
        try:
            result = app.acquire_token_for_client(scopes=list(GRAPH_SCOPES))
        except requests.exceptions.RequestException as exc:
            raise network_error(exc, "the Microsoft sign-in service", self.config.authority_host,
                                 AUTHORITY_HINT) from None
        except Exception as exc:  # noqa: BLE001 - MsalServiceError / HTTPError on 5xx, ValueError on junk
            raise MailSourceError(
                f"The Microsoft sign-in service is not available right now ({short_error(exc)}); "
                f"the import will try again later.", code="unavailable") from None
        if "access_token" in result:
            return result["access_token"]
        raise self._token_error(result)

    def _token_error(self, result: Mapping[str, Any]) -> MailSourceError:
        error = str(result.get("error") or "")
        description = str(result.get("error_description") or "")
        codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
        codes += [int(c) for c in re.findall(r"AADSTS(\d+)", description)]
        log.warning("Token request refused: %s (AADSTS %s)", error, ",".join(map(str, codes)) or "-")
        cfg = self.config
        details = {"error": error, "aadsts": codes[0] if codes else None}
        if 7000215 in codes:
            return MailSourceError(
                "Microsoft Entra refused the client secret (AADSTS7000215): it is wrong, or the "
                "secret's ID was entered instead of its value. Copy the secret *value* from Azure → "
                f"App registrations → Certificates & secrets into {SETTINGS_HINT} → Client secret.",
                code="invalid_secret", details={**details, "aadsts": 7000215})
        if 7000222 in codes:
            return MailSourceError(
                "The client secret has expired (AADSTS7000222). Create a new one in Azure → App "
                f"registrations → Certificates & secrets and save it under {SETTINGS_HINT} → Client secret.",
                code="invalid_secret", details={**details, "aadsts": 7000222})
        if 700016 in codes:
            return MailSourceError(
                f"Microsoft Entra has no application with client ID {cfg.client_id!r} in tenant "
                f"{cfg.tenant_id!r} (AADSTS700016). Copy the Application (client) ID from Azure → "
                f"App registrations → Overview into {SETTINGS_HINT} → Client ID, and check the tenant.",
                code="unknown_client", details={**details, "aadsts": 700016})
        if 90002 in codes or error == "invalid_tenant":
            return unknown_tenant_error(cfg)
        if error == "invalid_client":
            return MailSourceError(
                f"Microsoft Entra refused the app's credentials ({error}). Check {SETTINGS_HINT} → "
                "Client ID and Client secret.", code="invalid_secret", details=details)
        first = f" (AADSTS{codes[0]})" if codes else ""
        return MailSourceError(
            f"Microsoft Entra refused the sign-in: {error or 'unknown error'}{first}. Check the app "
            f"registration and {SETTINGS_HINT}.", code="auth_failed", details=details)

    def _get_json(self, url: str, params: Optional[dict], what: str, not_found_ok: bool = False):
        resp = self._request("GET", url, params=params, what=what, not_found_ok=not_found_ok)
        return None if resp is None else _json(resp)

    def _request(self, method: str, url: str, *, params: Optional[dict] = None, json: Any = None,
                 headers: Optional[dict] = None, expect: Sequence[int] = (200,), idempotent: bool = True,
                 what: str = "call Microsoft Graph", permission: str = "Mail.ReadWrite",
                 not_found_ok: bool = False) -> Optional[requests.Response]:
        cfg = self.config
        retry_on = {429, 503, 504} if idempotent else {429, 503}
        attempt, reauthenticated = 0, False
        while True:
            attempt += 1
            token = self._token()
            try:
                resp = self._session.request(
                    method, url, params=params, json=json, timeout=cfg.timeout,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"})
            except requests.exceptions.RequestException as exc:
                raise network_error(exc, "Microsoft Graph", self._api, API_BASE_HINT) from None
            status = resp.status_code
            if status in expect:
                return resp
            if status == 401 and not reauthenticated:
                # token revoked or expired early: drop it, fetch a new one, try once more
                reauthenticated = True
                self._app().remove_tokens_for_client()
                attempt -= 1
                continue
            if status in retry_on and attempt < max(1, cfg.max_attempts):
                wait = self._retry_wait(resp, attempt)
                log.info("Graph answered %s to %s; retry %d in %.2fs", status, method, attempt, wait)
                self._sleep(wait)
                continue
            if status == 404 and not_found_ok and _error_code(resp) == "ErrorItemNotFound":
                return None
            raise self._graph_error(resp, what, permission, attempt)

    def _retry_wait(self, resp: requests.Response, attempt: int) -> float:
        cfg = self.config
        wait = _retry_after(resp.headers.get("Retry-After"))
        if wait is None:
            wait = cfg.backoff_base * (2 ** (attempt - 1))
            wait += random.uniform(0, wait * 0.1)
        return max(0.0, min(wait, cfg.max_retry_wait))

    def _graph_error(self, resp: requests.Response, what: str, permission: str, attempts: int) -> MailSourceError:
        status, code = resp.status_code, _error_code(resp)
        mailbox = self.config.mailbox
        details = {"graph_code": code, "permission": permission}
        if status == 401:
            return MailSourceError(
                f"Microsoft Graph rejected the access token ({code or status}) while trying to {what}. "
                f"Check that the app registration belongs to tenant {self.config.tenant_id!r} "
                f"({SETTINGS_HINT} → Tenant ID).", code="auth_failed", status=status, details=details)
        if status == 403:
            return MailSourceError(
                f"Microsoft Graph denied access to mailbox {mailbox} ({code or status}) while trying to "
                f"{what}. Grant the application permission {permission} with admin consent in Azure → "
                f"App registrations → API permissions, and check that no Exchange application access "
                f"policy excludes this mailbox.", code="access_denied", status=status, details=details)
        if status == 404 and code in ("ErrorInvalidUser", "MailboxNotEnabledForRESTAPI",
                                      "ErrorNonExistentMailbox", "ResourceNotFound", "UserNotFound"):
            return MailSourceError(
                f"The mailbox {mailbox!r} does not exist or has no Exchange Online mailbox ({code}). "
                f"Enter its user principal name or primary address under {SETTINGS_HINT} → Mailbox.",
                code="unknown_mailbox", status=status, details=details)
        if status == 404:
            return MailSourceError(
                f"Microsoft Graph could not {what}: it was not found ({code or status}); it may have "
                f"been moved or deleted in the mailbox.", code="not_found", status=status, details=details)
        if status == 429:
            return MailSourceError(
                f"Microsoft Graph kept throttling requests for mailbox {mailbox} (429) after {attempts} "
                f"attempts; the import will try again in the next cycle.", code="throttled", status=status, details=details)
        if status in (500, 502, 503, 504):
            return MailSourceError(
                f"Microsoft Graph is not available right now ({status} {code or ''}".rstrip()
                + f") after {attempts} attempts to {what}; the import will try again in the next cycle.",
                code="unavailable", status=status, details=details)
        message = _error_message(resp)
        return MailSourceError(
            f"Microsoft Graph refused to {what}: {status} {code or ''} {message}".strip(),
            code="error", status=status, details=details)


# -- helpers --------------------------------------------------------------------------------------

def _seg(value: str) -> str:
    """One URL path segment (Graph ids contain '+', '/', '=' ...)."""
    return quote(value, safe="")


def _json(resp: requests.Response) -> dict:
    try:
        data = resp.json()
    except ValueError:
        raise MailSourceError(
            f"Microsoft Graph sent an answer that is not JSON (HTTP {resp.status_code}); a proxy may be "
            f"in the way. Check {API_BASE_HINT}.", code="error") from None
    return data if isinstance(data, dict) else {}


def _error_body(resp: requests.Response) -> dict:
    try:
        data = resp.json()
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _error_code(resp: requests.Response) -> str:
    return str(_error_body(resp).get("code") or "")


def _error_message(resp: requests.Response) -> str:
    return str(_error_body(resp).get("message") or "")[:300]


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _parse_time(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _remote(item: Mapping[str, Any]) -> RemoteMessage:
    sender = ((item.get("from") or {}).get("emailAddress") or {}).get("address") or ""
    return RemoteMessage(
        source_id=item["id"],
        internet_message_id=item.get("internetMessageId") or "",
        received_at=_parse_time(item.get("receivedDateTime")),
        subject=item.get("subject") or "",
        from_address=sender.lower(),
    )
