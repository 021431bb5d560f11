"""Report definitions: reading and validating the form, saving (audited), the mailing schedule,
and the lists the definition pages show."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable, Mapping, Optional
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import delete, func, select

from ...extensions import db
from ...models import Customer, ReportDefinition, ReportRun, utcnow
from .. import audit, markdown_render, scope
from ..settings import ui_zone
from .periods import period_days
from .vocabulary import CONTENT_KEYS, PERIODS, SCHEDULES, WEEKDAYS, ReportError

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def content_flags(defn: Optional[ReportDefinition]) -> dict[str, bool]:
    stored = (defn.content if defn is not None else None) or {}
    return {k: bool(stored.get(k, True)) for k in CONTENT_KEYS}


def _snapshot(defn: ReportDefinition) -> dict:
    return {
        "name": defn.name, "all_customers": defn.all_customers, "customer_ids": defn.customer_ids,
        "period": defn.period, "custom_start": defn.custom_start, "custom_end": defn.custom_end,
        "content": defn.content, "intro_markdown": defn.intro_markdown, "schedule": defn.schedule,
        "schedule_day": defn.schedule_day, "schedule_time": defn.schedule_time, "recipients": defn.recipients,
    }


def _parse_date(value: Optional[str], label: str) -> Optional[date]:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{label} '{value[:20]}' is not a date: use YYYY-MM-DD.") from None


def parse_recipients(value: Optional[str]) -> list[str]:
    """'a@x.example; b@y.example' -> ['a@x.example', 'b@y.example']; ReportError names a bad one."""
    from ..mail_transport import AddressError, parse_addresses

    try:
        return parse_addresses(value)
    except AddressError as exc:
        raise ReportError(str(exc)) from None


def definition_values(form: Mapping[str, str], getlist: Callable[[str], list[str]]) -> dict:
    """Validate the definition form into model values (ReportError with what to fix)."""
    name = (form.get("name") or "").strip()
    if not name:
        raise ReportError("Give the report a name.")
    if len(name) > 200:
        raise ReportError("The name may have at most 200 characters.")
    scope = form.get("customer_scope", "all")
    all_customers = scope != "selected"
    customer_ids: Optional[list[int]] = None
    if not all_customers:
        try:
            wanted = sorted({int(v) for v in getlist("customer_ids") if str(v).strip()})
        except ValueError:
            raise ReportError("The customer list was not understood; choose customers again.") from None
        if not wanted:
            raise ReportError("Choose at least one customer, or choose all customers.")
        known = set(db.session.execute(select(Customer.id).where(Customer.id.in_(wanted))).scalars())
        if known != set(wanted):
            raise ReportError("One of the chosen customers no longer exists; choose customers again.")
        customer_ids = wanted
    period = form.get("period", "last_month")
    if period not in PERIODS:
        raise ReportError("Choose a period: last 7 days, last calendar month or a custom range.")
    custom_start = _parse_date(form.get("custom_start"), "Start date")
    custom_end = _parse_date(form.get("custom_end"), "End date")
    if period == "custom":
        period_days("custom", date.today(), custom_start, custom_end)
        if (custom_end - custom_start).days > 366:
            raise ReportError("A custom period may cover at most a year.")
    else:
        custom_start = custom_end = None
    content = {k: form.get(f"content_{k}") in ("1", "on", "true", "yes") for k in CONTENT_KEYS}
    if not any(content.values()):
        raise ReportError("Choose at least one thing the report contains.")
    intro = (form.get("intro_markdown") or "").replace("\r\n", "\n")
    if len(intro) > markdown_render.MAX_LENGTH:
        raise ReportError(f"The intro text is {len(intro):,} characters long; it may have at most "
                          f"{markdown_render.MAX_LENGTH:,}.")
    schedule = form.get("schedule", "none")
    if schedule not in SCHEDULES:
        raise ReportError("Choose a schedule: not scheduled, weekly or monthly.")
    schedule_day = schedule_time = None
    recipients = parse_recipients(form.get("recipients"))
    if schedule != "none":
        try:
            schedule_day = int(form.get(f"schedule_day_{schedule}") or form.get("schedule_day") or "")
        except ValueError:
            raise ReportError("Choose the day the report is sent.") from None
        if schedule == "weekly" and not 0 <= schedule_day <= 6:
            raise ReportError("Choose a weekday for a weekly report.")
        if schedule == "monthly" and not 1 <= schedule_day <= 28:
            raise ReportError("Choose a day of the month from 1 to 28 for a monthly report.")
        schedule_time = (form.get("schedule_time") or "").strip()
        if not _TIME_RE.match(schedule_time):
            raise ReportError("Give the time the report is sent as HH:MM, e.g. 07:30.")
        if not recipients:
            raise ReportError("A scheduled report needs at least one recipient.")
    return {
        "name": name, "all_customers": all_customers, "customer_ids": customer_ids, "period": period,
        "custom_start": custom_start, "custom_end": custom_end, "content": content, "intro_markdown": intro,
        "schedule": schedule, "schedule_day": schedule_day, "schedule_time": schedule_time,
        "recipients": ", ".join(recipients) or None,
    }


def save_definition(defn: Optional[ReportDefinition], values: dict, user) -> ReportDefinition:
    """Create or update a definition (audited, not committed)."""
    creating = defn is None
    if creating:
        defn = ReportDefinition(created_by_id=getattr(user, "id", None))
        db.session.add(defn)
        before = {}
    else:
        before = _snapshot(defn)
    for key, value in values.items():
        setattr(defn, key, value)
    defn.next_delivery_at = next_delivery(defn, utcnow(), ui_zone())
    db.session.flush()
    after = _snapshot(defn)
    if creating:
        audit.record("report.create", f"Report '{defn.name}' created", user=user, target_type="report",
                     target_id=defn.id, after=after)
    else:
        b, a = audit.changed_fields(before, after)
        if a:
            audit.record("report.update", f"Report '{defn.name}' changed: {', '.join(sorted(a))}", user=user,
                         target_type="report", target_id=defn.id, before=b, after=a)
    return defn


def delete_definition(defn: ReportDefinition, user) -> None:
    audit.record("report.delete", f"Report '{defn.name}' deleted with its generated files", user=user,
                 target_type="report", target_id=defn.id, before=_snapshot(defn))
    db.session.execute(delete(ReportRun).where(ReportRun.definition_id == defn.id))
    db.session.delete(defn)


def next_delivery(defn: ReportDefinition, after: datetime, zone: ZoneInfo) -> Optional[datetime]:
    """The first scheduled moment strictly after ``after`` (UTC), from the weekday or day of the month
    and the HH:MM in the UI timezone (a time that does not exist on a spring-forward day moves
    forward by the gap), or None when the definition is not scheduled."""
    if defn.schedule not in ("weekly", "monthly") or defn.schedule_day is None or not defn.schedule_time:
        return None
    m = _TIME_RE.match(defn.schedule_time)
    if not m:
        return None
    at = time(int(m.group(1)), int(m.group(2)))
    local_after = after.astimezone(zone)
    day = local_after.date()
    for _ in range(400):
        hit = (day.weekday() == defn.schedule_day) if defn.schedule == "weekly" else (day.day == defn.schedule_day)
        if hit:
            moment = datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)
            if moment > after:
                return moment
        day += timedelta(days=1)
    return None  # pragma: no cover


def schedule_text(defn: ReportDefinition) -> str:
    if defn.schedule == "weekly" and defn.schedule_day is not None:
        return f"Weekly on {WEEKDAYS[defn.schedule_day]} at {defn.schedule_time}"
    if defn.schedule == "monthly" and defn.schedule_day is not None:
        return f"Monthly on day {defn.schedule_day} at {defn.schedule_time}"
    return SCHEDULES["none"]


def intro_html(defn: ReportDefinition) -> Markup:
    """The intro as stored HTML, rendered when the definition was saved (services/markdown_render.py)."""
    return markdown_render.html_of(defn)


def visible_to(defn: Optional[ReportDefinition], user) -> bool:
    """How a report definition is bound to customers: by its customer selection. Staff see every
    definition; a portal user one that names its customers (not "all customers") when every one of
    them is theirs (``scope.allows_all``): a report over their customer and another is not theirs."""
    if defn is None:
        return False
    return scope.allows_all(user, None if defn.all_customers else [int(i) for i in (defn.customer_ids or [])])


def list_definitions(user=None) -> list[ReportDefinition]:
    """The report definitions (those ``user`` may see, with a user), by name. One query."""
    rows = db.session.execute(select(ReportDefinition).order_by(func.lower(ReportDefinition.name))).scalars().all()
    if user is None or scope.visible_customer_ids(user) is None:
        return rows
    return [d for d in rows if visible_to(d, user)]  # a JSON list per row: checked here, not in SQL


def customer_choices() -> list:
    return db.session.execute(select(Customer.id, Customer.name, Customer.active)
                              .order_by(func.lower(Customer.name))).all()


def customer_names(ids: Optional[Iterable[int]]) -> list[str]:
    ids = list(ids or [])
    if not ids:
        return []
    return list(db.session.execute(select(Customer.name).where(Customer.id.in_(ids))
                                   .order_by(func.lower(Customer.name))).scalars())

