"""The built-in SMTP receiver's rules, without the protocol: which recipients it accepts, how big a
message may be, what counts as a mail, and storing one (``mail/smtpd.py`` speaks SMTP and asks
these functions; ``flask --app backend.app smtpd`` runs it).

A received mail goes through the one home of storing mail, ``ingest.ingest_message``, exactly as
an imported one: source ``smtp``, source id the hash of its bytes (``ingest.content_source_id``),
so a client that sends it again after a lost "250" creates no duplicate (the Message-ID's unique
constraint catches a resend with different bytes). The answer is 250 only after that commit; a
database that fails answers 451, and the client tries again later: nothing is lost.

Every reply is a :class:`Reply` (code, enhanced status code, text): the SMTP layer pushes
``str(reply)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Iterable, Optional

from ..config import SmtpReceiverConfig
from .ingest import content_source_id, ingest_message
from .settings import get_settings

log = logging.getLogger(__name__)

SOURCE = "smtp"


@dataclass(frozen=True)
class Reply:
    code: int
    status: str     # RFC 3463 enhanced status code, e.g. "2.0.0"
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    @property
    def ok(self) -> bool:
        return self.code < 400


@dataclass(frozen=True)
class Delivery:
    """The outcome of one message: the reply, and one word for the log line."""
    reply: Reply
    outcome: str                 # processed | inbox | duplicate | refused-size | malformed | retry-later
    message_id: Optional[int] = None


def recipient_domain(address: str) -> str:
    """The domain of an envelope recipient, lower case, without brackets or a trailing dot."""
    return address.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()


def check_recipient(address: str, allowed_domains: Iterable[str]) -> Optional[Reply]:
    """None when mail for ``address`` is accepted; else the refusal (this server relays nothing)."""
    if "@" in address and recipient_domain(address) in set(allowed_domains):
        return None
    return Reply(550, "5.7.1", f"Relaying denied: <{address}> is not in a domain this server accepts mail for")


def too_big(max_bytes: int) -> Reply:
    mb = max_bytes / (1024 * 1024)
    return Reply(552, "5.3.4", f"Message too big: this server accepts at most {mb:g} MB")


def check_size(size: int, max_bytes: int) -> Optional[Reply]:
    """None when a message of ``size`` bytes fits; else the refusal."""
    return too_big(max_bytes) if size > max_bytes else None


def check_message(raw: bytes) -> Optional[Reply]:
    """None when ``raw`` reads as an RFC 5322 mail (it starts with a header block that has a From
    header); else the refusal with a short reason. A refused message is not stored. Lenient past
    that, as mail servers are: a stray line in the headers does not make a report unreadable."""
    if not raw.strip():
        return Reply(554, "5.6.0", "Malformed message: it is empty")
    headers = BytesHeaderParser().parsebytes(raw)
    if not headers.keys():
        return Reply(554, "5.6.0", "Malformed message: it does not start with a header block")
    if not (headers.get("From") or "").strip():
        return Reply(554, "5.6.0", "Malformed message: it has no From header")
    try:
        from ..parsers.normalize import normalize

        normalize(raw)
    except Exception as exc:  # noqa: BLE001 - any reason the mail can't be read
        return Reply(554, "5.6.0", f"Malformed message: it could not be read ({type(exc).__name__})")
    return None


def store(raw: bytes) -> Delivery:
    """Store one received message like an imported one and say what to answer. Call it in an app
    context. A database error is a temporary failure (451): the client keeps the mail and retries."""
    refused = check_message(raw)
    if refused is not None:
        return Delivery(refused, "malformed")
    from ..extensions import db

    try:
        keep_raw = bool(get_settings().keep_raw_mails)
        outcome = ingest_message(raw, source=SOURCE, source_id=content_source_id(raw), keep_raw=keep_raw)
    except Exception as exc:  # noqa: BLE001 - nothing was committed: the client must try again
        log.warning("storing a received mail failed: %s", type(exc).__name__)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the next message gets a new one
            pass
        return Delivery(Reply(451, "4.3.0", "Temporary failure storing the message, try again later"),
                        "retry-later")
    if outcome.state == "duplicate":
        return Delivery(Reply(250, "2.0.0", "Already received, thank you"), "duplicate")
    return Delivery(Reply(250, "2.0.0", f"Stored as message {outcome.message_id}"), outcome.state,
                    outcome.message_id)


def log_line(peer: str, mail_from: str, rcpt_tos: Iterable[str], size: int, delivery: Delivery) -> str:
    """The one log line per message: who, to whom, how big, what happened. Never the content."""
    rcpts = ",".join(rcpt_tos) or "-"
    stored = f" message={delivery.message_id}" if delivery.message_id else ""
    return (f"smtp {delivery.outcome}: peer={peer} from=<{mail_from}> to=<{rcpts}> size={size} "
            f"reply={delivery.reply.code} {delivery.reply.status}{stored}")


def describe(cfg: Optional[SmtpReceiverConfig]) -> Optional[str]:
    """One line for Settings → Mail: where the receiver listens (None when it is off)."""
    if cfg is None:
        return None
    tls = "STARTTLS required" if cfg.require_tls else ("STARTTLS offered" if cfg.tls_cert else "no TLS")
    return (f"listening on {cfg.listen} for {', '.join(cfg.allowed_domains)}; "
            f"at most {cfg.max_message_bytes // (1024 * 1024)} MB per message; {tls}")
