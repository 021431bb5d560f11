"""Channels (Settings → Notifications): validation, saving with an audit entry, test messages.

The target URL and the webhook secret are write-only: forms leave them empty to keep what is
stored, and audit entries show them masked. An e-mail channel has recipients and a transport
(graph or smtp, ``mail_transport``) instead of a URL."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ...extensions import db
from ...models import NotificationChannel, NotificationOutbox, utcnow
from .. import audit
from ..mail_transport import TRANSPORTS, AddressError, parse_addresses, resolve
from .delivery import KINDS, EmailTarget, Result, apprise_url_ok, deliver

TEST_TIMEOUT_SECONDS = 5.0
EVENT_FLAGS = ("on_failed", "on_missed", "on_warning", "on_recovery")


class ChannelError(ValueError):
    """A message for the form."""


def kind_for_url(url: str) -> str:
    """``notify --test``: an http(s) URL is a JSON webhook, anything else an Apprise URL."""
    return "webhook" if urlsplit(url.strip()).scheme.lower() in ("http", "https") else "apprise"


def check_url(kind: str, url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ChannelError("Enter the channel's URL.")
    if len(url) > 2000:
        raise ChannelError("The URL is too long (at most 2,000 characters).")
    if kind == "apprise":
        if "://" not in url:
            raise ChannelError("An Apprise URL looks like scheme://…, for example mailto://user:pass@example.com.")
        if not apprise_url_ok(url):
            scheme = url.split("://", 1)[0]
            raise ChannelError(f"Apprise does not know the scheme “{scheme}://” or cannot read this URL.")
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ChannelError("The URL must start with https:// (or http://) and name a host.")
    return url


def send_test(kind: str, url: Optional[str], secret: Optional[str] = None, *, timeout: float = TEST_TIMEOUT_SECONDS,
              message: str = "A test message from Backupchecks.", email: Optional[EmailTarget] = None) -> Result:
    payload = {"event": "test", "message": message, "sent_at": utcnow().isoformat()}
    return deliver(kind, url, payload, secret=secret, timeout=timeout, email=email)


def send_channel_test(channel: NotificationChannel) -> Result:
    """"Send test" on Settings → Notifications (an e-mail channel through its transport)."""
    timeout = 20.0 if channel.kind == "email" else TEST_TIMEOUT_SECONDS
    return send_test(channel.kind, channel.target_url, channel.secret, timeout=timeout,
                     email=email_target(channel, {}))


def email_target(channel: NotificationChannel, transports: dict) -> Optional[EmailTarget]:
    """An e-mail channel's recipients and resolved transport (``transports`` caches them per kind
    for one sender pass); None for any other kind."""
    if channel.kind != "email":
        return None
    kind = channel.transport or "graph"
    if kind not in transports:
        transports[kind] = resolve(kind)
    try:
        recipients = tuple(parse_addresses(channel.recipients))
    except AddressError:
        recipients = ()
    return EmailTarget(recipients, transports[kind])


@dataclass
class ChannelForm:
    name: str
    kind: str
    url: str  # empty: keep the stored URL
    secret: str  # empty: keep the stored secret
    clear_secret: bool
    enabled: bool
    flags: dict
    recipients: str = ""  # email: addresses, comma separated
    transport: str = "graph"  # email: graph | smtp


def _snapshot(ch: NotificationChannel) -> dict:
    return {"name": ch.name, "kind": ch.kind, "target_url": ch.target_url, "secret": ch.secret,
            "recipients": ch.recipients, "transport": ch.transport, "enabled": ch.enabled, **{f: getattr(ch, f) for f in EVENT_FLAGS}}


def save_channel(form: ChannelForm, channel: Optional[NotificationChannel] = None) -> NotificationChannel:
    """Create or update a channel; raises ChannelError. Flushes; the caller commits."""
    name = (form.name or "").strip()
    if not name:
        raise ChannelError("Give the channel a name.")
    if len(name) > 120:
        raise ChannelError("The name is too long (at most 120 characters).")
    if form.kind not in KINDS:
        raise ChannelError("Choose the kind of channel.")
    url = (form.url or "").strip()
    recipients = transport = None
    if form.kind == "email":
        try:
            recipients = ", ".join(parse_addresses(form.recipients))
        except AddressError as exc:
            raise ChannelError(str(exc)) from None
        if not recipients:
            raise ChannelError("Enter at least one recipient address.")
        transport = form.transport if form.transport in TRANSPORTS else None
        if transport is None:
            raise ChannelError("Choose how the mail is sent: the Microsoft 365 mailbox or the SMTP server.")
        url = ""
    else:
        if not url and (channel is None or not channel.target_url):
            raise ChannelError("Enter the channel's URL.")
        if url or channel.kind != form.kind:
            url = check_url(form.kind, url or channel.target_url)
    if len(form.secret or "") > 500:
        raise ChannelError("The signing secret is too long (at most 500 characters).")
    before = _snapshot(channel) if channel is not None else None
    ch = channel or NotificationChannel()
    ch.name, ch.kind, ch.enabled = name, form.kind, form.enabled
    if form.kind == "email":
        ch.target_url, ch.recipients, ch.transport = None, recipients, transport
    else:
        ch.recipients = ch.transport = None
        if url:
            ch.target_url = url
    if form.kind != "webhook" or form.clear_secret:
        ch.secret = None
    elif form.secret:
        ch.secret = form.secret
    for f in EVENT_FLAGS:
        setattr(ch, f, bool(form.flags.get(f)))
    if channel is None:
        db.session.add(ch)
    db.session.flush()
    after = _snapshot(ch)
    if before is None:
        audit.record("notification_channel.create", f"Added notification channel {ch.name} ({ch.kind})",
                     target_type="notification_channel", target_id=ch.id, after=_masked(after))
    else:
        b, a = audit.changed_fields(before, after)
        audit.record("notification_channel.update", f"Changed notification channel {ch.name}",
                     target_type="notification_channel", target_id=ch.id, before=_masked(b), after=_masked(a))
    return ch


def _masked(values: dict) -> dict:
    """The URL holds tokens: it is masked like a secret ("secret" is masked by audit itself)."""
    return {k: (audit.MASK if v else "") if k == "target_url" else v for k, v in values.items()}


def delete_channel(channel: NotificationChannel) -> None:
    audit.record("notification_channel.delete", f"Deleted notification channel {channel.name}",
                 target_type="notification_channel", target_id=channel.id,
                 before=_masked(_snapshot(channel)))
    db.session.delete(channel)


def retry_row(row_id: int) -> bool:
    from .sender import retry

    ok = retry(row_id, utcnow())
    if ok:
        audit.record("notification.retry", f"Queued notification {row_id} again",
                     target_type="notification_outbox", target_id=row_id)
    return ok


def delivery_log(limit: int = 100) -> list[NotificationOutbox]:
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    return db.session.execute(select(NotificationOutbox).options(joinedload(NotificationOutbox.channel))
                              .order_by(NotificationOutbox.id.desc()).limit(limit)).scalars().all()


def last_states() -> dict[int, NotificationOutbox]:
    """Each channel's newest outbox row (one query)."""
    from sqlalchemy import select

    rows = db.session.execute(select(NotificationOutbox).distinct(NotificationOutbox.channel_id)
                              .order_by(NotificationOutbox.channel_id, NotificationOutbox.id.desc())).scalars().all()
    return {r.channel_id: r for r in rows}
