"""Sending the morning digest (Settings → Digest; content: ``digest.py``).

Once per local day (the UI timezone), at the configured time, the background loop ``digest``
(every ``LOOP_SECONDS``) mails the digest of yesterday to every subscribed user (their profile's
address) and to the extra recipients of Settings → Digest, one mail per address, through the
configured transport (the Microsoft 365 mailbox or the SMTP server, ``mail_transport``). A day with
nothing to report (nothing failed, missed or warned) is mailed only to the users who asked for
"all clear" mails; the others' rows are marked skipped.

When: the first valid instant at or after the configured wall-clock time on that day
(``timezones.local_instant``): a time in the spring DST gap is sent when the gap ends, a time in
the autumn fold at its first occurrence. A process that was down at that time sends later the
same day.

Exactly once per (day, address), whatever the number of processes: the pass first inserts one
``digest_deliveries`` row per address with ``INSERT … ON CONFLICT (day, recipient) DO NOTHING``,
then claims due rows with one conditional ``UPDATE … WHERE state = 'pending' AND next_attempt_at
<= now AND (claimed_until IS NULL OR claimed_until < now)`` over rows picked ``FOR UPDATE SKIP
LOCKED``, commits the claim, sends outside any transaction and writes the outcome only while its
claim token is still on the row. A failure that may pass (SMTP 4xx, Graph 429/5xx, a timeout) is
tried again with back-off, at most ``MAX_ATTEMPTS`` times; the state and the reason are shown on
Settings → Digest.
"""
from __future__ import annotations

import json
import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Mapping, Optional

from sqlalchemy import select, text

from ..extensions import db
from ..models import PORTAL_ROLE, DigestDelivery, User
from . import audit
from .background import register_loop
from .claims import claim_due
from .mail_transport import TRANSPORTS, AddressError, OutgoingMail, parse_addresses, resolve, send
from .notifications.sender import backoff
from .settings import SettingsError, get_settings, save_section, ui_zone
from .timezones import local_day, local_instant

log = logging.getLogger(__name__)

LOOP_SECONDS = 60
MAX_ATTEMPTS = 6
BATCH = 50
SEND_TIMEOUT_SECONDS = 20.0
CLAIM_SLACK_SECONDS = 60
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class DigestError(ValueError):
    """A message for the form."""


def parse_time(value: Optional[str]) -> time:
    """'07:30' -> time(7, 30); DigestError for anything else (25:00, 7.30, empty)."""
    m = _TIME_RE.match((value or "").strip())
    if not m:
        raise DigestError(f"'{(value or '')[:20]}' is not a time of day: use HH:MM, from 00:00 to 23:59.")
    return time(int(m.group(1)), int(m.group(2)))


# --- Settings → Digest -----------------------------------------------------------------------------

def form_values() -> dict:
    s = get_settings()
    return {"digest_enabled": s.digest_enabled, "digest_time": s.digest_time,
            "digest_recipients": s.digest_recipients or "", "digest_transport": s.digest_transport}


def save_settings(form: Mapping[str, str]) -> bool:
    """Validate and save Settings → Digest (audited). SettingsError: nothing was saved."""
    try:
        at = parse_time(form.get("digest_time"))
        recipients = parse_addresses(form.get("digest_recipients"))
    except (DigestError, AddressError) as exc:
        raise SettingsError(f"{exc} Nothing was saved.") from None
    transport = form.get("digest_transport") or "graph"
    if transport not in TRANSPORTS:
        raise SettingsError("Choose how the digest is sent: the Microsoft 365 mailbox or the SMTP server. "
                            "Nothing was saved.")
    return save_section("digest", {
        "digest_enabled": form.get("digest_enabled") in ("on", "1", "true", "y"),
        "digest_time": f"{at:%H:%M}",
        "digest_recipients": ", ".join(recipients) or None,
        "digest_transport": transport,
    })


# --- A user's subscription (profile) -------------------------------------------------------------------

def save_subscription(user: User, form: Mapping[str, str]) -> bool:
    """The profile's "Morning digest": the user's address, subscribed, also on all-clear days.
    Audited; DigestError when the address is missing or wrong (nothing saved)."""
    subscribed = form.get("digest_subscribed") in ("on", "1", "true", "y")
    all_clear = form.get("digest_all_clear") in ("on", "1", "true", "y")
    raw = (form.get("email") or "").strip()
    try:
        parsed = parse_addresses(raw, limit=1) if raw else []
    except AddressError as exc:
        raise DigestError(str(exc)) from None
    email = parsed[0] if parsed else None
    if subscribed and not email:
        raise DigestError("Enter your e-mail address to receive the morning digest.")
    before = {"email": user.email, "digest_subscribed": user.digest_subscribed, "digest_all_clear": user.digest_all_clear}
    after = {"email": email, "digest_subscribed": subscribed, "digest_all_clear": all_clear}
    b, a = audit.changed_fields(before, after)
    if not a:
        return False
    user.email, user.digest_subscribed, user.digest_all_clear = email, subscribed, all_clear
    audit.record("user.digest_subscription",
                 f"Morning digest {'on' if subscribed else 'off'}" + (" (also when all is clear)" if subscribed and all_clear else ""),
                 user=user, target_type="user", target_id=user.id, before=b, after=a)
    return True


# --- When and to whom --------------------------------------------------------------------------------

def due_at(day: date, at: time, zone) -> datetime:
    """When the digest of local ``day`` is sent (UTC): DST gap → when it ends, fold → first occurrence."""
    return local_instant(day, at, zone)


def recipients() -> dict[str, bool]:
    """address (lower case) -> also on an all-clear day: the subscribed active users with an address
    (one query) and the extra recipients of Settings → Digest (only when there is something to report)."""
    out: dict[str, bool] = {}
    try:
        extra = parse_addresses(get_settings().digest_recipients)
    except AddressError:
        extra = []
    for addr in extra:
        out.setdefault(addr.lower(), False)
    rows = db.session.execute(select(User.email, User.digest_all_clear).where(
        User.digest_subscribed.is_(True), User.is_active_user.is_(True), User.email.is_not(None),
        User.roles != PORTAL_ROLE)).all()  # the digest covers every customer: never to a portal user
    for email, all_clear in rows:
        key = email.strip().lower()
        out[key] = out.get(key, False) or bool(all_clear)
    return out


_QUEUE = text("""
INSERT INTO digest_deliveries (day, recipient, all_clear, state, attempts, next_attempt_at, created_at)
SELECT :day, x ->> 'recipient', CAST(x ->> 'all_clear' AS boolean), 'pending', 0, :due, :now
FROM json_array_elements(CAST(:rows AS json)) AS x
ON CONFLICT (day, recipient) DO NOTHING
""")

def queue_today(now: datetime) -> int:
    """Insert today's rows once the configured time has come (nothing before, nothing twice); returns
    the rows inserted. One statement. Commits."""
    s = get_settings()
    if not s.digest_enabled:
        return 0
    zone = ui_zone()
    today = local_day(now, zone)
    try:
        due = due_at(today, parse_time(s.digest_time), zone)
    except DigestError:
        return 0
    if now < due:
        return 0
    rows = [{"recipient": r, "all_clear": a} for r, a in recipients().items()]
    if not rows:
        return 0
    n = db.session.execute(_QUEUE, {"day": today, "due": due, "now": now, "rows": json.dumps(rows)}).rowcount or 0
    db.session.commit()
    return n


@dataclass
class _Mail:
    subject: str
    text: str
    html: str
    all_clear: bool


def _build(now: datetime) -> _Mail:
    from . import digest

    d = digest.build_digest(now=now, base_url=digest.default_base_url())
    return _Mail(digest.subject(d), digest.render_text(d), digest.render_html(d), d.is_all_clear)


def send_due(now: datetime, limit: int = BATCH, *, timeout: float = SEND_TIMEOUT_SECONDS) -> dict:
    """Queue today's digest when it is due, then send the claimed due rows; counts by outcome. Commits."""
    queue_today(now)
    token = uuid.uuid4().hex
    hold = limit * (timeout + 5) + CLAIM_SLACK_SECONDS
    ids = claim_due("digest_deliveries", now, now + timedelta(seconds=hold), token, limit)
    db.session.commit()
    out = {"sent": 0, "skipped": 0, "retry": 0, "failed": 0, "given_up": 0}
    if not ids:
        return out
    rows = db.session.execute(select(DigestDelivery).where(DigestDelivery.id.in_(ids))
                              .order_by(DigestDelivery.id)).scalars().all()
    mail = _build(now)
    transport = resolve(get_settings().digest_transport)
    today = local_day(now, ui_zone())
    db.session.commit()  # no transaction stays open while we wait for the server
    table = DigestDelivery.__table__
    for row in rows:
        values = {"claimed_until": None, "claim_token": None, "subject": mail.subject[:300]}
        if row.day != today:
            # still failing when its day ended: today's digest is another mail (its own row)
            outcome = "given_up"
            values.update(state="given_up", subject=row.subject,
                          last_error=((row.last_error or "") + " — not sent before the day ended.").strip(" —")[:2000])
        elif mail.all_clear and not row.all_clear:
            outcome = "skipped"
            values.update(state="skipped", last_error=None)
        else:
            result = send(transport, OutgoingMail([row.recipient], mail.subject, mail.text, mail.html), timeout=timeout)
            attempts = row.attempts + 1
            values["attempts"] = attempts
            if result.sent:
                outcome = "sent"
                values.update(state="sent", sent_at=now, last_error=result.error or None)
            elif result.retry and attempts < MAX_ATTEMPTS:
                outcome = "retry"
                values.update(last_error=result.error[:2000],
                              next_attempt_at=now + backoff(attempts, random.uniform(0, 0.2)))
            else:
                outcome = "given_up" if result.retry else "failed"
                values.update(state=outcome, last_error=result.error[:2000])
            if outcome != "sent":
                log.info("digest of %s to %s: %s (%s)", row.day, row.recipient, outcome, result.error)
        db.session.execute(table.update().where(table.c.id == row.id, table.c.claim_token == token).values(**values))
        db.session.commit()
        out[outcome] += 1
    return out


def retry(row_id: int, now: datetime) -> bool:
    """A failed or given-up digest goes back to pending, due now (Settings → Digest → Retry); audited."""
    table = DigestDelivery.__table__
    res = db.session.execute(table.update().where(table.c.id == row_id, table.c.state.in_(("failed", "given_up")))
                             .values(state="pending", next_attempt_at=now, claimed_until=None, claim_token=None,
                                     attempts=0))
    if res.rowcount == 1:
        audit.record("digest.retry", f"Digest delivery {row_id} queued again", target_type="digest_delivery",
                     target_id=row_id)
        return True
    return False


def recent(limit: int = 100) -> list[DigestDelivery]:
    """The newest deliveries for Settings → Digest (one query)."""
    return db.session.execute(select(DigestDelivery).order_by(DigestDelivery.day.desc(), DigestDelivery.id.desc())
                              .limit(limit)).scalars().all()


def next_send(now: datetime) -> Optional[datetime]:
    """When the next digest goes out (UTC), for the page; None when switched off."""
    s = get_settings()
    if not s.digest_enabled:
        return None
    zone = ui_zone()
    at = parse_time(s.digest_time)
    today = local_day(now, zone)
    first = due_at(today, at, zone)
    return first if now < first else due_at(today + timedelta(days=1), at, zone)


def _step(app) -> None:
    from ..models import utcnow

    send_due(utcnow())


def register(app) -> None:
    """Register the digest loop with the single background runner (call from create_app)."""
    register_loop("digest", _step, lambda app: float(app.config.get("DIGEST_LOOP_SECONDS") or LOOP_SECONDS))
