"""deploy/backupchecks-stack.yml and deploy/.env.example: parsed with PyYAML
and checked against what the deployment promises (docs/operations.md)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = REPO_ROOT / "deploy" / "backupchecks-stack.yml"
ENV_EXAMPLE = REPO_ROOT / "deploy" / ".env.example"
CONFIG_DOC = REPO_ROOT / "docs" / "configuration.md"
PACKAGE = REPO_ROOT / "containers" / "backupchecks" / "src" / "backend" / "app"
# The environment names operators, the stack and the image rely on (each documented in
# docs/configuration.md). REQUESTS_CA_BUNDLE is one too, but read by requests itself.
ARCHITECTURE_ENVIRONMENT = {
    "APP_SECRET_KEY", "APP_ENV", "APP_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DB_HOST",
    "DB_PORT", "DATABASE_URL", "GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET", "GRAPH_MAILBOX",
    "GRAPH_INCOMING_FOLDER", "GRAPH_PROCESSED_FOLDER", "GRAPH_AUTHORITY_HOST", "GRAPH_API_BASE",
}

REQUIRED_SECRETS = {"APP_SECRET_KEY", "POSTGRES_PASSWORD"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET")
# Set inside the image (Dockerfile ENV) and documented in docs/configuration.md,
# not something an operator sets in deploy/.env.
IMAGE_INTERNAL = {"APP_VERSION_FILE", "APP_INSTANCE_PATH", "FLASK_APP", "PYTHONPATH",
                  "PROMETHEUS_MULTIPROC_DIR"}  # set by gunicorn.conf.py when METRICS_TOKEN is
# Read only when running from source (`make run`), documented in docs/configuration.md and the
# README; the image's gunicorn binds 0.0.0.0:APP_PORT itself, so the stack has no use for it.
SOURCE_ONLY = {"APP_HOST"}

# Compose interpolation: $$ (escape), $NAME, ${NAME}, ${NAME:-d}, ${NAME-d},
# ${NAME:?e}, ${NAME?e}, ${NAME:+a}, ${NAME+a}
TOKEN = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class MissingRequired(Exception):
    pass


def references(text: str):
    """(name, operator, argument) for every interpolation in text ($$ skipped)."""
    for m in TOKEN.finditer(text):
        if m.group(1):
            continue
        if m.group(5):
            yield m.group(5), None, None
        else:
            yield m.group(2), m.group(3), m.group(4)


def interpolate(text: str, env: dict) -> str:
    def sub(m):
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        value = env.get(name)
        unset_or_empty = value is None or value == ""
        if op == ":-":
            return arg if unset_or_empty else value
        if op == "-":
            return arg if value is None else value
        if op == ":?":
            if unset_or_empty:
                raise MissingRequired(f"{name}: {arg}")
            return value
        if op == "?":
            if value is None:
                raise MissingRequired(f"{name}: {arg}")
            return value
        if op == ":+":
            return "" if unset_or_empty else arg
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return TOKEN.sub(sub, text)


def env_example() -> dict:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"not NAME=value: {line!r}"
        name, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert name not in values, f"{name} twice in .env.example"
        values[name] = value
    return values


def filled_env(**overrides) -> dict:
    """.env.example with the required secrets filled in (as an operator would)."""
    env = env_example()
    env.update(APP_SECRET_KEY="0123456789abcdef0123456789abcdef", POSTGRES_PASSWORD="a-test-password-only")
    env.update(overrides)
    return env


def _map_strings(node, fn):
    if isinstance(node, dict):
        return {key: _map_strings(value, fn) for key, value in node.items()}
    if isinstance(node, list):
        return [_map_strings(value, fn) for value in node]
    if isinstance(node, str):
        return fn(node)
    return node


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def stack(env: dict) -> dict:
    """The stack as compose sees it: parsed, then every value interpolated (comments are not)."""
    return _map_strings(raw_stack(), lambda value: interpolate(value, env))


def stack_refs():
    for value in _strings(raw_stack()):
        yield from references(value)


def raw_stack() -> dict:
    return yaml.safe_load(STACK.read_text())


def published(service: dict) -> list[tuple[str, int, int]]:
    out = []
    for port in service.get("ports", []):
        parts = str(port).split(":")
        assert len(parts) == 3, f"publish as HOST_IP:HOST_PORT:CONTAINER_PORT, got {port!r}"
        out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


# -- shape ----------------------------------------------------------------------


def test_four_services_and_the_optional_smtp_receiver():
    services = stack(filled_env())["services"]
    assert set(services) == {"backupchecks", "worker", "postgres", "adminer", "smtpd"}
    assert [name for name, service in services.items() if service.get("profiles")] == ["smtpd"]


def test_the_smtp_receiver_runs_the_same_image_only_with_its_profile():
    services = stack(filled_env(SMTP_LISTEN="0.0.0.0:2525", SMTP_ALLOWED_DOMAINS="backups.example.com"))["services"]
    smtpd = services["smtpd"]
    assert smtpd["profiles"] == ["smtp"]
    assert smtpd["image"] == services["worker"]["image"]
    assert smtpd["command"] == ["flask", "--app", "backend.app", "smtpd"]
    assert smtpd["init"] is True  # SIGTERM reaches it: it finishes the message being stored
    assert published(smtpd) == [("0.0.0.0", 25, 2525)]
    assert smtpd["environment"]["SMTP_LISTEN"] == "0.0.0.0:2525"
    assert smtpd["environment"]["SMTP_ALLOWED_DOMAINS"] == "backups.example.com"
    assert smtpd["environment"]["POSTGRES_PASSWORD"] == services["worker"]["environment"]["POSTGRES_PASSWORD"]
    moved = stack(filled_env(SMTP_BIND="127.0.0.1", SMTP_PUBLISH="2525"))["services"]["smtpd"]
    assert published(moved) == [("127.0.0.1", 2525, 2525)]


@pytest.mark.parametrize("env", ["example", "defaults"])
def test_published_ports(env):
    # The same with .env.example and with nothing but the two secrets set.
    values = filled_env() if env == "example" else {
        "APP_SECRET_KEY": "0123456789abcdef0123456789abcdef", "POSTGRES_PASSWORD": "a-test-password-only"}
    services = stack(values)["services"]
    assert published(services["backupchecks"]) == [("0.0.0.0", 8080, 8080)]
    assert services["backupchecks"]["environment"]["APP_PORT"] == "8080"
    assert published(services["adminer"]) == [("127.0.0.1", 8081, 8080)]
    assert "ports" not in services["postgres"], "PostgreSQL must not be published"
    assert "ports" not in services["worker"], "the worker serves nothing"


def test_app_port_moves_the_listener_and_the_mapping_together():
    services = stack(filled_env(APP_PORT="9000", BACKUPCHECKS_PORT="80"))["services"]
    assert published(services["backupchecks"]) == [("0.0.0.0", 80, 9000)]
    assert services["backupchecks"]["environment"]["APP_PORT"] == "9000"


def test_postgres_data_volume_and_pinned_major():
    pg = stack(filled_env())["services"]["postgres"]
    assert "/docker/appdata/backupchecks/backupchecks-postgres:/var/lib/postgresql/data" in pg["volumes"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9.]+)?", pg["image"]), pg["image"]
    # the default also holds without POSTGRES_DATA_DIR in .env
    env = filled_env()
    del env["POSTGRES_DATA_DIR"]
    assert "/docker/appdata/backupchecks/backupchecks-postgres:/var/lib/postgresql/data" in \
        stack(env)["services"]["postgres"]["volumes"]


@pytest.mark.parametrize("name", ["backupchecks", "worker"])
def test_app_image_comes_from_variables_with_a_default(name):
    env = filled_env()
    del env["BACKUPCHECKS_IMAGE"], env["BACKUPCHECKS_TAG"]
    assert stack(env)["services"][name]["image"] == "backupchecks/backupchecks:latest"
    custom = stack(filled_env(BACKUPCHECKS_IMAGE="ghcr.io/acme/backupchecks", BACKUPCHECKS_TAG="0.1.0"))
    assert custom["services"][name]["image"] == "ghcr.io/acme/backupchecks:0.1.0"


@pytest.mark.parametrize("name", ["backupchecks", "worker", "postgres", "adminer", "smtpd"])
def test_every_service_has_a_healthcheck_and_a_restart_policy(name):
    service = stack(filled_env())["services"][name]
    check = service.get("healthcheck")
    assert check and check.get("test"), f"{name} has no healthcheck"
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert not check.get("disable")
    for key in ("interval", "timeout", "retries"):
        assert key in check, f"{name} healthcheck lacks {key}"
    assert service.get("restart") in ("unless-stopped", "always")


def test_app_healthcheck_calls_health_on_the_app_port():
    test = " ".join(stack(filled_env())["services"]["backupchecks"]["healthcheck"]["test"])
    assert "/health" in test and "APP_PORT" in test


def test_postgres_healthcheck_uses_the_container_env_not_compose_interpolation():
    raw = raw_stack()["services"]["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(raw)
    assert "$${POSTGRES_USER}" in " ".join(raw)


@pytest.mark.parametrize("name", ["backupchecks", "worker", "adminer", "smtpd"])
def test_depends_on_a_healthy_postgres(name):
    depends = stack(filled_env())["services"][name]["depends_on"]
    assert depends == {"postgres": {"condition": "service_healthy"}}


def test_graceful_stop_period_outlasts_gunicorn_graceful_timeout():
    app = stack(filled_env())["services"]["backupchecks"]
    assert app["stop_grace_period"].endswith("s")
    assert int(app["stop_grace_period"][:-1]) > int(app["environment"]["GUNICORN_GRACEFUL_TIMEOUT"])


# -- the web service and the worker ---------------------------------------------------


def test_the_web_service_leaves_the_background_loops_to_the_worker_by_default():
    assert stack(filled_env())["services"]["backupchecks"]["environment"]["BACKGROUND_JOBS"] == "false"
    assert stack(filled_env(BACKGROUND_JOBS="true"))["services"]["backupchecks"]["environment"][
        "BACKGROUND_JOBS"] == "true"


def test_the_worker_runs_the_loops_in_the_foreground_with_a_heartbeat_health_check():
    worker = stack(filled_env())["services"]["worker"]
    assert worker["command"] == ["python", "-m", "backend.app.worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "backend.app.worker", "--check"]
    assert worker["init"] is True  # SIGTERM reaches the worker, which finishes its step
    assert worker["restart"] == "unless-stopped"
    assert (PACKAGE / "worker.py").is_file()
    # BACKGROUND_JOBS is for the web service: the worker runs its loops whatever it says
    assert "BACKGROUND_JOBS" not in worker["environment"]
    assert not [name for name in worker["environment"] if name.startswith("GUNICORN_")]


def test_the_worker_reads_the_same_database_secrets_and_mailbox_as_the_web_service():
    services = stack(filled_env(DATABASE_URL="postgresql://u:p@db.example:5432/bc", GRAPH_MAILBOX="m@x.example",
                                APP_ENCRYPTION_KEY="k"))["services"]
    web, worker = services["backupchecks"]["environment"], services["worker"]["environment"]
    for name in ("APP_ENV", "APP_SECRET_KEY", "APP_ENCRYPTION_KEY", "POSTGRES_DB", "POSTGRES_USER",
                 "POSTGRES_PASSWORD", "DB_HOST", "DB_PORT", "DATABASE_URL", "RUN_MIGRATIONS",
                 *[var for var in env_example() if var.startswith("GRAPH_")]):
        assert name in worker and worker[name] == web[name], name
    assert worker["DATABASE_URL"] == "postgresql://u:p@db.example:5432/bc"


def test_the_web_service_can_be_scaled():
    """`--scale backupchecks=3` needs replicas Compose may name itself and a published port
    that a range can replace (docs/operations.md, "Scaling")."""
    raw = raw_stack()["services"]
    for name in ("backupchecks", "worker"):
        assert "container_name" not in raw[name], f"{name}: a fixed container name prevents --scale"
        assert "hostname" not in raw[name], f"{name}: each replica's health is told apart by its host name"
    services = stack(filled_env(BACKUPCHECKS_BIND="127.0.0.1", BACKUPCHECKS_PORT="8090-8092"))["services"]
    assert services["backupchecks"]["ports"] == ["127.0.0.1:8090-8092:8080"]


# -- variables and secrets --------------------------------------------------------


def test_every_variable_the_stack_uses_is_documented_in_env_example():
    used = {name for name, _, _ in stack_refs()}
    missing = used - set(env_example())
    assert not missing, f"not in deploy/.env.example: {sorted(missing)}"


def test_app_environment_passes_every_env_example_app_variable():
    """Everything in .env.example reaches some container (or is a stack-level knob)."""
    used = {name for name, _, _ in stack_refs()}
    unused = set(env_example()) - used
    assert not unused, f"documented in .env.example but never used by the stack: {sorted(unused)}"


def test_secrets_use_required_syntax_and_have_no_default():
    refs = list(stack_refs())
    for secret in REQUIRED_SECRETS:
        ops = [(op, arg) for name, op, arg in refs if name == secret]
        assert ops, f"{secret} is not used"
        for op, arg in ops:
            assert op == ":?", f"{secret} must use ${{{secret}:?message}}, got op {op!r}"
            assert arg, f"{secret} needs a message saying what to set"
    for name, op, arg in refs:
        if SECRET_NAME.search(name) and name not in REQUIRED_SECRETS:
            # optional secrets (GRAPH_CLIENT_SECRET) default to nothing
            assert op in (":?", "?") or (op in (":-", "-") and arg == ""), \
                f"{name} has a default value {arg!r}"


@pytest.mark.parametrize("secret", sorted(REQUIRED_SECRETS))
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_stack_refuses_to_render_without_a_secret(secret, how):
    env = filled_env()
    if how == "missing":
        del env[secret]
    else:
        env[secret] = ""
    with pytest.raises(MissingRequired, match=secret):
        stack(env)


def test_env_example_alone_does_not_start_the_stack():
    """The placeholders are not working secrets: compose refuses .env.example as is."""
    with pytest.raises(MissingRequired):
        stack(env_example())


def test_no_literal_password_anywhere_in_the_stack():
    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                if SECRET_NAME.search(str(key)):
                    assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", value), \
                        f"{path}/{key} is not a bare variable reference: {value!r}"
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, str):
            assert not re.search(r"(?i)password\s*=\s*\w", node), f"{path}: {node!r}"

    walk(raw_stack())
    text = STACK.read_text() + ENV_EXAMPLE.read_text()
    assert not re.search(r"(?i)change[-_ ]?me", text)


def test_env_example_secrets_are_empty_placeholders():
    env = env_example()
    for name, value in env.items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} must be empty in .env.example, got {value!r}"


def test_every_env_example_variable_has_a_comment():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            # a comment directly above, or above a run of related variables
            j = i - 1
            while j >= 0 and lines[j] and not lines[j].startswith("#"):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"no comment for {line!r}"


def test_architecture_environment_variables_are_in_env_example():
    missing = ARCHITECTURE_ENVIRONMENT - set(env_example())
    assert not missing, f"relied on but not in deploy/.env.example: {sorted(missing)}"


def test_variables_the_app_reads_are_in_env_example():
    if not PACKAGE.is_dir():
        pytest.skip("application package not present")
    pattern = re.compile(
        r"""(?:env_(?:str|int|bool)\(\s*\w+\s*,\s*|os\.environ\.get\(\s*|os\.getenv\(\s*|os\.environ\[\s*)["']([A-Z][A-Z0-9_]+)["']"""
    )
    read = set()
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        read |= set(pattern.findall(path.read_text(errors="replace")))
    missing = read - set(env_example()) - IMAGE_INTERNAL - SOURCE_ONLY
    assert not missing, f"read by the app but not in deploy/.env.example: {sorted(missing)}"


def test_configuration_doc_lists_every_variable():
    if not CONFIG_DOC.is_file():
        pytest.skip("docs/configuration.md not written yet")
    doc = CONFIG_DOC.read_text()
    missing = [name for name in [*env_example(), *sorted(IMAGE_INTERNAL | SOURCE_ONLY)] if f"`{name}`" not in doc]
    assert not missing, f"not in docs/configuration.md: {missing}"


# -- docker compose itself (when the CLI has the plugin) ---------------------------


def _compose_cli():
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    return None


def test_docker_compose_config_accepts_the_stack(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("docker compose is not available")
    text = STACK.read_text()
    if cli[0].endswith("docker-compose"):
        # Compose v1 (Debian's docker-compose 1.29) predates the top-level
        # `name:` key of the Compose Specification; validate the rest.
        text = re.sub(r"^name: .*\n", "", text, flags=re.M)
    (tmp_path / "backupchecks-stack.yml").write_text(text)
    env_file = "\n".join(f"{k}={v}" for k, v in filled_env().items())
    (tmp_path / ".env").write_text(env_file + "\n")
    done = subprocess.run([*cli, "-f", str(tmp_path / "backupchecks-stack.yml"), "config", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # and without the secrets it refuses
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in env_example().items()) + "\n")
    done = subprocess.run([*cli, "-f", str(tmp_path / "backupchecks-stack.yml"), "config", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "APP_SECRET_KEY" in done.stderr or "POSTGRES_PASSWORD" in done.stderr
