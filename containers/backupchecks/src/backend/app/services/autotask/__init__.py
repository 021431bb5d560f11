"""Autotask PSA: settings, customer ↔ company mapping, tickets from runs, and the poll (one module
each: ``settings``, ``mapping``, ``tickets``, ``poll``; ``client`` builds the PSA client).

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

from .client import (  # noqa: F401
    INTERACTIVE_RETRY_BUDGET,
    AutotaskServiceError,
    autotask_client,
    build_config,
    is_configured,
    is_enabled,
)
from .mapping import (  # noqa: F401
    MAPPING_FILTERS,
    MAPPING_STATUSES,
    REFRESH_BATCH,
    TICKETABLE,
    MappingPage,
    check_customers,
    clear_customer_company,
    mapping_overview,
    refresh_all_mappings,
    refresh_customer,
    search_companies,
    set_customer_company,
    start_refresh_all,
    ticket_block_reason,
)
from .poll import DEFAULT_POLL_SECONDS, POLL_BATCH, poll_open_tickets, register  # noqa: F401
from .settings import (  # noqa: F401
    DEFAULT_FIELDS,
    refresh_reference_data,
    save_settings,
    settings_view,
    test_connection,
)
from .tickets import (  # noqa: F401
    MAX_OBJECTS_IN_DESCRIPTION,
    RunView,
    TicketOutcome,
    create_ticket_for_run,
    deep_link,
    link_ticket_by_number,
    open_autotask_tickets_for_job,
    reference_for_run,
    resolve_ticket,
    run_checks_view,
    ticket_text,
)
