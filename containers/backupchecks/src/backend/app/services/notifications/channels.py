"""Channels (Settings → Notifications): validation, saving with an audit entry, test messages.

The target URL and the webhook secret are write-only: forms leave them empty to keep what is
stored, and audit entries show them masked. An e-mail channel has recipients and a transport
(graph or smtp, ``mail_transport``) instead of a URL."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Optional
from urllib.parse import urlsplit

from ...extensions import db
from ...models import Customer, NotificationChannel, NotificationOutbox, utcnow
from .. import audit
from ..mail_transport import TRANSPORTS, AddressError, parse_addresses, resolve
from .delivery import KINDS, EmailTarget, Result, apprise_url_ok, deliver
from .events import MAX_FAILURES

TEST_TIMEOUT_SECONDS = 5.0
EVENT_FLAGS = ("on_failed", "on_missed", "on_warning", "on_recovery")
QUIET_MODES = {"hold": "deliver them when the quiet hours end", "drop": "drop them (never sent)"}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")


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
    # Rules; the defaults are a channel without rules (every customer, every failure, no quiet hours).
    all_customers: bool = True
    customer_ids: list = field(default_factory=list)  # ids typed into the form; unknown ones are ignored
    min_failures: str = ""  # empty: 1
    quiet_start: str = ""  # HH:MM in the UI timezone; both empty: no quiet hours
    quiet_end: str = ""
    quiet_mode: str = "hold"
    recipients: str = ""  # email: addresses, comma separated
    transport: str = "graph"  # email: graph | smtp


def _hhmm(value: Optional[time]) -> Optional[str]:
    return value.strftime("%H:%M") if value is not None else None


def _snapshot(ch: NotificationChannel) -> dict:
    return {"name": ch.name, "kind": ch.kind, "target_url": ch.target_url, "secret": ch.secret,
            "recipients": ch.recipients, "transport": ch.transport, "enabled": ch.enabled,
            **{f: getattr(ch, f) for f in EVENT_FLAGS},
            "all_customers": ch.all_customers, "customers": [c.name for c in ch.customers] if not ch.all_customers else [],
            "min_failures": ch.min_failures, "quiet_start": _hhmm(ch.quiet_start), "quiet_end": _hhmm(ch.quiet_end),
            "quiet_mode": ch.quiet_mode}


def parse_failures(value, what: str = "“After N consecutive failures”") -> Optional[int]:
    """N from a form: empty -> None; a whole number 1 … MAX_FAILURES, else ChannelError."""
    text = str(value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_FAILURES:
        raise ChannelError(f"{what} must be a whole number from 1 to {MAX_FAILURES}; “{text[:20]}” is not.")
    return int(text)


def _parse_time(value: str, which: str) -> Optional[time]:
    text = (value or "").strip()
    if not text:
        return None
    m = _TIME_RE.match(text)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ChannelError(f"The quiet hours' {which} “{text[:20]}” is not a time of day (HH:MM, 00:00 to 23:59).")
    return time(int(m.group(1)), int(m.group(2)))


def _quiet_hours(form: ChannelForm) -> tuple[Optional[time], Optional[time], str]:
    start, end = _parse_time(form.quiet_start, "start"), _parse_time(form.quiet_end, "end")
    if (start is None) != (end is None):
        raise ChannelError("Give both the start and the end of the quiet hours, or neither.")
    if start is not None and start == end:
        raise ChannelError("The quiet hours' start and end are the same: give a period, for example 22:00 to 07:00.")
    mode = form.quiet_mode or "hold"
    if mode not in QUIET_MODES:
        raise ChannelError("Choose what happens to messages during quiet hours.")
    return start, end, mode


def _customers(form: ChannelForm) -> list[Customer]:
    """The chosen customers that exist (one query); a customer deleted meanwhile is left out."""
    if form.all_customers:
        return []
    from sqlalchemy import select

    ids = sorted({int(i) for i in form.customer_ids})
    found = db.session.execute(select(Customer).where(Customer.id.in_(ids)).order_by(Customer.name)).scalars().all() \
        if ids else []
    if not found:
        raise ChannelError("Choose at least one customer, or send for all customers.")
    return list(found)


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
    min_failures = parse_failures(form.min_failures) or 1
    quiet_start, quiet_end, quiet_mode = _quiet_hours(form)
    customers = _customers(form)
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
    ch.all_customers, ch.customers = form.all_customers, customers
    ch.min_failures = min_failures
    ch.quiet_start, ch.quiet_end, ch.quiet_mode = quiet_start, quiet_end, quiet_mode
    if channel is None:
        db.session.add(ch)
    db.session.flush()
    after = _snapshot(ch)
    if before is None:
        audit.record("notification_channel.create", f"Added notification channel {ch.name} ({ch.kind})",
                     target_type="notification_channel", target_id=ch.id, after=_masked(after))
    else:
        b, a = audit.changed_fields(before, after)
        if {"quiet_start", "quiet_end", "quiet_mode"} & set(a):
            release_held(ch.id)
        audit.record("notification_channel.update", f"Changed notification channel {ch.name}",
                     target_type="notification_channel", target_id=ch.id, before=_masked(b), after=_masked(a))
    return ch


def release_held(channel_id: int) -> int:
    """Messages held for the channel's old quiet hours are due again at once (the sender holds or
    drops them again when the new quiet hours say so); one statement."""
    from sqlalchemy import update

    o = NotificationOutbox
    return db.session.execute(
        update(o).where(o.channel_id == channel_id, o.state == "pending", o.held_until.is_not(None),
                        o.next_attempt_at == o.held_until)
        .values(next_attempt_at=utcnow()).execution_options(synchronize_session=False)).rowcount or 0


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
