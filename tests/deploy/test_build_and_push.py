"""build-and-push.sh: --dry-run output for every option, and real runs with
stand-in git/docker programs first on PATH, in a throwaway git repository."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "build-and-push.sh"
REAL_GIT = shutil.which("git")
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(not (REAL_GIT and BASH), reason="needs git and bash")

SERVICES = ("backupchecks", "worker")  # two, to prove containers/*/Dockerfile discovery
IMAGE = "backupchecks/{service}"


def _git_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DOCKER_"))}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Release Test",
        GIT_AUTHOR_EMAIL="release-test@example.invalid",
        GIT_COMMITTER_NAME="Release Test",
        GIT_COMMITTER_EMAIL="release-test@example.invalid",
        LC_ALL="C",
    )
    env.update(extra or {})
    return env


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [REAL_GIT, *args], cwd=repo, env=_git_env(), check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed copy of the script, version.txt and two Dockerfile stubs,
    with a bare repository as its 'origin'."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy2(SCRIPT, work / "build-and-push.sh")
    (work / "version.txt").write_text("0.1.0\n")
    for service in SERVICES:
        (work / "containers" / service).mkdir(parents=True)
        (work / "containers" / service / "Dockerfile").write_text("FROM scratch\n")
    (work / "containers" / "not-a-service").mkdir()  # no Dockerfile: ignored
    (work / "containers" / "not-a-service" / "README").write_text("x\n")
    origin = tmp_path / "origin.git"
    subprocess.run([REAL_GIT, "init", "-q", "--bare", str(origin)], env=_git_env(), check=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "initial")
    return work


def run_script(repo: Path, *args: str, env: dict | None = None, stdin=subprocess.DEVNULL):
    return subprocess.run(
        [BASH, str(repo / "build-and-push.sh"), *args],
        cwd=repo,
        env=_git_env(env),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def build_cmd(service: str, tags: list[str], label: str, image: str = IMAGE) -> str:
    name = image.format(service=service)
    tag_args = " ".join(f"-t {name}:{t}" for t in tags)
    return (
        f"docker build --pull -f containers/{service}/Dockerfile {tag_args} "
        f"--label org.opencontainers.image.version={label} "
        f"--label org.opencontainers.image.title={service} ."
    )


def state(repo: Path) -> tuple[str, str, str, str]:
    return (
        (repo / "version.txt").read_text(),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "tag", "--list"),
        git(repo, "status", "--porcelain"),
    )


# -- --dry-run ------------------------------------------------------------------


def test_dry_run_t_builds_and_pushes_dev_only_without_git(repo):
    before = state(repo)
    done = run_script(repo, "--dry-run", "t")
    assert done.returncode == 0, done.stderr
    expected = []
    for service in SERVICES:
        expected += [
            build_cmd(service, ["dev"], "0.1.0-dev"),
            f"docker push backupchecks/{service}:dev",
        ]
    assert commands(done.stdout) == expected
    assert not any(cmd.startswith("git") for cmd in commands(done.stdout))
    assert ":latest" not in done.stdout and "0.1.1" not in done.stdout
    assert state(repo) == before  # nothing written, committed or tagged


@pytest.mark.parametrize(
    "option, new",
    [("1", "0.1.1"), ("2", "0.2.0"), ("3", "1.0.0")],
    ids=["patch", "minor", "major"],
)
def test_dry_run_release_prints_commit_tag_push_then_builds(repo, option, new):
    before = state(repo)
    done = run_script(repo, "--dry-run", option)
    assert done.returncode == 0, done.stderr
    assert f"0.1.0 -> {new}" in done.stdout
    expected = [
        "git add -- version.txt",
        f"git commit -m 'Release v{new}' -- version.txt",
        f"git tag -a v{new} -m 'Release v{new}'",
        "git push origin main",
        f"git push origin v{new}",
    ]
    for service in SERVICES:
        expected += [
            build_cmd(service, [new, "dev", "latest"], new),
            f"docker push backupchecks/{service}:{new}",
            f"docker push backupchecks/{service}:dev",
            f"docker push backupchecks/{service}:latest",
        ]
    assert commands(done.stdout) == expected
    assert state(repo) == before  # the bump is printed, not written


def test_dry_run_uses_registry_namespace_and_remote_from_env(repo):
    env = {"DOCKER_REGISTRY": "registry.example.com:5000", "DOCKER_NAMESPACE": "acme", "GIT_REMOTE": "upstream"}
    done = run_script(repo, "--dry-run", "1", env=env)
    assert done.returncode == 0, done.stderr
    cmds = commands(done.stdout)
    assert "git push upstream main" in cmds and "git push upstream v0.1.1" in cmds
    image = "registry.example.com:5000/acme/{service}"
    assert build_cmd("backupchecks", ["0.1.1", "dev", "latest"], "0.1.1", image) in cmds
    assert "docker push registry.example.com:5000/acme/worker:latest" in cmds


def test_option_may_come_before_dry_run(repo):
    done = run_script(repo, "t", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "docker push backupchecks/backupchecks:dev" in commands(done.stdout)


def test_dry_run_release_refuses_a_dirty_tree(repo):
    (repo / "containers" / "worker" / "Dockerfile").write_text("FROM scratch\n# edited\n")
    done = run_script(repo, "--dry-run", "1")
    assert done.returncode != 0
    assert "dirty" in done.stderr
    assert commands(done.stdout) == []


def test_no_option_without_a_terminal_is_an_error(repo):
    done = run_script(repo, "--dry-run")
    assert done.returncode != 0
    assert "stdin is not a terminal" in done.stderr
    assert commands(done.stdout) == []


@pytest.mark.parametrize("args", [["--dry-run", "4"], ["--dry-run", "--bogus"], ["1", "2"]])
def test_bad_arguments_are_refused(repo, args):
    before = state(repo)
    done = run_script(repo, *args)
    assert done.returncode != 0
    assert commands(done.stdout) == []
    assert state(repo) == before


def test_prompts_for_the_option_on_a_terminal(repo):
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        os.write(master, b"t\n")
        done = run_script(repo, "--dry-run", stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == 0, done.stderr
    assert "Option [1/2/3/t]" in done.stderr + done.stdout
    assert "docker push backupchecks/backupchecks:dev" in commands(done.stdout)


def test_help_exits_zero(repo):
    done = run_script(repo, "--help")
    assert done.returncode == 0
    assert "usage: build-and-push.sh [--dry-run] [1|2|3|t]" in done.stdout


# -- real runs with stand-in programs ------------------------------------------


@pytest.fixture
def standins(tmp_path: Path):
    """bin/ with a `docker` that logs its argv and succeeds (or fails when
    DOCKER_FAIL matches the subcommand), and a `git` that logs its argv and
    hands over to the real git (so commits, tags and pushes to the bare
    origin really happen and can be checked)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "commands.log"
    log.touch()
    (bindir / "docker").write_text(
        "#!/bin/sh\n"
        '(IFS="\t"; printf "docker\\t%s\\n" "$*") >> "$STANDIN_LOG"\n'
        'if [ -n "${DOCKER_FAIL:-}" ] && [ "$1" = "$DOCKER_FAIL" ]; then exit 1; fi\n'
        "exit 0\n"
    )
    (bindir / "git").write_text(
        "#!/bin/sh\n"
        '(IFS="\t"; printf "git\\t%s\\n" "$*") >> "$STANDIN_LOG"\n'
        f'exec "{REAL_GIT}" "$@"\n'
    )
    for prog in ("docker", "git"):
        path = bindir / prog
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def logged(program: str | None = None) -> list[list[str]]:
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
        return [row for row in rows if program is None or row[0] == program]

    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "STANDIN_LOG": str(log)}
    return env, logged


MUTATING_GIT = {"add", "commit", "tag", "push"}


def test_real_release_updates_version_commits_tags_pushes_and_builds(repo, standins):
    env, logged = standins
    done = run_script(repo, "2", env=env)
    assert done.returncode == 0, done.stderr

    assert (repo / "version.txt").read_text() == "0.2.0\n"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "-1", "--format=%s") == "Release v0.2.0"
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "version.txt"
    assert git(repo, "tag", "--list") == "v0.2.0"
    assert git(repo, "rev-parse", "v0.2.0^{commit}") == git(repo, "rev-parse", "HEAD")
    # branch and tag reached the remote
    origin = repo.parent / "origin.git"
    assert git(origin, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")
    assert git(origin, "tag", "--list") == "v0.2.0"

    git_calls = [row[1:] for row in logged("git") if row[1] in MUTATING_GIT]
    assert git_calls == [
        ["add", "--", "version.txt"],
        ["commit", "-m", "Release v0.2.0", "--", "version.txt"],
        ["tag", "-a", "v0.2.0", "-m", "Release v0.2.0"],
        ["push", "origin", "main"],
        ["push", "origin", "v0.2.0"],
    ]
    docker_calls = [row[1:] for row in logged("docker")]
    expected = []
    for service in SERVICES:
        name = f"backupchecks/{service}"
        expected += [
            ["build", "--pull", "-f", f"containers/{service}/Dockerfile",
             "-t", f"{name}:0.2.0", "-t", f"{name}:dev", "-t", f"{name}:latest",
             "--label", "org.opencontainers.image.version=0.2.0",
             "--label", f"org.opencontainers.image.title={service}", "."],
            ["push", f"{name}:0.2.0"],
            ["push", f"{name}:dev"],
            ["push", f"{name}:latest"],
        ]
    assert docker_calls == expected
    # git work is finished before the first docker command
    rows = logged()
    last_push = max(i for i, row in enumerate(rows) if row[:2] == ["git", "push"])
    first_docker = min(i for i, row in enumerate(rows) if row[0] == "docker")
    assert last_push < first_docker


def test_real_test_build_pushes_dev_only_and_leaves_git_alone(repo, standins):
    env, logged = standins
    before = state(repo)
    done = run_script(repo, "t", env=env)
    assert done.returncode == 0, done.stderr
    assert state(repo) == before
    assert (repo / "version.txt").read_text() == "0.1.0\n"
    assert not [row for row in logged("git") if row[1] in MUTATING_GIT]
    docker_calls = [row[1:] for row in logged("docker")]
    assert [c[0] for c in docker_calls] == ["build", "push"] * len(SERVICES)
    pushed = [c[1] for c in docker_calls if c[0] == "push"]
    assert pushed == [f"backupchecks/{s}:dev" for s in SERVICES]
    assert all(":latest" not in " ".join(c) for c in docker_calls)


@pytest.mark.parametrize("dirt", ["modified", "untracked"])
def test_real_release_refuses_a_dirty_tree(repo, standins, dirt):
    env, logged = standins
    if dirt == "modified":
        (repo / "containers" / "backupchecks" / "Dockerfile").write_text("FROM scratch\n# wip\n")
    else:
        (repo / "notes.txt").write_text("wip\n")
    head = git(repo, "rev-parse", "HEAD")
    done = run_script(repo, "1", env=env)
    assert done.returncode != 0
    assert "dirty" in done.stderr
    assert (repo / "version.txt").read_text() == "0.1.0\n"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "tag", "--list") == ""
    assert not [row for row in logged("git") if row[1] in MUTATING_GIT]
    assert logged("docker") == []


def test_real_release_refuses_an_existing_tag(repo, standins):
    env, logged = standins
    git(repo, "tag", "v0.1.1")
    done = run_script(repo, "1", env=env)
    assert done.returncode != 0
    assert "already exists" in done.stderr
    assert (repo / "version.txt").read_text() == "0.1.0\n"
    assert logged("docker") == []


def test_a_failing_docker_build_stops_before_any_push(repo, standins):
    env, logged = standins
    done = run_script(repo, "t", env={**env, "DOCKER_FAIL": "build"})
    assert done.returncode != 0
    assert [row[1] for row in logged("docker")] == ["build"]


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
