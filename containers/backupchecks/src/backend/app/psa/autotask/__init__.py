"""Autotask PSA REST client: ``config`` (settings and zones), ``transport`` (zone discovery, auth,
limits, back-off, error mapping) and ``client`` (picklists, companies, tickets).

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

from .client import AutotaskClient  # noqa: F401
from .config import (  # noqa: F401
    ENVIRONMENTS,
    MAX_PAGE,
    REFERENCE_FIELDS,
    STATUS_COMPLETE,
    ZONE_DISCOVERY_URLS,
    AutotaskConfig,
    AutotaskZone,
)
from .transport import AutotaskTransport, strip_none  # noqa: F401
