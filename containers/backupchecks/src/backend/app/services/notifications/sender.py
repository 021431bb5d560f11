"""The sender: delivers due outbox rows. Runs in the background leader every ``LOOP_SECONDS``.

A pass claims up to ``limit`` due rows with ONE conditional ``UPDATE … WHERE state = 'pending' AND
next_attempt_at <= now AND (claimed_until IS NULL OR claimed_until < now) … RETURNING`` (the
candidate rows are picked ``FOR UPDATE SKIP LOCKED``), commits the claim, then sends. So two
processes never send the same row, and a row whose sender died is claimed again after
its claim expires (a whole batch at its timeout, plus a minute). The outcome is written only while the claim token is still ours.

Quiet hours (a channel's ``quiet_start``–``quiet_end``, local times in the UI timezone): a claimed
row whose channel is quiet at ``now`` is not sent. In "hold" mode it is due again when the quiet
hours end (``held_until``), without counting an attempt; in "drop" mode it is marked ``dropped``
with the reason "quiet hours" and never sent. Test messages are not held.
"""
from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import text

from ...extensions import db
from ...models import NotificationChannel, NotificationOutbox
from ..background import register_loop
from ..settings import ui_zone
from .channels import email_target
from .delivery import TIMEOUT_SECONDS, deliver
from .quiet import is_quiet

log = logging.getLogger(__name__)

LOOP_SECONDS = 30
MAX_ATTEMPTS = 8
CLAIM_SLACK_SECONDS = 60  # a claim lasts a whole batch at its timeout, plus this
BATCH = 20
QUIET_REASON = "quiet hours"

_CLAIM = text("""
UPDATE notification_outbox o SET claimed_until = :until, claim_token = :token
WHERE o.id IN (
    SELECT id FROM notification_outbox
    WHERE state = 'pending' AND next_attempt_at <= :now AND (claimed_until IS NULL OR claimed_until < :now)
    ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED)
  AND o.state = 'pending' AND o.next_attempt_at <= :now AND (o.claimed_until IS NULL OR o.claimed_until < :now)
RETURNING o.id
""")


def backoff(attempts: int, jitter: float = 0.0) -> timedelta:
    """Wait before try ``attempts + 1``: 1, 2, 4 … minutes (at most 4 hours), plus up to ``jitter``
    of it."""
    minutes = min(2 ** max(0, attempts - 1), 240)
    return timedelta(minutes=minutes * (1 + jitter))


def send_due(now: datetime, limit: int = BATCH, *, timeout: Optional[float] = None) -> dict:
    """Deliver up to ``limit`` due rows at ``now``; returns counts by outcome. Commits."""
    token = uuid.uuid4().hex
    # The claim outlasts the slowest pass (every row at its timeout), so no row is claimed twice.
    hold = limit * ((timeout or TIMEOUT_SECONDS) + 5) + CLAIM_SLACK_SECONDS
    ids = db.session.execute(_CLAIM, {"now": now, "until": now + timedelta(seconds=hold),
                                      "token": token, "limit": limit}).scalars().all()
    db.session.commit()
    out = {"sent": 0, "retry": 0, "failed": 0, "given_up": 0, "held": 0, "dropped": 0}
    zone = None
    transports: dict = {}  # an e-mail channel's transport, resolved once per pass
    for row_id in ids:
        row = db.session.get(NotificationOutbox, row_id)
        channel = db.session.get(NotificationChannel, row.channel_id) if row is not None else None
        if row is None or channel is None:
            continue
        if row.event != "test" and channel.quiet_start is not None and channel.quiet_end is not None:
            zone = zone or ui_zone()
            until = is_quiet(now, channel.quiet_start, channel.quiet_end, zone)
            if until is not None:
                outcome = _keep_quiet(row_id, token, until, drop=channel.quiet_mode == "drop")
                out[outcome] += 1
                continue
        email = email_target(channel, transports)
        db.session.commit()  # no transaction stays open while we wait for the network
        kwargs = {} if timeout is None else {"timeout": timeout}
        result = deliver(channel.kind, channel.target_url, row.payload or {}, secret=channel.secret,
                         email=email, **kwargs)
        attempts = row.attempts + 1
        values = {"attempts": attempts, "claimed_until": None, "claim_token": None}
        if result.sent:
            outcome = "sent"
            values.update(state="sent", sent_at=now, last_error=None)
        elif result.retry and attempts < MAX_ATTEMPTS:
            outcome = "retry"
            values.update(last_error=result.error[:2000],
                          next_attempt_at=now + backoff(attempts, random.uniform(0, 0.2)))
        else:
            outcome = "given_up" if result.retry else "failed"
            values.update(state=outcome, last_error=result.error[:2000])
        db.session.execute(
            NotificationOutbox.__table__.update()
            .where(NotificationOutbox.id == row_id, NotificationOutbox.claim_token == token)
            .values(**values))
        db.session.commit()
        out[outcome] += 1
        if outcome != "sent":
            log.info("notification %s to channel %s: %s (%s)", row.event_key, channel.id, outcome, result.error)
    return out


def _keep_quiet(row_id: int, token: str, until: datetime, *, drop: bool) -> str:
    """A row claimed during its channel's quiet hours: held until ``until`` (no attempt counted) or
    dropped. Releases the claim; commits."""
    values = {"claimed_until": None, "claim_token": None}
    if drop:
        values.update(state="dropped", last_error=QUIET_REASON)
    else:
        values.update(next_attempt_at=until, held_until=until)
    db.session.execute(
        NotificationOutbox.__table__.update()
        .where(NotificationOutbox.id == row_id, NotificationOutbox.claim_token == token)
        .values(**values))
    db.session.commit()
    return "dropped" if drop else "held"


def retry(row_id: int, now: datetime) -> bool:
    """A failed, given-up or held row goes back to pending, due now (Settings → Notifications → Retry;
    for a held row — snooze or maintenance, services/quiet.py — that means "send it anyway")."""
    res = db.session.execute(
        NotificationOutbox.__table__.update()
        .where(NotificationOutbox.id == row_id, NotificationOutbox.state.in_(("failed", "given_up", "held")))
        .values(state="pending", next_attempt_at=now, claimed_until=None, claim_token=None, attempts=0))
    return res.rowcount == 1


FINISHED = ("sent", "failed", "given_up", "dropped")  # states the log forgets after NOTIFY_LOG_DAYS


def purge_log(now: datetime, days: int) -> int:
    """Delete finished messages older than ``days`` (pending and held ones stay)."""
    res = db.session.execute(
        NotificationOutbox.__table__.delete()
        .where(NotificationOutbox.state.in_(FINISHED),
               NotificationOutbox.created_at < now - timedelta(days=max(1, days))))
    return res.rowcount or 0


PURGE_EVERY = timedelta(hours=1)
_last_purge: dict[str, datetime] = {}


def _step(app) -> None:
    from ...models import utcnow
    from . import env_channels

    now = utcnow()
    env_channels.sync(app.config.get("NOTIFY_URLS") or [])
    db.session.commit()
    send_due(now)
    if now - _last_purge.get("at", datetime.min.replace(tzinfo=now.tzinfo)) >= PURGE_EVERY:
        purge_log(now, int(app.config.get("NOTIFY_LOG_DAYS") or 30))
        db.session.commit()
        _last_purge["at"] = now


def register(app) -> None:
    """Register the sender with the single background runner (call from create_app)."""
    register_loop("notifications", _step,
                  lambda app: float(max(5, app.config.get("NOTIFY_LOOP_SECONDS") or LOOP_SECONDS)))
