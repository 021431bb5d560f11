"""System settings: one row, created on first use."""
from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones
from functools import lru_cache

from flask import current_app, g

from ..extensions import db
from ..models import SystemSettings


def get_settings() -> SystemSettings:
    """The settings row (cached per request)."""
    if "system_settings" in g:
        return g.system_settings
    row = db.session.get(SystemSettings, 1)
    if row is None:
        # Created inside a savepoint: it is committed with the caller's transaction, and
        # never commits the caller's half-done work.
        from sqlalchemy.exc import IntegrityError
        try:
            with db.session.begin_nested():
                row = SystemSettings(id=1)
                db.session.add(row)
        except IntegrityError:  # another process created it first
            row = db.session.get(SystemSettings, 1)
    g.system_settings = row
    return row


def ui_zone() -> ZoneInfo:
    """The UI timezone; read once per request or background step (a commit would otherwise make
    every call reload the settings row)."""
    if "ui_zone" in g:
        return g.ui_zone
    try:
        zone = ZoneInfo(get_settings().ui_timezone or "Europe/Amsterdam")
    except Exception:  # noqa: BLE001 - a bad value never breaks a page
        zone = ZoneInfo("Europe/Amsterdam")
    g.ui_zone = zone
    return zone


@lru_cache(maxsize=1)
def timezone_choices() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


def graph_env_overrides() -> dict:
    """Graph values set in the environment; they win over the Settings page."""
    return dict(current_app.config.get("GRAPH_ENV_OVERRIDES") or {})
