"""Entry point: `python -m backend.app.main` serves on APP_PORT (default 8080).

Ctrl+C or SIGTERM stops it: the background loop finishes the step it is in
(see services/background.py), then the process exits with status 0.

(`backend.app.main` is also the package of the main blueprint's pages; this
``__main__`` module is what `python -m` runs.) For production the Docker image
runs gunicorn with `backend.app:create_app()`.
"""
from __future__ import annotations

import os

from .. import create_app


def main() -> None:
    app = create_app()
    port = int(os.environ.get("APP_PORT", app.config.get("APP_PORT", 8080)))
    host = os.environ.get("APP_HOST", "127.0.0.1" if app.config.get("APP_ENV") != "production" else "0.0.0.0")
    from werkzeug.serving import run_simple
    print(f"Backupchecks {app.config['APP_VERSION']} on http://{host}:{port}/", flush=True)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        print("Backupchecks stopping: waiting for the background step in progress.", flush=True)


if __name__ == "__main__":
    main()
