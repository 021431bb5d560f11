"""Autotask PSA REST client (the integration as users set it up: docs/pages/autotask.md).

What it guarantees to the rest of the app:

* **Zones**: the REST base is found through ``zoneInformation`` for the API
  user (production and sandbox have their own list of discovery hosts, tried in
  order; ``fallback_base_url`` is used when none can be reached), cached per
  process for 12 h and re-discovered once when a call answers 401.
* **Auth**: ``ApiIntegrationCode``, ``UserName`` and ``Secret`` on every call;
  none of them is ever logged, and they go to the zone host only: a
  ``nextPageUrl`` on another scheme, host or port is not followed.
* **No nulls, no blanking**: ``None`` is stripped from every body; updates are
  PATCHes with only the fields whose value differs from what Autotask has now;
  a blank string is refused.
* **No duplicates**: a ticket create carries the caller's ``reference`` in
  ``externalID``. Before creating, and after any failure where the create may
  have been carried out (timeout, dropped connection, 5xx without an error
  list), the client looks the reference up and returns the ticket it finds.
  Only an explicit refusal (429 / thread-limit error) is sent again as is.
* **Limits**: at most ``max_concurrency`` (3) requests in flight per entity
  endpoint and integration, and at most ``hourly_request_budget`` requests per
  rolling hour from this process; the documented throttling answers (HTTP 429,
  ``Itgenatr005`` thread-threshold errors) are retried with exponential
  back-off and jitter, honouring ``Retry-After``, within ``retry_budget`` s.
* **Errors**: every failure is a :class:`~.base.PsaError` subclass whose
  ``message`` an operator can act on, with Autotask's ``errors[]`` attached.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .base import (
    PicklistValue,
    PsaAuthError,
    PsaClient,
    PsaCompany,
    PsaError,
    PsaNote,
    PsaNotFoundError,
    PsaRateLimitError,
    PsaTicket,
    PsaUnavailableError,
    PsaValidationError,
)

log = logging.getLogger(__name__)

#: Zone discovery hosts per environment, tried in order. The global host
#: answers for every user; Autotask's published Swagger for the
#: ZoneInformation API names webservices2, which is tried first for sandbox.
ZONE_DISCOVERY_URLS: dict[str, tuple[str, ...]] = {
    "production": ("https://webservices.autotask.net/atservicesrest/",),
    "sandbox": (
        "https://webservices2.autotask.net/atservicesrest/",
        "https://webservices.autotask.net/atservicesrest/",
    ),
}
ENVIRONMENTS = tuple(ZONE_DISCOVERY_URLS)

STATUS_COMPLETE = 5  # "Complete": the one ticket status Autotask fixes in every tenant
ZONE_CACHE_SECONDS = 12 * 3600
FALLBACK_CACHE_SECONDS = 15 * 60
MAX_PAGE = 500

#: reference-data name -> Tickets field holding the picklist
REFERENCE_FIELDS = {
    "queues": "queueID",
    "sources": "source",
    "priorities": "priority",
    "statuses": "status",
}

_THROTTLE_RE = re.compile(
    r"itgenatr005|thread threshold|request threshold|threshold .{0,40}exceeded|too many requests|rate limit",
    re.IGNORECASE,
)
_PERMISSION_RE = re.compile(r"adequate permission|not authori[sz]ed|access denied", re.IGNORECASE)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AutotaskConfig:
    """Everything the client needs; ``secret`` and ``integration_code`` never show in repr."""

    api_user: str
    secret: str = field(repr=False)
    integration_code: str = field(repr=False)
    environment: str = "production"
    #: discovery bases (ending in ``atservicesrest/``); empty -> ZONE_DISCOVERY_URLS[environment]
    zone_discovery_urls: tuple[str, ...] = ()
    #: REST base (``https://webservicesN.autotask.net/atservicesrest/``) used when discovery
    #: cannot reach any host, e.g. the zone URL stored after the last successful test
    fallback_base_url: str | None = None
    timeout: float = 30.0
    max_concurrency: int = 3
    hourly_request_budget: int = 5000
    retry_budget: float = 120.0
    backoff_base: float = 1.0
    max_backoff: float = 60.0
    #: seconds to wait before looking for a ticket whose create response was lost
    lost_create_recheck_delay: float = 2.0
    #: extra status labels that count as closed (Complete = 5 always does)
    closed_status_labels: tuple[str, ...] = ()
    note_type: int | None = None
    note_publish: int | None = None
    impersonation_resource_id: int | None = None

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise PsaError(
                f"Unknown Autotask environment {self.environment!r}; choose one of {', '.join(ENVIRONMENTS)}."
            )
        missing = [
            label
            for label, value in (
                ("API user name", self.api_user),
                ("secret", self.secret),
                ("integration code", self.integration_code),
            )
            if not (value or "").strip()
        ]
        if missing:
            raise PsaAuthError(
                f"Autotask is not fully configured: {', '.join(missing)} missing "
                "(Settings → Integrations → Autotask)."
            )

    def discovery_urls(self) -> tuple[str, ...]:
        return tuple(self.zone_discovery_urls) or ZONE_DISCOVERY_URLS[self.environment]


@dataclass(frozen=True)
class ZoneInfo:
    name: str
    url: str  # REST base, ends with "/", without "v1.0/"
    web_url: str | None = None
    ci: int | None = None
    discovered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "web_url": self.web_url, "ci": self.ci,
                "discovered": self.discovered}


# ------------------------------------------------------------- shared process state

_zone_cache: dict[tuple, tuple[ZoneInfo, float]] = {}
_zone_lock = threading.Lock()


class _Limits:
    """Per-integration limits shared by every client object in this process."""

    def __init__(self, concurrency: int, budget: int, window: float = 3600.0):
        self.concurrency = max(1, concurrency)
        self.budget = budget
        self.window = window
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            if len(self._hits) >= self.budget:
                wait = self.window - (now - self._hits[0])
                raise PsaRateLimitError(
                    f"Backupchecks has used its Autotask request budget ({self.budget} requests per hour); "
                    f"it will continue in about {max(1, int(wait // 60) + 1)} minute(s).",
                    retry_after=wait,
                )
            self._hits.append(now)

    @contextmanager
    def slot(self, entity: str, wait: float) -> Iterator[None]:
        with self._lock:
            sem = self._sems.setdefault(entity, threading.BoundedSemaphore(self.concurrency))
        if not sem.acquire(timeout=max(0.1, wait)):
            raise PsaRateLimitError(
                f"Too many Autotask requests to {entity} are already running in Backupchecks; try again shortly.",
                retry_after=5.0,
            )
        try:
            yield
        finally:
            sem.release()


_limits: dict[tuple, _Limits] = {}
_limits_lock = threading.Lock()


def _limits_for(config: AutotaskConfig) -> _Limits:
    key = (config.api_user.lower(), config.integration_code, config.max_concurrency, config.hourly_request_budget)
    with _limits_lock:
        if key not in _limits:
            _limits[key] = _Limits(config.max_concurrency, config.hourly_request_budget)
        return _limits[key]


class _MaybeProcessed(PsaUnavailableError):
    """A write whose outcome is unknown: it may or may not have been carried out."""


# --------------------------------------------------------------------------- client


class AutotaskClient(PsaClient):
    name = "autotask"
    label = "Autotask PSA"
    config_class = AutotaskConfig

    def __init__(self, config: AutotaskConfig, *, session: requests.Session | None = None):
        self.config = config
        self._session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=max(10, config.max_concurrency * 2))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._limits = _limits_for(config)
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._fields_lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ zones

    def zone(self, *, refresh: bool = False) -> ZoneInfo:
        """The tenant's zone (REST base URL), discovered once and cached."""
        urls = self.config.discovery_urls()
        key = (urls, self.config.api_user.lower())
        with _zone_lock:
            hit = _zone_cache.get(key)
            if hit and not refresh and time.monotonic() - hit[1] < ZONE_CACHE_SECONDS:
                return hit[0]
        problems: list[str] = []
        user_unknown: list[str] = []
        for base in urls:
            url = base.rstrip("/") + "/v1.0/zoneInformation"
            try:
                resp = self._session.get(url, params={"user": self.config.api_user},
                                         headers={"Accept": "application/json"}, timeout=self._timeout())
            except requests.RequestException as exc:
                problems.append(f"{_host(base)} unreachable ({type(exc).__name__})")
                continue
            data = _json_or_none(resp)
            if resp.status_code == 200 and isinstance(data, dict) and data.get("url"):
                zone = ZoneInfo(
                    name=str(data.get("zoneName") or ""),
                    url=_with_slash(str(data["url"])),
                    web_url=_with_slash(str(data["webUrl"])) if data.get("webUrl") else None,
                    ci=data.get("ci"),
                )
                with _zone_lock:
                    _zone_cache[key] = (zone, time.monotonic())
                log.info("Autotask zone for this API user: %s (%s)", zone.name, zone.url)
                return zone
            errors = _errors_of(data)
            if resp.status_code == 500 and errors:
                user_unknown.append(f"{_host(base)}: {'; '.join(errors)}")
            else:
                problems.append(f"{_host(base)} answered HTTP {resp.status_code}")
        if user_unknown and not problems:
            raise PsaAuthError(
                f"Autotask does not know the API user {self.config.api_user!r} in {self.config.environment}. "
                "Check the API user name (the API-only user's e-mail-style name) and the environment "
                "(production or sandbox).",
                errors=user_unknown,
                status=500,
            )
        if self.config.fallback_base_url:
            log.warning("Autotask zone discovery failed (%s); using the configured base URL", "; ".join(problems))
            zone = ZoneInfo(name="configured", url=_with_slash(self.config.fallback_base_url), discovered=False)
            with _zone_lock:  # try discovery again after FALLBACK_CACHE_SECONDS, not on every call
                _zone_cache[key] = (zone, time.monotonic() - ZONE_CACHE_SECONDS + FALLBACK_CACHE_SECONDS)
            return zone
        raise PsaUnavailableError(
            "Autotask zone discovery failed: " + "; ".join(problems + user_unknown)
            + ". Check the network connection to Autotask and try again.",
            errors=user_unknown,
        )

    def _timeout(self) -> tuple[float, float]:
        """(connect, read): a dead host is given up on quickly, a slow answer is waited for."""
        return (min(10.0, self.config.timeout), self.config.timeout)

    def _forget_zone(self) -> None:
        key = (self.config.discovery_urls(), self.config.api_user.lower())
        with _zone_lock:
            _zone_cache.pop(key, None)

    # --------------------------------------------------------------- transport

    def _headers(self) -> dict[str, str]:
        h = {
            "ApiIntegrationCode": self.config.integration_code,
            "UserName": self.config.api_user,
            "Secret": self.config.secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "Backupchecks",
        }
        if self.config.impersonation_resource_id is not None:
            h["ImpersonationResourceId"] = str(self.config.impersonation_resource_id)
        return h

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        action: str = "Talking to Autotask",
    ) -> Any:
        """One API call with limits, back-off and error mapping. ``path`` is
        relative to ``v1.0/`` or an absolute URL (``nextPageUrl``)."""
        cfg = self.config
        absolute = path.startswith("http://") or path.startswith("https://")
        if absolute:
            self._check_on_zone(path, action)
        entity = _entity_of(path)
        data = json.dumps(strip_none(body)) if body is not None else None
        deadline = time.monotonic() + cfg.retry_budget
        attempt = 0
        rediscovered = False
        while True:
            url = path if absolute else self.zone().url + "v1.0/" + path
            self._limits.take()
            started = time.monotonic()
            try:
                with self._limits.slot(entity, deadline - time.monotonic()):
                    resp = self._session.request(method, url, data=data, headers=self._headers(),
                                                 timeout=self._timeout())
            except requests.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                log.warning("Autotask %s %s %s after %.1fs", method, _loggable(path), kind,
                            time.monotonic() - started)
                if idempotent and self._sleep_backoff(attempt, None, deadline):
                    attempt += 1
                    continue
                cls = PsaUnavailableError if idempotent else _MaybeProcessed
                raise cls(f"{action} failed: Autotask {kind} ({type(exc).__name__}). "
                          "Check the connection to Autotask and try again.") from exc
            status = resp.status_code
            payload = _json_or_none(resp)
            errors = _errors_of(payload)
            log.debug("Autotask %s %s -> %s in %.2fs", method, _loggable(path), status, time.monotonic() - started)

            if status == 401:
                if not rediscovered and not absolute:
                    rediscovered = True
                    self._forget_zone()  # the tenant may have moved zone
                    continue
                raise PsaAuthError(
                    f"{action} failed: Autotask rejected the API credentials (HTTP 401). Check the API user "
                    "name, secret and integration code (tracking identifier) in Settings → Integrations → "
                    "Autotask.",
                    errors=errors, status=status)
            if status == 429 or (status >= 400 and any(_THROTTLE_RE.search(e) for e in errors)):
                retry_after = _retry_after(resp)
                log.warning("Autotask throttled %s %s (HTTP %s): %s", method, _loggable(path), status,
                            "; ".join(errors) or "no detail")
                # A throttled request was refused, not carried out: sending it again is safe.
                if self._sleep_backoff(attempt, retry_after, deadline):
                    attempt += 1
                    continue
                raise PsaRateLimitError(
                    f"{action} failed: Autotask is limiting requests ({'; '.join(errors) or f'HTTP {status}'}). "
                    "Backupchecks backed off and will try again later.",
                    retry_after=retry_after, errors=errors, status=status)
            if status >= 500 and not errors:
                # 502/503/504 or an empty 500: the request may or may not have been processed.
                if idempotent and self._sleep_backoff(attempt, _retry_after(resp), deadline):
                    attempt += 1
                    continue
                cls = PsaUnavailableError if idempotent else _MaybeProcessed
                raise cls(f"{action} failed: Autotask answered HTTP {status} without details. "
                          "Try again later; if it persists, check Autotask's status page.", status=status)
            if status >= 400:
                raise self._error(action, status, errors)
            if payload is None and resp.content:
                raise PsaUnavailableError(f"{action} failed: Autotask sent a response that is not JSON "
                                          f"(HTTP {status}).", status=status)
            return payload

    def _check_on_zone(self, url: str, action: str) -> None:
        """The credentials go to the zone's REST host only. An absolute URL that Autotask hands us
        (``nextPageUrl``) is followed only when it has the zone's scheme, host and port (https in
        production: never a downgrade to http, never another host)."""
        zone = self.zone()
        origin = _origin(url)
        if origin is None or origin != _origin(zone.url):
            log.warning("Autotask sent a link to %s, not to the zone host %s; not followed",
                        _host(url) or "?", _host(zone.url))
            raise PsaError(
                f"{action} stopped: Autotask's link to the next page points to {_host(url) or 'an unknown host'}, "
                f"not to the zone host {_host(zone.url)}. Backupchecks sends the API credentials only to the "
                "zone host, so it did not follow the link; the results may be incomplete. Try again later.")

    def _error(self, action: str, status: int, errors: Sequence[str]) -> PsaError:
        said = "; ".join(errors) if errors else f"HTTP {status}"
        if status == 403 or any(_PERMISSION_RE.search(e) for e in errors):
            return PsaAuthError(
                f"{action} failed: the Autotask API user lacks permission ({said}). Give it the "
                "'API User (API-only)' security level.", errors=errors, status=status)
        if status == 404:
            return PsaNotFoundError(f"{action} failed: Autotask has no such endpoint (HTTP 404). "
                                    "Check the zone / base URL.", errors=errors, status=status)
        return PsaValidationError(f"{action} failed: Autotask says: {said}", errors=errors, status=status)

    def _sleep_backoff(self, attempt: int, retry_after: float | None, deadline: float) -> bool:
        cfg = self.config
        if retry_after is not None:
            delay = min(retry_after, cfg.max_backoff)
        else:
            delay = min(cfg.max_backoff, cfg.backoff_base * (2 ** attempt)) * random.uniform(0.5, 1.0)
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        return True

    def _query(self, entity: str, filters: list[dict[str, Any]], *, include: Sequence[str] = (),
               page_size: int = MAX_PAGE, limit: int | None = None, action: str = "Searching Autotask"
               ) -> list[dict[str, Any]]:
        """All items matching ``filters`` (ANDed), following ``nextPageUrl`` verbatim when it is on
        the zone host (see ``_check_on_zone``)."""
        body: dict[str, Any] = {"filter": filters, "MaxRecords": max(1, min(page_size, MAX_PAGE))}
        if include:
            body["includeFields"] = sorted(set(include) | {"id"})
        page = self._request("POST", f"{entity}/query", body=body, action=action)
        items: list[dict[str, Any]] = []
        while True:
            items.extend(page.get("items") or [])
            nxt = (page.get("pageDetails") or {}).get("nextPageUrl")
            if not nxt or (limit is not None and len(items) >= limit):
                break
            page = self._request("GET", nxt, action=action)
        return items[:limit] if limit is not None else items

    # ------------------------------------------------------------ reference data

    def fields(self, entity: str = "Tickets", *, refresh: bool = False) -> list[dict[str, Any]]:
        """Field metadata of an entity (cached in this client)."""
        with self._fields_lock:
            if not refresh and entity in self._fields:
                return self._fields[entity]
        data = self._request("GET", f"{entity}/entityInformation/fields",
                             action=f"Reading Autotask {entity} fields")
        fields = list((data or {}).get("fields") or [])
        with self._fields_lock:
            self._fields[entity] = fields
        return fields

    def picklist(self, field_name: str, entity: str = "Tickets", *, refresh: bool = False) -> list[PicklistValue]:
        for f in self.fields(entity, refresh=refresh):
            if f.get("name", "").lower() == field_name.lower():
                values = [
                    PicklistValue(
                        value=_num(p.get("value")),
                        label=str(p.get("label") or ""),
                        active=bool(p.get("isActive", True)),
                        is_default=bool(p.get("isDefaultValue", False)),
                        sort_order=int(p.get("sortOrder") or 0),
                        parent_value=_num(p.get("parentValue")) if p.get("parentValue") not in (None, "") else None,
                    )
                    for p in (f.get("picklistValues") or [])
                ]
                return sorted(values, key=lambda v: (v.sort_order, str(v.label)))
        raise PsaError(f"Autotask has no picklist field {field_name!r} on {entity}.")

    def reference_data(self, *, refresh: bool = False) -> dict[str, list[PicklistValue]]:
        """Ticket queues, sources, priorities and statuses (active and inactive)."""
        if refresh:
            self.fields("Tickets", refresh=True)
        return {name: self.picklist(fname) for name, fname in REFERENCE_FIELDS.items()}

    def refresh_reference_data(self) -> dict[str, list[PicklistValue]]:
        with self._fields_lock:
            self._fields.clear()
        return self.reference_data(refresh=True)

    def _default(self, field_name: str, entity: str = "Tickets") -> int | str | None:
        values = [v for v in self.picklist(field_name, entity) if v.active]
        chosen = next((v for v in values if v.is_default), values[0] if values else None)
        return chosen.value if chosen else None

    def _max_length(self, field_name: str, entity: str = "Tickets") -> int:
        for f in self.fields(entity):
            if f.get("name", "").lower() == field_name.lower():
                return int(f.get("length") or 0)
        return 0

    def _closed_statuses(self) -> set[int]:
        closed = {STATUS_COMPLETE}
        wanted = {label.strip().lower() for label in self.config.closed_status_labels}
        if wanted:
            closed |= {v.value for v in self.picklist("status") if v.label.strip().lower() in wanted}
        return closed

    # ------------------------------------------------------------ connection test

    def test_connection(self) -> dict[str, Any]:
        """Discover the zone afresh and make one authenticated call."""
        zone = self.zone(refresh=True)
        usage = self._request("GET", "ThresholdInformation", action="Testing the Autotask connection") or {}
        return {
            "zone": zone.to_dict(),
            "request_threshold": usage.get("externalRequestThreshold"),
            "requests_used": usage.get("currentTimeframeRequestCount"),
            "timeframe_minutes": usage.get("requestThresholdTimeframe"),
        }

    # ------------------------------------------------------------------ companies

    def search_companies(self, text: str, *, limit: int = 50, include_inactive: bool = True) -> list[PsaCompany]:
        text = (text or "").strip()
        if not text:
            return []
        cond: dict[str, Any] = {"op": "contains", "field": "companyName", "value": text}
        if text.isdigit():
            cond = {"op": "or", "items": [cond, {"op": "eq", "field": "id", "value": int(text)}]}
        filters = [cond]
        if not include_inactive:
            filters.append({"op": "eq", "field": "isActive", "value": True})
        items = self._query("Companies", filters, include=("companyName", "companyNumber", "isActive"),
                            page_size=min(limit, MAX_PAGE), limit=limit, action="Searching Autotask companies")
        return [_company(i) for i in items]

    def get_company(self, company_id: int) -> PsaCompany:
        data = self._request("GET", f"Companies/{int(company_id)}", action="Reading the Autotask company")
        item = (data or {}).get("item")
        if not item:
            raise PsaNotFoundError(f"Autotask company {company_id} does not exist or is not visible to the API user.")
        return _company(item)

    # -------------------------------------------------------------------- tickets

    def create_ticket(
        self,
        *,
        company_id: int,
        title: str,
        description: str,
        reference: str,
        queue_id: int | None = None,
        priority: int | None = None,
        status: int | None = None,
        source: int | None = None,
        extra: Mapping[str, Any] | None = None,
        check_existing: bool = True,
    ) -> PsaTicket:
        """Create a ticket, or return the one already made for ``reference``.

        ``reference`` (stable for one logical ticket, at most 50 characters) goes
        into ``externalID`` and is how a ticket whose create response was lost is
        found again: no second ticket is ever created for the same reference.
        """
        reference = (reference or "").strip()
        if not reference or len(reference) > 50:
            raise ValueError("reference must be 1-50 characters")
        if not (title or "").strip():
            raise PsaValidationError("A ticket needs a title.")
        body: dict[str, Any] = {k: v for k, v in (extra or {}).items() if v is not None}
        named = {"queueID": queue_id, "source": source, "status": status, "priority": priority}
        body.update({k: v for k, v in named.items() if v is not None})  # named arguments win over extra
        body.setdefault("status", self._default("status"))
        body.setdefault("priority", self._default("priority"))
        body.update({
            "companyID": int(company_id),
            "title": _clip(title.strip(), self._max_length("title") or 255),
            "externalID": reference,
        })
        if (description or "").strip():
            body["description"] = _clip(description, self._max_length("description") or 8000)
        created_since = datetime.now(timezone.utc) - timedelta(minutes=10)
        if check_existing:
            found = self._find_created(reference, body, created_since)
            if found is not None:
                log.info("Autotask ticket for reference %s already exists: %s", reference, found.number)
                return found
        last: PsaError | None = None
        for attempt in range(3):
            try:
                data = self._request("POST", "Tickets", body=body, idempotent=False,
                                     action="Creating the Autotask ticket")
            except _MaybeProcessed as exc:
                last = exc
                log.warning("Autotask ticket create for %s had no clear answer; looking for it", reference)
                found = self._recover_create(reference, body, created_since, exc)
                if found is not None:
                    return found
                continue
            except PsaValidationError as exc:
                if any(re.search(r"picklist|inactive|not a valid", e, re.IGNORECASE) for e in exc.errors):
                    with self._fields_lock:
                        self._fields.clear()  # picklists changed in Autotask: re-read them next time
                raise
            return self.get_ticket(int(data["itemId"]))
        raise PsaUnavailableError(
            "Creating the Autotask ticket failed: Autotask did not answer and no ticket with reference "
            f"{reference} exists there, so nothing was created. Try again later. ({last.message if last else ''})")

    def _recover_create(self, reference: str, body: Mapping[str, Any], since: datetime,
                        cause: PsaError) -> PsaTicket | None:
        """After a create with no clear answer: the ticket if Autotask has it, else None."""
        for check in range(2):
            time.sleep(self.config.lost_create_recheck_delay * (check + 1))
            try:
                found = self._find_created(reference, body, since)
            except PsaError as exc:
                raise PsaUnavailableError(
                    f"Autotask did not confirm the new ticket ({cause.message}) and could not be checked "
                    f"afterwards ({exc.message}). The ticket may exist with reference {reference}; Backupchecks "
                    "looks for it before creating another, so it is safe to try again later.",
                    errors=exc.errors, status=exc.status) from exc
            if found is not None:
                return found
        return None

    def _find_created(self, reference: str, body: Mapping[str, Any], since: datetime) -> PsaTicket | None:
        try:
            items = self._query("Tickets", [{"op": "eq", "field": "externalID", "value": reference}],
                                action="Looking for the Autotask ticket")
        except PsaValidationError:
            # externalID not queryable on this tenant: fall back to company + title + recent.
            items = self._query("Tickets", [
                {"op": "eq", "field": "companyID", "value": body["companyID"]},
                {"op": "eq", "field": "title", "value": body["title"]},
                {"op": "gte", "field": "createDate", "value": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
            ], action="Looking for the Autotask ticket")
        if not items:
            return None
        return self._ticket(min(items, key=lambda i: i["id"]))

    def get_ticket(self, ticket_id: int) -> PsaTicket:
        return self._ticket(self._raw_ticket(ticket_id))

    def _raw_ticket(self, ticket_id: int) -> dict[str, Any]:
        data = self._request("GET", f"Tickets/{int(ticket_id)}", action="Reading the Autotask ticket")
        item = (data or {}).get("item")
        if not item:
            raise PsaNotFoundError(
                f"Autotask ticket {ticket_id} does not exist any more or is not visible to the API user "
                "(deleted or merged).")
        return item

    def get_tickets(self, ticket_ids: Sequence[int]) -> dict[int, PsaTicket]:
        """Many tickets at once (for polling); ids Autotask doesn't return are absent."""
        ids = sorted({int(i) for i in ticket_ids})
        out: dict[int, PsaTicket] = {}
        for start in range(0, len(ids), MAX_PAGE):
            chunk = ids[start:start + MAX_PAGE]
            for item in self._query("Tickets", [{"op": "in", "field": "id", "value": chunk}],
                                    action="Reading Autotask tickets"):
                out[int(item["id"])] = self._ticket(item)
        return out

    def find_ticket_by_number(self, number: str) -> PsaTicket | None:
        number = (number or "").strip()
        if not number:
            return None
        items = self._query("Tickets", [{"op": "eq", "field": "ticketNumber", "value": number}],
                            action="Looking up the Autotask ticket number")
        return self._ticket(items[0]) if items else None

    def update_ticket(self, ticket_id: int, changes: Mapping[str, Any]) -> PsaTicket:
        """PATCH only the fields in ``changes`` whose value differs from Autotask's.

        ``None`` means "leave alone"; blank strings are refused (this never clears
        a field, least of all the description).
        """
        wanted = {k: v for k, v in changes.items() if v is not None and k.lower() != "id"}
        blank = [k for k, v in wanted.items() if isinstance(v, str) and not v.strip()]
        if blank:
            raise PsaValidationError(
                f"Refusing to blank {', '.join(sorted(blank))} on Autotask ticket {ticket_id}.")
        current = self._raw_ticket(ticket_id)
        by_lower = {k.lower(): k for k in current}
        diff = {}
        for key, value in wanted.items():
            real = by_lower.get(key.lower(), key)
            if current.get(real) != value:
                diff[real] = value
        if not diff:
            return self._ticket(current)
        try:
            self._request("PATCH", "Tickets", body={"id": int(ticket_id), **diff},
                          action="Updating the Autotask ticket")
        except PsaValidationError as exc:
            if exc.status != 405:
                raise
            self._put_full(current, diff)  # tenant refuses PATCH: full replace keeping every field
        return self.get_ticket(ticket_id)

    def _put_full(self, current: Mapping[str, Any], diff: Mapping[str, Any]) -> None:
        read_only = {f["name"] for f in self.fields("Tickets") if f.get("isReadOnly")} - {"id"}
        body = {k: v for k, v in current.items() if k not in read_only}
        body.update(diff)
        self._request("PUT", "Tickets", body=body, action="Updating the Autotask ticket")

    def add_ticket_note(self, ticket_id: int, title: str, text: str, *, note_type: int | None = None,
                        publish: int | None = None) -> PsaNote:
        title = (title or "").strip()
        text = (text or "").strip()
        if not title or not text:
            raise PsaValidationError("An Autotask ticket note needs a title and a text.")
        body = {
            "ticketID": int(ticket_id),
            "title": _clip(title, self._max_length("title", "TicketNotes") or 250),
            "description": _clip(text, self._max_length("description", "TicketNotes") or 32000),
            "noteType": note_type or self.config.note_type or self._default("noteType", "TicketNotes"),
            "publish": publish or self.config.note_publish or self._default("publish", "TicketNotes"),
        }
        try:
            data = self._request("POST", f"Tickets/{int(ticket_id)}/Notes", body=body, idempotent=False,
                                 action="Adding a note to the Autotask ticket")
            note_id = int(data["itemId"])
        except _MaybeProcessed:
            time.sleep(self.config.lost_create_recheck_delay)
            found = self._find_note(int(ticket_id), body["title"], body["description"])
            if found is None:
                data = self._request("POST", f"Tickets/{int(ticket_id)}/Notes", body=body, idempotent=False,
                                     action="Adding a note to the Autotask ticket")
                found = int(data["itemId"])
            note_id = found
        return PsaNote(id=note_id, ticket_id=int(ticket_id), title=body["title"], text=body["description"])

    def _find_note(self, ticket_id: int, title: str, text: str) -> int | None:
        items = self._query("TicketNotes", [{"op": "eq", "field": "ticketID", "value": ticket_id},
                                            {"op": "eq", "field": "title", "value": title}],
                            action="Looking for the Autotask ticket note")
        same = [i for i in items if (i.get("description") or "").strip() == text]
        return int(min(same, key=lambda i: i["id"])["id"]) if same else None

    def complete_ticket(self, ticket_id: int, note: str | None = None, *,
                        note_title: str = "Resolved in Backupchecks", resolution: str | None = None) -> PsaTicket:
        """Add the note (if any), then set status Complete (5)."""
        if note and note.strip():
            self.add_ticket_note(ticket_id, note_title, note)
        return self.update_ticket(ticket_id, {"status": STATUS_COMPLETE, "resolution": resolution or None})

    # --------------------------------------------------------------------- mapping

    def _ticket(self, item: Mapping[str, Any]) -> PsaTicket:
        status = item.get("status")
        labels = {v.value: v.label for v in self.picklist("status")}
        zone = self.zone()
        tid = int(item["id"])
        return PsaTicket(
            id=tid,
            number=str(item.get("ticketNumber") or ""),
            title=str(item.get("title") or ""),
            status=status,
            status_label=labels.get(status, "" if status is None else f"Status {status}"),
            completed=status in self._closed_statuses(),
            company_id=item.get("companyID"),
            queue_id=item.get("queueID"),
            priority=item.get("priority"),
            description=str(item.get("description") or ""),
            external_id=item.get("externalID"),
            created_at=_dt(item.get("createDate")),
            completed_at=_dt(item.get("completedDate")),
            last_activity_at=_dt(item.get("lastActivityDate")),
            web_url=f"{zone.web_url}Mvc/ServiceDesk/TicketDetail.mvc?workItemId={tid}" if zone.web_url else None,
            raw=dict(item),
        )


# --------------------------------------------------------------------------- helpers


def strip_none(value: Any) -> Any:
    """Drop ``None`` values from dicts (recursively): Autotask must never see a null."""
    if isinstance(value, Mapping):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [strip_none(v) for v in value if v is not None]
    return value


def _company(item: Mapping[str, Any]) -> PsaCompany:
    return PsaCompany(id=int(item["id"]), name=str(item.get("companyName") or ""),
                      active=bool(item.get("isActive", True)),
                      number=item.get("companyNumber"))


def _json_or_none(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _errors_of(payload: Any) -> list[str]:
    if isinstance(payload, dict):
        errs = payload.get("errors") or payload.get("Errors")
        if isinstance(errs, list):
            return [str(e if not isinstance(e, dict) else e.get("message") or e) for e in errs]
        if isinstance(errs, str):
            return [errs]
    return []


def _retry_after(resp: requests.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _entity_of(path: str) -> str:
    if "/v1.0/" in path.lower():
        path = path[path.lower().index("/v1.0/") + len("/v1.0/"):]
    return path.split("?")[0].strip("/").split("/")[0] or "?"


def _loggable(path: str) -> str:
    return path.split("?")[0]


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an http(s) URL, lower-case, default ports filled in; None when
    the URL can't be read (which never matches)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0]


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _num(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
