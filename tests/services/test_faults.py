"""The crash hook (services/faults.py): a no-op unless BACKUPCHECKS_CRASH_AT or BACKUPCHECKS_PAUSE_AT names the step."""
from __future__ import annotations

import signal

from backend.app.services import faults


def _arm(monkeypatch, crash=None, pause=None):
    sent = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: sent.append(sig))
    monkeypatch.setattr(faults, "_target", faults._parse(crash))
    monkeypatch.setattr(faults, "_pause", faults._parse(pause))
    monkeypatch.setattr(faults, "_armed", True if (crash or pause) else None)
    monkeypatch.setattr(faults, "_seen", 0)
    monkeypatch.setattr(faults, "_pause_seen", 0)
    return sent


def test_the_hook_is_a_no_op_without_the_variable(monkeypatch):
    sent = _arm(monkeypatch)
    faults.crash_point("importer.after_commit")
    assert sent == []


def test_the_named_step_kills_on_its_nth_time(monkeypatch):
    killed = _arm(monkeypatch, crash="importer.after_commit:3")
    faults.crash_point("importer.after_fetch")
    faults.crash_point("importer.after_commit")
    faults.crash_point("importer.after_commit")
    assert killed == []
    faults.crash_point("importer.after_commit")
    assert killed == [signal.SIGKILL]
    assert faults._parse("ingest.before_commit") == ("ingest.before_commit", 1)


def test_the_pause_stops_the_process_once_on_the_nth_time(monkeypatch):
    stopped = _arm(monkeypatch, pause="importer.after_move:2")
    faults.crash_point("importer.after_move")
    faults.crash_point("importer.after_commit")
    assert stopped == []
    faults.crash_point("importer.after_move")
    assert stopped == [signal.SIGSTOP]
    faults.crash_point("importer.after_move")  # once: the test continues it and it runs on
    assert stopped == [signal.SIGSTOP]
