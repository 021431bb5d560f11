"""A fresh PostgreSQL database of its own for the tests that start real app processes."""
from __future__ import annotations

import os
from typing import Iterator


def admin_conninfo() -> str:
    """libpq conninfo for the `postgres` database of the run's server (TEST_DATABASE_URL, which
    tests/conftest.py sets: the given server, the local one or the embedded one)."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["TEST_DATABASE_URL"])
    return url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def fresh_database(db_name: str) -> Iterator[str]:
    """Create ``db_name`` empty, yield its URL, drop it afterwards (use with ``yield from``)."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = admin_conninfo()
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    yield make_url(conninfo).set(database=db_name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
