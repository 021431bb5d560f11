"""Sending a mail (e-mail notification channels, the morning digest): through the Microsoft 365
mailbox (Graph sendMail, Mail.Send) or an SMTP server (Settings → Notifications → Mail sending,
``SMTP_*`` in the environment winning).

Two halves: ``resolve`` reads the settings (database and environment) into a ``Transport``;
``send`` speaks to the server and never touches the database, so the notification sender can pass
a resolved transport to ``delivery.deliver``. ``send`` never raises: it returns a ``Result`` like
every other delivery — a 4xx SMTP reply, a connection error or a timeout may help to try again, a
5xx reply (an unknown recipient, a refused login) will not. Passwords never appear in a result.
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Optional, Sequence

from .outcome import Result

TRANSPORTS = ("graph", "smtp")
TRANSPORT_LABELS = {"graph": "Microsoft 365 mailbox", "smtp": "SMTP server"}
SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SMTP_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password", "smtp_from")
TIMEOUT_SECONDS = 20.0
MAX_RECIPIENTS = 50
_EMAIL_RE = re.compile(r"^[^@\s,;<>\"()]+@[^@\s,;<>\"()]+\.[^@\s,;<>\"()]+$")


class AddressError(ValueError):
    """A mail address that can't be right; the message names it."""


def parse_addresses(value: Optional[str], limit: int = MAX_RECIPIENTS) -> list[str]:
    """'a@x.example; b@y.example' -> ['a@x.example', 'b@y.example'] (duplicates once); AddressError
    names a bad one. The one home of what counts as a mail address."""
    out: list[str] = []
    for part in re.split(r"[,;\s]+", value or ""):
        part = part.strip()
        if not part:
            continue
        if len(part) > 254 or not _EMAIL_RE.match(part):
            raise AddressError(f"'{part[:80]}' is not a mail address; separate addresses with commas.")
        if part.lower() not in {a.lower() for a in out}:
            out.append(part)
    if len(out) > limit:
        raise AddressError(f"At most {limit} addresses.")
    return out


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str = ""
    password: str = field(default="", repr=False)
    from_addr: str = ""

    def missing(self) -> list[str]:
        return [label for label, v in (("server", self.host), ("from address", self.from_addr)) if not v]


@dataclass(frozen=True)
class Transport:
    kind: str  # graph | smtp
    smtp: Optional[SmtpSettings] = None
    graph: object = None  # mail.graph.GraphConfig
    problem: str = ""  # not configured: what to fill in (sending fails with it)


@dataclass(frozen=True)
class OutgoingMail:
    to: Sequence[str]
    subject: str
    text: str
    html: str


# --- Resolving the settings (database + environment) --------------------------------------------

def smtp_env_overrides() -> dict:
    """SMTP values set in the environment; they win over the page and are shown read-only."""
    from flask import current_app

    return dict(current_app.config.get("SMTP_ENV_OVERRIDES") or {})


def smtp_settings() -> SmtpSettings:
    from .settings import get_settings

    s = get_settings()
    values = {f: getattr(s, f) for f in SMTP_FIELDS}
    values.update(smtp_env_overrides())
    security = (values.get("smtp_security") or "starttls").strip().lower()
    if security not in SECURITY:
        security = "starttls"
    try:
        port = int(values.get("smtp_port") or DEFAULT_PORTS[security])
    except (TypeError, ValueError):
        port = DEFAULT_PORTS[security]
    return SmtpSettings(host=(values.get("smtp_host") or "").strip(), port=port, security=security,
                        username=(values.get("smtp_username") or "").strip(),
                        password=values.get("smtp_password") or "",
                        from_addr=(values.get("smtp_from") or "").strip())


def graph_config():
    """The Graph settings used to send (the same as the import's, environment winning)."""
    from flask import current_app

    from ..mail.graph import GraphConfig
    from .importer import graph_settings_mapping

    return GraphConfig.from_settings(graph_settings_mapping(), **(current_app.config.get("GRAPH_CLIENT_OPTIONS") or {}))


def graph_missing(cfg) -> list[str]:
    return [m for m in cfg.missing() if m != "Incoming folder"]


def resolve(kind: Optional[str]) -> Transport:
    """The transport ``kind`` (graph or smtp) with its settings; ``problem`` says what is missing."""
    if kind == "smtp":
        cfg = smtp_settings()
        missing = cfg.missing()
        problem = (f"SMTP sending is not configured: fill in the {' and '.join(missing)} under Settings → "
                   "Notifications → Mail sending (or SMTP_HOST / SMTP_FROM).") if missing else ""
        return Transport("smtp", smtp=cfg, problem=problem)
    cfg = graph_config()
    missing = graph_missing(cfg)
    problem = (f"Mail is not configured: fill in {', '.join(missing)} under Settings → Mail (sending needs the "
               "Mail.Send application permission).") if missing else ""
    return Transport("graph", graph=cfg, problem=problem)


# --- Sending (no database) ---------------------------------------------------------------------------

def message(mail: OutgoingMail, from_addr: str) -> EmailMessage:
    """The RFC 5322 message: a plain-text part and an HTML alternative."""
    msg = EmailMessage()
    msg["Subject"] = mail.subject
    msg["From"] = from_addr
    msg["To"] = ", ".join(mail.to)
    msg["Date"] = formatdate(usegmt=True)
    domain = from_addr.rpartition("@")[2] or "backupchecks.local"
    msg["Message-ID"] = make_msgid("backupchecks", domain=domain)
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def send(transport: Transport, mail: OutgoingMail, *, timeout: float = TIMEOUT_SECONDS) -> Result:
    """Send one mail; never raises."""
    if not list(mail.to):
        return Result(False, False, "The mail has no recipients; add at least one address.")
    if transport.problem:
        return Result(False, False, transport.problem)
    try:
        if transport.kind == "smtp":
            return _send_smtp(transport.smtp, mail, timeout)
        return _send_graph(transport.graph, mail, timeout)
    except Exception as exc:  # noqa: BLE001 - a delivery error is a result, not a crash
        return Result(False, True, f"error: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else exc.__class__.__name__


def _reply(code, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(str(text or '').split())}".strip()[:500]


def _send_smtp(cfg: SmtpSettings, mail: OutgoingMail, timeout: float) -> Result:
    where = f"{cfg.host}:{cfg.port}"
    context = ssl.create_default_context()
    msg = message(mail, cfg.from_addr)
    try:
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if cfg.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            refused = smtp.send_message(msg, from_addr=cfg.from_addr, to_addrs=list(mail.to))
    except smtplib.SMTPAuthenticationError as exc:
        return Result(False, exc.smtp_code < 500,
                      f"The SMTP server {where} refused the user name or password ({_reply(exc.smtp_code, exc.smtp_error)}); "
                      "check the SMTP user and password.")
    except smtplib.SMTPNotSupportedError as exc:
        what = "STARTTLS" if cfg.security == "starttls" and "STARTTLS" in str(exc).upper() else "login (AUTH)"
        return Result(False, False, f"The SMTP server {where} does not offer {what} on this connection; "
                                    "check the security setting (STARTTLS, SSL) and the port.")
    except smtplib.SMTPRecipientsRefused as exc:
        replies = {addr: _reply(code, text) for addr, (code, text) in exc.recipients.items()}
        retry = any(code < 500 for code, _ in exc.recipients.values())
        return Result(False, retry, "The SMTP server refused " + "; ".join(f"{a}: {r}" for a, r in replies.items()))
    except smtplib.SMTPResponseException as exc:
        return Result(False, exc.smtp_code < 500, f"The SMTP server {where} answered {_reply(exc.smtp_code, exc.smtp_error)}")
    except ssl.SSLCertVerificationError as exc:
        return Result(False, False, f"The TLS certificate of the SMTP server {where} could not be verified "
                                    f"({exc.verify_message or 'verification failed'}).")
    except (socket.timeout, TimeoutError):
        return Result(False, True, f"The SMTP server {where} did not answer within {timeout:.0f} s.")
    except (smtplib.SMTPException, OSError) as exc:
        return Result(False, True, f"Cannot talk to the SMTP server {where}: {_first_line(exc)}")
    if refused:
        # Accepted for the others: sending again would send them a second copy.
        return Result(True, False, "Refused: " + "; ".join(f"{a}: {_reply(c, t)}" for a, (c, t) in refused.items()))
    return Result(True)


RETRY_GRAPH_CODES = {"throttled", "unavailable", "unreachable"}


def _send_graph(cfg, mail: OutgoingMail, timeout: float) -> Result:
    from dataclasses import replace

    from ..mail import MailSourceError
    from ..mail.graph import GraphMailSource

    if getattr(cfg, "timeout", None) is None or cfg.timeout > timeout:
        try:
            cfg = replace(cfg, timeout=timeout)
        except TypeError:
            pass
    source = GraphMailSource(cfg)
    try:
        source.send_mail(list(mail.to), mail.subject, mail.html)
    except MailSourceError as exc:
        text = getattr(exc, "message", None) or str(exc)
        return Result(False, getattr(exc, "code", "") in RETRY_GRAPH_CODES, text)
    finally:
        source.close()
    return Result(True)

