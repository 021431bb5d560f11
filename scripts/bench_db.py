"""The benchmarks' PostgreSQL, chosen as `make test` chooses: --database-url / BENCH_DATABASE_URL
when given; else the local server on 127.0.0.1:5432 (user postgres) when it answers; else a
throw-away embedded PostgreSQL (requirements-dev.txt), started for the run and deleted after."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from typing import Iterator, Optional

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/backupchecks_bench"


def _local_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def bench_server(given: Optional[str]) -> Iterator[str]:
    """Yields the URL of the bench database (not created yet: the benchmark recreates it)."""
    if given:
        if given.startswith("postgresql://"):
            given = "postgresql+psycopg://" + given[len("postgresql://"):]
        yield given
        return
    if _local_answers():
        yield LOCAL_URL
        return
    from sqlalchemy.engine import make_url

    from backend.app import embedded_pg

    folder = tempfile.mkdtemp(prefix="backupchecks-bench-pg-")
    try:
        server = embedded_pg.start(os.path.join(folder, "pgdata"), database=None, throwaway=True)
        print(f"database: embedded PostgreSQL {server.version}, throw-away (nothing answers on 127.0.0.1:5432)",
              flush=True)
        try:
            yield make_url(server.url).set(database="backupchecks_bench").render_as_string(hide_password=False)
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
