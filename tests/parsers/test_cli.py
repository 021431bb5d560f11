"""`python -m backend.app.parsers` as ops scripts call it (run as a subprocess)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "containers" / "backupchecks" / "src"
SAMPLES = Path(__file__).resolve().parent / "samples"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "backend.app.parsers", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or REPO_ROOT, timeout=120)


def test_json_lines_one_per_file_in_input_order(tmp_path):
    a = SAMPLES / "veeam_agent_policy_failed.eml"
    b = SAMPLES / "wsb_script_failed_us.eml"
    missing = tmp_path / "missing.eml"
    proc = run(str(b), str(missing), str(a))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert [ln["file"] for ln in lines] == [str(b), str(missing), str(a)]
    first, bad, last = lines
    assert first["software"] == "Microsoft Windows Server Backup" and first["overall_status"] == "Failed"
    assert first["started_at"] == "2024-03-22T23:00:03-05:00"
    assert last["job_name"] == "Workstations Lyra" and last["parser"] == "veeam"
    assert last["objects"][1] == {"name": "lyra-ws-02.lyra.example", "type": "Computer", "status": "Failed",
                                  "message": "Failed to connect to the backup repository. The network path was not found."}
    for key in ("software", "backup_type", "job_name", "overall_status", "objects", "parser", "started_at", "ended_at"):
        assert key in first and key in bad
    assert bad["error"] and bad["objects"] == []


def _copy_sample(name: str, dest: Path) -> None:
    shutil.copy(SAMPLES / f"{name}.eml", dest / f"{name}.eml")
    shutil.copy(SAMPLES / f"{name}.expected.json", dest / f"{name}.expected.json")


def test_check_passes_and_counts(tmp_path):
    (tmp_path / "sub").mkdir()
    _copy_sample("veeam_vb365_failed_latin1", tmp_path)
    _copy_sample("not_report_autoreply_de", tmp_path / "sub")
    proc = run("--check", str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[-1] == "2 passed, 0 failed"


def test_check_reports_a_readable_diff_and_fails(tmp_path):
    _copy_sample("veeam_vb365_failed_latin1", tmp_path)
    _copy_sample("wsb_script_failed_us", tmp_path)
    exp_path = tmp_path / "veeam_vb365_failed_latin1.expected.json"
    expected = json.loads(exp_path.read_text(encoding="utf-8"))
    expected["job_name"] = "Some Other Job"
    expected["objects"][0]["status"] = "Success"
    exp_path.write_text(json.dumps(expected), encoding="utf-8")
    proc = run("--check", str(tmp_path))
    assert proc.returncode == 1
    out = proc.stdout
    assert "veeam_vb365_failed_latin1.eml" in out
    assert 'job_name: expected "Some Other Job", got "M365 Mailboxen"' in out
    assert 'status: expected "Success", got "Failed"' in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"
