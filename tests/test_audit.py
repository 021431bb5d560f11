"""`make audit` (scripts/audit.sh), run by CI before the tests: a known vulnerability in a pinned
requirement fails, a vulnerability service that can't be reached is reported and skipped.

A stand-in ``pip-audit`` on PATH answers as the real one does in each case (same exit codes,
same messages) and records how it was called."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "audit.sh"
SKIPPED = "pip-audit: vulnerability service not reachable; skipped"

CLEAN = ("echo 'No known vulnerabilities found' >&2", 0)
FINDING = ("""cat <<'OUT'
Name     Version ID                  Fix Versions
-------- ------- ------------------- ------------
requests 2.34.2  GHSA-xxxx-test-only 2.34.3
OUT
echo 'Found 1 known vulnerability in 1 package' >&2""", 1)
UNREACHABLE = ("""cat >&2 <<'OUT'
Traceback (most recent call last):
  File "pip_audit/_service/pypi.py", line 62, in query
requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /pypi/flask/3.1.3/json (Caused by NameResolutionError("Failed to resolve 'pypi.org'"))
OUT""", 1)
CONNECT_TIMEOUT = ("""echo "ERROR:pip_audit._cli:Could not connect to PyPI's vulnerability feed" >&2
echo 'ERROR:pip_audit._cli:Tip: your network may be blocking this service. Try another service with `-s SERVICE`' >&2""", 1)
BROKEN = ("echo 'ERROR:pip_audit._cli:invalid requirements input: requirements-dev.txt' >&2", 1)
NOTHING_KNOWN = ("""echo 'No known vulnerabilities found' >&2
for p in $(grep -hoE '^[A-Za-z0-9][A-Za-z0-9._-]*(\\[[^]]*\\])?==' containers/backupchecks/requirements.txt requirements-dev.txt | sort -u); do
  echo "$p Dependency not found on PyPI and could not be audited: $p"
done""", 0)


def audit(tmp_path, answer=None, *, sleep: float = 0, timeout: str | None = None):
    """Run scripts/audit.sh with a stand-in pip-audit (None: no pip-audit at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    if answer is not None:
        body, rc = answer
        stand_in = bin_dir / "pip-audit"
        stand_in.write_text(f"#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {calls}\n"
                            + (f"sleep {sleep}\n" if sleep else "") + f"{body}\nexit {rc}\n")
        stand_in.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    if timeout:
        env["AUDIT_TIMEOUT"] = timeout
    done = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    args = calls.read_text().splitlines() if calls.exists() else None
    return done, args


pytestmark = pytest.mark.skipif(shutil.which("timeout") is None, reason="coreutils timeout is missing")


def test_clean_passes_and_audits_both_pinned_files_without_installing(tmp_path):
    done, args = audit(tmp_path, CLEAN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No known vulnerabilities found" in done.stdout and SKIPPED not in done.stdout
    assert "-r" in args and "containers/backupchecks/requirements.txt" in args and "requirements-dev.txt" in args
    assert {"--no-deps", "--disable-pip"} <= set(args)  # pins as written: nothing resolved or installed
    assert "--strict" not in args and "--fix" not in args


def test_a_known_vulnerability_fails(tmp_path):
    done, _ = audit(tmp_path, FINDING)
    assert done.returncode == 1
    assert "GHSA-xxxx-test-only" in done.stdout and "Found 1 known vulnerability" in done.stdout
    assert "known vulnerabilities in the pinned requirements" in done.stderr
    assert SKIPPED not in done.stdout


@pytest.mark.parametrize("answer", [UNREACHABLE, CONNECT_TIMEOUT], ids=["connection-error", "connect-timeout"])
def test_an_unreachable_service_is_skipped_not_failed(tmp_path, answer):
    done, _ = audit(tmp_path, answer)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == SKIPPED


def test_a_service_that_does_not_answer_in_time_is_skipped(tmp_path):
    done, _ = audit(tmp_path, CLEAN, sleep=5, timeout="1")
    assert done.returncode == 0
    assert f"{SKIPPED} (no answer within 1 s)" in done.stdout


def test_a_service_that_knows_none_of_the_pins_checked_nothing_and_says_so(tmp_path):
    done, _ = audit(tmp_path, NOTHING_KNOWN)  # the script runs from the repository root
    assert done.returncode == 0
    assert SKIPPED + " (it knew none of the" in done.stdout


def test_any_other_pip_audit_failure_fails(tmp_path):
    done, _ = audit(tmp_path, BROKEN)
    assert done.returncode == 1 and "pip-audit failed (exit 1" in done.stderr and SKIPPED not in done.stdout


def test_no_pip_audit_fails_with_what_to_do(tmp_path):
    done, _ = audit(tmp_path, None)
    assert done.returncode == 1 and "pip-audit is not installed" in done.stderr


def test_ci_audits_before_it_tests_and_make_audit_runs_the_script():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci.index("make audit") < ci.index("make test")
    makefile = (REPO / "Makefile").read_text()
    assert "\naudit: $(VENV)/.installed\n\tPATH=\"$(CURDIR)/$(VENV)/bin:$$PATH\" scripts/audit.sh\n" in makefile
