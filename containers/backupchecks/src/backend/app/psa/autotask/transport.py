"""Talking to Autotask: zone discovery (cached per process), the credentials on every call (to the
zone host only), the per-integration limits, back-off on throttling and the mapping of answers to
:class:`~..base.PsaError` subclasses. ``AutotaskClient`` builds on it."""
from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections import deque
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..base import (
    PsaAuthError,
    PsaError,
    PsaNotFoundError,
    PsaRateLimitError,
    PsaUnavailableError,
    PsaValidationError,
)
from .config import FALLBACK_CACHE_SECONDS, MAX_PAGE, ZONE_CACHE_SECONDS, AutotaskConfig, AutotaskZone

log = logging.getLogger(__name__)

_THROTTLE_RE = re.compile(
    r"itgenatr005|thread threshold|request threshold|threshold .{0,40}exceeded|too many requests|rate limit",
    re.IGNORECASE,
)
_PERMISSION_RE = re.compile(r"adequate permission|not authori[sz]ed|access denied", re.IGNORECASE)


_zone_cache: dict[tuple, tuple[AutotaskZone, float]] = {}
_zone_lock = threading.Lock()


class _Limits:
    """Per-integration limits shared by every client object in this process."""

    def __init__(self, concurrency: int, budget: int, window: float = 3600.0):
        self.concurrency = max(1, concurrency)
        self.budget = budget
        self.window = window
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            if len(self._hits) >= self.budget:
                wait = self.window - (now - self._hits[0])
                raise PsaRateLimitError(
                    f"Backupchecks has used its Autotask request budget ({self.budget} requests per hour); "
                    f"it will continue in about {max(1, int(wait // 60) + 1)} minute(s).",
                    retry_after=wait,
                )
            self._hits.append(now)

    @contextmanager
    def slot(self, entity: str, wait: float) -> Iterator[None]:
        with self._lock:
            sem = self._sems.setdefault(entity, threading.BoundedSemaphore(self.concurrency))
        if not sem.acquire(timeout=max(0.1, wait)):
            raise PsaRateLimitError(
                f"Too many Autotask requests to {entity} are already running in Backupchecks; try again shortly.",
                retry_after=5.0,
            )
        try:
            yield
        finally:
            sem.release()


_limits: dict[tuple, _Limits] = {}
_limits_lock = threading.Lock()


def _limits_for(config: AutotaskConfig) -> _Limits:
    key = (config.api_user.lower(), config.integration_code, config.max_concurrency, config.hourly_request_budget)
    with _limits_lock:
        if key not in _limits:
            _limits[key] = _Limits(config.max_concurrency, config.hourly_request_budget)
        return _limits[key]


class _MaybeProcessed(PsaUnavailableError):
    """A write whose outcome is unknown: it may or may not have been carried out."""


class AutotaskTransport:
    """The HTTP side of :class:`~.client.AutotaskClient`: one object per configuration."""

    def __init__(self, config: AutotaskConfig, *, session: requests.Session | None = None):
        self.config = config
        self._session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=max(10, config.max_concurrency * 2))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._limits = _limits_for(config)

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ zones

    def zone(self, *, refresh: bool = False) -> AutotaskZone:
        """The tenant's zone (REST base URL), discovered once and cached."""
        urls = self.config.discovery_urls()
        key = (urls, self.config.api_user.lower())
        with _zone_lock:
            hit = _zone_cache.get(key)
            if hit and not refresh and time.monotonic() - hit[1] < ZONE_CACHE_SECONDS:
                return hit[0]
        problems: list[str] = []
        user_unknown: list[str] = []
        for base in urls:
            url = base.rstrip("/") + "/v1.0/zoneInformation"
            try:
                resp = self._session.get(url, params={"user": self.config.api_user},
                                         headers={"Accept": "application/json"}, timeout=self._timeout())
            except requests.RequestException as exc:
                problems.append(f"{_host(base)} unreachable ({type(exc).__name__})")
                continue
            data = _json_or_none(resp)
            if resp.status_code == 200 and isinstance(data, dict) and data.get("url"):
                zone = AutotaskZone(
                    name=str(data.get("zoneName") or ""),
                    url=_with_slash(str(data["url"])),
                    web_url=_with_slash(str(data["webUrl"])) if data.get("webUrl") else None,
                    ci=data.get("ci"),
                )
                with _zone_lock:
                    _zone_cache[key] = (zone, time.monotonic())
                log.info("Autotask zone for this API user: %s (%s)", zone.name, zone.url)
                return zone
            errors = _errors_of(data)
            if resp.status_code == 500 and errors:
                user_unknown.append(f"{_host(base)}: {'; '.join(errors)}")
            else:
                problems.append(f"{_host(base)} answered HTTP {resp.status_code}")
        if user_unknown and not problems:
            raise PsaAuthError(
                f"Autotask does not know the API user {self.config.api_user!r} in {self.config.environment}. "
                "Check the API user name (the API-only user's e-mail-style name) and the environment "
                "(production or sandbox).",
                errors=user_unknown,
                status=500,
            )
        if self.config.fallback_base_url:
            log.warning("Autotask zone discovery failed (%s); using the configured base URL", "; ".join(problems))
            zone = AutotaskZone(name="configured", url=_with_slash(self.config.fallback_base_url), discovered=False)
            with _zone_lock:  # try discovery again after FALLBACK_CACHE_SECONDS, not on every call
                _zone_cache[key] = (zone, time.monotonic() - ZONE_CACHE_SECONDS + FALLBACK_CACHE_SECONDS)
            return zone
        raise PsaUnavailableError(
            "Autotask zone discovery failed: " + "; ".join(problems + user_unknown)
            + ". Check the network connection to Autotask and try again.",
            errors=user_unknown,
        )

    def _timeout(self) -> tuple[float, float]:
        """(connect, read): a dead host is given up on quickly, a slow answer is waited for."""
        return (min(10.0, self.config.timeout), self.config.timeout)

    def _forget_zone(self) -> None:
        key = (self.config.discovery_urls(), self.config.api_user.lower())
        with _zone_lock:
            _zone_cache.pop(key, None)

    # --------------------------------------------------------------- transport

    def _headers(self) -> dict[str, str]:
        h = {
            "ApiIntegrationCode": self.config.integration_code,
            "UserName": self.config.api_user,
            "Secret": self.config.secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "Backupchecks",
        }
        if self.config.impersonation_resource_id is not None:
            h["ImpersonationResourceId"] = str(self.config.impersonation_resource_id)
        return h

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        action: str = "Talking to Autotask",
    ) -> Any:
        """One API call with limits, back-off and error mapping. ``path`` is
        relative to ``v1.0/`` or an absolute URL (``nextPageUrl``)."""
        cfg = self.config
        absolute = path.startswith("http://") or path.startswith("https://")
        if absolute:
            self._check_on_zone(path, action)
        entity = _entity_of(path)
        data = json.dumps(strip_none(body)) if body is not None else None
        deadline = time.monotonic() + cfg.retry_budget
        attempt = 0
        rediscovered = False
        while True:
            url = path if absolute else self.zone().url + "v1.0/" + path
            self._limits.take()
            started = time.monotonic()
            try:
                with self._limits.slot(entity, deadline - time.monotonic()):
                    resp = self._session.request(method, url, data=data, headers=self._headers(),
                                                 timeout=self._timeout())
            except requests.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                log.warning("Autotask %s %s %s after %.1fs", method, _loggable(path), kind,
                            time.monotonic() - started)
                if idempotent and self._sleep_backoff(attempt, None, deadline):
                    attempt += 1
                    continue
                cls = PsaUnavailableError if idempotent else _MaybeProcessed
                raise cls(f"{action} failed: Autotask {kind} ({type(exc).__name__}). "
                          "Check the connection to Autotask and try again.") from exc
            status = resp.status_code
            payload = _json_or_none(resp)
            errors = _errors_of(payload)
            log.debug("Autotask %s %s -> %s in %.2fs", method, _loggable(path), status, time.monotonic() - started)

            if status == 401:
                if not rediscovered and not absolute:
                    rediscovered = True
                    self._forget_zone()  # the tenant may have moved zone
                    continue
                raise PsaAuthError(
                    f"{action} failed: Autotask rejected the API credentials (HTTP 401). Check the API user "
                    "name, secret and integration code (tracking identifier) in Settings → Integrations → "
                    "Autotask.",
                    errors=errors, status=status)
            if status == 429 or (status >= 400 and any(_THROTTLE_RE.search(e) for e in errors)):
                retry_after = _retry_after(resp)
                log.warning("Autotask throttled %s %s (HTTP %s): %s", method, _loggable(path), status,
                            "; ".join(errors) or "no detail")
                # A throttled request was refused, not carried out: sending it again is safe.
                if self._sleep_backoff(attempt, retry_after, deadline):
                    attempt += 1
                    continue
                raise PsaRateLimitError(
                    f"{action} failed: Autotask is limiting requests ({'; '.join(errors) or f'HTTP {status}'}). "
                    "Backupchecks backed off and will try again later.",
                    retry_after=retry_after, errors=errors, status=status)
            if status >= 500 and not errors:
                # 502/503/504 or an empty 500: the request may or may not have been processed.
                if idempotent and self._sleep_backoff(attempt, _retry_after(resp), deadline):
                    attempt += 1
                    continue
                cls = PsaUnavailableError if idempotent else _MaybeProcessed
                raise cls(f"{action} failed: Autotask answered HTTP {status} without details. "
                          "Try again later; if it persists, check Autotask's status page.", status=status)
            if status >= 400:
                raise self._error(action, status, errors)
            if payload is None and resp.content:
                raise PsaUnavailableError(f"{action} failed: Autotask sent a response that is not JSON "
                                          f"(HTTP {status}).", status=status)
            return payload

    def _check_on_zone(self, url: str, action: str) -> None:
        """The credentials go to the zone's REST host only. An absolute URL that Autotask hands us
        (``nextPageUrl``) is followed only when it has the zone's scheme, host and port (https in
        production: never a downgrade to http, never another host)."""
        zone = self.zone()
        origin = _origin(url)
        if origin is None or origin != _origin(zone.url):
            log.warning("Autotask sent a link to %s, not to the zone host %s; not followed",
                        _host(url) or "?", _host(zone.url))
            raise PsaError(
                f"{action} stopped: Autotask's link to the next page points to {_host(url) or 'an unknown host'}, "
                f"not to the zone host {_host(zone.url)}. Backupchecks sends the API credentials only to the "
                "zone host, so it did not follow the link; the results may be incomplete. Try again later.")

    def _error(self, action: str, status: int, errors: Sequence[str]) -> PsaError:
        said = "; ".join(errors) if errors else f"HTTP {status}"
        if status == 403 or any(_PERMISSION_RE.search(e) for e in errors):
            return PsaAuthError(
                f"{action} failed: the Autotask API user lacks permission ({said}). Give it the "
                "'API User (API-only)' security level.", errors=errors, status=status)
        if status == 404:
            return PsaNotFoundError(f"{action} failed: Autotask has no such endpoint (HTTP 404). "
                                    "Check the zone / base URL.", errors=errors, status=status)
        return PsaValidationError(f"{action} failed: Autotask says: {said}", errors=errors, status=status)

    def _sleep_backoff(self, attempt: int, retry_after: float | None, deadline: float) -> bool:
        cfg = self.config
        if retry_after is not None:
            delay = min(retry_after, cfg.max_backoff)
        else:
            delay = min(cfg.max_backoff, cfg.backoff_base * (2 ** attempt)) * random.uniform(0.5, 1.0)
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        return True

    def _query(self, entity: str, filters: list[dict[str, Any]], *, include: Sequence[str] = (),
               page_size: int = MAX_PAGE, limit: int | None = None, action: str = "Searching Autotask"
               ) -> list[dict[str, Any]]:
        """All items matching ``filters`` (ANDed), following ``nextPageUrl`` verbatim when it is on
        the zone host (see ``_check_on_zone``)."""
        body: dict[str, Any] = {"filter": filters, "MaxRecords": max(1, min(page_size, MAX_PAGE))}
        if include:
            body["includeFields"] = sorted(set(include) | {"id"})
        page = self._request("POST", f"{entity}/query", body=body, action=action)
        items: list[dict[str, Any]] = []
        while True:
            items.extend(page.get("items") or [])
            nxt = (page.get("pageDetails") or {}).get("nextPageUrl")
            if not nxt or (limit is not None and len(items) >= limit):
                break
            page = self._request("GET", nxt, action=action)
        return items[:limit] if limit is not None else items


# --------------------------------------------------------------------------- helpers


def strip_none(value: Any) -> Any:
    """Drop ``None`` values from dicts (recursively): Autotask must never see a null."""
    if isinstance(value, Mapping):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [strip_none(v) for v in value if v is not None]
    return value


def _json_or_none(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _errors_of(payload: Any) -> list[str]:
    if isinstance(payload, dict):
        errs = payload.get("errors") or payload.get("Errors")
        if isinstance(errs, list):
            return [str(e if not isinstance(e, dict) else e.get("message") or e) for e in errs]
        if isinstance(errs, str):
            return [errs]
    return []


def _retry_after(resp: requests.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _entity_of(path: str) -> str:
    if "/v1.0/" in path.lower():
        path = path[path.lower().index("/v1.0/") + len("/v1.0/"):]
    return path.split("?")[0].strip("/").split("/")[0] or "?"


def _loggable(path: str) -> str:
    return path.split("?")[0]


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an http(s) URL, lower-case, default ports filled in; None when
    the URL can't be read (which never matches)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0]


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
