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


@pytest.mark.parametrize("env,reason", [
    ({"APP_ENV": "production", "DATABASE_URL": "postgresql://x@h/db"}, "APP_SECRET_KEY is missing"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "change-me", "DATABASE_URL": "postgresql://x@h/db"}, "example value"),
    ({"APP_ENV": "production", "APP_SECRET_KEY": "a" * 40}, "needs PostgreSQL"),
])
def test_production_refuses_unsafe_config(tmp_path, env, reason):
    with pytest.raises(ConfigError, match=reason):
        check_production(load_config(env, str(tmp_path)))


def test_production_start_fails_with_one_line_reason(tmp_path):
    env = {"APP_ENV": "production", "PYTHONPATH": str(SRC), "APP_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-c", "from backend.app import create_app; create_app()"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Backupchecks cannot start: APP_SECRET_KEY is missing")
