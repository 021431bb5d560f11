"""The sender: delivers due outbox rows. Runs in the background leader every ``LOOP_SECONDS``.

A pass claims up to ``limit`` due rows with ONE conditional ``UPDATE … WHERE state = 'pending' AND
next_attempt_at <= now AND (claimed_until IS NULL OR claimed_until < now) … RETURNING`` (the
candidate rows are picked ``FOR UPDATE SKIP LOCKED``), commits the claim, then sends. So two
processes never send the same row, and a row whose sender died is claimed again after
its claim expires (a whole batch at its timeout, plus a minute). The outcome is written only while the claim token is still ours.
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
from .delivery import TIMEOUT_SECONDS, deliver

log = logging.getLogger(__name__)

LOOP_SECONDS = 30
MAX_ATTEMPTS = 8
CLAIM_SLACK_SECONDS = 60  # a claim lasts a whole batch at its timeout, plus this
BATCH = 20

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
    out = {"sent": 0, "retry": 0, "failed": 0, "given_up": 0}
    for row_id in ids:
        row = db.session.get(NotificationOutbox, row_id)
        channel = db.session.get(NotificationChannel, row.channel_id) if row is not None else None
        if row is None or channel is None:
            continue
        db.session.commit()  # no transaction stays open while we wait for the network
        kwargs = {} if timeout is None else {"timeout": timeout}
        result = deliver(channel.kind, channel.target_url, row.payload or {}, secret=channel.secret, **kwargs)
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


def retry(row_id: int, now: datetime) -> bool:
    """A failed, given-up or held row goes back to pending, due now (Settings → Notifications → Retry;
    for a held row — snooze or maintenance, services/quiet.py — that means "send it anyway")."""
    res = db.session.execute(
        NotificationOutbox.__table__.update()
        .where(NotificationOutbox.id == row_id, NotificationOutbox.state.in_(("failed", "given_up", "held")))
        .values(state="pending", next_attempt_at=now, claimed_until=None, claim_token=None, attempts=0))
    return res.rowcount == 1


def _step(app) -> None:
    from ...models import utcnow

    send_due(utcnow())


def register(app) -> None:
    """Register the sender with the single background runner (call from create_app)."""
    register_loop("notifications", _step, lambda app: float(app.config.get("NOTIFY_LOOP_SECONDS") or LOOP_SECONDS))
