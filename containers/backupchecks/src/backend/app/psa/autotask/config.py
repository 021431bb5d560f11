"""The Autotask client's configuration and the tenant's zone."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..base import PsaAuthError, PsaError

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

STATUS_COMPLETE = 5  # "Complete": the one ticket status Autotask fixes for every tenant
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
    #: seconds to wait for an answer (a connection is given up on after at most 10)
    timeout: float = 30.0
    #: requests in flight per entity endpoint, and per rolling hour, from this process
    max_concurrency: int = 3
    hourly_request_budget: int = 5000
    #: throttled and failed calls are retried within retry_budget seconds, waiting
    #: backoff_base * 2**attempt seconds (with jitter, at most max_backoff) in between
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
class AutotaskZone:
    """The tenant's zone: where its REST API (``url``) and web UI (``web_url``) live."""

    name: str
    url: str  # REST base, ends with "/", without "v1.0/"
    web_url: str | None = None
    ci: int | None = None
    discovered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "web_url": self.web_url, "ci": self.ci,
                "discovered": self.discovered}
