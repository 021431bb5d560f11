"""Schedules set by hand (they win over the learned one), the effective schedule of a job and its
one-line description."""
from __future__ import annotations

import re
from datetime import date
from typing import Optional

from ...models import Job
from .slots import DEFAULT_GRACE_MINUTES, _parse_hhmm, is_scheduled

MAX_MANUAL_GRACE_MINUTES = 24 * 60
MANUAL_KINDS = ("weekdays", "monthdays", "every_n_days")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAY_LOOKUP = {n.lower(): i for i, n in enumerate(WEEKDAY_NAMES)}
_WEEKDAY_LOOKUP.update({"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
                        "saturday": 5, "sunday": 6})


def _int_list(value, what: str, lo: int, hi: int, names: Optional[dict] = None) -> list[int]:
    if value is None or value == "":
        items = []
    elif isinstance(value, str):
        items = [p for p in re.split(r"[,\s;]+", value) if p]
    elif isinstance(value, (list, tuple, set)):
        items = list(value)
    else:
        raise ValueError(f"The {what} must be a list.")
    out = set()
    for item in items:
        key = str(item).strip().lower()
        if names and key in names:
            out.add(names[key])
            continue
        if isinstance(item, bool):
            raise ValueError(f"'{item}' is not a valid {what[:-1]}.")
        try:
            n = int(key)
        except ValueError:
            raise ValueError(f"'{item}' is not a valid {what[:-1]}.") from None
        if not lo <= n <= hi:
            raise ValueError(f"'{item}' is not a valid {what[:-1]} ({lo} to {hi}).")
        out.add(n)
    if not out:
        raise ValueError(f"Choose at least one of the {what}.")
    return sorted(out)


def _positive_int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"The {what} must be a whole number.")
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"The {what} must be a whole number.") from None
    if not lo <= n <= hi:
        raise ValueError(f"The {what} must be between {lo} and {hi}.")
    return n


def validate_manual_schedule(data: dict, today: Optional[date] = None) -> dict:
    """A clean manual schedule from form or JSON input; ValueError with a message otherwise.

    ``kind``: ``weekdays`` (``weekdays``: 0=Mon … 6=Sun or names), ``monthdays`` (``monthdays``:
    1–31; 29–31 mean the last day in shorter months) or ``every_n_days`` (``every_n_days`` ≥ 1 and an
    ``anchor_date`` YYYY-MM-DD, default today); ``time`` "HH:MM" in the UI timezone;
    ``grace_minutes`` 0–1440 (default 120).
    """
    if not isinstance(data, dict):
        raise ValueError("The schedule must be given as fields.")
    kind = str(data.get("kind") or "").strip().lower()
    if kind not in MANUAL_KINDS:
        raise ValueError("Choose how the job is scheduled: on weekdays, on days of the month, or every N days.")
    out: dict = {"kind": kind}
    if kind == "weekdays":
        out["weekdays"] = _int_list(data.get("weekdays"), "weekdays", 0, 6, _WEEKDAY_LOOKUP)
    elif kind == "monthdays":
        out["monthdays"] = _int_list(data.get("monthdays"), "days of the month", 1, 31)
    else:
        out["every_n_days"] = _positive_int(data.get("every_n_days"), "number of days between runs", 1, 366)
        anchor = data.get("anchor_date")
        if anchor in (None, ""):
            if today is None:
                raise ValueError("Give the date of one run (anchor date) for an every-N-days schedule.")
            anchor_d = today
        elif isinstance(anchor, date):
            anchor_d = anchor
        else:
            try:
                anchor_d = date.fromisoformat(str(anchor).strip())
            except ValueError:
                raise ValueError(f"The anchor date '{anchor}' is not a date (YYYY-MM-DD).") from None
        out["anchor_date"] = anchor_d.isoformat()
    out["time"] = _parse_hhmm(data.get("time")).strftime("%H:%M")
    grace = data.get("grace_minutes")
    out["grace_minutes"] = (DEFAULT_GRACE_MINUTES if grace in (None, "")
                            else _positive_int(grace, "grace (minutes)", 0, MAX_MANUAL_GRACE_MINUTES))
    return out


def _normalise_manual(manual: dict) -> Optional[dict]:
    kind = manual.get("kind")
    base = {"time": manual.get("time"), "grace_minutes": int(manual.get("grace_minutes", DEFAULT_GRACE_MINUTES)),
            "source": "manual"}
    if kind == "weekdays":
        wds = sorted(manual.get("weekdays") or [])
        if not wds:
            return None
        return {"kind": "daily" if len(wds) == 7 else "weekly", "weekdays": wds, **base}
    if kind == "monthdays":
        return {"kind": "monthly", "monthdays": sorted(manual.get("monthdays") or []), **base}
    if kind == "every_n_days":
        return {"kind": "every_n_days", "every_n_days": int(manual.get("every_n_days") or 1),
                "anchor_date": manual.get("anchor_date"), **base}
    return None


def effective_schedule(job: Job) -> Optional[dict]:
    """The schedule that counts for a job: the manual one if set, else the learned one.

    None when the job has neither; a dict with ``kind`` irregular/unknown when learning found no
    pattern (such jobs get no missed runs). A learned or manual schedule carries ``kind``,
    ``weekdays``/``monthdays``/``every_n_days``+``anchor_date``, ``time``, ``grace_minutes``
    and ``source`` ("manual" or "learned").
    """
    if job.manual_schedule:
        norm = _normalise_manual(job.manual_schedule)
        if norm:
            return norm
    if job.learned_schedule:
        return {**job.learned_schedule, "source": "learned"}
    return None


def describe_schedule(schedule: Optional[dict]) -> str:
    """One line for pages: "Daily at 22:00", "Mon–Fri at 21:00", "Monthly on day 1, 15 at 04:00"."""
    if not schedule:
        return "Unknown"
    kind = schedule.get("kind")
    if kind == "irregular":
        return "Irregular"
    if not is_scheduled(schedule):
        return "Unknown"
    at = f" at {schedule['time']}"
    if kind == "daily":
        text = "Daily"
    elif kind == "weekly":
        wds = schedule.get("weekdays") or []
        text = "Mon–Fri" if wds == [0, 1, 2, 3, 4] else ", ".join(WEEKDAY_NAMES[w] for w in wds)
    elif kind == "monthly":
        text = "Monthly on day " + ", ".join(str(d) for d in schedule.get("monthdays") or [])
    else:
        text = f"Every {schedule.get('every_n_days')} days from {schedule.get('anchor_date')}"
    return text + at + (" (set by hand)" if schedule.get("source") == "manual" else "")
