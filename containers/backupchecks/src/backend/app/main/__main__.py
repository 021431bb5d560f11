"""Entry point: `python -m backend.app.main` (what `make run` runs) serves on APP_HOST:APP_PORT.

APP_HOST defaults to 127.0.0.1 (this machine only; 0.0.0.0 when APP_ENV=production),
APP_PORT to 8080. Ctrl+C or SIGTERM stops it: the server stops taking requests, the
background loop finishes the step it is in (an import cycle is never cut in half),
then the process exits. A second Ctrl+C or SIGTERM stops it at once.

With no database configured (development) ``create_app`` has started the embedded
PostgreSQL with its data in ``instance/pgdata`` (``backend/app/embedded_pg.py``): this
prints where the data is, and stops that server on the way out (unless another process,
say `make create-user`, still uses it; the last one stops it).

(`backend.app.main` is also the package of the main blueprint's pages; this
``__main__`` module is what `python -m` runs.) For production the Docker image
runs gunicorn with `backend.app:create_app()`.
"""
from __future__ import annotations

import os
import signal

from .. import create_app
from ..services import background


def _leave_server(signum, frame) -> None:
    """SIGTERM: leave the server loop as Ctrl+C does (werkzeug stops on KeyboardInterrupt)."""
    background.stop()
    raise KeyboardInterrupt


def main() -> None:
    app = create_app()
    port = int(os.environ.get("APP_PORT", app.config.get("APP_PORT", 8080)))
    host = os.environ.get("APP_HOST", "127.0.0.1" if app.config.get("APP_ENV") != "production" else "0.0.0.0")
    from werkzeug.serving import run_simple
    signal.signal(signal.SIGTERM, _leave_server)
    embedded = app.extensions.get("embedded_postgres")
    if embedded is not None:
        print(f"Database: embedded PostgreSQL {embedded.version}, data in {embedded.pgdata} "
              f"(DATABASE_URL chooses another server)", flush=True)
    print(f"Backupchecks {app.config['APP_VERSION']} on http://{host}:{port}/ (Ctrl+C stops it)", flush=True)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    # A second Ctrl+C / SIGTERM while we wait below stops the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if background.running():
        print("Stopping: the background loop finishes its current step first "
              "(Ctrl+C again to stop at once).", flush=True)
    background.stop_and_wait()
    if embedded is not None:
        _stop_embedded_postgres(app, embedded)
    print("Backupchecks stopped.", flush=True)


def _stop_embedded_postgres(app, embedded) -> None:
    from ..extensions import db

    with app.app_context():
        db.engine.dispose()  # close the pool's connections before the server goes
    if embedded.stop():
        print(f"Embedded PostgreSQL stopped; its data stays in {embedded.pgdata}.", flush=True)
    else:
        print("Embedded PostgreSQL left running: another process still uses it (the last one stops it).",
              flush=True)


if __name__ == "__main__":
    main()
