"""The JSON API's rate limit: a fixed window of one UTC minute per token, counted in PostgreSQL so
that every gunicorn worker and every container shares it.

Each request is one statement: an UPSERT on the token's single row in ``api_rate_windows`` that
either counts one more in the current minute or, when a new minute has begun, starts it again at 1,
and RETURNS the count. The row is reused, so old windows never pile up and nothing needs pruning;
a token's row goes with the token (ON DELETE CASCADE).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from ..models import ApiRateWindow, utcnow

WINDOW = timedelta(minutes=1)
DEFAULT_LIMIT = 120


@dataclass(frozen=True)
class RateState:
    limit: int
    count: int           # requests counted in this window, this one included
    reset_at: datetime   # when the window ends (UTC)
    now: datetime

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def reset_seconds(self) -> int:
        """Whole seconds until the window ends (at least 1): X-RateLimit-Reset and Retry-After."""
        seconds = (self.reset_at - self.now).total_seconds()
        return max(1, int(seconds) + (0 if seconds == int(seconds) else 1))

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_seconds)}


def limit_per_minute() -> int:
    return int(current_app.config.get("API_RATE_LIMIT_PER_MINUTE", DEFAULT_LIMIT))


def window_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def count_request(token_id: int, *, now: Optional[datetime] = None, limit: Optional[int] = None) -> RateState:
    """Count one request of the token in the current minute (one UPSERT … RETURNING; commits) and
    say whether it is within the limit."""
    now = now or utcnow()
    start = window_start(now)
    stmt = insert(ApiRateWindow).values(token_id=token_id, window_start=start, count=1)
    # A new minute starts the count again; a request stamped with an older minute (a slow worker)
    # counts in the current one and never moves the window back.
    current_or_newer = ApiRateWindow.window_start >= stmt.excluded.window_start
    stmt = stmt.on_conflict_do_update(
        index_elements=[ApiRateWindow.token_id],
        set_={"count": case((current_or_newer, ApiRateWindow.count + 1), else_=1),
              "window_start": func.greatest(ApiRateWindow.window_start, stmt.excluded.window_start)},
    ).returning(ApiRateWindow.count, ApiRateWindow.window_start)
    count, started = db.session.execute(stmt).one()
    db.session.commit()
    return RateState(limit=limit if limit is not None else limit_per_minute(), count=count,
                     reset_at=started + WINDOW, now=now)
