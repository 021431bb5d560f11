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
from datetime import datetime, timezone, tzinfo
from typing import Optional
from urllib.parse import urlencode

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


@dataclass(frozen=True)
class Context:
    """What a message needs from the installation, resolved by the caller once per pass: the UI
    timezone (times are shown in it) and the app's address (a link to the job in Run Checks)."""
    zone: Optional[tzinfo] = None
    base_url: Optional[str] = None


NO_CONTEXT = Context()
_WORDS = {"failed": "failed", "missed": "was missed", "warning": "ended with a warning",
          "recovery": "succeeded again"}


def local_time(value, zone: Optional[tzinfo]) -> str:
    """An ISO timestamp (UTC) as people read it, in ``zone``: "Fri 4 Dec 2026 03:00 CET"."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(zone or timezone.utc)
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M} {moment.tzname() or ''}".strip()


def open_url(payload: dict, ctx: Context = NO_CONTEXT) -> Optional[str]:
    """The job in Run Checks, when the app's address is known."""
    base = (ctx.base_url or "").strip().rstrip("/")
    if not base or not payload.get("job_id"):
        return None
    return f"{base}/run-checks?{urlencode({'job': payload['job_id']})}"


def title_of(payload: dict) -> str:
    event = payload.get("event") or "notification"
    if event == "test":
        return "Backupchecks test"
    who = " / ".join(str(p) for p in (payload.get("customer"), payload.get("job")) if p)
    return f"Backup {_WORDS.get(event, event)}: {who}" if who else f"Backup {event}"


def facts(payload: dict, ctx: Context = NO_CONTEXT) -> list[tuple[str, str]]:
    """The labelled values of a run's message (customer, job, status, start in the UI timezone)."""
    if (payload.get("event") or "") == "test":
        return []
    pairs = [("Customer", payload.get("customer")), ("Job", payload.get("job")),
             ("Status", payload.get("status")), ("Started", local_time(payload.get("started_at"), ctx.zone))]
    return [(label, str(value)) for label, value in pairs if value]


def detail(payload: dict) -> str:
    """The run's message (the error line first), or the test text."""
    if (payload.get("event") or "") == "test":
        return payload.get("message") or "A test message from Backupchecks."
    return str(payload.get("message") or "")[:1500].strip()


def title_and_text(payload: dict, ctx: Context = NO_CONTEXT) -> tuple[str, str]:
    """A short title and the text under it (the facts, the run's message and the link; not the
    title again) for a human channel."""
    lines = [f"{label}: {value}" for label, value in facts(payload, ctx)]
    if detail(payload):
        lines += ["", detail(payload)] if lines else [detail(payload)]
    url = open_url(payload, ctx)
    if url:
        lines += ["", f"Open in Backupchecks: {url}"]
    return title_of(payload), "\n".join(lines)


def teams_card(payload: dict, ctx: Context = NO_CONTEXT) -> dict:
    """A Teams Workflows webhook message: one Adaptive Card 1.4 (title, facts, the run's message,
    a button to the job in Run Checks)."""
    body = [{"type": "TextBlock", "text": title_of(payload), "weight": "Bolder", "size": "Medium", "wrap": True}]
    pairs = facts(payload, ctx)
    if pairs:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs]})
    if detail(payload):
        body.append({"type": "TextBlock", "text": detail(payload), "wrap": True})
    content = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
               "type": "AdaptiveCard", "version": "1.4", "body": body}
    url = open_url(payload, ctx)
    if url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Backupchecks", "url": url}]
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}]}


def request_for(kind: str, payload: dict, secret: Optional[str] = None,
                ctx: Context = NO_CONTEXT) -> tuple[bytes, dict]:
    """The body and headers POSTed to an HTTP channel."""
    title, text = title_and_text(payload, ctx)
    if kind == "webhook":
        url = open_url(payload, ctx)
        data = {**payload, "url": url} if url else payload
    elif kind == "slack":
        data = {"text": f"*{title}*\n{text}".rstrip()}
    elif kind == "teams":
        data = teams_card(payload, ctx)
    elif kind == "discord":
        data = {"content": f"**{title}**\n{text}".rstrip()[:2000]}
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


def email_parts(payload: dict, ctx: Context = NO_CONTEXT) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an e-mail notification."""
    import html

    title, text = title_and_text(payload, ctx)
    rows = "".join(f"<tr><td style=\"color:#555;padding:2px 12px 2px 0\">{html.escape(k)}</td>"
                   f"<td style=\"padding:2px 0\">{html.escape(v)}</td></tr>" for k, v in facts(payload, ctx))
    parts = [f"<h2 style=\"font-size:16px\">{html.escape(title)}</h2>"]
    if rows:
        parts.append(f"<table style=\"border-collapse:collapse;font-size:14px\">{rows}</table>")
    if detail(payload):
        parts.append(f"<p style=\"white-space:pre-wrap\">{html.escape(detail(payload))}</p>")
    url = open_url(payload, ctx)
    if url:
        parts.append(f"<p><a href=\"{html.escape(url)}\">Open in Backupchecks</a></p>")
    page = ("<!DOCTYPE html><html><body style=\"font-family: Arial, sans-serif;\">" + "".join(parts)
            + "<p style=\"color: #666; font-size: 12px;\">Sent by Backupchecks.</p></body></html>")
    return title, text + "\n\n-- \nSent by Backupchecks.\n", page


def deliver(kind: str, url: Optional[str], payload: dict, *, secret: Optional[str] = None,
            timeout: float = TIMEOUT_SECONDS, email: Optional[EmailTarget] = None,
            ctx: Context = NO_CONTEXT) -> Result:
    """Send one message; never raises."""
    try:
        if kind == "email":
            from ..mail_transport import OutgoingMail, send

            if email is None:
                return Result(False, False, "no mail transport given")
            subject, text, page = email_parts(payload, ctx)
            return send(email.transport, OutgoingMail(list(email.recipients), subject, text, page),
                        timeout=timeout)
        if kind == "apprise":
            return _apprise(url, payload, timeout, ctx)
        raw, headers = request_for(kind, payload, secret, ctx)
        return _post(url, raw, headers, timeout)
    except Exception as exc:  # noqa: BLE001 - a delivery error is a result, not a crash
        return Result(False, True, f"error: {_short(exc)}")


def _apprise(url: str, payload: dict, timeout: float, ctx: Context = NO_CONTEXT) -> Result:
    import apprise

    title, body = title_and_text(payload, ctx)
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
