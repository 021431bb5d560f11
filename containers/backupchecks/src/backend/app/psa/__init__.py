"""PSA clients: one module per PSA behind :class:`~.base.PsaClient`, and a registry.

Adding a PSA = a module with a ``PsaClient`` subclass (``name``, ``label``,
``config_class``) and one line in ``_CLIENTS``. Nothing here knows Flask or
the database; the services layer builds the config from its settings::

    from backend.app import psa
    client = psa.create_client("autotask", psa.get_client_class("autotask").config_class(...))
"""
from __future__ import annotations

from typing import Any

from .autotask import AutotaskClient, AutotaskConfig, AutotaskZone  # noqa: F401
from .base import *  # noqa: F401,F403 - the data, errors and base class every caller needs
from .base import PsaClient, PsaError

# Explicit and ordered (the order the settings page lists them in).
_CLIENTS: tuple[type[PsaClient], ...] = (AutotaskClient,)

PSA_CLIENTS: dict[str, type[PsaClient]] = {cls.name: cls for cls in _CLIENTS}


def available() -> list[tuple[str, str]]:
    """(name, label) of every PSA client, for choice fields."""
    return [(cls.name, cls.label) for cls in _CLIENTS]


def get_client_class(name: str) -> type[PsaClient]:
    try:
        return PSA_CLIENTS[name]
    except KeyError:
        raise PsaError(f"Unknown PSA {name!r}; known: {', '.join(PSA_CLIENTS)}.") from None


def create_client(name: str, config: Any) -> PsaClient:
    cls = get_client_class(name)
    if not isinstance(config, cls.config_class):
        raise TypeError(f"{name} needs a {cls.config_class.__name__}, got {type(config).__name__}")
    return cls(config)
