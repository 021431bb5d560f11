"""Configuration from the environment; production refuses unsafe settings with one line."""
import subprocess
import sys
from pathlib import Path

import pytest

from backend.app.config import ConfigError, check_production, database_url, load_config

SRC = Path(__file__).resolve().parents[1] / "containers/backupchecks/src"


def test_no_database_settings_means_sqlite_in_the_instance_folder(tmp_path):
    assert database_url({}, str(tmp_path)) == f"sqlite:///{tmp_path}/backupchecks.sqlite3"


def test_postgres_variables_build_the_url(tmp_path):
    url = database_url({"POSTGRES_DB": "bc", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p@ss w", "DB_HOST": "db",
                        "DB_PORT": "5433"}, str(tmp_path))
    assert url == "postgresql+psycopg://u:p%40ss+w@db:5433/bc"


def test_database_url_wins(tmp_path):
    url = database_url({"DATABASE_URL": "postgres://a@h/x", "POSTGRES_DB": "ignored"}, str(tmp_path))
    assert url == "postgresql+psycopg://a@h/x"


def test_a_non_numeric_port_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="APP_PORT must be a whole number"):
        load_config({"APP_PORT": "eighty"}, str(tmp_path))


PG = "postgresql://x@h/db"
RANDOM_KEY = "9f2c4e7a1b3d5f60a8c2e4b6d8f01357"  # 32 characters, as random as `openssl rand -hex 16`


@pytest.mark.parametrize("env,reason", [
    ({"APP_ENV": "production", "DATABASE_URL": PG}, "APP_SECRET_KEY is missing"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "change-me", "DATABASE_URL": PG}, "example value"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "change-me-to-something-long-and-random", "DATABASE_URL": PG},
     "example value"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "dev-only-not-for-production", "DATABASE_URL": PG}, "example value"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "a" * 16, "DATABASE_URL": PG}, "too short; use at least 32"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY[:31], "DATABASE_URL": PG}, "too short; use at least 32"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "a" * 64, "DATABASE_URL": PG}, "not random"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "ab" * 20, "DATABASE_URL": PG}, "not random"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY}, "needs PostgreSQL"),
])
def test_production_refuses_unsafe_config(tmp_path, env, reason):
    with pytest.raises(ConfigError, match=reason):
        check_production(load_config(env, str(tmp_path)))


def test_production_accepts_a_random_key_of_32_characters(tmp_path):
    check_production(load_config({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY, "DATABASE_URL": PG},
                                 str(tmp_path)))


@pytest.mark.parametrize("key,reason", [
    (None, "APP_SECRET_KEY is missing"),
    ("a" * 16, "APP_SECRET_KEY is too short; use at least 32 random characters"),
    ("a" * 64, "APP_SECRET_KEY is not random"),
])
def test_production_start_fails_with_one_line_reason(tmp_path, key, reason):
    env = {"APP_ENV": "production", "PYTHONPATH": str(SRC), "APP_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    if key:
        env["APP_SECRET_KEY"] = key
    p = subprocess.run([sys.executable, "-c", "from backend.app import create_app; create_app()"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Backupchecks cannot start: {reason}")
