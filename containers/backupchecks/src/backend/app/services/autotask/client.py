"""The Autotask client as the services use it: built from the settings row, errors worded for the
operator (``AutotaskServiceError``)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from flask import current_app

from ...extensions import db
from ...psa import AutotaskClient, AutotaskConfig, PsaError
from ..settings import get_settings

log = logging.getLogger(__name__)

INTERACTIVE_RETRY_BUDGET = 15.0


class AutotaskServiceError(ValueError):
    """What went wrong, worded for the operator; nothing was changed when it is raised."""

    @property
    def message(self) -> str:
        return str(self)


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
