"""Autotask PSA: settings, customer ↔ company mapping, tickets from runs, and the poll.

The rules, in one place:

* **Settings** (admin): credentials are write-only (the secret is never shown,
  logged or audited in clear); default queue/source/priority/status must be
  active values of the picklists read from Autotask (cached in
  ``SystemSettings.autotask_reference_data`` together with the tenant's zone).
* **Mapping**: a customer is mapped by Autotask company **id**; a check reads the
  company and sets the status: ``ok``, ``renamed`` (the name changed in
  Autotask: the new name is stored), ``missing`` (no such company) or
  ``invalid`` (inactive, or an id that is not a number). Only ``ok`` and
  ``renamed`` customers get tickets (:func:`ticket_block_reason` says why not).
* **Tickets**: a ticket made for a run carries the stable reference
  ``BC-run-<run id>`` in ``externalID``; the client looks it up before creating
  and after any unclear answer, so a retry, a double click or a lost response
  never makes a second ticket. The ticket is stored on the run and as an
  internal ticket (code = ticket number, ``autotask_ticket_id``, job scope,
  linked to the run) so it follows the job's later runs. While a job has an open
  Autotask-backed ticket, "create" links the run to it instead. Nothing is
  written to the database before Autotask confirmed: an unreachable Autotask
  leaves nothing half-saved.
* **Closing**: the background poll resolves the internal ticket when the
  Autotask ticket is completed (or no longer exists); resolving from
  Backupchecks adds a note in Autotask and completes the ticket first, then
  resolves the internal ticket. Autotask is only ever PATCHed with changed
  fields (never a blank description).

Functions raise :class:`AutotaskServiceError` with a message for the operator;
the caller commits (the functions that talk to Autotask commit themselves so
that what Autotask did is recorded at once).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Optional, Sequence

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import case, func, select

from .. import crypto
from ..extensions import db
from ..models import Customer, Job, JobRun, Ticket, TicketJobRun, User, utcnow
from ..psa import (
    AutotaskClient,
    AutotaskConfig,
    PsaCompany,
    PsaError,
    PsaNotFoundError,
    PsaTicket,
    PsaValidationError,
)
from ..psa.autotask import ENVIRONMENTS, REFERENCE_FIELDS
from . import audit
from .settings import get_settings, ui_zone

log = logging.getLogger(__name__)

MAPPING_STATUSES = ("ok", "renamed", "missing", "invalid")
TICKETABLE = ("ok", "renamed")
POLL_BATCH = 200
REFRESH_BATCH = 100
MAX_OBJECTS_IN_DESCRIPTION = 30
DEFAULT_POLL_SECONDS = 300
INTERACTIVE_RETRY_BUDGET = 15.0

#: settings field -> reference-data list it must be chosen from
DEFAULT_FIELDS = {
    "autotask_default_queue_id": "queues",
    "autotask_default_source_id": "sources",
    "autotask_default_priority_id": "priorities",
    "autotask_default_status_id": "statuses",
}


class AutotaskServiceError(ValueError):
    """What went wrong, worded for the operator; nothing was changed when it is raised."""

    @property
    def message(self) -> str:
        return str(self)


# --------------------------------------------------------------------------- client


def is_enabled(settings=None) -> bool:
    s = settings or get_settings()
    return bool(s.autotask_enabled)


def is_configured(settings=None) -> bool:
    s = settings or get_settings()
    return all((v or "").strip() for v in (s.autotask_api_user, s.autotask_secret, s.autotask_integration_code))


def build_config(settings=None, *, interactive: bool = True) -> AutotaskConfig:
    """The client config from the settings row.

    ``interactive``: someone waits for the answer, so throttling and server errors are retried
    for at most INTERACTIVE_RETRY_BUDGET seconds (the poll uses the client's longer default).

    ``AUTOTASK_CONFIG_OVERRIDES`` (app config, a mapping of AutotaskConfig fields)
    is applied last: tests point the discovery URLs at the fake with it.
    """
    s = settings or get_settings()
    zone = ((s.autotask_reference_data or {}).get("zone") or {}).get("url")
    try:
        config = AutotaskConfig(
            api_user=(s.autotask_api_user or "").strip(),
            secret=(s.autotask_secret or "").strip(),
            integration_code=(s.autotask_integration_code or "").strip(),
            environment=s.autotask_environment or "sandbox",
            fallback_base_url=zone or None,
        )
        if interactive:
            config = replace(config, retry_budget=INTERACTIVE_RETRY_BUDGET)
        overrides = dict(current_app.config.get("AUTOTASK_CONFIG_OVERRIDES") or {})
        return replace(config, **overrides) if overrides else config
    except PsaError as exc:
        raise AutotaskServiceError(exc.message) from None


@contextmanager
def autotask_client(settings=None, *, require_enabled: bool = True,
                    interactive: bool = True) -> Iterator[AutotaskClient]:
    s = settings or get_settings()
    if require_enabled and not s.autotask_enabled:
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    client = AutotaskClient(build_config(s, interactive=interactive))
    try:
        yield client
    finally:
        client.close()


def _fail(exc: PsaError, what: str = "") -> AutotaskServiceError:
    """A PSA error as a service error; the session is rolled back so nothing is half-saved."""
    db.session.rollback()
    log.warning("Autotask: %s%s", f"{what}: " if what else "", exc.message)
    return AutotaskServiceError(exc.message)


# ------------------------------------------------------------------------- settings


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


def _label_of(ref_name: str, value: Optional[int]) -> str:
    for v in (get_settings().autotask_reference_data or {}).get(ref_name) or []:
        if v.get("value") == value:
            return v.get("label") or str(value)
    return str(value) if value is not None else ""


# -------------------------------------------------------------------------- mapping


def ticket_block_reason(customer: Customer) -> Optional[str]:
    """Why this customer can't get an Autotask ticket now (None when it can)."""
    if customer.autotask_company_id is None:
        return (f"{customer.name} is not mapped to an Autotask company: map it under Customers → "
                f"{customer.name} → Autotask.")
    status = customer.autotask_mapping_status
    if status == "missing":
        return (f"Autotask company {customer.autotask_company_id} of {customer.name} no longer exists in "
                "Autotask: map the customer to another company.")
    if status == "invalid":
        return (f"Autotask company {customer.autotask_company_id} of {customer.name} is inactive in Autotask "
                "(or the id is not valid): map the customer to an active company.")
    return None


def _parse_company_id(raw: Any) -> int:
    text = ("" if raw is None else str(raw)).strip()
    if not text.isdigit() or int(text) <= 0:
        raise AutotaskServiceError(f"An Autotask company id is a whole number such as 174, not '{text}'. "
                                   "Nothing was saved.")
    return int(text)


def search_companies(text: str, limit: int = 25) -> list[PsaCompany]:
    text = (text or "").strip()
    if len(text) < 2 and not text.isdigit():
        return []
    try:
        with autotask_client() as client:
            return client.search_companies(text, limit=limit)
    except PsaError as exc:
        raise _fail(exc, "company search") from None


def _status_for(customer: Customer, company: Optional[PsaCompany]) -> tuple[str, Optional[str]]:
    if company is None:
        return "missing", customer.autotask_company_name
    if not company.active:
        return "invalid", company.name
    old = (customer.autotask_company_name or "").strip()
    if old and old != company.name.strip():
        return "renamed", company.name
    return "ok", company.name


def _apply_mapping(customer: Customer, company_id: Optional[int], status: Optional[str], name: Optional[str],
                   actor: Optional[User], event: str, summary: str) -> dict:
    fields = ("autotask_company_id", "autotask_company_name", "autotask_mapping_status")
    before = {f: getattr(customer, f) for f in fields}
    after = {"autotask_company_id": company_id, "autotask_company_name": name, "autotask_mapping_status": status}
    customer.autotask_company_id = company_id
    customer.autotask_company_name = name
    customer.autotask_mapping_status = status
    customer.autotask_checked_at = utcnow() if company_id is not None else None
    b, a = audit.changed_fields(before, after)
    if a or event != "customer.autotask_checked":
        audit.record(event, summary, user=actor, target_type="customer", target_id=customer.id, before=b, after=a)
    return a


def set_customer_company(customer: Customer, raw_company_id: Any, actor: Optional[User]) -> str:
    """Map the customer to an existing, active Autotask company. Commits; returns the status."""
    company_id = _parse_company_id(raw_company_id)
    try:
        with autotask_client() as client:
            company = client.get_company(company_id)
    except PsaNotFoundError:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask has no company with id {company_id} (or the API user can't see it). "
                                   "Nothing was saved.") from None
    except PsaError as exc:
        raise _fail(exc, "company") from None
    if not company.active:
        raise AutotaskServiceError(f"Autotask company {company.name} ({company_id}) is inactive; tickets can't be "
                                   "made for it. Choose an active company. Nothing was saved.")
    _apply_mapping(customer, company_id, "ok", company.name, actor, "customer.autotask_mapped",
                   f"Mapped {customer.name} to Autotask company {company.name} ({company_id})")
    db.session.commit()
    return "ok"


def clear_customer_company(customer: Customer, actor: Optional[User]) -> bool:
    if customer.autotask_company_id is None and customer.autotask_mapping_status is None:
        return False
    _apply_mapping(customer, None, None, None, actor, "customer.autotask_cleared",
                   f"Removed the Autotask mapping of {customer.name}")
    customer.autotask_checked_at = None
    db.session.commit()
    return True


def _companies(client: AutotaskClient, ids: Sequence[int]) -> dict[int, PsaCompany]:
    """Companies by id, one query per batch (ids Autotask doesn't return are absent)."""
    if not ids:
        return {}
    # The client has no public bulk read of companies yet; its query helper pages and retries for us.
    items = client._query("Companies", [{"op": "in", "field": "id", "value": sorted(set(ids))}],
                          include=("companyName", "companyNumber", "isActive"),
                          action="Reading Autotask companies")
    out = {}
    for item in items:
        out[int(item["id"])] = PsaCompany(id=int(item["id"]), name=str(item.get("companyName") or ""),
                                          active=bool(item.get("isActive", True)), number=item.get("companyNumber"))
    return out


def check_customers(customers: Sequence[Customer], client: AutotaskClient, actor: Optional[User]) -> dict[str, int]:
    """Check the mapping of ``customers`` against Autotask (one query for all); the caller commits."""
    counts = {s: 0 for s in MAPPING_STATUSES}
    found = _companies(client, [c.autotask_company_id for c in customers if c.autotask_company_id])
    for c in customers:
        if c.autotask_company_id is None:
            continue
        status, name = _status_for(c, found.get(c.autotask_company_id))
        counts[status] += 1
        _apply_mapping(c, c.autotask_company_id, status, name, actor, "customer.autotask_checked",
                       f"Checked the Autotask mapping of {c.name}: {status}")
    return counts


def refresh_customer(customer: Customer, actor: Optional[User]) -> str:
    """Check one customer's mapping now; commits and returns the status."""
    if customer.autotask_company_id is None:
        raise AutotaskServiceError(f"{customer.name} is not mapped to an Autotask company.")
    try:
        with autotask_client() as client:
            check_customers([customer], client, actor)
    except PsaError as exc:
        raise _fail(exc, "mapping check") from None
    db.session.commit()
    return customer.autotask_mapping_status


def refresh_all_mappings(actor: Optional[User], progress=None) -> dict[str, int]:
    """Check every mapped customer, in batches; commits after each batch. ``progress(done, total, msg)``."""
    ids = db.session.execute(select(Customer.id).where(Customer.autotask_company_id.is_not(None))
                             .order_by(Customer.id)).scalars().all()
    total = len(ids)
    counts = {s: 0 for s in MAPPING_STATUSES}
    if progress:
        progress(0, total, f"Checking {total} mapped customers")
    with autotask_client(interactive=progress is None) as client:
        for start in range(0, total, REFRESH_BATCH):
            batch = db.session.execute(select(Customer).where(Customer.id.in_(ids[start:start + REFRESH_BATCH]))
                                       ).scalars().all()
            try:
                for k, v in check_customers(batch, client, actor).items():
                    counts[k] += v
            except PsaError as exc:
                raise _fail(exc, "mapping check") from None
            db.session.commit()
            if progress:
                done = min(start + REFRESH_BATCH, total)
                progress(done, total, f"Checked {done} of {total}")
    return counts


def start_refresh_all(app: Flask, actor: Optional[User]):
    """"Refresh all" in the background with progress (a BackgroundTask)."""
    from .tasks import start_task

    if not is_enabled():
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    actor_id = getattr(actor, "id", None)
    # Committed with the task by start_task, or rolled back when a check already runs (TaskBusy).
    audit.record("customer.autotask_refresh_all", "Started checking all Autotask mappings", user=actor)

    def work(progress):
        user = db.session.get(User, actor_id) if actor_id else None
        try:
            counts = refresh_all_mappings(user, progress)
        except AutotaskServiceError as exc:
            return f"Stopped: {exc}"
        return ("Checked the Autotask mappings: " +
                ", ".join(f"{n} {status}" for status, n in counts.items()) + ".")

    return start_task(app, "autotask_refresh_all", actor_id, work,
                      synchronous=bool(app.config.get("TASKS_SYNCHRONOUS")))


# -------------------------------------------------------------------------- tickets


@dataclass
class TicketOutcome:
    ticket: Ticket           # the internal ticket
    number: str
    created: bool            # a new Autotask ticket was made
    message: str


def reference_for_run(run: JobRun) -> str:
    """The stable reference (Autotask externalID) of the ticket to create for ``run``.

    ``BC-run-<id>``; when the run already followed Autotask tickets that are resolved now,
    ``BC-run-<id>-<n>`` with n = those tickets + 1. It only changes once a ticket is saved, so a
    retry after a lost answer or a failed commit asks for the same reference and finds its ticket.
    """
    previous = db.session.execute(
        select(func.count(func.distinct(Ticket.autotask_ticket_id)))
        .join(TicketJobRun, TicketJobRun.ticket_id == Ticket.id)
        .where(TicketJobRun.job_run_id == run.id, Ticket.autotask_ticket_id.is_not(None))).scalar_one()
    if previous == 0 and run.autotask_ticket_id is not None:
        previous = 1
    return f"BC-run-{run.id}" if previous == 0 else f"BC-run-{run.id}-{previous + 1}"


def deep_link(job_id: int) -> Optional[str]:
    """/run-checks?job=<id> on the configured Backupchecks address (else the address of this request)."""
    base = (get_settings().autotask_base_url or "").strip().rstrip("/")
    if not base and has_request_context():
        base = request.host_url.rstrip("/")
    return f"{base}/run-checks?job={job_id}" if base else None


def ticket_text(run: JobRun) -> tuple[str, str]:
    """Title and description of the Autotask ticket for a run."""
    job = run.job
    customer = job.customer
    status = run.effective_status or run.status
    title = f"Backup {status.lower()}: {job.job_name} ({customer.name})"
    when = run.started_at or run.missed_slot
    lines = [
        "Backupchecks reports a backup that needs attention.",
        "",
        f"Customer: {customer.name}",
        f"Job: {job.job_name}" + (f" ({job.software}" + (f" · {job.backup_type}" if job.backup_type else "") + ")"
                                  if job.software else ""),
        f"Status: {status}" + (" (missed: no report arrived)" if run.missed else ""),
    ]
    if when:
        lines.append(f"Run: {when.astimezone(ui_zone()).strftime('%Y-%m-%d %H:%M %Z')}")
    if (run.message or "").strip():
        lines += ["", "Message:", run.message.strip()[:2000]]
    bad = [o for o in run.objects if (o.effective_status or o.status) in ("Failed", "Warning", "Missed")]
    bad.sort(key=lambda o: ((o.effective_status or o.status) != "Failed", o.name.lower()))
    if bad:
        lines += ["", "Objects with problems:"]
        for o in bad[:MAX_OBJECTS_IN_DESCRIPTION]:
            text = f"- {o.name}" + (f" ({o.type})" if o.type else "") + f": {o.effective_status or o.status}"
            if (o.message or "").strip():
                text += f" — {o.message.strip()[:300]}"
            lines.append(text)
        if len(bad) > MAX_OBJECTS_IN_DESCRIPTION:
            lines.append(f"… and {len(bad) - MAX_OBJECTS_IN_DESCRIPTION} more")
    link = deep_link(job.id)
    if link:
        lines += ["", f"Open in Backupchecks: {link}"]
    return title, "\n".join(lines)


def open_autotask_tickets_for_job(job_id: int) -> list[Ticket]:
    from .tickets import open_tickets_for_job

    return [t for t in open_tickets_for_job(job_id) if t.autotask_ticket_id is not None]


def _load_run(run_id: int, lock: bool = True) -> JobRun:
    run = db.session.get(JobRun, run_id)
    if run is None:
        raise AutotaskServiceError("That run no longer exists.")
    if lock:
        # One ticket action per job at a time: two operators clicking "create" for two runs of the
        # same job must not make two Autotask tickets. Held while Autotask answers.
        db.session.execute(select(Job.id).where(Job.id == run.job_id).with_for_update())
    return run


def _link_run(run: JobRun, ticket: Ticket, actor: Optional[User], number: str, *, stamp: bool = True) -> bool:
    """Link ``run`` to the internal ticket (and store the Autotask ticket on the run); True if new."""
    exists = db.session.get(TicketJobRun, (ticket.id, run.id)) is not None
    if not exists:
        db.session.add(TicketJobRun(ticket_id=ticket.id, job_run_id=run.id, linked_at=utcnow()))
    if stamp and run.autotask_ticket_id is None:
        run.autotask_ticket_id = ticket.autotask_ticket_id
        run.autotask_ticket_number = number
        run.autotask_ticket_created_at = utcnow()
        run.autotask_ticket_created_by_id = getattr(actor, "id", None)
    db.session.flush()
    return not exists


def _new_internal_ticket(run: JobRun, at: PsaTicket, description: str, actor: Optional[User]) -> Ticket:
    from .tickets import TicketingError, create_ticket

    active_from = run.started_at if run.started_at and run.started_at <= utcnow() else None
    try:
        ticket = create_ticket(at.number or f"AT{at.id}", description, [{"type": "job", "job_id": run.job_id}],
                               actor, active_from=active_from, run=run)
    except TicketingError as exc:  # pragma: no cover - the scope is the run's own job
        raise AutotaskServiceError(str(exc)) from None
    ticket.autotask_ticket_id = at.id
    run.autotask_ticket_id = at.id
    run.autotask_ticket_number = at.number
    run.autotask_ticket_created_at = utcnow()
    run.autotask_ticket_created_by_id = getattr(actor, "id", None)
    db.session.flush()
    return ticket


def _company_refused(s, customer: Customer, exc: PsaError) -> AutotaskServiceError:
    """Autotask refused the customer's company: check the mapping again and say why."""
    db.session.rollback()
    customer = db.session.get(Customer, customer.id)
    try:
        with autotask_client(s) as client:
            check_customers([customer], client, None)
        db.session.commit()
    except PsaError:
        db.session.rollback()
    reason = ticket_block_reason(customer)
    return AutotaskServiceError(f"No Autotask ticket made: {reason}" if reason else exc.message)


def create_ticket_for_run(run_id: int, actor: Optional[User]) -> TicketOutcome:
    """Create the Autotask ticket for a run (or link the job's open one). Commits."""
    s = get_settings()
    if not s.autotask_enabled:
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    run = _load_run(run_id)
    job = run.job
    existing = _still_open(s, open_autotask_tickets_for_job(job.id))
    if existing:
        ticket = existing[0]
        new = _link_run(run, ticket, actor, ticket.code)
        audit.record("autotask.ticket_linked", f"Linked run {run.id} of {job.job_name} to open Autotask ticket "
                     f"{ticket.code}", user=actor, target_type="job_run", target_id=run.id,
                     after={"ticket_id": ticket.id, "autotask_ticket_id": ticket.autotask_ticket_id,
                            "reason": "the job already has an open Autotask ticket"})
        db.session.commit()
        return TicketOutcome(ticket, ticket.code, False,
                             f"{job.job_name} already has open Autotask ticket {ticket.code}; "
                             + ("this run is now linked to it." if new else "this run was already linked to it."))
    customer = job.customer
    title, description = ticket_text(run)
    reference = reference_for_run(run)
    try:
        with autotask_client(s) as client:
            if customer.autotask_company_id is not None and customer.autotask_mapping_status is None:
                check_customers([customer], client, actor)  # imported mapping, never checked: check it now
            reason = ticket_block_reason(customer)
            if reason:
                db.session.commit()  # keep the check's result
                raise AutotaskServiceError(f"No Autotask ticket made: {reason}")
            at = client.create_ticket(
                company_id=customer.autotask_company_id, title=title, description=description,
                reference=reference, queue_id=s.autotask_default_queue_id,
                priority=s.autotask_default_priority_id, status=s.autotask_default_status_id,
                source=s.autotask_default_source_id)
    except PsaValidationError as exc:
        if any("companyid" in e.lower() for e in exc.errors):
            raise _company_refused(s, customer, exc) from None
        raise _fail(exc, f"ticket for run {run_id}") from None
    except PsaError as exc:
        raise _fail(exc, f"ticket for run {run_id}") from None
    ticket = _new_internal_ticket(run, at, title if not description else f"{title}\n\n{description}", actor)
    audit.record("autotask.ticket_created", f"Created Autotask ticket {at.number} for run {run.id} of "
                 f"{job.job_name} ({customer.name})", user=actor, target_type="job_run", target_id=run.id,
                 after={"autotask_ticket_id": at.id, "ticket_number": at.number, "ticket_id": ticket.id,
                        "company_id": customer.autotask_company_id, "reference": reference})
    db.session.commit()
    return TicketOutcome(ticket, at.number, True,
                         f"Autotask ticket {at.number} created for {job.job_name}; it follows this job's next runs "
                         "until it is completed.")


def link_ticket_by_number(run_id: int, number: str, actor: Optional[User]) -> TicketOutcome:
    """Link a run to an existing Autotask ticket given by its number (e.g. T20240502.0007). Commits."""
    number = (number or "").strip()
    if not number:
        raise AutotaskServiceError("Type the Autotask ticket number, e.g. T20240502.0007.")
    if len(number) > 50:
        raise AutotaskServiceError("An Autotask ticket number has at most 50 characters.")
    s = get_settings()
    if not s.autotask_enabled:
        raise AutotaskServiceError("The Autotask integration is switched off (Settings → Integrations → Autotask).")
    run = _load_run(run_id)
    try:
        with autotask_client(s) as client:
            at = client.find_ticket_by_number(number)
    except PsaError as exc:
        raise _fail(exc, "ticket lookup") from None
    if at is None:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask has no ticket with number {number} (or the API user can't see it). "
                                   "Check the number; nothing was linked.")
    if at.completed:
        db.session.rollback()
        raise AutotaskServiceError(f"Autotask ticket {at.number} is already completed ({at.status_label}); "
                                   "nothing was linked.")
    ticket = db.session.execute(select(Ticket).where(Ticket.autotask_ticket_id == at.id,
                                                     Ticket.resolved_at.is_(None))
                                .order_by(Ticket.id).limit(1)).scalar_one_or_none()
    if ticket is None:
        ticket = _new_internal_ticket(run, at, at.title or f"Autotask ticket {at.number}", actor)
    else:
        _link_run(run, ticket, actor, at.number)
    audit.record("autotask.ticket_linked", f"Linked run {run.id} of {run.job.job_name} to Autotask ticket "
                 f"{at.number}", user=actor, target_type="job_run", target_id=run.id,
                 after={"autotask_ticket_id": at.id, "ticket_number": at.number, "ticket_id": ticket.id})
    db.session.commit()
    note = ""
    mapped = run.job.customer.autotask_company_id
    if mapped is not None and at.company_id is not None and at.company_id != mapped:
        note = f" Note: that ticket belongs to another Autotask company (id {at.company_id})."
    return TicketOutcome(ticket, at.number, False,
                         f"Run linked to Autotask ticket {at.number}; it follows this job's next runs." + note)


def resolve_ticket(ticket_id: int, actor: Optional[User], note: str = "") -> str:
    """Resolve an internal ticket; an Autotask-backed one gets a note and is completed in Autotask first.

    Nothing changes in Backupchecks when Autotask can't be reached. Commits; returns a message.
    """
    from .tickets import TicketingError, resolve_ticket as resolve_internal

    note = (note or "").strip()
    ticket = db.session.execute(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).scalar_one_or_none()
    if ticket is None:
        raise AutotaskServiceError("That ticket no longer exists.")
    if ticket.resolved_at is not None:
        db.session.rollback()
        raise AutotaskServiceError(f"Ticket {ticket.code} is already resolved.")
    outcome = f"Ticket {ticket.code} resolved."
    if ticket.autotask_ticket_id is not None:
        who = getattr(actor, "username", None) or "Backupchecks"
        text = (note + "\n\n" if note else "") + f"Resolved in Backupchecks by {who}."
        try:
            with autotask_client() as client:
                try:
                    at = client.get_ticket(ticket.autotask_ticket_id)
                except PsaNotFoundError:
                    at = None
                if at is None:
                    outcome = (f"Ticket {ticket.code} resolved; it no longer exists in Autotask (deleted or merged), "
                               "so nothing was sent there.")
                elif at.completed:
                    outcome = f"Ticket {ticket.code} resolved; it was already completed in Autotask."
                else:
                    client.complete_ticket(ticket.autotask_ticket_id, text)
                    outcome = f"Ticket {ticket.code} resolved and completed in Autotask (with a note)."
        except PsaError as exc:
            raise _fail(exc, f"completing ticket {ticket.code}") from None
    try:
        resolve_internal(ticket, actor, note)
    except TicketingError as exc:
        db.session.rollback()
        raise AutotaskServiceError(str(exc)) from None
    if ticket.autotask_ticket_id is not None:
        audit.record("autotask.ticket_completed", f"Completed Autotask ticket {ticket.code} from Backupchecks",
                     user=actor, target_type="ticket", target_id=ticket.id,
                     after={"autotask_ticket_id": ticket.autotask_ticket_id, "note": note or None})
    db.session.commit()
    return outcome


# ----------------------------------------------------------------------------- poll


def _closed_note(client: AutotaskClient, at_id: int, at: Optional[PsaTicket]) -> Optional[str]:
    """The resolution note when Autotask ticket ``at_id`` is completed or gone; None while it is open.

    ``at`` is the ticket as a batch read returned it (None: not returned, so it is read once more on
    its own and counts as gone only when Autotask says it doesn't exist). Other errors propagate.
    """
    if at is None:
        try:
            at = client.get_ticket(at_id)
        except PsaNotFoundError:
            return f"Autotask ticket {at_id} no longer exists in Autotask (deleted or merged)."
    if not at.completed:
        return None
    when = at.completed_at.astimezone(ui_zone()).strftime("%Y-%m-%d %H:%M") if at.completed_at else ""
    return f"Completed in Autotask ({at.number}, status {at.status_label or at.status}{', ' + when if when else ''})."


def _resolve_closed(ticket: Ticket, note: str) -> bool:
    """Resolve the internal ticket of a closed Autotask ticket (actor: none, the poll); False if already done."""
    from .tickets import TicketingError, resolve_ticket as resolve_internal

    try:
        with db.session.begin_nested():
            resolve_internal(ticket, None, note)
        return True
    except TicketingError:
        return False  # resolved meanwhile (by a user or another poll): nothing to do


def _still_open(s, tickets: list[Ticket]) -> list[Ticket]:
    """Of the job's open Autotask-backed tickets, those still open in Autotask (the others are resolved
    now, as the poll would). When Autotask can't be asked, all count as open."""
    if not tickets:
        return tickets
    try:
        with autotask_client(s) as client:
            found = client.get_tickets([t.autotask_ticket_id for t in tickets])
            still = []
            for t in tickets:
                note = _closed_note(client, t.autotask_ticket_id, found.get(t.autotask_ticket_id))
                if note is None:
                    still.append(t)
                else:
                    _resolve_closed(t, note)
            return still
    except PsaError as exc:
        log.info("Autotask: could not check the job's open tickets (%s); treating them as open", exc.message)
        return tickets


def poll_open_tickets(batch_size: int = POLL_BATCH) -> dict[str, int]:
    """Resolve internal tickets whose Autotask ticket is completed (or gone). Commits per batch.

    Reads the open Autotask-backed tickets in batches with one query each
    (``get_tickets``); a ticket Autotask doesn't return is read once more on its
    own and counts as gone only when Autotask says it doesn't exist.
    """
    counts = {"checked": 0, "resolved": 0, "gone": 0, "errors": 0}
    s = get_settings()
    if not (s.autotask_enabled and is_configured(s)):
        return counts
    rows = db.session.execute(select(Ticket.id, Ticket.autotask_ticket_id)
                              .where(Ticket.resolved_at.is_(None), Ticket.autotask_ticket_id.is_not(None))
                              .order_by(Ticket.id)).all()
    if not rows:
        return counts
    with autotask_client(s, interactive=False) as client:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            try:
                found = client.get_tickets([at_id for _, at_id in chunk])
            except PsaError as exc:
                log.warning("Autotask poll: %s", exc.message)
                counts["errors"] += 1
                break  # Autotask is not answering: try again next time
            for ticket_id, at_id in chunk:
                counts["checked"] += 1
                try:
                    note = _closed_note(client, at_id, found.get(at_id))
                except PsaError as exc:
                    log.warning("Autotask poll, ticket %s: %s", at_id, exc.message)
                    counts["errors"] += 1
                    continue
                if note is None:
                    continue
                if found.get(at_id) is None:
                    counts["gone"] += 1
                if _resolve_closed(db.session.get(Ticket, ticket_id), note):
                    counts["resolved"] += 1
            db.session.commit()
    if counts["resolved"]:
        log.info("Autotask poll: %s of %s open tickets resolved", counts["resolved"], counts["checked"])
    return counts


def _poll_step(app: Flask) -> None:
    try:
        poll_open_tickets()
    except AutotaskServiceError as exc:
        db.session.rollback()
        log.warning("Autotask poll skipped: %s", exc)


def _poll_interval(app: Flask) -> float:
    return float(app.config.get("AUTOTASK_POLL_SECONDS") or DEFAULT_POLL_SECONDS)


def register(app: Flask) -> None:
    """Called by create_app: the poll runs in the single background runner (leader lock)."""
    from .background import register_loop

    register_loop("autotask_poll", _poll_step, _poll_interval)


# ------------------------------------------------------------------- page helpers


@dataclass
class RunView:
    enabled: bool
    block_reason: Optional[str]
    open_tickets: list[Ticket]


def run_checks_view(job: Job) -> RunView:
    """What the Autotask block on a Run Checks card needs (one query)."""
    s = get_settings()
    if not s.autotask_enabled:
        return RunView(False, None, [])
    return RunView(True, ticket_block_reason(job.customer), open_autotask_tickets_for_job(job.id))


MAPPING_FILTERS = ("", "ok", "renamed", "missing", "invalid", "unchecked", "unmapped", "problems")


@dataclass
class MappingPage:
    customers: list[Customer]
    total: int
    page: int
    per_page: int
    counts: dict[str, int]


def _mapping_state():
    """ok|renamed|missing|invalid, 'unchecked' (an id never checked) or 'unmapped', in SQL."""
    return case((Customer.autotask_company_id.is_(None), "unmapped"),
                   (Customer.autotask_mapping_status.is_(None), "unchecked"),
                   else_=Customer.autotask_mapping_status)


def mapping_overview(state: str = "", page: int = 1, per_page: int = 100) -> MappingPage:
    """One page of customers with their mapping, filtered by state; three queries whatever the size."""
    if state not in MAPPING_FILTERS:
        raise AutotaskServiceError("Unknown filter.")
    st = _mapping_state()
    counts = dict(db.session.execute(select(st, func.count(Customer.id)).group_by(st)).all())
    q = select(Customer)
    if state == "problems":
        q = q.where(st.in_(("missing", "invalid", "unchecked")))
    elif state:
        q = q.where(st == state)
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    page = max(1, page)
    rows = db.session.execute(q.order_by(Customer.autotask_company_id.is_(None), func.lower(Customer.name))
                              .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    return MappingPage(rows, total, page, per_page, counts)

