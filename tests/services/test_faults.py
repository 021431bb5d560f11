"""The crash hook (services/faults.py): a no-op unless BACKUPCHECKS_CRASH_AT names the step."""
from __future__ import annotations

import signal

from backend.app.services import faults


def test_the_hook_is_a_no_op_without_the_variable(monkeypatch):
    killed = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: killed.append(sig))
    monkeypatch.setattr(faults, "_target", faults._parse(None))
    faults.crash_point("importer.after_commit")
    assert killed == []


def test_the_named_step_kills_on_its_nth_time(monkeypatch):
    killed = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: killed.append(sig))
    monkeypatch.setattr(faults, "_target", faults._parse("importer.after_commit:3"))
    monkeypatch.setattr(faults, "_seen", 0)
    faults.crash_point("importer.after_fetch")
    faults.crash_point("importer.after_commit")
    faults.crash_point("importer.after_commit")
    assert killed == []
    faults.crash_point("importer.after_commit")
    assert killed == [signal.SIGKILL]
    assert faults._parse("ingest.before_commit") == ("ingest.before_commit", 1)
