"""System settings: the one settings row (created on first use), the UI timezone, and saving the
Settings page's sections (validation, audit with before/after, secrets masked)."""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Mapping
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app, g
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import crypto
from ..extensions import db
from ..models import MailMessage, SystemSettings
from . import audit

DAILY_RULES = ("worst", "last", "best")

log = logging.getLogger(__name__)

def get_settings() -> SystemSettings:
    """The settings row (cached per request)."""
    if "system_settings" in g:
        return g.system_settings
    row = db.session.get(SystemSettings, 1)
    if row is None:
        # Created inside a savepoint: it is committed with the caller's transaction, and
        # never commits the caller's half-done work.
        try:
            with db.session.begin_nested():
                row = SystemSettings(id=1)
                db.session.add(row)
        except IntegrityError:  # another process created it first
            row = db.session.get(SystemSettings, 1)
    g.system_settings = row
    return row


def ui_zone() -> ZoneInfo:
    """The UI timezone; read once per request or background step (a commit would otherwise make
    every call reload the settings row)."""
    if "ui_zone" in g:
        return g.ui_zone
    try:
        zone = ZoneInfo(get_settings().ui_timezone or "Europe/Amsterdam")
    except Exception:  # noqa: BLE001 - a bad value never breaks a page
        zone = ZoneInfo("Europe/Amsterdam")
    g.ui_zone = zone
    return zone


def auto_review_successes() -> bool:
    """"Successful runs need no review": read once per request or background step, like the
    timezone (an import must not reload the settings row for every mail it stores)."""
    if "auto_review_successes" in g:
        return g.auto_review_successes
    value = bool(get_settings().auto_review_successes)
    g.auto_review_successes = value
    return value


@lru_cache(maxsize=1)
def timezone_choices() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


def graph_env_overrides() -> dict:
    """Graph values set in the environment; they win over the Settings page."""
    return dict(current_app.config.get("GRAPH_ENV_OVERRIDES") or {})


# --- Saving the Settings page ------------------------------------------------------------------

class SettingsError(ValueError):
    pass


def _snapshot(row, fields) -> dict:
    return {f: getattr(row, f) for f in fields}


def _apply(section: str, values: dict) -> bool:
    row = get_settings()
    before = _snapshot(row, values.keys())
    for key, value in values.items():
        setattr(row, key, value)
    b, a = audit.changed_fields(before, values)
    if "ui_timezone" in a:
        g.pop("ui_zone", None)  # the cached zone of this request is stale now
    if "auto_review_successes" in a:
        g.pop("auto_review_successes", None)
    if not a:
        return False
    audit.record(f"settings.{section}", f"Settings → {section.replace('_', ' ').capitalize()}: {', '.join(sorted(a))}",
                 target_type="settings", target_id=section, before=b, after=a)
    return True


def save_section(section: str, values: dict) -> bool:
    """Store validated values of a settings section another service owns (the digest), with the same
    audit entry (``settings.<section>``, before/after, secrets masked); True when something changed."""
    return _apply(section, values)


def general_form_values() -> dict:
    s = get_settings()
    return {"ui_timezone": s.ui_timezone, "sandbox_mode": s.sandbox_mode, "dashboard_first": s.dashboard_first,
            "daily_status_rule": s.daily_status_rule, "company_name": s.company_name,
            "auto_review_successes": s.auto_review_successes}


def save_general(form: Mapping[str, str]) -> bool:
    tz = (form.get("ui_timezone") or "").strip()
    if tz not in timezone_choices():
        raise SettingsError(f"'{tz}' is not a known IANA timezone (e.g. Europe/Amsterdam). Nothing was saved.")
    rule = form.get("daily_status_rule", "worst")
    if rule not in DAILY_RULES:
        raise SettingsError("The day's status rule must be worst, last or best. Nothing was saved.")
    name = (form.get("company_name") or "").strip()
    if len(name) > 200:
        raise SettingsError("The service provider name may have at most 200 characters. Nothing was saved.")
    return _apply("general", {
        "ui_timezone": tz,
        "sandbox_mode": form.get("sandbox_mode") in ("on", "1", "true", "y"),
        "dashboard_first": form.get("dashboard_first") in ("on", "1", "true", "y"),
        "daily_status_rule": rule,
        "company_name": name,
        "auto_review_successes": form.get("auto_review_successes") in ("on", "1", "true", "y"),
    })


# --- Mail (Microsoft Graph) ---------------------------------------------------------------------

MAIL_FIELDS = ("graph_tenant_id", "graph_client_id", "graph_mailbox", "graph_incoming_folder", "graph_processed_folder")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def mail_form_values(env_overrides: Mapping[str, str]) -> dict:
    s = get_settings()
    values = {f: getattr(s, f) or "" for f in MAIL_FIELDS + IMAP_FIELDS}
    values["mail_source"] = s.mail_source or "graph"
    values.update({k: v for k, v in env_overrides.items() if k in MAIL_FIELDS + IMAP_FIELDS + ("mail_source",)})
    values["secret_set"] = bool(s.graph_client_secret or env_overrides.get("graph_client_secret"))
    values["imap_password_set"] = bool(s.imap_password or env_overrides.get("imap_password"))
    return values


def typed_mail_values(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> dict:
    """The Graph values typed in the form (stripped, None when empty); fields the environment
    sets are left out, as they are not editable on the page. The secret is not included."""
    return {f: (form.get(f) or "").strip() or None for f in MAIL_FIELDS if f not in env_overrides}


def validate_mail_values(values: Mapping[str, str | None]) -> None:
    """Raise SettingsError (one sentence) when a typed Graph value can't be right."""
    for f in ("graph_tenant_id", "graph_client_id"):
        v = values.get(f)
        if v and not _GUID.match(v) and not (f == "graph_tenant_id" and "." in v):
            label = "Tenant ID" if f == "graph_tenant_id" else "Client ID"
            raise SettingsError(f"{label} must be a GUID like 0a1b2c3d-…-… (copy it from the app registration's "
                                "Overview page).")
    mailbox = values.get("graph_mailbox")
    if mailbox and "@" not in mailbox:
        raise SettingsError("Mailbox must be an address like backups@example.com.")
    for f in ("graph_incoming_folder", "graph_processed_folder"):
        if values.get(f) and len(values[f]) > 500:
            raise SettingsError("A folder path may have at most 500 characters.")
    if values.get("graph_incoming_folder") and values.get("graph_incoming_folder") == values.get("graph_processed_folder"):
        raise SettingsError("The processed folder must differ from the incoming folder.")


def typed_secret(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> tuple[str | None, bool]:
    """(the secret typed in the form or None, whether "Remove the stored secret" is ticked);
    both ignored when the environment sets the secret."""
    if "graph_client_secret" in env_overrides:
        return None, False
    return (form.get("graph_client_secret") or "").strip() or None, form.get("clear_secret") == "on"


def save_mail(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> bool:
    """Save Settings → Mail: the source (Microsoft 365 or IMAP), the Graph and the IMAP settings.
    Values set in the environment are not editable here. The client secret and the IMAP password
    are write-only: an empty field keeps the stored one. SettingsError: nothing saved."""
    values = typed_mail_values(form, env_overrides)
    try:
        validate_mail_values(values)
        values.update(typed_imap_values(form, env_overrides))
        if "mail_source" not in env_overrides:
            values["mail_source"] = typed_mail_source(form)
    except SettingsError as exc:
        raise SettingsError(f"{exc} Nothing was saved.") from None
    secret, clear = typed_secret(form, env_overrides)
    password, clear_password = typed_imap_password(form, env_overrides)
    if (secret or password) and not crypto.can_store():
        raise SettingsError(f"{crypto.no_key_message()} Nothing was saved.")
    if secret:
        values["graph_client_secret"] = secret
    if clear:
        values["graph_client_secret"] = None
    if password:
        values["imap_password"] = password
    elif clear_password:
        values["imap_password"] = None
    return _apply("mail", values)


# --- Mail (IMAP) ----------------------------------------------------------------------------------

IMAP_FIELDS = ("imap_host", "imap_port", "imap_tls", "imap_username", "imap_folder", "imap_processed_folder")
MAIL_SOURCE_CHOICES = (("graph", "Microsoft 365 (Graph)"), ("imap", "IMAP mailbox"))


def typed_mail_source(form: Mapping[str, str]) -> str:
    source = (form.get("mail_source") or "graph").strip().lower()
    if source not in dict(MAIL_SOURCE_CHOICES):
        raise SettingsError("The mail source must be Microsoft 365 or IMAP.")
    return source


def typed_imap_values(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> dict:
    """The IMAP values typed in the form, checked (SettingsError, one sentence); fields the
    environment sets are left out. An empty port means the TLS mode's usual port (993 or 143).
    The password is not included."""
    from ..mail.imap import DEFAULT_PORTS, TLS_MODES

    def typed(name: str) -> str:
        return (form.get(name) or "").strip()

    values: dict = {}
    if "imap_host" not in env_overrides:
        host = typed("imap_host")
        # one colon is a host:port typed together; an IPv6 address has several
        if len(host) > 255 or any(c.isspace() for c in host) or "/" in host or host.count(":") == 1:
            raise SettingsError("The IMAP server must be a host name or address without a port, like "
                                "imap.gmail.com (the port has its own field).")
        values["imap_host"] = host or None
    tls = env_overrides.get("imap_tls")
    if "imap_tls" not in env_overrides:
        tls = typed("imap_tls").lower() or "ssl"
        if tls not in TLS_MODES:
            raise SettingsError("TLS must be SSL/TLS (port 993), STARTTLS (port 143) or none.")
        values["imap_tls"] = tls
    if "imap_port" not in env_overrides:
        raw = typed("imap_port")
        if raw:
            if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
                raise SettingsError("The IMAP port must be a number from 1 to 65535.")
            values["imap_port"] = int(raw)
        else:
            values["imap_port"] = DEFAULT_PORTS.get(tls or "ssl", 993)
    if "imap_username" not in env_overrides:
        user = typed("imap_username")
        if len(user) > 255:
            raise SettingsError("The IMAP user name may have at most 255 characters.")
        values["imap_username"] = user or None
    for name in ("imap_folder", "imap_processed_folder"):
        if name not in env_overrides:
            folder = typed(name)
            if len(folder) > 500:
                raise SettingsError("An IMAP folder name may have at most 500 characters.")
            values[name] = folder or ("INBOX" if name == "imap_folder" else None)
    incoming = env_overrides.get("imap_folder", values.get("imap_folder"))
    processed = env_overrides.get("imap_processed_folder", values.get("imap_processed_folder"))
    if incoming and processed and incoming == processed:
        raise SettingsError("The IMAP processed folder must differ from the incoming folder.")
    return values


def typed_imap_password(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> tuple[str | None, bool]:
    """(the IMAP password typed in the form or None, whether "Remove the stored password" is ticked);
    both ignored when the environment sets it. Not stripped: a password may end in a space."""
    if "imap_password" in env_overrides:
        return None, False
    password = form.get("imap_password") or ""
    if len(password) > 500:
        raise SettingsError("The IMAP password may have at most 500 characters. Nothing was saved.")
    return password or None, form.get("clear_imap_password") == "on"


# --- Imports -----------------------------------------------------------------------------------------

def imports_form_values() -> dict:
    s = get_settings()
    return {"auto_import_enabled": s.auto_import_enabled, "import_interval_minutes": s.import_interval_minutes,
            "import_batch_size": s.import_batch_size, "manual_import_batch_size": s.manual_import_batch_size,
            "keep_raw_mails": s.keep_raw_mails, "raw_retention_days": s.raw_retention_days}


def _int_field(form, name: str, label: str, lo: int, hi: int) -> int:
    raw = (form.get(name) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{label} must be a whole number between {lo} and {hi}, not '{raw}'. Nothing was saved.")
    if not lo <= value <= hi:
        raise SettingsError(f"{label} must be between {lo} and {hi}. Nothing was saved.")
    return value


def save_imports(form: Mapping[str, str]) -> bool:
    values = {
        "auto_import_enabled": form.get("auto_import_enabled") == "on",
        "import_interval_minutes": _int_field(form, "import_interval_minutes", "Interval (minutes)", 1, 1440),
        "import_batch_size": _int_field(form, "import_batch_size", "Batch size", 1, 1000),
        "manual_import_batch_size": _int_field(form, "manual_import_batch_size", "Manual batch size", 1, 1000),
        "keep_raw_mails": form.get("keep_raw_mails") == "on",
        "raw_retention_days": _int_field(form, "raw_retention_days", "Retention (days)", 0, 3650),
    }
    return _apply("imports", values)


# --- Maintenance -------------------------------------------------------------------------------------

SIZE_TABLES = 10  # the largest tables Settings → Maintenance lists


def storage_info(now, retention_days: int, raw_limit: int) -> dict:
    """What takes room (Settings → Maintenance): the database's size, its largest tables (with their
    indexes and TOAST), what the raw-mail retention will free, and the mails stored without their
    raw copy because they were over ``raw_limit`` bytes. Three statements."""
    from datetime import timedelta

    size = db.session.execute(text("SELECT pg_database_size(current_database())")).scalar()
    tables = db.session.execute(text(
        "SELECT c.relname, pg_total_relation_size(c.oid), GREATEST(c.reltuples, 0)::bigint"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        " ORDER BY 2 DESC LIMIT :n"), {"n": SIZE_TABLES}).all()
    cutoff = now - timedelta(days=max(1, int(retention_days or 1)))
    frees, frees_bytes, over = db.session.execute(select(
        func.count(MailMessage.id).filter(MailMessage.raw.is_not(None), MailMessage.imported_at < cutoff),
        func.coalesce(func.sum(MailMessage.raw_size).filter(MailMessage.raw.is_not(None),
                                                             MailMessage.imported_at < cutoff), 0),
        func.count(MailMessage.id).filter(MailMessage.raw.is_(None), MailMessage.raw_size > raw_limit))).one()
    return {"database_bytes": size, "tables": [{"name": n, "bytes": b, "rows": r} for n, b, r in tables],
            "retention_days": retention_days, "retention_mails": frees, "retention_bytes": frees_bytes,
            "raw_limit": raw_limit, "over_limit": over}


def maintenance_info(app_version) -> dict:
    """Database and version information for Settings → Maintenance."""
    engine = db.engine
    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - a database without the table still shows the rest
        db.session.rollback()
        revision = None
    mails, raw_kept, raw_bytes = db.session.execute(select(
        func.count(MailMessage.id), func.count(MailMessage.raw), func.coalesce(func.sum(MailMessage.raw_size), 0))).one()
    return {"dialect": engine.dialect.name, "server": getattr(engine.dialect, "server_version_info", None),
            "database": engine.url.database, "host": engine.url.host, "schema_revision": revision,
            "app_version": app_version, "mails": mails, "raw_kept": raw_kept, "raw_bytes": raw_bytes}


# --- Secrets at rest (see ``crypto``) ------------------------------------------------------------

def _stored_secret_cells(conn) -> list[tuple[str, str, str, int, str]]:
    """Every non-empty stored secret as (name, table, column, row id, value as stored: encrypted
    or, from before encryption, clear): the settings row's secret columns and each notification
    channel's URL and signing secret. Read with plain SQL so nothing is decrypted; none without
    the tables."""
    cells = []
    insp = inspect(conn)
    if insp.has_table(SystemSettings.__tablename__):
        columns = SystemSettings.secret_columns()
        row = conn.execute(text(f"SELECT {', '.join(columns)} FROM system_settings WHERE id = 1")).mappings().first()
        cells += [(c, "system_settings", c, 1, row[c]) for c in sorted(columns) if row is not None and row[c]]
    if insp.has_table("notification_channels"):
        for row in conn.execute(text("SELECT id, target_url, secret FROM notification_channels ORDER BY id")).mappings():
            cells += [(f"notification channel {row['id']} {c}", "notification_channels", c, row["id"], row[c])
                      for c in ("target_url", "secret") if row[c]]
    return cells


def _stored_secrets(conn) -> dict[str, str]:
    """{name: value as stored} of every non-empty stored secret (``_stored_secret_cells``)."""
    return {name: value for name, _t, _c, _i, value in _stored_secret_cells(conn)}


def check_secrets_key(app) -> None:
    """Production without APP_ENCRYPTION_KEY may run only while no secret is stored: raise
    SettingsError (one line for the operator) when the database holds one."""
    if crypto.can_store(app.config):
        return
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                stored = _stored_secrets(conn)
        except SQLAlchemyError as exc:  # the database is not there yet: the migrations will say so
            log.warning("could not check for stored secrets: %s", type(exc).__name__)
            return
        finally:
            db.engine.dispose()
    if not stored:
        return
    names = ", ".join(sorted(stored))
    if any(crypto.is_encrypted(v) for v in stored.values()):
        raise SettingsError(f"{crypto.ENV_VAR} is not set, but the database holds encrypted secrets ({names}); "
                            "set it to the key they were stored with (docs/configuration.md).")
    raise SettingsError(f"{crypto.ENV_VAR} is not set, but the database holds secrets ({names}) that an earlier "
                        f"version stored in clear; set it to a new key (make one with: {crypto.GENERATE_HINT}) "
                        "and they are encrypted at start-up.")


def rotate_stored_secrets(actor=None, username: str | None = None) -> tuple[list[str], list[str]]:
    """Encrypt every stored secret again with the first key of APP_ENCRYPTION_KEY (and encrypt any
    left in clear). Returns (re-encrypted columns, columns no key can decrypt, left as they are).
    Audited; commits."""
    if not crypto.can_store():
        raise SettingsError(crypto.no_key_message())
    conn = db.session.connection()
    done, unreadable = [], []
    for name, table, column, row_id, value in _stored_secret_cells(conn):
        try:
            new = crypto.reencrypt(value)
        except crypto.SecretUnreadable:
            unreadable.append(name)
            continue
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": new, "id": row_id})
        done.append(name)
    if done:
        audit.record("settings.rotate_secrets", f"Re-encrypted the stored secrets with the current key: "
                     f"{', '.join(done)}", user=actor, username=username, target_type="settings",
                     target_id="secrets")
    db.session.commit()
    db.session.expire_all()
    return done, unreadable


# --- Mail sending (SMTP, Settings → Notifications) ---------------------------------------------------

def smtp_form_values(env_overrides: Mapping[str, str]) -> dict:
    """The SMTP fields for the page (environment values win and are shown read-only); the password
    only as set / not set."""
    s = get_settings()
    values = {f: getattr(s, f) for f in ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_from")}
    values.update({k: v for k, v in env_overrides.items() if k != "smtp_password"})
    values["password_set"] = bool(s.smtp_password or env_overrides.get("smtp_password"))
    return values


def save_smtp(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> bool:
    """Save the SMTP server settings (audited, the password masked and write-only: an empty field keeps
    the stored one). Fields set in the environment are not editable. SettingsError: nothing saved."""
    from .mail_transport import DEFAULT_PORTS, SECURITY, AddressError, parse_addresses

    values: dict = {}

    def typed(name: str) -> str:
        return (form.get(name) or "").strip()

    if "smtp_host" not in env_overrides:
        host = typed("smtp_host")
        if len(host) > 255 or any(c.isspace() for c in host) or "/" in host:
            raise SettingsError("The SMTP server must be a host name or address, like smtp.example.com. Nothing was saved.")
        values["smtp_host"] = host or None
    if "smtp_security" not in env_overrides:
        security = typed("smtp_security") or "starttls"
        if security not in SECURITY:
            raise SettingsError("Security must be STARTTLS, SSL or none. Nothing was saved.")
        values["smtp_security"] = security
    if "smtp_port" not in env_overrides:
        raw = typed("smtp_port")
        if raw:
            if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
                raise SettingsError("The SMTP port must be a number from 1 to 65535. Nothing was saved.")
            values["smtp_port"] = int(raw)
        else:
            values["smtp_port"] = DEFAULT_PORTS[values.get("smtp_security") or "starttls"]
    if "smtp_username" not in env_overrides:
        user = typed("smtp_username")
        if len(user) > 255:
            raise SettingsError("The SMTP user may have at most 255 characters. Nothing was saved.")
        values["smtp_username"] = user or None
    if "smtp_from" not in env_overrides:
        sender = typed("smtp_from")
        try:
            parsed = parse_addresses(sender, limit=1) if sender else []
        except AddressError as exc:
            raise SettingsError(f"From address: {exc} Nothing was saved.") from None
        values["smtp_from"] = parsed[0] if parsed else None
    if "smtp_password" not in env_overrides:
        password = form.get("smtp_password") or ""
        if len(password) > 500:
            raise SettingsError("The SMTP password may have at most 500 characters. Nothing was saved.")
        if password and not crypto.can_store():
            raise SettingsError(f"{crypto.no_key_message()} Nothing was saved.")
        if password:
            values["smtp_password"] = password
        elif form.get("clear_smtp_password") == "on":
            values["smtp_password"] = None
    return _apply("mail_sending", values)
