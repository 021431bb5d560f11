"""The background worker: `python -m backend.app.worker` runs the background loops in the foreground.

The loops are the mail import, missed runs, report delivery, the Autotask poll and the Markdown
re-render (``services/background.py``). The compose stack's ``worker`` service runs this command
(same image, no web server, no published port) while its web service runs gunicorn with
``BACKGROUND_JOBS=false``, so the web service can be scaled to several containers. The loops run
in one process across the whole deployment, the holder of a PostgreSQL advisory lock: a second
worker (or a web process with ``BACKGROUND_JOBS=true``) only stands by and takes over when the
first one stops. ``BACKGROUND_JOBS`` does not concern the worker: it always runs its runner.

Start-up is ``create_app()`` as in the web service: the configuration is checked the same way
and the migrations are applied under their lock. SIGTERM (``docker stop``) or Ctrl+C: the loop
finishes the step it is in (an import cycle is never cut in half), the process prints
"Backupchecks worker stopped." and exits 0. A second SIGTERM or Ctrl+C stops it at once.

`python -m backend.app.worker --check` is the worker container's health check: exit 0 when a
background runner on this host (this container) wrote its heartbeat recently, 1 otherwise; one line
says which. It reads the database directly, without starting the app (no migrations, no loops), so
it is cheap enough to run every 30 s.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Mapping, Optional, Sequence


def run() -> int:
    from . import create_app
    from .services import background

    # The loops are registered by create_app and run here, in the foreground, whatever BACKGROUND_JOBS says.
    app = create_app({"BACKGROUND_JOBS": False})
    embedded = app.extensions.get("embedded_postgres")
    if embedded is not None:
        print(f"Database: embedded PostgreSQL {embedded.version}, data in {embedded.pgdata}", flush=True)
    names = ", ".join(loop.name for loop in background.LOOPS)
    print(f"Backupchecks worker {app.config['APP_VERSION']} (process {os.getpid()}): background loops {names}; "
          "SIGTERM or Ctrl+C stops it after the step under way.", flush=True)
    stopped_by_signal = background.run_in_foreground(app, on_signal=lambda: print(
        "Stopping: the background loop finishes the step it is in (SIGTERM or Ctrl+C again stops at once).",
        flush=True))
    if embedded is not None:
        from .extensions import db

        with app.app_context():
            db.engine.dispose()
        embedded.stop()  # the last process using the embedded server stops it
    if not stopped_by_signal:
        print("Backupchecks worker: the background runner ended unexpectedly.", file=sys.stderr, flush=True)
        return 1
    print("Backupchecks worker stopped.", flush=True)
    return 0


def check(env: Optional[Mapping[str, str]] = None) -> int:
    """Health of the runner(s) on this host from their heartbeat; prints one line, returns the exit code."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from .config import database_url
    from .services.heartbeat import health

    url = database_url(os.environ if env is None else env)
    if not url:
        print("unhealthy: no database configured (DATABASE_URL, or POSTGRES_*/DB_*)", flush=True)
        return 1
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        ok, message = health(engine, socket.gethostname())
    except Exception as exc:  # noqa: BLE001 - the database (or its schema) is not there: unhealthy
        print(f"unhealthy: the database did not answer ({type(exc).__name__})", flush=True)
        return 1
    finally:
        engine.dispose()
    print(("healthy: " if ok else "unhealthy: ") + message, flush=True)
    return 0 if ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.app.worker",
        description="Run the background loops (mail import, missed runs, report delivery, Autotask poll) "
                    "in the foreground, until SIGTERM or Ctrl+C.")
    parser.add_argument("--check", action="store_true",
                        help="health check: exit 0 when a background runner on this host wrote its heartbeat "
                             "recently, 1 otherwise")
    args = parser.parse_args(argv)
    return check() if args.check else run()


if __name__ == "__main__":
    sys.exit(main())
