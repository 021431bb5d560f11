"""docs/api-examples.sh works against a running instance: it lists the customers, last night's
failures and marks a run reviewed; its errors say what went wrong; shellcheck finds nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.app.extensions import db
from backend.app.models import JobRun

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "api-examples.sh"
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if IS_CI:
            pytest.fail(f"{tool} missing: the API examples need it in CI")
        pytest.skip(f"{tool} not installed")


def run_script(base_url: str, token: str | None, since: str, *args: str) -> subprocess.CompletedProcess:
    _need("curl")
    _need("jq")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUPCHECKS_")}
    env.update(BACKUPCHECKS_URL=base_url, BACKUPCHECKS_SINCE=since)
    if token is not None:
        env["BACKUPCHECKS_TOKEN"] = token
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_shellcheck_finds_nothing():
    _need("shellcheck")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_examples_list_customers_and_failures_and_mark_a_run_reviewed(api, personas, world, live_server):
    token = api.token(personas["operator"], name="examples")
    result = run_script(live_server, token, world.yesterday)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"  {world.a.id}\tNorthwind Demo\t1 job\n" in out and f"  {world.b.id}\tContoso Hidden Ltd\t1 job\n" in out
    assert f"Failed runs since {world.yesterday}:" in out
    assert f"run {world.failed_a.id}\tNorthwind Demo / Daily VM Backup\t2026-06-09T20:00:00Z\tvm01: disk full" in out
    assert f"run {world.failed_b.id}\tContoso Hidden Ltd / Contoso File Backup" in out
    assert f"run {world.ok_a.id}\t" not in out  # a success, and the night before
    marked = [line for line in out.splitlines() if line.startswith("Marked run ")]
    assert len(marked) == 1
    run_id = int(marked[0].split()[2])
    db.session.expire_all()
    assert db.session.get(JobRun, run_id).reviewed_at is not None
    again = run_script(live_server, token, world.yesterday, str(run_id))
    assert again.returncode == 0 and f"Run {run_id} was already reviewed." in again.stdout


def test_the_examples_say_why_they_stop(api, personas, world, live_server):
    read_only = api.token(personas["operator"], name="read only", read_only=True)
    result = run_script(live_server, read_only, world.yesterday)
    assert result.returncode == 1
    assert "Customers:" in result.stdout
    assert "Error 403 on POST /runs/" in result.stderr and "read_only_token" in result.stderr
    result = run_script(live_server, None, world.yesterday)
    assert result.returncode == 2 and "Set BACKUPCHECKS_TOKEN" in result.stderr
    result = run_script(live_server, "bc_wrong", world.yesterday)
    assert result.returncode == 1 and "Error 401 on GET /customers" in result.stderr
    assert "invalid_token" in result.stderr
