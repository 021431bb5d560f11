"""Delivering one message to one channel; no database here.

``deliver`` returns a ``Result``: sent, or not sent and whether trying again later may help
(429, 5xx, a timeout or a connection error may; any other 4xx, a bad URL or a refusal may not).
An e-mail channel gets its recipients and its resolved transport (``mail_transport.Transport``)
from the caller (``EmailTarget``), and is sent by ``mail_transport.send`` (SMTP: 4xx replies and
connection errors are tried again, 5xx replies are not).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Optional

import requests

from ..outcome import Result  # noqa: F401 (callers import it from here)

KINDS = ("webhook", "slack", "teams", "discord", "apprise", "email")
KIND_LABELS = {"webhook": "Webhook (JSON, signed)", "slack": "Slack", "teams": "Microsoft Teams (Workflows)",
               "discord": "Discord", "apprise": "Apprise URL (any other service)", "email": "E-mail"}
TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Backupchecks-Signature"
GONE = (401, 403, 404, 410)  # what a deleted or revoked webhook answers (Teams, Slack, Discord)


@dataclass(frozen=True)
class EmailTarget:
    """An e-mail channel's recipients and the transport (graph or smtp) resolved by the caller."""
    recipients: tuple
    transport: object  # mail_transport.Transport


def signature(body: bytes, secret: str) -> str:
    """The webhook's signature header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def title_and_text(payload: dict) -> tuple[str, str]:
    """A short title and a one-paragraph text for a human channel."""
    event = payload.get("event") or "notification"
    if event == "test":
        return "Backupchecks test", payload.get("message") or "A test message from Backupchecks."
    who = " / ".join(str(p) for p in (payload.get("customer"), payload.get("job")) if p)
    words = {"failed": "failed", "missed": "was missed", "warning": "ended with a warning",
             "recovery": "succeeded again"}
    title = f"Backup {words.get(event, event)}: {who}" if who else f"Backup {event}"
    lines = [title]
    if payload.get("started_at"):
        lines.append(f"Started: {payload['started_at']}")
    if payload.get("message"):
        lines.append(str(payload["message"])[:1500])
    return title, "\n".join(lines)


def teams_card(title: str, body: str) -> dict:
    """A Teams Workflows webhook message: one Adaptive Card 1.4."""
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
                     {"type": "TextBlock", "text": body, "wrap": True}],
        }}]}


def request_for(kind: str, payload: dict, secret: Optional[str] = None) -> tuple[bytes, dict]:
    """The body and headers POSTed to an HTTP channel."""
    title, body = title_and_text(payload)
    if kind == "webhook":
        data = payload
    elif kind == "slack":
        data = {"text": body}
    elif kind == "teams":
        data = teams_card(title, body)
    elif kind == "discord":
        data = {"content": body[:2000]}
    else:
        raise ValueError(f"unknown channel kind {kind!r}")
    raw = json.dumps(data, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Backupchecks"}
    if kind == "webhook" and secret:
        headers[SIGNATURE_HEADER] = signature(raw, secret)
    return raw, headers


def _post(url: str, raw: bytes, headers: dict, timeout: float) -> Result:
    try:
        resp = requests.post(url, data=raw, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        return Result(False, True, f"no answer within {timeout:.0f} s")
    except requests.ConnectionError as exc:
        return Result(False, True, f"connection failed: {_short(exc)}")
    except requests.RequestException as exc:
        return Result(False, False, f"request refused: {_short(exc)}")
    if 200 <= resp.status_code < 300:
        return Result(True)
    reason = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
    detail = (resp.text or "").strip()[:200]
    if detail:
        reason += f": {detail}"
    if resp.status_code in GONE:
        reason += (" (the service no longer accepts this URL: the webhook may have been deleted or revoked;"
                   " enter its new URL in the channel)")
    return Result(False, resp.status_code == 429 or resp.status_code >= 500, reason)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__


def email_parts(payload: dict) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an e-mail notification."""
    import html

    title, body = title_and_text(payload)
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in body.splitlines()[1:] if line.strip())
    page = (f"<!DOCTYPE html><html><body style=\"font-family: Arial, sans-serif;\">"
            f"<h2 style=\"font-size: 16px;\">{html.escape(title)}</h2>{paragraphs}"
            f"<p style=\"color: #666; font-size: 12px;\">Sent by Backupchecks.</p></body></html>")
    return title, body + "\n\n-- \nSent by Backupchecks.\n", page


def deliver(kind: str, url: Optional[str], payload: dict, *, secret: Optional[str] = None,
            timeout: float = TIMEOUT_SECONDS, email: Optional[EmailTarget] = None) -> Result:
    """Send one message; never raises."""
    try:
        if kind == "email":
            from ..mail_transport import OutgoingMail, send

            if email is None:
                return Result(False, False, "no mail transport given")
            subject, text, page = email_parts(payload)
            return send(email.transport, OutgoingMail(list(email.recipients), subject, text, page),
                        timeout=timeout)
        if kind == "apprise":
            return _apprise(url, payload, timeout)
        raw, headers = request_for(kind, payload, secret)
        return _post(url, raw, headers, timeout)
    except Exception as exc:  # noqa: BLE001 - a delivery error is a result, not a crash
        return Result(False, True, f"error: {_short(exc)}")


def _apprise(url: str, payload: dict, timeout: float) -> Result:
    import apprise

    title, body = title_and_text(payload)
    ap = apprise.Apprise()
    if not ap.add(url):
        return Result(False, False, "Apprise does not know this URL")
    for server in ap:
        # Apprise's HTTP services read their timeouts from these attributes.
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            if hasattr(server, attr):
                setattr(server, attr, timeout)
    if ap.notify(title=title, body=body):
        return Result(True)
    # Apprise only says whether it worked: we can't tell a refusal from an outage, so try again.
    return Result(False, True, "the service did not accept the message (see the server log)")


def apprise_url_ok(url: str) -> bool:
    import apprise

    return apprise.Apprise.instantiate(url) is not None
