"""The contract every mail source lives by.

A mail source hands raw RFC 822 bytes plus a source id to the ingest
service. It knows nothing about Flask or the database:

* :meth:`MailSource.list_messages` - what is waiting, oldest first;
* :meth:`MailSource.fetch_raw` - the raw MIME of one message;
* :meth:`MailSource.mark_processed` - called only after the database
  transaction that stored the message committed; it moves the message out of
  the way and returns its new source id (ids may change on a move).

Every failure an operator can fix is raised as :class:`MailSourceError` with
one clear sentence that says what is wrong and where to fix it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Mapping, Optional


class MailSourceError(RuntimeError):
    """A mail source cannot do its work; ``message`` is one sentence for the operator.

    ``code`` is a short, stable machine name (``"invalid_secret"``,
    ``"unknown_tenant"``, ``"unknown_client"``, ``"access_denied"``,
    ``"unknown_mailbox"``, ``"unknown_folder"``, ``"unreachable"``,
    ``"throttled"``, ``"unavailable"``, ``"not_found"``, ``"error"``; IMAP also
    ``"tls_failed"``, ``"connection_lost"``, ``"stale"`` (an id of an older UIDVALIDITY),
    ``"not_configured"``) so callers
    can branch without parsing the sentence. ``details`` holds the facts behind
    the sentence (e.g. ``aadsts``, ``graph_code``, the missing ``folder``) for a
    caller that words the problem for its own page. Neither ever holds a secret.
    """

    def __init__(self, message: str, code: str = "error", status: Optional[int] = None,
                 details: Optional[Mapping[str, Any]] = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RemoteMessage:
    """One message waiting in a mail source (metadata only, no body)."""

    source_id: str                   # id inside the source (Graph message id, file name, ...)
    internet_message_id: str         # the Message-ID header, '' when unknown
    received_at: Optional[datetime]  # timezone-aware UTC
    subject: str = ""
    from_address: str = ""           # lower-cased


class MailSource:
    """Base class of the mail sources (Graph, folder of .eml files, ...)."""

    name: ClassVar[str] = "base"

    def list_messages(self, limit: Optional[int] = None) -> list[RemoteMessage]:
        """Messages waiting to be imported, oldest first, at most ``limit``."""
        raise NotImplementedError

    def fetch_raw(self, source_id: str) -> bytes:
        """The raw RFC 822 bytes of one message."""
        raise NotImplementedError

    def mark_processed(self, source_id: str) -> Optional[str]:
        """Move the message out of the incoming place; return its new id (or None)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release network resources; the default has none."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- Header helpers the sources share ---------------------------------------------------------

def header_date(value) -> Optional[datetime]:
    """A Date header as an aware UTC time; None when missing or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def decode_header_text(value) -> str:
    """A header with RFC 2047 encoded words as plain text."""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value or "")))).strip()
    except (LookupError, ValueError):
        return str(value or "").strip()
