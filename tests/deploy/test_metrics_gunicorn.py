"""/metrics under the image's gunicorn configuration with two workers: one scrape shows the
requests every worker served (prometheus_client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR set
up by gunicorn.conf.py), whichever worker answers it."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.pg import fresh_database
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
GUNICORN_CONF = REPO_ROOT / "containers" / "backupchecks" / "gunicorn.conf.py"
DB_NAME = "backupchecks_metrics_gunicorn"
TOKEN = secrets.token_hex(16)

pytestmark = pytest.mark.slow
pytest.importorskip("gunicorn")


@pytest.fixture
def database():
    yield from fresh_database(DB_NAME)


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _health_count(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        if family.name == "backupchecks_http_request_duration_seconds":
            return sum(s.value for s in family.samples if s.name.endswith("_count")
                       and s.labels.get("endpoint") == "main.health" and s.labels.get("status") == "2xx")
    return 0.0


def test_a_scrape_adds_up_the_requests_of_both_workers(database, tmp_path):
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "histogram_999999.db").write_bytes(b"left over from the last start")  # emptied at start
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "GRAPH_", "POSTGRES_", "DB_", "PROMETHEUS_")) and k not in (
               "DATABASE_URL", "PYTHONPATH", "APP_PORT", "BACKGROUND_JOBS", "RUN_MIGRATIONS")}
    env.update(PYTHONPATH=str(SRC), APP_ENV="production", APP_SECRET_KEY=secrets.token_hex(32),
               DATABASE_URL=database, APP_PORT=str(port), APP_INSTANCE_PATH=str(tmp_path / "instance"),
               BACKGROUND_JOBS="false", GUNICORN_WORKERS="2", GUNICORN_THREADS="2", GUNICORN_KEEPALIVE="0",
               GUNICORN_GRACEFUL_TIMEOUT="10", HOME=str(tmp_path), METRICS_TOKEN=TOKEN,
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                                 "backend.app:create_app()"], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    output = log_path.read_text
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while output().count("database schema is up to date") < 2:  # both workers have booted
            assert proc.poll() is None and time.monotonic() < deadline, output()
            time.sleep(0.2)
        assert _get(f"{base}/metrics")[0] == 401
        assert _get(f"{base}/metrics", "wrong")[0] == 401

        # Requests on fresh connections, in parallel, until both workers have served some.
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while len(list(metrics_dir.glob("histogram_*.db"))) < 2:
                assert sent < 2000, f"one worker served every request: {list(metrics_dir.iterdir())}"
                statuses = list(pool.map(lambda _: _get(f"{base}/health")[0], range(40)))
                assert statuses == [200] * 40
                sent += 40
        assert not (metrics_dir / "histogram_999999.db").exists()

        # Whichever worker answers the scrape, it counts all of them.
        for _ in range(6):
            status, text = _get(f"{base}/metrics", TOKEN)
            assert status == 200, text
            assert _health_count(text) == sent
            assert "backupchecks_database_up 1.0" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output(), output()
    assert TOKEN not in output()


def _load_conf(monkeypatch, **env) -> dict:
    import runpy

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored (unset) after the test
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


@pytest.mark.parametrize("token", [None, " "])
def test_without_a_metrics_token_gunicorn_sets_up_no_metrics_directory(monkeypatch, token):
    _load_conf(monkeypatch, **({"METRICS_TOKEN": token} if token is not None else {}))
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_with_a_metrics_token_each_start_gets_a_fresh_directory_removed_on_exit(monkeypatch):
    conf = _load_conf(monkeypatch, METRICS_TOKEN="t" * 32)
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert path.is_dir() and path.name.startswith(conf["METRICS_DIR_PREFIX"]) and not any(path.iterdir())
    (path / "counter_1.db").write_bytes(b"x")
    conf["on_starting"](None)
    assert not any(path.iterdir())
    conf["on_exit"](None)
    assert not path.exists()
