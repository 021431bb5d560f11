"""Typed configuration from the environment.

Every variable is documented in deploy/.env.example and docs/configuration.md.
With no database settings at all (development only) the app starts the embedded
PostgreSQL of ``make run`` with its data in ``<instance>/pgdata`` (``embedded_pg.py``);
production refuses that. PostgreSQL is the only database: a SQLite URL is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional
from urllib.parse import quote_plus

EXAMPLE_SECRET_KEYS = {
    "",
    "change-me",
    "changeme",
    "set-me",
    "set-me-to-a-long-random-string",
    "dev",
    "secret",
    "dev-only-not-for-production",
}
# Placeholders people paste from examples: "set-me…", "change-me…", "changeme…", "your-secret…".
EXAMPLE_SECRET_PREFIXES = ("set-me", "change-me", "changeme", "your-secret", "replace-me")
MIN_SECRET_KEY_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16  # production: a guessable token would open /metrics to anyone
# `openssl rand -hex 32` has about 16 different characters; "aaaa…" or "abab…" has 1 or 2.
MIN_SECRET_KEY_DISTINCT = 8

DB_VARS = ("DATABASE_URL", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT")
GRAPH_ENV = {
    "GRAPH_TENANT_ID": "graph_tenant_id",
    "GRAPH_CLIENT_ID": "graph_client_id",
    "GRAPH_CLIENT_SECRET": "graph_client_secret",
    "GRAPH_MAILBOX": "graph_mailbox",
    "GRAPH_INCOMING_FOLDER": "graph_incoming_folder",
    "GRAPH_PROCESSED_FOLDER": "graph_processed_folder",
}

# MAIL_SOURCE and IMAP_* values set in the environment win over Settings → Mail.
IMAP_ENV = {
    "MAIL_SOURCE": "mail_source",
    "IMAP_HOST": "imap_host",
    "IMAP_PORT": "imap_port",
    "IMAP_USER": "imap_username",
    "IMAP_PASSWORD": "imap_password",
    "IMAP_TLS": "imap_tls",
    "IMAP_FOLDER": "imap_folder",
    "IMAP_PROCESSED_FOLDER": "imap_processed_folder",
}
MAIL_SOURCES = ("graph", "imap")

# OIDC_* values set in the environment win over Settings → Sign-in (single sign-on).
OIDC_ENV = {
    "OIDC_ISSUER": "oidc_issuer",
    "OIDC_TENANT_ID": "oidc_tenant_id",
    "OIDC_CLIENT_ID": "oidc_client_id",
    "OIDC_CLIENT_SECRET": "oidc_client_secret",
    "OIDC_ALLOWED_DOMAINS": "oidc_allowed_domains",
    "OIDC_ALLOWED_TENANTS": "oidc_allowed_tenants",
}
IMAP_TLS_MODES = ("ssl", "starttls", "none")


class ConfigError(RuntimeError):
    """The configuration cannot work; the message is one line for the operator."""


def env_str(env: Mapping[str, str], name: str, default: Optional[str] = None) -> Optional[str]:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env_str(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from exc


def env_list(env: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated list; empty items are skipped."""
    return [item.strip() for item in (env_str(env, name) or "").split(",") if item.strip()]


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env_str(env, name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


SQLITE_REFUSED = ("SQLite is not supported: Backupchecks runs on PostgreSQL only; set DATABASE_URL to "
                  "postgresql://user:password@host:5432/backupchecks, or unset it for the embedded PostgreSQL "
                  "of `make run`")


def database_url(env: Mapping[str, str]) -> Optional[str]:
    """DATABASE_URL wins; else the POSTGRES_*/DB_* variables; else None: no database is configured
    (``make run`` then starts the embedded PostgreSQL in ``<instance>/pgdata``)."""
    url = env_str(env, "DATABASE_URL")
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    if any(env_str(env, name) for name in DB_VARS[1:]):
        user = quote_plus(env_str(env, "POSTGRES_USER", "backupchecks"))
        password = env_str(env, "POSTGRES_PASSWORD", "")
        auth = f"{user}:{quote_plus(password)}" if password else user
        host = env_str(env, "DB_HOST", "localhost")
        port = env_int(env, "DB_PORT", 5432)
        name = env_str(env, "POSTGRES_DB", "backupchecks")
        return f"postgresql+psycopg://{auth}@{host}:{port}/{name}"
    return None

SMTP_ENV = {
    "SMTP_HOST": "smtp_host",
    "SMTP_PORT": "smtp_port",
    "SMTP_SECURITY": "smtp_security",
    "SMTP_USER": "smtp_username",
    "SMTP_PASSWORD": "smtp_password",
    "SMTP_FROM": "smtp_from",
}


@dataclass(frozen=True)
class SmtpReceiverConfig:
    """The built-in SMTP receiver (`flask --app backend.app smtpd`): SMTP_LISTEN and its companions."""
    host: str
    port: int
    allowed_domains: tuple[str, ...]   # lower case, without a trailing dot
    max_message_bytes: int
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    require_tls: bool = False

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``0.0.0.0:2525``, ``[::]:25``, ``127.0.0.1:2525``) → (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"SMTP_LISTEN must be host:port (e.g. 0.0.0.0:2525), got {value!r}")
    return host, int(port)


def smtp_receiver_config(env: Mapping[str, str]) -> Optional[SmtpReceiverConfig]:
    """The SMTP receiver's settings; None when SMTP_LISTEN is unset (the receiver is off)."""
    listen = env_str(env, "SMTP_LISTEN")
    if listen is None:
        return None
    host, port = parse_listen(listen)
    domains = tuple(dict.fromkeys(d.lower().rstrip(".") for d in env_list(env, "SMTP_ALLOWED_DOMAINS")))
    if not domains:
        raise ConfigError("SMTP_LISTEN is set but SMTP_ALLOWED_DOMAINS is empty: list the recipient domains the "
                          "receiver accepts mail for (comma-separated, e.g. backups.example.com)")
    bad = [d for d in domains if "@" in d or " " in d or "." not in d]
    if bad:
        raise ConfigError(f"SMTP_ALLOWED_DOMAINS must be domain names (e.g. backups.example.com), got {bad[0]!r}")
    max_mb = env_int(env, "SMTP_MAX_MESSAGE_MB", 25)
    if max_mb < 1:
        raise ConfigError(f"SMTP_MAX_MESSAGE_MB must be at least 1, got {max_mb}")
    cert, key = env_str(env, "SMTP_TLS_CERT"), env_str(env, "SMTP_TLS_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("SMTP_TLS_CERT and SMTP_TLS_KEY go together: set both (STARTTLS) or neither")
    require_tls = env_bool(env, "SMTP_REQUIRE_TLS", False)
    if require_tls and not cert:
        raise ConfigError("SMTP_REQUIRE_TLS needs a certificate: set SMTP_TLS_CERT and SMTP_TLS_KEY")
    return SmtpReceiverConfig(host=host, port=port, allowed_domains=domains, max_message_bytes=max_mb * 1024 * 1024,
                              tls_cert=cert, tls_key=key, require_tls=require_tls)


def load_config(env: Mapping[str, str], instance_path: str) -> dict:
    """Build the Flask config mapping from the environment."""
    app_env = (env_str(env, "APP_ENV", "development") or "development").lower()
    secret = env_str(env, "APP_SECRET_KEY")
    cfg = {
        "APP_ENV": app_env,
        "APP_PORT": env_int(env, "APP_PORT", 8080),
        "SECRET_KEY": secret or "dev-only-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url(env),
        # Where the embedded PostgreSQL keeps its data when no database is configured (development).
        "EMBEDDED_PGDATA": os.path.join(instance_path, "pgdata"),
        # No pool_pre_ping: extensions.ping_idle_connections checks a connection that has been idle.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "GRAPH_AUTHORITY_HOST": env_str(env, "GRAPH_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        "GRAPH_API_BASE": env_str(env, "GRAPH_API_BASE", "https://graph.microsoft.com/v1.0"),
        # GRAPH_* values set in the environment win over the Settings page.
        "GRAPH_ENV_OVERRIDES": {key: env_str(env, var) for var, key in GRAPH_ENV.items() if env_str(env, var)},
        # MAIL_SOURCE and IMAP_* values set in the environment win over Settings → Mail.
        "IMAP_ENV_OVERRIDES": imap_env_overrides(env),
        # SMTP_* values set in the environment win over Settings → Notifications → Mail sending.
        "SMTP_ENV_OVERRIDES": {key: env_str(env, var) for var, key in SMTP_ENV.items() if env_str(env, var)},
        # OIDC_* values set in the environment win over Settings → Sign-in.
        "OIDC_ENV_OVERRIDES": {key: env_str(env, var) for var, key in OIDC_ENV.items() if env_str(env, var)},
        "BACKGROUND_JOBS": env_bool(env, "BACKGROUND_JOBS", True),
        "APP_BEHIND_PROXY": env_bool(env, "APP_BEHIND_PROXY", False),
        "RUN_MIGRATIONS": env_bool(env, "RUN_MIGRATIONS", True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_bool(env, "SESSION_COOKIE_SECURE", app_env == "production"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": env_int(env, "MAX_UPLOAD_MB", 50) * 1024 * 1024,
        # The largest raw mail kept; a bigger one is parsed and stored without its raw copy.
        "MAIL_RAW_MAX_MB": env_int(env, "MAIL_RAW_MAX_MB", 25),
        "LOGIN_THROTTLE_MAX": env_int(env, "LOGIN_THROTTLE_MAX", 5),
        "LOGIN_THROTTLE_WINDOW_SECONDS": env_int(env, "LOGIN_THROTTLE_WINDOW_SECONDS", 900),
        "API_RATE_LIMIT_PER_MINUTE": env_int(env, "API_RATE_LIMIT_PER_MINUTE", 120),
        # Fernet key(s) for the secrets stored in the database, first one encrypts ("new,old" while rotating).
        "APP_ENCRYPTION_KEY": env_str(env, "APP_ENCRYPTION_KEY"),
        # Apprise URLs every alert also goes to (comma-separated); shown read-only in Settings.
        "NOTIFY_URLS": env_list(env, "NOTIFY_URLS"),
        "NOTIFY_LOOP_SECONDS": env_int(env, "NOTIFY_LOOP_SECONDS", 30),
        # Sent, failed and given-up messages stay in the delivery log this many days.
        "NOTIFY_LOG_DAYS": env_int(env, "NOTIFY_LOG_DAYS", 30),
        # Prometheus metrics at /metrics, for requests with "Authorization: Bearer <token>"; unset: off (404).
        "METRICS_TOKEN": env_str(env, "METRICS_TOKEN"),
        # The built-in SMTP receiver (`flask smtpd`); None: off (SMTP_LISTEN unset).
        "SMTP_RECEIVER": smtp_receiver_config(env),
    }
    return cfg


def imap_env_overrides(env: Mapping[str, str]) -> dict:
    """MAIL_SOURCE and IMAP_* from the environment, checked: a value the import can't use stops the
    start with one line instead of failing every cycle."""
    values = {key: env_str(env, var) for var, key in IMAP_ENV.items() if env_str(env, var)}
    if "mail_source" in values:
        values["mail_source"] = values["mail_source"].lower()
        if values["mail_source"] not in MAIL_SOURCES:
            raise ConfigError(f"MAIL_SOURCE must be graph or imap, got {values['mail_source']!r}")
    if "imap_tls" in values:
        values["imap_tls"] = values["imap_tls"].lower()
        if values["imap_tls"] not in IMAP_TLS_MODES:
            raise ConfigError(f"IMAP_TLS must be ssl, starttls or none, got {values['imap_tls']!r}")
    if "imap_port" in values:
        port = env_int(env, "IMAP_PORT", 0)
        if not 1 <= port <= 65535:
            raise ConfigError(f"IMAP_PORT must be a port number from 1 to 65535, got {port}")
        values["imap_port"] = port
    return values


def check_database(cfg: Mapping) -> None:
    """Refuse a database the app does not run on (any environment). One-line reasons."""
    url = str(cfg.get("SQLALCHEMY_DATABASE_URI") or "")
    if url.startswith("sqlite"):
        raise ConfigError(SQLITE_REFUSED)
    if url and not url.startswith("postgresql"):
        raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/backupchecks), "
                          f"got {url.split(':', 1)[0]}:…")


def check_config(cfg: Mapping) -> None:
    """Everything create_app refuses to start with, in any environment and in production."""
    check_database(cfg)
    check_production(cfg)
    if int(cfg.get("API_RATE_LIMIT_PER_MINUTE", 1)) < 1:
        raise ConfigError("API_RATE_LIMIT_PER_MINUTE must be at least 1 (requests per token per minute)")


def check_encryption_key(cfg: Mapping) -> None:
    """A set APP_ENCRYPTION_KEY must be one or more valid Fernet keys (any environment)."""
    from .crypto import SecretsKeyError, parse_keys
    try:
        parse_keys(cfg.get("APP_ENCRYPTION_KEY"))
    except SecretsKeyError as exc:
        raise ConfigError(str(exc)) from None


def check_production(cfg: Mapping) -> None:
    """Refuse to start in production with a config that can't be safe. One-line reasons."""
    if cfg.get("APP_ENV") != "production":
        return
    secret = cfg.get("SECRET_KEY") or ""
    if secret.lower() in EXAMPLE_SECRET_KEYS or secret.lower().startswith(EXAMPLE_SECRET_PREFIXES):
        raise ConfigError("APP_SECRET_KEY is missing or still the example value; set a long random string (e.g. `openssl rand -hex 32`)")
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"APP_SECRET_KEY is too short; use at least {MIN_SECRET_KEY_LENGTH} random characters "
                          "(e.g. `openssl rand -hex 32`)")
    if len(set(secret)) < MIN_SECRET_KEY_DISTINCT:
        raise ConfigError("APP_SECRET_KEY is not random (too few different characters); "
                          "set a long random string (e.g. `openssl rand -hex 32`)")
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("APP_ENV=production needs a PostgreSQL server: set DATABASE_URL or "
                          "POSTGRES_DB/POSTGRES_USER/POSTGRES_PASSWORD/DB_HOST (the embedded one is for development only)")
    token = cfg.get("METRICS_TOKEN") or ""
    if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise ConfigError(f"METRICS_TOKEN is too short; use at least {MIN_METRICS_TOKEN_LENGTH} random characters "
                          "(e.g. `openssl rand -hex 32`), or leave it empty to turn the metrics off")
