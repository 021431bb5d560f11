"""Settings → Integrations → Autotask: credentials (write-only secret), the default picklist values
and the cached reference data (queues, sources, priorities, statuses and the tenant's zone)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from sqlalchemy import func, select

from ... import crypto
from ...extensions import db
from ...models import Ticket, User, utcnow
from ...psa import PsaError
from ...psa.autotask import ENVIRONMENTS, REFERENCE_FIELDS
from .. import audit
from ..settings import get_settings
from .client import AutotaskServiceError, _fail, autotask_client, is_configured

#: settings field -> reference-data list it must be chosen from
DEFAULT_FIELDS = {
    "autotask_default_queue_id": "queues",
    "autotask_default_source_id": "sources",
    "autotask_default_priority_id": "priorities",
    "autotask_default_status_id": "statuses",
}


def settings_view() -> dict:
    """What Settings → Integrations → Autotask shows (never the secret)."""
    s = get_settings()
    ref = s.autotask_reference_data or {}
    return {
        "enabled": s.autotask_enabled,
        "environment": s.autotask_environment or "sandbox",
        "environments": ENVIRONMENTS,
        "api_user": s.autotask_api_user or "",
        "integration_code": s.autotask_integration_code or "",
        "secret_set": bool(s.autotask_secret),
        "base_url": s.autotask_base_url or "",
        "defaults": {f: getattr(s, f) for f in DEFAULT_FIELDS},
        "choices": {name: ref.get(name) or [] for name in REFERENCE_FIELDS},
        "has_reference_data": any(ref.get(name) for name in REFERENCE_FIELDS),
        "refreshed_at": s.autotask_reference_refreshed_at,
        "zone": ref.get("zone") or {},
        "configured": is_configured(s),
        "open_tickets": db.session.execute(
            select(func.count(Ticket.id)).where(Ticket.resolved_at.is_(None),
                                                   Ticket.autotask_ticket_id.is_not(None))).scalar_one(),
    }


def _checkbox(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "y", "yes")


def _optional_int(raw: Any, label: str) -> Optional[int]:
    raw = ("" if raw is None else str(raw)).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise AutotaskServiceError(f"{label} must be chosen from the list, not '{raw}'. Nothing was saved.") from None


def save_settings(form: Mapping[str, str], actor: Optional[User] = None) -> bool:
    """Validate and save the Autotask section; returns whether anything changed. The caller commits."""
    s = get_settings()
    environment = (form.get("autotask_environment") or "").strip()
    if environment not in ENVIRONMENTS:
        raise AutotaskServiceError("Choose the Autotask environment: production or sandbox. Nothing was saved.")
    values: dict[str, Any] = {
        "autotask_enabled": _checkbox(form, "autotask_enabled"),
        "autotask_environment": environment,
        "autotask_api_user": (form.get("autotask_api_user") or "").strip() or None,
        "autotask_integration_code": (form.get("autotask_integration_code") or "").strip() or None,
    }
    if values["autotask_api_user"] and len(values["autotask_api_user"]) > 255:
        raise AutotaskServiceError("The API user name may have at most 255 characters. Nothing was saved.")
    if values["autotask_integration_code"] and len(values["autotask_integration_code"]) > 255:
        raise AutotaskServiceError("The integration code may have at most 255 characters. Nothing was saved.")
    secret = (form.get("autotask_secret") or "").strip()
    if secret and not crypto.can_store():
        raise AutotaskServiceError(f"{crypto.no_key_message()} Nothing was saved.")
    if secret:
        values["autotask_secret"] = secret
    elif _checkbox(form, "clear_secret"):
        values["autotask_secret"] = None
    base_url = (form.get("autotask_base_url") or "").strip().rstrip("/")
    if base_url and not base_url.lower().startswith(("http://", "https://")):
        raise AutotaskServiceError("The Backupchecks address must start with https:// (or http://), e.g. "
                                   "https://backupchecks.example.com. Nothing was saved.")
    if len(base_url) > 500:
        raise AutotaskServiceError("The Backupchecks address may have at most 500 characters. Nothing was saved.")
    values["autotask_base_url"] = base_url or None
    ref = s.autotask_reference_data or {}
    labels = {"queues": "Default queue", "sources": "Default source", "priorities": "Default priority",
              "statuses": "Default status"}
    for field_name, ref_name in DEFAULT_FIELDS.items():
        value = _optional_int(form.get(field_name), labels[ref_name])
        if value is not None:
            active = {v.get("value") for v in ref.get(ref_name) or [] if v.get("active", True)}
            if value not in active:
                raise AutotaskServiceError(
                    f"{labels[ref_name]} {value} is not an active value in Autotask. Press “Refresh reference "
                    "data” and choose again. Nothing was saved.")
        values[field_name] = value
    will_have_secret = values.get("autotask_secret", s.autotask_secret)
    if values["autotask_enabled"] and not (values["autotask_api_user"] and values["autotask_integration_code"]
                                           and will_have_secret):
        raise AutotaskServiceError("To switch Autotask on, fill in the API user, the secret and the integration "
                                   "code. Nothing was saved.")
    before = {k: getattr(s, k) for k in values}
    b, a = audit.changed_fields(before, values)
    if not a:
        return False
    for key, value in a.items():
        setattr(s, key, value)
    if {"autotask_environment", "autotask_api_user"} & set(a) and ref.get("zone"):
        # Another tenant or environment: the remembered zone no longer applies.
        s.autotask_reference_data = {k: v for k, v in ref.items() if k != "zone"}
    audit.record("settings.autotask", f"Settings → Autotask: {', '.join(sorted(a))}", user=actor,
                 target_type="settings", target_id="autotask", before=b, after=a)
    return True


def _store_zone(s, zone: Mapping[str, Any]) -> None:
    if zone.get("discovered", True) and zone.get("url"):
        ref = dict(s.autotask_reference_data or {})
        ref["zone"] = {"name": zone.get("name"), "url": zone.get("url"), "web_url": zone.get("web_url")}
        s.autotask_reference_data = ref


def test_connection(actor: Optional[User] = None) -> dict:
    """Discover the zone and make one authenticated call with the saved settings. Commits the audit."""
    s = get_settings()
    try:
        with autotask_client(s, require_enabled=False) as client:
            result = client.test_connection()
    except (PsaError, AutotaskServiceError) as exc:
        message = exc.message
        db.session.rollback()
        audit.record("settings.autotask_test", "Tested the Autotask connection: failed", user=actor,
                     target_type="settings", target_id="autotask", after={"ok": False, "error": message[:300]},
                     commit=True)
        raise AutotaskServiceError(message) from None
    _store_zone(s, result.get("zone") or {})
    audit.record("settings.autotask_test", "Tested the Autotask connection: ok", user=actor,
                 target_type="settings", target_id="autotask",
                 after={"ok": True, "zone": (result.get("zone") or {}).get("name")})
    db.session.commit()
    return result


def refresh_reference_data(actor: Optional[User] = None) -> dict[str, int]:
    """Read queues, sources, priorities and statuses from Autotask and cache them. Commits."""
    s = get_settings()
    try:
        with autotask_client(s, require_enabled=False) as client:
            data = client.refresh_reference_data()
            zone = client.zone().to_dict()
    except PsaError as exc:
        raise _fail(exc, "reference data") from None
    ref = {name: [v.to_dict() for v in values] for name, values in data.items()}
    old = s.autotask_reference_data or {}
    if old.get("zone"):
        ref["zone"] = old["zone"]
    s.autotask_reference_data = ref
    _store_zone(s, zone)
    s.autotask_reference_refreshed_at = utcnow()
    counts = {name: len(values) for name, values in data.items()}
    audit.record("settings.autotask_reference", "Refreshed the Autotask reference data", user=actor,
                 target_type="settings", target_id="autotask", after=counts)
    db.session.commit()
    return counts
