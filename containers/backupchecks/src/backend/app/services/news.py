"""News on the dashboard: admins post short Markdown notes with an optional visibility window.

- The body is Markdown, rendered safely when it is saved (services/markdown_render.py: raw
  HTML in the text is shown as text, links keep only http, https and mailto); the dashboard
  shows the stored HTML. At most markdown_render.MAX_LENGTH characters.
- Visible from/until are entered in the UI timezone and stored in UTC; an empty "from"
  means "from now on", an empty "until" means "until deleted". An item is visible while
  ``from <= now < until``.
- Every create, edit and delete is audited; bad input saves nothing and says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import NewsItem, utcnow
from . import audit, markdown_render

TITLE_MAX = 200
BODY_MAX = markdown_render.MAX_LENGTH
VISIBLE_LIMIT = 20
MANAGE_LIMIT = 100

_INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


class NewsError(ValueError):
    """Bad input for a news item: the message says what to change. Nothing was saved."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


# --- Reading ------------------------------------------------------------------------------

def _visible_clause(now: datetime):
    return (or_(NewsItem.visible_from.is_(None), NewsItem.visible_from <= now),
            or_(NewsItem.visible_until.is_(None), NewsItem.visible_until > now))


def _order():
    return (func.coalesce(NewsItem.visible_from, NewsItem.created_at).desc(), NewsItem.id.desc())


def visible_news(now: Optional[datetime] = None, limit: int = VISIBLE_LIMIT) -> list[NewsItem]:
    """What everyone sees now, newest first (one query)."""
    now = now or utcnow()
    return list(db.session.execute(
        select(NewsItem).where(*_visible_clause(now)).order_by(*_order()).limit(limit)).scalars())


def all_news(limit: int = MANAGE_LIMIT) -> list[NewsItem]:
    """Every item, scheduled and expired included, for the admin's list (one query)."""
    return list(db.session.execute(select(NewsItem).order_by(*_order()).limit(limit)).scalars())


def state(item: NewsItem, now: Optional[datetime] = None) -> str:
    """'Visible', 'Scheduled' (from lies ahead) or 'Expired' (until has passed)."""
    now = now or utcnow()
    if item.visible_from is not None and item.visible_from > now:
        return "Scheduled"
    if item.visible_until is not None and item.visible_until <= now:
        return "Expired"
    return "Visible"


def get(news_id: int) -> Optional[NewsItem]:
    return db.session.get(NewsItem, news_id)


# --- Input --------------------------------------------------------------------------------

@dataclass
class NewsInput:
    title: str
    body: str
    visible_from: Optional[datetime]
    visible_until: Optional[datetime]


def parse_local(value: Optional[str], zone: ZoneInfo, label: str) -> Optional[datetime]:
    """'2026-03-29T08:00' (a datetime-local field) or '2026-03-29 08:00' or '2026-03-29', in the
    UI timezone, to UTC; empty -> None; anything else -> ValueError with the field's name."""
    text = (value or "").strip()
    if not text:
        return None
    for fmt in _INPUT_FORMATS + ("%Y-%m-%d",):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=zone).astimezone(timezone.utc)
    raise ValueError(f"{label} '{text[:40]}' is not a date and time: use YYYY-MM-DD HH:MM, e.g. 2026-03-29 08:00.")


def to_local_input(value: Optional[datetime], zone: ZoneInfo) -> str:
    """A stored UTC time as the value of a datetime-local field in the UI timezone."""
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def parse_form(form: Mapping[str, str], zone: ZoneInfo) -> NewsInput:
    """Validate the form; NewsError lists every problem by field."""
    title = (form.get("title") or "").strip()
    body = (form.get("body") or "").replace("\r\n", "\n").strip()
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Give the news item a title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"The title is {len(title)} characters long: keep it to {TITLE_MAX}."
    if len(body) > BODY_MAX:
        errors["body"] = f"The text is {len(body):,} characters long: keep it to {BODY_MAX:,}."
    when: dict[str, Optional[datetime]] = {}
    for key, label in (("visible_from", "Visible from"), ("visible_until", "Visible until")):
        try:
            when[key] = parse_local(form.get(key), zone, label)
        except ValueError as exc:
            errors[key] = str(exc)
            when[key] = None
    if when["visible_from"] and when["visible_until"] and when["visible_until"] <= when["visible_from"]:
        errors["visible_until"] = "Visible until must be after visible from: the item would never show."
    if errors:
        raise NewsError(errors)
    return NewsInput(title, body, when["visible_from"], when["visible_until"])


def _snapshot(item: NewsItem) -> dict:
    return {"title": item.title, "body": item.body,
            "visible_from": item.visible_from.isoformat() if item.visible_from else None,
            "visible_until": item.visible_until.isoformat() if item.visible_until else None}


# --- Changes (the caller commits) ---------------------------------------------------------

def create(data: NewsInput, user) -> NewsItem:
    item = NewsItem(title=data.title, body=data.body, visible_from=data.visible_from,
                    visible_until=data.visible_until, created_by_id=getattr(user, "id", None))
    db.session.add(item)
    db.session.flush()
    audit.record("news.create", f"News '{item.title}' posted", user=user, target_type="news_item",
                 target_id=item.id, after=_snapshot(item))
    return item


def update(item: NewsItem, data: NewsInput, user) -> bool:
    """Apply the input; False (and no audit entry) when nothing changed."""
    before = _snapshot(item)
    item.title, item.body = data.title, data.body
    item.visible_from, item.visible_until = data.visible_from, data.visible_until
    old, new = audit.changed_fields(before, _snapshot(item))
    if not new:
        return False
    audit.record("news.update", f"News '{item.title}' edited", user=user, target_type="news_item",
                 target_id=item.id, before=old, after=new)
    return True


def delete(item: NewsItem, user) -> None:
    audit.record("news.delete", f"News '{item.title}' deleted", user=user, target_type="news_item",
                 target_id=item.id, before=_snapshot(item))
    db.session.delete(item)
