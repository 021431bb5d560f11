"""Channels from the environment: ``NOTIFY_URLS`` (comma-separated Apprise URLs).

Each URL becomes a channel marked with ``env_key`` (a SHA-256 of the URL, never the URL itself):
it receives the default events (failed, missed, recovery) and is read-only in Settings →
Notifications. ``sync`` makes the stored set match the environment: a URL removed from
``NOTIFY_URLS`` removes its channel (and its delivery log) at the next sync. It runs when the
app starts and at every pass of the notification sender.
"""
from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlsplit

from sqlalchemy import select

from ...extensions import db
from ...models import NotificationChannel
from .channels import ChannelError, check_url

log = logging.getLogger(__name__)
_warned: set[str] = set()  # refused URLs are logged once per process, not at every pass


def env_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def masked(url: str) -> str:
    """What the page shows of an environment URL: its scheme and host, never the tokens in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/…" if host else f"{parts.scheme}://…"


def sync(urls: list[str]) -> dict:
    """Create, keep or remove the environment's channels; returns counts and the refused URLs'
    masked forms. Flushes; the caller commits."""
    wanted: dict[str, str] = {}
    refused: list[str] = []
    for url in urls:
        try:
            wanted.setdefault(env_key(url), check_url("apprise", url))
        except ChannelError as exc:
            refused.append(masked(url))
            if env_key(url) not in _warned:
                _warned.add(env_key(url))
                log.warning("NOTIFY_URLS: %s is not used: %s", masked(url), exc)
    stored = {ch.env_key: ch for ch in db.session.execute(
        select(NotificationChannel).where(NotificationChannel.env_key.is_not(None))).scalars()}
    added = removed = 0
    for number, (key, url) in enumerate(wanted.items(), start=1):
        name = f"NOTIFY_URLS {number} ({urlsplit(url).scheme})"
        ch = stored.pop(key, None)
        if ch is None:
            db.session.add(NotificationChannel(name=name, kind="apprise", target_url=url, env_key=key,
                                               enabled=True, on_failed=True, on_missed=True,
                                               on_warning=False, on_recovery=True))
            added += 1
        elif ch.name != name:
            ch.name = name
    for ch in stored.values():
        db.session.delete(ch)
        removed += 1
    db.session.flush()
    if added or removed:
        log.info("NOTIFY_URLS: %d channel(s) added, %d removed", added, removed)
    return {"added": added, "removed": removed, "refused": refused}


def describe(urls: list[str]) -> list[dict]:
    """NOTIFY_URLS as the Settings page shows it: each URL masked, and whether it can be used."""
    out = []
    for url in urls:
        try:
            check_url("apprise", url)
            out.append({"url": masked(url), "error": ""})
        except ChannelError as exc:
            out.append({"url": masked(url), "error": str(exc)})
    return out
