"""The Makefile targets the README promises: `make clean` keeps the local data, `make clean-data`
deletes it only after a "y" typed on a terminal, and the command-line targets run as written."""
from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "tests/parsers/samples/acronis_backup_did_not_start.eml"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def checkout(tmp_path):
    """A copy of the Makefile with a virtualenv, caches and local data beside it."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for folder in (".venv/bin", ".pytest_cache", "instance"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "instance" / "pgdata").mkdir()
    (tmp_path / "instance" / "pgdata" / "PG_VERSION").write_bytes(b"local data")
    return tmp_path


def make(cwd, *args, stdin=subprocess.DEVNULL):
    env = {k: v for k, v in os.environ.items() if k not in ("APP_INSTANCE_PATH", "MAKEFLAGS")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=120)


def make_on_terminal(cwd, answer: str, *args) -> tuple[int, str]:
    """Run make on a pseudo-terminal and type ``answer`` at its question."""
    env = {k: v for k, v in os.environ.items() if k not in ("APP_INSTANCE_PATH", "MAKEFLAGS")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: make, with the terminal as stdin/stdout
        os.chdir(cwd)
        os.execvpe("make", ["make", "--no-print-directory", *args], env)
    output, answered = b"", False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"[y/N]" in output:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_make_clean_keeps_the_local_data(checkout):
    result = make(checkout, "clean")

    assert result.returncode == 0, result.stderr
    assert not (checkout / ".venv").exists() and not (checkout / ".pytest_cache").exists()
    assert (checkout / "instance" / "pgdata" / "PG_VERSION").read_bytes() == b"local data"


def test_make_clean_data_refuses_without_a_terminal(checkout):
    result = make(checkout, "clean-data", stdin=subprocess.DEVNULL)

    assert result.returncode != 0
    assert "there is no terminal to ask on. Nothing was deleted." in result.stderr
    assert (checkout / "instance" / "pgdata" / "PG_VERSION").exists()


@pytest.mark.parametrize("answer", ["", "n", "no", "yes please"])
def test_make_clean_data_keeps_the_data_unless_told_yes(checkout, answer):
    status, output = make_on_terminal(checkout, answer, "clean-data")

    assert status == 0 and "This cannot be undone. [y/N]" in output and "Nothing was deleted." in output
    assert (checkout / "instance" / "pgdata" / "PG_VERSION").exists()


@pytest.mark.parametrize("answer", ["y", "YES"])
def test_make_clean_data_deletes_the_data_after_yes(checkout, answer):
    status, output = make_on_terminal(checkout, answer, "clean-data")

    assert status == 0 and "Deleted instance/." in output
    assert not (checkout / "instance").exists() and (checkout / ".venv").exists()


def test_make_clean_data_refuses_while_the_embedded_postgresql_runs(checkout):
    running = subprocess.Popen(["sleep", "60"])  # stands in for the server named in postmaster.pid
    try:
        (checkout / "instance" / "pgdata" / "postmaster.pid").write_text(f"{running.pid}\n{checkout}/instance/pgdata\n")
        status, output = make_on_terminal(checkout, "y", "clean-data")
    finally:
        running.kill()
        running.wait()

    assert status != 0 and "The embedded PostgreSQL still runs" in output and "Nothing was deleted." in output
    assert (checkout / "instance" / "pgdata" / "PG_VERSION").exists()


def test_make_clean_data_with_nothing_to_delete(checkout):
    shutil.rmtree(checkout / "instance")

    result = make(checkout, "clean-data")

    assert result.returncode == 0 and "instance/ does not exist; nothing to delete." in result.stdout


# -- the command-line targets, with this interpreter's virtualenv (never reinstalled) ---------------

def make_cli(*args):
    venv = sys.prefix
    return make(REPO, "-o", f"{venv}/.installed", f"VENV={venv}", *args)


def test_make_parse_prints_one_json_object_per_file():
    result = make_cli("parse", f"FILES={SAMPLE}")

    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line)["file"] == SAMPLE and json.loads(line)["software"] == "Acronis Cyber Protect"


@pytest.mark.parametrize("target,usage", [
    ("create-user", 'Usage: make create-user NAME=alice ROLES="admin operator"'),
    ("import-eml", 'Usage: make import-eml FILES="a.eml b.eml"'),
    ("parse", 'Usage: make parse FILES="a.eml b.eml"'),
])
def test_make_cli_targets_explain_missing_arguments(target, usage):
    result = make_cli(target)

    assert result.returncode != 0 and usage in result.stderr


def test_make_check_parsers_without_the_shared_corpus_checks_the_repository_samples():
    result = make_cli("check-parsers", "SHARED_SAMPLES=/nonexistent/shared/samples/emails")

    assert result.returncode == 0, result.stdout + result.stderr
    assert ("Skipping the shared corpus: /nonexistent/shared/samples/emails does not exist beside this clone"
            in result.stdout)
    assert "--check tests/samples/emails" in result.stdout and "--check tests/parsers/samples" in result.stdout
