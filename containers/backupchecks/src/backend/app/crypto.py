"""Secrets at rest: the stored Graph client secret and Autotask secret are encrypted with Fernet.

The key comes from ``APP_ENCRYPTION_KEY``: one or more Fernet keys separated by commas. The first
key encrypts; every key decrypts (``MultiFernet``), so a key is rotated by putting the new one in
front (``APP_ENCRYPTION_KEY=new,old``), running ``flask --app backend.app rotate-secrets`` (every
stored secret is encrypted again with the new key) and then dropping the old one.

Without ``APP_ENCRYPTION_KEY`` a development install derives a key from ``APP_SECRET_KEY`` (HKDF);
changing that secret then makes the stored secrets unreadable (enter them again). Production has
no fallback: without the variable it refuses to store a secret, and refuses to start when the
database already holds one.

A stored value is ``fernet:<token>``. A value without that prefix is a secret from before
encryption (the migration encrypts them; ``rotate-secrets`` catches any left).
"""
from __future__ import annotations

import base64
from typing import Mapping, Optional

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "fernet:"
ENV_VAR = "APP_ENCRYPTION_KEY"
_HKDF_INFO = b"backupchecks: secrets at rest, v1"
GENERATE_HINT = ("python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


class SecretsKeyError(RuntimeError):
    """No usable key: the message says what to set. Never contains a key or a secret."""


class SecretUnreadable(RuntimeError):
    """A stored secret could not be decrypted with any of the keys."""


def parse_keys(raw: Optional[str]) -> list[bytes]:
    """The keys of an ``APP_ENCRYPTION_KEY`` value, first (encrypting) key first. Raises
    SecretsKeyError naming the bad position (never the key itself)."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    keys = []
    for n, part in enumerate(parts, start=1):
        try:
            Fernet(part.encode())
        except (ValueError, TypeError):
            which = "it is" if len(parts) == 1 else f"key {n} of {len(parts)} is"
            raise SecretsKeyError(f"{ENV_VAR} is not usable: {which} not a Fernet key (32 url-safe base64 "
                                  f"bytes). Make one with: {GENERATE_HINT}") from None
        keys.append(part.encode())
    return keys


def derived_key(secret_key: str) -> bytes:
    """The development key: HKDF-SHA256 of APP_SECRET_KEY, as a Fernet key."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def keys_for(config: Mapping) -> list[bytes]:
    """The keys this configuration encrypts and decrypts with; [] when there is none (production
    without APP_ENCRYPTION_KEY)."""
    keys = parse_keys(config.get(ENV_VAR))
    if keys:
        return keys
    if config.get("APP_ENV") == "production":
        return []
    return [derived_key(str(config.get("SECRET_KEY") or ""))]


def key_source(config: Mapping) -> str:
    """Where the key comes from, for logs and the docs' words: never the key."""
    if parse_keys(config.get(ENV_VAR)):
        return ENV_VAR
    return "none" if config.get("APP_ENV") == "production" else "derived from APP_SECRET_KEY"


_cache: dict[tuple, Optional[MultiFernet]] = {}


def _fernet(config: Mapping) -> Optional[MultiFernet]:
    ident = (config.get(ENV_VAR), config.get("APP_ENV"), config.get("SECRET_KEY"))
    if ident not in _cache:
        keys = keys_for(config)
        _cache.clear()  # one configuration per process in practice; tests switch keys
        _cache[ident] = MultiFernet([Fernet(k) for k in keys]) if keys else None
    return _cache[ident]


def _config(config: Optional[Mapping]) -> Mapping:
    if config is not None:
        return config
    from flask import current_app
    return current_app.config


def can_store(config: Optional[Mapping] = None) -> bool:
    return _fernet(_config(config)) is not None


def no_key_message() -> str:
    return (f"{ENV_VAR} is not set, so secrets can't be stored in the database (APP_ENV=production). "
            f"Set it in deploy/.env (make one with: {GENERATE_HINT}) and restart, or give the secret "
            "through the environment instead.")


def encrypt(plain: str, config: Optional[Mapping] = None) -> str:
    f = _fernet(_config(config))
    if f is None:
        raise SecretsKeyError(no_key_message())
    return PREFIX + f.encrypt(plain.encode("utf-8")).decode("ascii")


def is_encrypted(stored: Optional[str]) -> bool:
    return bool(stored) and stored.startswith(PREFIX)


def decrypt(stored: str, config: Optional[Mapping] = None) -> str:
    """The clear secret of a stored value (a value from before encryption is returned as is)."""
    if not is_encrypted(stored):
        return stored
    f = _fernet(_config(config))
    if f is None:
        raise SecretsKeyError(no_key_message())
    try:
        return f.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretUnreadable(f"a stored secret can't be decrypted with {key_source(_config(config))}") from None


def reencrypt(stored: str, config: Optional[Mapping] = None) -> str:
    """The stored value encrypted with the first key (a clear legacy value is encrypted)."""
    if not is_encrypted(stored):
        return encrypt(stored, config)
    f = _fernet(_config(config))
    if f is None:
        raise SecretsKeyError(no_key_message())
    try:
        return PREFIX + f.rotate(stored[len(PREFIX):].encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        raise SecretUnreadable(f"a stored secret can't be decrypted with {key_source(_config(config))}") from None
