"""Gunicorn settings for the Backupchecks image.

Every value comes from the environment with a documented default
(docs/configuration.md, deploy/.env.example):

  APP_PORT                  8080   port to listen on (all interfaces)
  GUNICORN_WORKERS          2      worker processes
  GUNICORN_THREADS          4      threads per worker (gthread worker class)
  GUNICORN_TIMEOUT          120    seconds a worker may stay silent before it is restarted
  GUNICORN_GRACEFUL_TIMEOUT 30     seconds workers get to finish after SIGTERM
  GUNICORN_KEEPALIVE        5      seconds to keep an idle keep-alive connection
  GUNICORN_MAX_REQUESTS     0      restart a worker after this many requests (0 = never)
  GUNICORN_LOGLEVEL         info   debug, info, warning, error, critical
  FORWARDED_ALLOW_IPS       127.0.0.1,::1  proxies trusted for X-Forwarded-Proto
                            (read by gunicorn itself; "*" when only your reverse
                            proxy can reach the container)
  METRICS_TOKEN             (unset) with it set, /metrics serves Prometheus metrics; the
                            workers then share their request metrics through
                            PROMETHEUS_MULTIPROC_DIR (see "metrics" below)

Start-up: each worker imports ``backend.app:create_app()`` (no preload), which
runs the migrations under a PostgreSQL advisory lock and, unless
BACKGROUND_JOBS is false, starts the background loops, which take their own
advisory lock so that only one process in the whole deployment runs them. The
compose stack's web service runs with BACKGROUND_JOBS=false: its ``worker``
service (``python -m backend.app.worker``, same image) runs the loops.

Shutdown: on SIGTERM gunicorn stops accepting connections and lets the
workers finish their requests for up to GUNICORN_GRACEFUL_TIMEOUT seconds;
each worker then asks the background loop to stop and waits for it
(``backend.app.services.background.stop_and_wait()``) to finish the step it is in, so a running import
cycle is not cut off. The container's stop grace period must be longer than
GUNICORN_GRACEFUL_TIMEOUT (the compose stack uses 60 s).
"""
from __future__ import annotations

import os
import shutil
import tempfile


def _int(name: str, default: int) -> int:
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {value!r}")


# -- socket -----------------------------------------------------------------
bind = f"0.0.0.0:{_int('APP_PORT', 8080)}"

# -- workers ----------------------------------------------------------------
workers = max(1, _int("GUNICORN_WORKERS", 2))
threads = max(1, _int("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10 if max_requests else 0
# Each worker runs create_app() itself (migrations and the background loops
# are guarded by advisory locks); preloading would share one database pool
# across forked processes.
preload_app = False
# Heartbeat files on a RAM disk (a container's /dev/shm) so that a slow
# overlay filesystem never makes a healthy worker look stuck.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Gunicorn >= 25 opens a control socket in $HOME by default; not needed here.
control_socket_disable = True

# -- logging: everything to the container's stdout/stderr -------------------
accesslog = "-"
errorlog = "-"
loglevel = (os.environ.get("GUNICORN_LOGLEVEL") or "info").strip().lower()
access_log_format = '%(h)s %({x-forwarded-for}i)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
capture_output = True
proc_name = "backupchecks"


# -- metrics: every worker's request metrics in one directory ---------------
# With METRICS_TOKEN set, /metrics must show the requests of all workers, whichever worker answers
# the scrape: prometheus_client's multiprocess mode keeps each worker's values in files of a
# directory they share (PROMETHEUS_MULTIPROC_DIR, read by the workers when they import
# prometheus_client, after the fork). A fresh directory per start (a RAM disk when there is one;
# the files are sparse, so they take little of it), emptied at start, removed on exit; a dead
# worker's live gauges are dropped (child_exit), its counters and histograms stay in the sums.
METRICS_DIR_PREFIX = "backupchecks-metrics-"


def _metrics_dir() -> str | None:
    if not (os.environ.get("METRICS_TOKEN") or "").strip():
        return None
    path = (os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "").strip()
    if not path:  # (a reload of this file keeps the directory of the first start)
        path = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX, dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


_metrics_dir()


# -- hooks ------------------------------------------------------------------
def on_starting(server):
    """Start the metrics from nothing: files a previous run left in the directory are removed."""
    path = _metrics_dir()
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))


def child_exit(server, worker):
    """A worker ended: its live gauges no longer count (its counters and histograms still do)."""
    if _metrics_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this configuration made."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or ""
    if path and os.path.basename(path.rstrip("/")).startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def worker_exit(server, worker):
    """Let the background loop finish its step before the worker process ends.

    The loop thread is a daemon thread: without this it would be cut off when
    the worker's interpreter exits. SIGTERM already asked it to stop; the rule
    for stopping and waiting lives in ``background.stop_and_wait`` (for at most a
    little less than graceful_timeout, after which the master kills the worker).
    """
    import sys

    background = sys.modules.get("backend.app.services.background")
    stop_and_wait = getattr(background, "stop_and_wait", None)
    if not callable(stop_and_wait):
        return  # the app never started its loops in this worker
    try:
        if not stop_and_wait(max(1, graceful_timeout - 2)):
            server.log.warning("background loop still busy at shutdown (pid %s)", worker.pid)
    except Exception as exc:  # never let shutdown raise
        server.log.warning("background stop failed: %s", exc)
