"""The column types of the model: every timestamp timezone-aware UTC, every secret encrypted."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy.types import DateTime, Text, TypeDecorator

from . import crypto

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A DateTime that is always timezone-aware UTC (``timestamp with time zone``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class EncryptedText(TypeDecorator):
    """A secret: the attribute holds the clear text, the column ``fernet:<token>`` (see ``crypto``).

    A stored value no key can decrypt reads as None ("not set": enter it again, or set the key it
    was stored with), with one warning per process; it is never shown or logged."""

    impl = Text
    cache_ok = True
    _warned = False

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return crypto.encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return crypto.decrypt(value)
        except (crypto.SecretUnreadable, crypto.SecretsKeyError) as exc:
            if not EncryptedText._warned:
                EncryptedText._warned = True
                log.warning("%s; it counts as not set until it is entered again (or the key it was stored "
                            "with is added to %s)", exc, crypto.ENV_VAR)
            return None
