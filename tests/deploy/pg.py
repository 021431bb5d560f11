"""A fresh PostgreSQL database of its own for the tests that start real app processes."""
from __future__ import annotations

import os
from typing import Iterator

import pytest

IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def admin_conninfo() -> str:
    """libpq conninfo for the server's `postgres` database (TEST_DATABASE_URL's server, else local)."""
    from sqlalchemy.engine import make_url

    base = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    if not base.startswith("postgres"):
        if IS_CI:
            pytest.fail("CI=true: TEST_DATABASE_URL must be PostgreSQL for the tests that start app processes")
        pytest.skip("TEST_DATABASE_URL is not PostgreSQL")
    url = make_url(base.replace("postgresql+psycopg://", "postgresql://"))
    return url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def fresh_database(db_name: str) -> Iterator[str]:
    """Create ``db_name`` empty, yield its URL, drop it afterwards (use with ``yield from``).
    Skips without PostgreSQL, fails under CI=true."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = admin_conninfo()
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if IS_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    yield make_url(conninfo).set(database=db_name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
