"""The suite's clock: every test runs with the clock frozen at one instant (ticking from there).

The instant is ``TEST_NOW``: by default a plain Wednesday morning, or the ISO timestamp in the
environment variable ``BACKUPCHECKS_TEST_NOW`` (for example ``2026-03-29T01:30:00+00:00``, the
night the clocks change in Europe), so the whole suite can be run "on" any date:

    BACKUPCHECKS_TEST_NOW=2028-02-29T12:00:00+00:00 make test

The ``clock`` fixture in conftest.py starts the clock at ``TEST_NOW`` for each test (time-machine,
``tick=True``: time moves on as usual from there, in every thread of the test process). A test
moves it with ``clock.move_to(...)`` or ``clock.shift(...)``. Only tests about the clock itself
opt out, with ``@pytest.mark.real_clock``. Subprocesses (gunicorn, the dev server) run on the
real clock.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

DEFAULT_TEST_NOW = "2026-06-10T08:30:00+00:00"  # a Wednesday, summer time in Europe


def _parse(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"BACKUPCHECKS_TEST_NOW needs a UTC offset, e.g. {DEFAULT_TEST_NOW!r}; got {raw!r}")
    return value.astimezone(timezone.utc)


TEST_NOW: datetime = _parse(os.environ.get("BACKUPCHECKS_TEST_NOW") or DEFAULT_TEST_NOW)
