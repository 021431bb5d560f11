"""The sender: delivers due outbox rows. Runs in the background leader every ``LOOP_SECONDS``.

A pass claims up to ``limit`` due rows with ONE conditional UPDATE (``claims.claim_due``, shared with
the digest), commits the claim, then sends. So two
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
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import NotificationChannel, NotificationOutbox
from ..background import register_loop
from ..claims import claim_due
from ..faults import crash_point
from ..settings import ui_zone
from .channels import email_target
from .delivery import TIMEOUT_SECONDS, Context, EmailTarget, deliver
from .quiet import is_quiet

log = logging.getLogger(__name__)

LOOP_SECONDS = 30
MAX_ATTEMPTS = 8
CLAIM_SLACK_SECONDS = 60  # a claim lasts a whole batch at its timeout, plus this
BATCH = 20
QUIET_REASON = "quiet hours"

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
    ids = claim_due("notification_outbox", now, now + timedelta(seconds=hold), token, limit)
    db.session.commit()
    crash_point("notifications.after_claim")
    out = {"sent": 0, "retry": 0, "failed": 0, "given_up": 0, "held": 0, "dropped": 0}
    jobs = _claimed(ids)
    ctx = _context() if jobs else None
    db.session.commit()  # no transaction stays open while we wait for the network
    # A channel that failed in a way worth retrying is not tried again in this pass: its other
    # messages wait for the same time, without counting an attempt (no retry storm on an outage).
    resting: dict[int, datetime] = {}
    for job in jobs:
        row_id, channel = job.row_id, job.channel
        if job.event != "test" and channel.quiet_start is not None and channel.quiet_end is not None:
            until = is_quiet(now, channel.quiet_start, channel.quiet_end, ctx.zone)
            if until is not None:
                outcome = _keep_quiet(row_id, token, until, drop=channel.quiet_mode == "drop")
                out[outcome] += 1
                continue
        if channel.id in resting:
            _release(row_id, token, next_attempt_at=resting[channel.id])
            out["retry"] += 1
            continue
        kwargs = {} if timeout is None else {"timeout": timeout}
        result = deliver(channel.kind, channel.target_url, job.payload, secret=channel.secret,
                         email=job.email, ctx=ctx, **kwargs)
        # Died here, the row is claimed again once the claim expires and sent again: at least once.
        crash_point("notifications.after_deliver")
        attempts = job.attempts + 1
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
        if outcome == "retry":
            resting[channel.id] = values["next_attempt_at"]
        if outcome != "sent":
            log.info("notification %s to channel %s: %s (%s)", job.event_key, channel.id, outcome, result.error)
    return out


@dataclass(frozen=True)
class _Channel:
    id: int
    kind: str
    target_url: Optional[str]
    secret: Optional[str]
    quiet_start: Optional[time]
    quiet_end: Optional[time]
    quiet_mode: str


@dataclass(frozen=True)
class _Job:
    row_id: int
    event: str
    event_key: str
    attempts: int
    payload: dict
    channel: _Channel
    email: Optional[EmailTarget]


def _claimed(ids: list[int]) -> list[_Job]:
    """The claimed rows with their channels (one query), as plain values that outlive commits."""
    if not ids:
        return []
    rows = db.session.execute(
        select(NotificationOutbox).options(joinedload(NotificationOutbox.channel))
        .where(NotificationOutbox.id.in_(ids))
        .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)).scalars().all()
    transports: dict = {}  # an e-mail channel's transport, resolved once per pass
    jobs = []
    for r in rows:
        ch = r.channel
        if ch is None:
            continue
        jobs.append(_Job(r.id, r.event, r.event_key, r.attempts, r.payload or {},
                         _Channel(ch.id, ch.kind, ch.target_url, ch.secret, ch.quiet_start, ch.quiet_end,
                                  ch.quiet_mode),
                         email_target(ch, transports)))
    return jobs


def _context() -> Context:
    """The UI timezone and the app's address for this pass's messages."""
    from ..digest import default_base_url

    return Context(zone=ui_zone(), base_url=default_base_url())


def _release(row_id: int, token: str, **values) -> None:
    db.session.execute(
        NotificationOutbox.__table__.update()
        .where(NotificationOutbox.id == row_id, NotificationOutbox.claim_token == token)
        .values(claimed_until=None, claim_token=None, **values))
    db.session.commit()


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
