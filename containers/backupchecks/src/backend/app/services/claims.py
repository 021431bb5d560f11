"""Claiming due rows of an outbox-style table, one home for the notification sender and the digest.

A table with ``state``, ``next_attempt_at``, ``claimed_until`` and ``claim_token`` is claimed with
ONE conditional ``UPDATE … WHERE state = 'pending' AND next_attempt_at <= now AND (claimed_until IS
NULL OR claimed_until < now) … RETURNING id`` over rows picked ``FOR UPDATE SKIP LOCKED``: two
processes never claim the same row, and a row whose sender died is claimed again once its claim
expires. The caller writes each outcome only while its token is still on the row.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from ..extensions import db

CLAIMABLE = ("notification_outbox", "digest_deliveries")


def claim_due(table: str, now: datetime, until: datetime, token: str, limit: int) -> list[int]:
    """Claim up to ``limit`` due rows of ``table`` for ``token`` until ``until``; returns their ids
    (oldest due first). The caller commits."""
    if table not in CLAIMABLE:
        raise ValueError(f"{table!r} is not a claimable table")
    statement = text(f"""
UPDATE {table} t SET claimed_until = :until, claim_token = :token
WHERE t.id IN (
    SELECT id FROM {table}
    WHERE state = 'pending' AND next_attempt_at <= :now AND (claimed_until IS NULL OR claimed_until < :now)
    ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED)
  AND t.state = 'pending' AND t.next_attempt_at <= :now AND (t.claimed_until IS NULL OR t.claimed_until < :now)
RETURNING t.id
""")
    return list(db.session.execute(statement, {"now": now, "until": until, "token": token,
                                               "limit": limit}).scalars())
