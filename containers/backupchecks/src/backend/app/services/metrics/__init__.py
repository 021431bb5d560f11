"""Prometheus metrics at ``/metrics`` (off unless ``METRICS_TOKEN`` is set).

Two sources, because the work happens in different processes:

- **HTTP request durations** are measured where the requests are served, in every web process
  (``init_app``: a histogram by Flask endpoint, method and status class, never the raw path, so the
  number of series stays bounded). Under gunicorn with several workers, prometheus_client's
  multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``gunicorn.conf.py``) adds up every
  worker's histogram, whichever worker answers the scrape; in a single process (``make run``,
  tests) the plain registry serves it.
- **The business metrics** (mails, runs, the notification outbox, the background loops, import
  cycles) come from the database at scrape time (``collector.DatabaseCollector``): the loops run
  in the worker process, where counters in memory would never reach a scrape; they write their
  totals with ``recording.record_loop_step`` / ``record_import_cycle``.

The bearer token is compared in constant time (``authorize``) and never logged.
"""
from __future__ import annotations

import hmac
import os
import time
from enum import Enum
from typing import Optional

from flask import Flask, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from .collector import PREFIX, DatabaseCollector
from .recording import record_import_cycle, record_loop_step

__all__ = ["Access", "authorize", "exposition", "init_app", "record_import_cycle", "record_loop_step",
           "multiprocess_dir", "REQUEST_DURATION"]

REQUEST_DURATION = PREFIX + "http_request_duration_seconds"
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"  # the endpoint label of a request no route matched (a 404 for an unknown path)
# The method label: any other word a client sends is "other", so clients can't add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_START = "backupchecks.request_started"
_EXT = "backupchecks_metrics"


class Access(Enum):
    OFF = "off"  # METRICS_TOKEN not set: /metrics does not exist (404)
    DENIED = "denied"  # no or a wrong bearer token (401)
    ALLOWED = "allowed"


def authorize(configured_token: Optional[str], authorization: Optional[str]) -> Access:
    """May a request with this ``Authorization`` header read the metrics? The token is compared in
    constant time, and a wrong scheme or an empty token is simply denied."""
    if not configured_token:
        return Access.OFF
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return Access.DENIED
    if hmac.compare_digest(presented.strip().encode("utf-8"), configured_token.encode("utf-8")):
        return Access.ALLOWED
    return Access.DENIED


def multiprocess_dir() -> Optional[str]:
    """The directory prometheus_client's multiprocess mode shares between gunicorn's workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def init_app(app: Flask) -> None:
    """With ``METRICS_TOKEN`` set: time every request (first hook in, last out) and build the
    registry a scrape reads. Without it nothing is measured."""
    if not app.config.get("METRICS_TOKEN"):
        return
    histogram = Histogram(REQUEST_DURATION, "Time to answer HTTP requests, by Flask endpoint, method and "
                          "status class (2xx, 3xx, 4xx, 5xx).", ["endpoint", "method", "status"],
                          buckets=REQUEST_BUCKETS, registry=None)
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)  # every worker's histogram, from the shared directory
    else:
        registry.register(histogram)
    registry.register(DatabaseCollector(app))
    registry.register(_BuildInfo(app.config.get("APP_VERSION") or "unknown"))
    app.extensions[_EXT] = {"histogram": histogram, "registry": registry}
    app.before_request(_start_timer)
    app.after_request(_observe)


def _start_timer() -> None:
    request.environ[_START] = time.perf_counter()


def _observe(response):
    started = request.environ.get(_START)
    if started is not None:
        histogram = current_app.extensions[_EXT]["histogram"]
        method = request.method if request.method in METHODS else "other"
        histogram.labels(request.endpoint or UNMATCHED, method,
                         f"{response.status_code // 100}xx").observe(time.perf_counter() - started)
    return response


def exposition(app: Flask) -> tuple[bytes, str]:
    """The text exposition of every metric, and its content type."""
    return generate_latest(app.extensions[_EXT]["registry"]), CONTENT_TYPE_LATEST


class _BuildInfo:
    def __init__(self, version: str):
        self.version = version

    def describe(self) -> list:
        return []

    def collect(self):
        family = GaugeMetricFamily(PREFIX + "build_info", "The running version (always 1).", labels=["version"])
        family.add_metric([self.version], 1)
        yield family
