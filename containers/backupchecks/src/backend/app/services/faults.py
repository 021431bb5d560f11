"""A test-only hook: kill or pause this process at a named step (fault tests with real processes).

``BACKUPCHECKS_CRASH_AT=importer.after_commit`` (or ``importer.after_commit:3``, the 3rd time the
step is reached) makes :func:`crash_point` send SIGKILL to its own process when the name matches,
so a test can stop a child at an exact step and check what a restart makes of it
(tests/deploy/test_crash_matrix.py).

``BACKUPCHECKS_PAUSE_AT=<name>[:<n>]`` makes the process SIGSTOP itself there instead, once: the
test sees it stopped (``waitid`` with ``WSTOPPED``), does what the fault needs at exactly that
moment (stop or restart PostgreSQL, fill its disk) and sends SIGCONT
(tests/deploy/test_disk_full.py, tests/deploy/test_import_outage.py).

Without the variables every call is a no-op: they are read once at import and a call then costs
one comparison with None.
"""
from __future__ import annotations

import os
import signal
from typing import Optional

ENV = "BACKUPCHECKS_CRASH_AT"
PAUSE_ENV = "BACKUPCHECKS_PAUSE_AT"


def _parse(value: Optional[str]) -> Optional[tuple[str, int]]:
    if not value:
        return None
    name, _, nth = value.strip().partition(":")
    return name, max(1, int(nth)) if nth else 1


_target: Optional[tuple[str, int]] = None
_pause: Optional[tuple[str, int]] = None
_armed: Optional[bool] = None
_seen = 0
_pause_seen = 0


def rearm() -> None:
    """Read BACKUPCHECKS_CRASH_AT and BACKUPCHECKS_PAUSE_AT (again): at import, and in a test's child
    process forked from an interpreter that imported this module before the variables were set."""
    global _target, _pause, _armed, _seen, _pause_seen
    _target, _pause = _parse(os.environ.get(ENV)), _parse(os.environ.get(PAUSE_ENV))
    _armed = True if (_target or _pause) else None
    _seen = _pause_seen = 0


rearm()


def crash_point(name: str) -> None:
    """SIGKILL this process when ``name`` is the step BACKUPCHECKS_CRASH_AT names (its Nth time);
    SIGSTOP it when ``name`` is the step BACKUPCHECKS_PAUSE_AT names (its Nth time only)."""
    if _armed is None:
        return
    _fire(name)


def _fire(name: str) -> None:
    global _seen, _pause_seen
    if _pause is not None and name == _pause[0]:
        _pause_seen += 1
        if _pause_seen == _pause[1]:
            os.kill(os.getpid(), signal.SIGSTOP)  # the test sends SIGCONT when it is done
    if _target is not None and name == _target[0]:
        _seen += 1
        if _seen >= _target[1]:
            os.kill(os.getpid(), signal.SIGKILL)
