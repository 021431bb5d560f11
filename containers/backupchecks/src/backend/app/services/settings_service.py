"""Saving settings sections: validation, audit with before/after (secrets masked)."""
from __future__ import annotations

from typing import Mapping

from . import audit
from .settings import get_settings, timezone_choices  # noqa: F401 (re-exported for routes)

DAILY_RULES = ("worst", "last", "best")


class SettingsError(ValueError):
    pass


def _snapshot(row, fields) -> dict:
    return {f: getattr(row, f) for f in fields}


def _apply(section: str, values: dict) -> bool:
    row = get_settings()
    before = _snapshot(row, values.keys())
    for key, value in values.items():
        setattr(row, key, value)
    b, a = audit.changed_fields(before, values)
    if not a:
        return False
    audit.record(f"settings.{section}", f"Settings → {section.capitalize()}: {', '.join(sorted(a))}",
                 target_type="settings", target_id=section, before=b, after=a)
    return True


def general_form_values() -> dict:
    s = get_settings()
    return {"ui_timezone": s.ui_timezone, "sandbox_mode": s.sandbox_mode, "dashboard_first": s.dashboard_first,
            "daily_status_rule": s.daily_status_rule, "company_name": s.company_name}


def save_general(form: Mapping[str, str]) -> bool:
    tz = (form.get("ui_timezone") or "").strip()
    if tz not in timezone_choices():
        raise SettingsError(f"'{tz}' is not a known IANA timezone (e.g. Europe/Amsterdam). Nothing was saved.")
    rule = form.get("daily_status_rule", "worst")
    if rule not in DAILY_RULES:
        raise SettingsError("The day's status rule must be worst, last or best. Nothing was saved.")
    name = (form.get("company_name") or "").strip()
    if len(name) > 200:
        raise SettingsError("The service provider name may have at most 200 characters. Nothing was saved.")
    return _apply("general", {
        "ui_timezone": tz,
        "sandbox_mode": form.get("sandbox_mode") in ("on", "1", "true", "y"),
        "dashboard_first": form.get("dashboard_first") in ("on", "1", "true", "y"),
        "daily_status_rule": rule,
        "company_name": name,
    })
