"""Overrides: rules that treat known, accepted warnings or failures as success.

Levels
  object  one object (by name, case-insensitive) of one job
  job     one job (its runs, and each of its runs' objects)
  global  every job of a software, optionally of one backup type and/or whose
          name matches a glob pattern such as "Daily*" (case-insensitive)

A rule matches a status (empty = any non-success status) and a message text
(contains / exact / starts / ends, case-insensitive, empty = any), when the
run started inside its validity window [valid_from, valid_until).
Object and job rules are checked before global ones; the first matching rule
decides. "Treat as success" turns the matched Warning/Failed into Success; a
matching rule without it is linked (shown as the reason) but changes nothing.

A run is an effective Success when its own status is overridden, or when it
has non-success objects and every one of them is overridden. A Missed run can
only be overridden by a job-level rule that matches status Missed.

Creating, changing or deleting a rule re-evaluates the unreviewed runs it can
touch; reviewed runs keep what they showed when they were reviewed.

Modules: ``rules`` (fields, validation, description), ``matching`` (applying rules to runs,
re-evaluation), ``changes`` (what users do to rules), ``listing`` (the Overrides page's list and
choices). Import from the package: ``from ..services.overrides import create_override``.
"""
from .changes import create_override, delete_override, override_from_run, update_override
from .listing import (
    PER_PAGE,
    SORTS,
    STATES,
    AppliedRun,
    OverrideFilters,
    OverrideRow,
    backup_type_choices,
    list_overrides,
    software_choices,
    unreviewed_runs_using,
)
from .matching import (
    REEVALUATE_CHUNK,
    active_overrides_for,
    apply_overrides,
    apply_overrides_to_runs,
    reevaluate_unreviewed_runs,
)
from .rules import (
    LEVELS,
    MATCH_MODE_LABELS,
    MATCH_MODES,
    ONE_RUN_WINDOW,
    PATTERN_MAX,
    PATTERN_MAX_WILDCARDS,
    describe,
    is_one_run_rule,
    one_run_rule_sql,
    pattern_matches,
    validate_override,
)

