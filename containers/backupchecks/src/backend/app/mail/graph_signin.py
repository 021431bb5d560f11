"""Signing in to Microsoft Graph: the configuration of one mailbox, the process-wide msal applications
(one per authority host, tenant and client, so their token cache works: one token request per hour,
not one per call), the errors of the sign-in service, and the permissions a token grants.

Every failure an operator can fix becomes a :class:`MailSourceError` whose message says what is wrong
and where to fix it; secrets and tokens are never part of a message or a log line.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

import msal
import requests

from .base import MailSourceError

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_API_BASE = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
MICROSOFT_AUTHORITY_HOSTS = {
    "login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn", "login.microsoftonline.de", "login.windows.net",
}
SETTINGS_HINT = "Settings → Mail"
#: where the two endpoints are set: the environment only (not the Settings page)
AUTHORITY_HINT = "the environment variable GRAPH_AUTHORITY_HOST"
API_BASE_HINT = "the environment variable GRAPH_API_BASE"


@dataclass
class GraphConfig:
    """Everything needed to reach one mailbox. ``client_secret`` is never shown in repr()."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    mailbox: str
    incoming_folder: str = "Inbox"
    processed_folder: str = ""
    authority_host: str = DEFAULT_AUTHORITY_HOST
    api_base: str = DEFAULT_API_BASE
    timeout: float = 30.0            # seconds, per HTTP request (connect and read)
    max_attempts: int = 4            # tries per Graph request on 429/503/504
    max_retry_wait: float = 60.0     # cap (seconds) for one Retry-After or backoff wait
    backoff_base: float = 0.5        # first backoff wait for 503/504 without Retry-After
    page_size: int = 50              # $top for message listing (1-1000)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **overrides: Any) -> "GraphConfig":
        """Build from a mapping with ``graph_*`` keys (the Settings page / config.GRAPH_ENV names)."""
        def get(key: str, default: str = "") -> str:
            value = settings.get(key)
            return default if value is None else str(value).strip()

        values = dict(
            tenant_id=get("graph_tenant_id"),
            client_id=get("graph_client_id"),
            client_secret=get("graph_client_secret"),
            mailbox=get("graph_mailbox"),
            incoming_folder=get("graph_incoming_folder", "Inbox") or "Inbox",
            processed_folder=get("graph_processed_folder"),
            authority_host=get("graph_authority_host", DEFAULT_AUTHORITY_HOST) or DEFAULT_AUTHORITY_HOST,
            api_base=get("graph_api_base", DEFAULT_API_BASE) or DEFAULT_API_BASE,
        )
        values.update(overrides)
        return cls(**values)

    def missing(self) -> list[str]:
        """Names of required settings that are empty."""
        labels = {"tenant_id": "Tenant ID", "client_id": "Client ID", "client_secret": "Client secret",
                  "mailbox": "Mailbox", "incoming_folder": "Incoming folder"}
        return [label for attr, label in labels.items() if not str(getattr(self, attr) or "").strip()]


# -- msal application cache (one per authority host, tenant and client) ---------------------------

_apps: dict[tuple[str, str, str], tuple[str, msal.ConfidentialClientApplication]] = {}
_apps_lock = threading.Lock()


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def reset_token_cache() -> None:
    """Forget every msal application (and so every cached token); e.g. after settings changed."""
    with _apps_lock:
        _apps.clear()


def msal_app(config: GraphConfig) -> msal.ConfidentialClientApplication:
    """The process-wide msal application for this config (its token cache is shared)."""
    host = config.authority_host.rstrip("/")
    key = (host.lower(), config.tenant_id.strip().lower(), config.client_id.strip().lower())
    fingerprint = _fingerprint(config.client_secret)
    with _apps_lock:
        cached = _apps.get(key)
        if cached and cached[0] == fingerprint:
            return cached[1]
        app = build_msal_app(config)
        _apps[key] = (fingerprint, app)
        return app


def build_msal_app(config: GraphConfig) -> msal.ConfidentialClientApplication:
    """A new msal application (this does network I/O: the tenant's discovery document)."""
    host = config.authority_host.rstrip("/")
    hostname = (urlsplit(host).hostname or "").lower()
    try:
        return msal.ConfidentialClientApplication(
            config.client_id.strip(),
            client_credential=config.client_secret,
            authority=f"{host}/{config.tenant_id.strip()}",
            # Microsoft's own hosts may be validated; a custom host (a sovereign cloud
            # proxy or a test endpoint) cannot be. Instance discovery is never needed
            # for the client credentials flow and would call login.microsoftonline.com.
            validate_authority=hostname in MICROSOFT_AUTHORITY_HOSTS,
            instance_discovery=False,
            timeout=config.timeout,
        )
    except requests.exceptions.RequestException as exc:
        raise network_error(exc, "the Microsoft sign-in service", host, AUTHORITY_HINT) from None
    except ValueError as exc:
        text = str(exc)
        if "https" in text and "should consist of" in text:
            raise MailSourceError(
                f"The authority host {host!r} is not a valid https:// address; correct the "
                f"environment variable GRAPH_AUTHORITY_HOST (default {DEFAULT_AUTHORITY_HOST}).",
                code="not_configured") from None
        raise unknown_tenant_error(config) from None
    except Exception as exc:  # noqa: BLE001 - msal raises MsalServiceError/HTTPError on 5xx
        raise MailSourceError(
            f"The Microsoft sign-in service at {host} is not available right now "
            f"({short_error(exc)}); the import will try again later.", code="unavailable") from None


def unknown_tenant_error(config: GraphConfig) -> MailSourceError:
    return MailSourceError(
        f"Microsoft Entra does not know the tenant {config.tenant_id!r} (AADSTS90002). "
        f"Copy the Directory (tenant) ID from Azure portal → App registrations → Overview "
        f"into {SETTINGS_HINT} → Tenant ID.", code="unknown_tenant", details={"aadsts": 90002})


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def network_error(exc: BaseException, what: str, base: str, setting: str) -> MailSourceError:
    """``setting`` names where the address is configured (an environment variable)."""
    host = urlsplit(base).netloc or base
    details = {"host": host}
    if isinstance(exc, requests.exceptions.SSLError):
        return MailSourceError(
            f"The TLS certificate of {what} at {host} could not be verified. If a proxy inspects "
            f"TLS, add its CA to the container's CA bundle (REQUESTS_CA_BUNDLE); otherwise check "
            f"{setting}.", code="unreachable", details=details)
    if isinstance(exc, requests.exceptions.Timeout):
        return MailSourceError(
            f"{what[0].upper() + what[1:]} at {host} did not answer in time. Check the server's "
            f"internet access, proxy and firewall, or {setting}.", code="unreachable", details=details)
    return MailSourceError(
        f"Cannot reach {what} at {host}. Check the server's internet access, DNS, proxy and "
        f"firewall, or {setting}.", code="unreachable", details=details)


# -- what a token grants -------------------------------------------------------------------------

def token_roles(token: str) -> Optional[list[str]]:
    """The application permissions (``roles`` claim) in an access token, when it is a readable
    JWT with that claim; None otherwise (the token format is Microsoft's business, so a token
    that cannot be read is never an error)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    roles = payload.get("roles") if isinstance(payload, dict) else None
    return [str(r) for r in roles] if isinstance(roles, list) else None


def check_roles(token: str, permission: str) -> None:
    """Raise ``access_denied`` when the token lists its permissions and ``permission`` is not one."""
    roles = token_roles(token)
    if roles is None or permission in roles:
        return
    granted = ", ".join(sorted(roles)) or "none"
    raise MailSourceError(
        f"The app registration has no {permission} permission (its token grants: {granted}); the import "
        f"needs it to move mails to the processed folder. Add the Microsoft Graph application permission "
        f"{permission} in Azure → App registrations → API permissions and grant admin consent.",
        code="access_denied", details={"permission": permission, "granted": sorted(roles)})
