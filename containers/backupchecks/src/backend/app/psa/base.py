"""What every PSA client offers, and the plain data it hands back.

A PSA client knows HTTP and the PSA's protocol, nothing of Flask or the
database: the services layer (``services/autotask``) stores what it returns.
Everything that crosses that boundary is one of the small dataclasses below or
a :class:`PsaError` whose ``message`` can be shown to an operator as is.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Mapping, Sequence

__all__ = ("NewTicket", "PicklistValue", "PsaAuthError", "PsaClient", "PsaCompany", "PsaError", "PsaNote",
           "PsaNotFoundError", "PsaRateLimitError", "PsaTicket", "PsaUnavailableError", "PsaValidationError")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PicklistValue:
    """One choice of a PSA picklist (queue, priority, status, source, ...)."""

    value: int | str
    label: str
    active: bool = True
    is_default: bool = False
    sort_order: int = 0
    parent_value: int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "label": self.label,
            "active": self.active,
            "is_default": self.is_default,
            "sort_order": self.sort_order,
            "parent_value": self.parent_value,
        }


@dataclass(frozen=True)
class PsaCompany:
    id: int
    name: str
    active: bool = True
    number: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "active": self.active, "number": self.number}


@dataclass(frozen=True)
class PsaTicket:
    """A ticket as the PSA has it now.

    ``completed`` comes from the status (the PSA's "Complete" status, plus any
    statuses the client was told to treat as closed), never from dates.
    """

    id: int
    number: str
    title: str
    status: int | None
    status_label: str
    completed: bool
    company_id: int | None = None
    queue_id: int | None = None
    priority: int | None = None
    description: str = ""
    external_id: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    last_activity_at: datetime | None = None
    web_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class NewTicket:
    """A ticket to create, as ``PsaClient.create_ticket`` hands it to a client (checked already)."""

    company_id: int
    title: str          # stripped, not blank
    description: str    # may be blank: then the ticket gets none
    reference: str      # 1-50 characters, stable for one logical ticket
    #: queue, priority, status and source (None: the PSA's default), then PSA-specific fields
    queue_id: int | None = None
    priority: int | None = None
    status: int | None = None
    source: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PsaNote:
    id: int
    ticket_id: int
    title: str
    text: str


# ------------------------------------------------------------------------- errors


class PsaError(Exception):
    """A PSA call failed. ``message`` says what happened and what to do about it.

    ``errors`` holds the PSA's own error strings (if it sent any), ``status``
    the HTTP status code (if there was a response).
    """

    def __init__(self, message: str, *, errors: Sequence[str] = (), status: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors: tuple[str, ...] = tuple(errors)
        self.status = status

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class PsaAuthError(PsaError):
    """Credentials rejected, API user unknown, or the API user lacks permission."""


class PsaNotFoundError(PsaError):
    """The ticket / company does not exist or is not visible to the API user."""


class PsaRateLimitError(PsaError):
    """The PSA (or our own request budget) refuses more calls for now."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PsaValidationError(PsaError):
    """The PSA rejected the data (missing/invalid field); ``errors`` lists why."""


class PsaUnavailableError(PsaError):
    """The PSA could not be reached or answered with a server error."""


# ------------------------------------------------------------------------- client


class PsaClient(abc.ABC):
    """Base for PSA clients. Subclasses register in :mod:`backend.app.psa`.

    ``name`` is the registry key, ``label`` what the settings page shows,
    ``config_class`` the dataclass the constructor takes.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    config_class: ClassVar[type]

    @abc.abstractmethod
    def test_connection(self) -> dict[str, Any]:
        """Check credentials end to end; return plain facts (zone, usage) for the UI."""

    @abc.abstractmethod
    def reference_data(self, *, refresh: bool = False) -> dict[str, list[PicklistValue]]:
        """Queues, sources, priorities and statuses (cached; ``refresh`` re-reads)."""

    @abc.abstractmethod
    def search_companies(self, text: str, *, limit: int = 50) -> list[PsaCompany]: ...

    @abc.abstractmethod
    def get_company(self, company_id: int) -> PsaCompany: ...

    def create_ticket(self, *, company_id: int, title: str, description: str, reference: str,
                      queue_id: int | None = None, priority: int | None = None, status: int | None = None,
                      source: int | None = None, extra: Mapping[str, Any] | None = None,
                      check_existing: bool = True) -> PsaTicket:
        """Create a ticket, or return the one already made for ``reference``.

        ``reference`` (stable for one logical ticket, at most 50 characters) is how a ticket whose
        create response was lost is found again: no second ticket is ever created for the same
        reference. ``check_existing=False`` skips the look-up before the first attempt.
        """
        reference = (reference or "").strip()
        if not reference or len(reference) > 50:
            raise ValueError("reference must be 1-50 characters")
        if not (title or "").strip():
            raise PsaValidationError("A ticket needs a title.")
        new = NewTicket(int(company_id), title.strip(), description or "", reference, queue_id=queue_id,
                        priority=priority, status=status, source=source,
                        extra={k: v for k, v in (extra or {}).items() if v is not None})
        return self._create_ticket(new, check_existing=check_existing)

    @abc.abstractmethod
    def _create_ticket(self, new: NewTicket, *, check_existing: bool) -> PsaTicket:
        """Create ``new`` in the PSA (see ``create_ticket``)."""

    @abc.abstractmethod
    def get_ticket(self, ticket_id: int) -> PsaTicket: ...

    @abc.abstractmethod
    def find_ticket_by_number(self, number: str) -> PsaTicket | None: ...

    @abc.abstractmethod
    def update_ticket(self, ticket_id: int, changes: Mapping[str, Any]) -> PsaTicket: ...

    @abc.abstractmethod
    def add_ticket_note(self, ticket_id: int, title: str, text: str) -> PsaNote: ...

    @abc.abstractmethod
    def complete_ticket(self, ticket_id: int, note: str | None = None) -> PsaTicket: ...

    def close(self) -> None:
        """Release network resources (optional)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
