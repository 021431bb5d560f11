"""Figures for the dashboard: today's counts, the last import, news."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..models import ImportCycle, JobRun, NewsItem, utcnow
from .settings import ui_zone


def today_bounds_utc() -> tuple[datetime, datetime]:
    zone = ui_zone()
    today = datetime.now(zone).date()
    start = datetime.combine(today, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def dashboard_data() -> dict:
    start, end = today_bounds_utc()
    rows = db.session.execute(
        select(JobRun.effective_status, func.count(JobRun.id))
        .where(JobRun.started_at >= start, JobRun.started_at < end)
        .group_by(JobRun.effective_status)
    ).all()
    counts = {"Success": 0, "Warning": 0, "Failed": 0, "Missed": 0}
    for status, n in rows:
        counts[status] = counts.get(status, 0) + n
    unreviewed = db.session.execute(select(func.count(JobRun.id)).where(JobRun.reviewed_at.is_(None))).scalar_one()
    last_cycle = db.session.execute(select(ImportCycle).order_by(ImportCycle.started_at.desc()).limit(1)).scalar_one_or_none()
    now = utcnow()
    news = db.session.execute(
        select(NewsItem).where(
            or_(NewsItem.visible_from.is_(None), NewsItem.visible_from <= now),
            or_(NewsItem.visible_until.is_(None), NewsItem.visible_until > now),
        ).order_by(NewsItem.created_at.desc()).limit(10)
    ).scalars().all()
    return {"counts": counts, "unreviewed": unreviewed, "last_cycle": last_cycle, "news": news}
