"""Job schedules: learned from the runs' start times, or set by hand (the manual one wins).

All schedule maths happens in the UI timezone (a "day" is a day there, a "time" is a wall-clock
time there); the results are stored in UTC. The package, along its seams:

* ``slots``: wall time <-> UTC (DST rules) and the expected slots of a schedule;
* ``learning``: ``infer_schedule``, the rules the documentation page describes (docs/pages/schedules.md);
* ``manual``: schedules set by hand, the effective schedule of a job, its description;
* ``store``: relearning, setting and clearing a job's schedule and its next expected slot.
"""
from __future__ import annotations

from .learning import (  # noqa: F401
    GRACE_MARGIN_MINUTES,
    MAX_LEARNED_GRACE_MINUTES,
    MAX_MONTHDAYS,
    MAX_OUTLIER_SHARE,
    MIN_HITS_PER_MONTHDAY,
    MIN_HITS_PER_WEEKDAY,
    MIN_MONTHLY_SPAN_DAYS,
    MIN_OCCURRENCES,
    MIN_WEEKLY_SPAN_DAYS,
    MONTHLY_WINDOW_DAYS,
    OFF_RATIO,
    ON_RATIO,
    WEEKLY_WINDOW_DAYS,
    YOUNG_DAILY_MAX_GAPS,
    infer_schedule,
)
from .manual import (  # noqa: F401
    MANUAL_KINDS,
    MAX_MANUAL_GRACE_MINUTES,
    WEEKDAY_NAMES,
    describe_schedule,
    effective_schedule,
    validate_manual_schedule,
)
from .slots import (  # noqa: F401
    DEFAULT_GRACE_MINUTES,
    EARLY_LIMIT,
    LATE_LIMIT,
    SCHEDULED_KINDS,
    UTC,
    first_open_slot,
    first_slot_in_force,
    grace_of,
    is_scheduled,
    local_day,
    local_to_utc,
    next_expected_run,
    next_slot,
    previous_slot,
    slot_window,
)
from .store import (  # noqa: F401
    clear_manual_schedule,
    recompute_all_schedules,
    recompute_job_schedule,
    set_manual_schedule,
)
