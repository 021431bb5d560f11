"""A test-only hook: kill this process at a named step (crash tests with real processes).

``BACKUPCHECKS_CRASH_AT=importer.after_commit`` (or ``importer.after_commit:3``, the 3rd time the
step is reached) makes :func:`crash_point` send SIGKILL to its own process when the name matches,
so a test can stop a child at an exact step and check what a restart makes of it
(tests/deploy/test_crash_matrix.py). Without the variable every call is a no-op: the variable is
read once at import and a call then costs one comparison with None.
"""
from __future__ import annotations

import os
import signal
from typing import Optional

ENV = "BACKUPCHECKS_CRASH_AT"


def _parse(value: Optional[str]) -> Optional[tuple[str, int]]:
    if not value:
        return None
    name, _, nth = value.strip().partition(":")
    return name, max(1, int(nth)) if nth else 1


_target = _parse(os.environ.get(ENV))
_seen = 0


def crash_point(name: str) -> None:
    """SIGKILL this process when ``name`` is the step BACKUPCHECKS_CRASH_AT names (its Nth time)."""
    global _seen
    if _target is None or name != _target[0]:
        return
    _seen += 1
    if _seen >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
