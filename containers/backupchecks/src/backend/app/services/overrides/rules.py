"""What an override rule is: its fields checked and cleaned (``validate_override``), the job-name
pattern, one line describing it, and the "this run only" rule (overview: ``services/overrides``)."""
from __future__ import annotations

import fnmatch
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import Interval, and_, literal

from ...extensions import db
from ...models import STATUSES, Job, Override
from ..status import MISSED, SUCCESS, canonical_status
from ..timezones import as_zone

LEVELS = ("global", "job", "object")
MATCH_MODES = ("contains", "exact", "starts", "ends")
MATCH_MODE_LABELS = {"contains": "contains", "exact": "is exactly", "starts": "starts with", "ends": "ends with"}
PATTERN_MAX = 200
PATTERN_MAX_WILDCARDS = 10
_LIMITS = {"software": 120, "backup_type": 120, "object_name": 500, "match_text": 1000, "comment": 1000}
_TRUE = {"1", "true", "on", "yes", "y"}
_FALSE = {"0", "false", "off", "no", "n", ""}
# "Mark as success → this run only" makes a rule valid from the run's start for this long: it
# covers that one run. Such a rule is shown as "applied to run N", not as expired.
ONE_RUN_WINDOW = timedelta(seconds=1)


def _text(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    if key not in data or data.get(key) is None:
        return default
    value = data.get(key)
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"'{key}' must be yes or no, not '{str(value)[:20]}'.")


def _moment(data: Mapping[str, Any], key: str, label: str, zone: Optional[ZoneInfo]) -> Optional[datetime]:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{label} '{str(value)[:40]}' is not a date and time: use e.g. 2026-03-29 08:00.") from None
    if dt.tzinfo is None:  # a form gives local time in the UI timezone
        dt = dt.replace(tzinfo=as_zone(zone))
    return dt.astimezone(timezone.utc)


def _check_pattern(pattern: str) -> None:
    if len(pattern) > PATTERN_MAX:
        raise ValueError(f"The job-name pattern is too long ({len(pattern)} characters, at most {PATTERN_MAX}).")
    if any(unicodedata.category(ch).startswith("C") for ch in pattern):
        raise ValueError("The job-name pattern contains control characters (a line break or tab?).")
    if pattern.count("*") + pattern.count("?") > PATTERN_MAX_WILDCARDS:
        raise ValueError(f"The job-name pattern has too many wildcards (at most {PATTERN_MAX_WILDCARDS}).")
    if pattern.replace("*", "") == "" and len(pattern) > 1:
        raise ValueError("The job-name pattern is only wildcards: use a single '*' or leave it empty.")
    # Brackets must be a complete, non-empty set like [0-9] or [!x].
    i = 0
    while i < len(pattern):
        if pattern[i] == "]":
            raise ValueError("The job-name pattern has a ']' without an opening '['.")
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # "[]" or "[!]"
                raise ValueError("The job-name pattern has an empty set '[]'.")
            close = pattern.find("]", j)
            if close == -1:
                raise ValueError("The job-name pattern has a '[' without a closing ']'. "
                                 "Use * for any text and ? for one character, e.g. Daily*.")
            body = pattern[j:close]
            for m in re.finditer(r"(.)-(.)", body):
                if m.group(1) > m.group(2):
                    raise ValueError(f"The job-name pattern has a reversed range '[{m.group(0)}]'.")
            i = close + 1
            continue
        i += 1
    try:
        _compiled(pattern)
    except re.error as exc:  # pragma: no cover - guarded by the checks above
        raise ValueError(f"The job-name pattern is not valid: {exc}.") from None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL)


def pattern_matches(pattern: Optional[str], job_name: Optional[str]) -> bool:
    """Glob match of a job name, case-insensitive (empty pattern = any name)."""
    if not pattern:
        return True
    return _compiled(pattern).match(job_name or "") is not None


def validate_override(data: Mapping[str, Any], zone: Optional[ZoneInfo] = None) -> dict:
    """Check and clean override fields from a form or a JSON import.

    Returns a dict with every Override field (empty text -> None, times in UTC,
    fields the level does not use -> None). Raises ValueError with a message an
    operator can act on. Naive times are read in ``zone`` (default: the UI timezone).
    """
    if data is None:
        raise ValueError("No override data given.")
    level = (_text(data, "level") or "").lower()
    if level not in LEVELS:
        raise ValueError("Choose the level of the override: global, job or object.")

    out: dict[str, Any] = {"level": level}
    for key, limit in _LIMITS.items():
        value = _text(data, key)
        if value is not None and len(value) > limit:
            raise ValueError(f"'{key.replace('_', ' ')}' is too long (at most {limit} characters).")
        out[key] = value

    raw_job = data.get("job_id")
    job_id: Optional[int] = None
    if raw_job not in (None, ""):
        try:
            job_id = int(str(raw_job).strip())
        except ValueError:
            raise ValueError(f"Unknown job '{str(raw_job)[:40]}'.") from None
        if not 0 < job_id < 2 ** 31:
            raise ValueError(f"Unknown job {job_id}.")

    pattern = _text(data, "job_name_pattern")
    if level == "global":
        if not out["software"]:
            raise ValueError("A global override needs the software it applies to.")
        if pattern:
            _check_pattern(pattern)
        if out["object_name"]:
            raise ValueError("A global override has no object name: use level 'object' on a job.")
        out["job_name_pattern"] = pattern
        out["job_id"] = None
    else:
        if job_id is None:
            raise ValueError(f"A{'n' if level == 'object' else ''} {level}-level override needs a job.")
        if db.session.get(Job, job_id) is None:
            raise ValueError(f"Unknown job {job_id}: it may have been deleted.")
        if level == "object" and not out["object_name"]:
            raise ValueError("An object-level override needs the object name.")
        if level == "job" and out["object_name"]:
            raise ValueError("A job-level override has no object name: choose level 'object' for one object.")
        out["job_id"] = job_id
        out["job_name_pattern"] = None
        out["software"] = None
        out["backup_type"] = None

    status = _text(data, "match_status")
    if status is not None:
        canon = canonical_status(status)
        if canon not in STATUSES or canon == SUCCESS:
            raise ValueError(f"Status '{status[:20]}' cannot be matched: use Warning, Failed or Missed, "
                             "or leave it empty for any problem.")
        if canon == MISSED and level != "job":
            raise ValueError("Only a job-level override can match a Missed run.")
        status = canon
    out["match_status"] = status

    mode = (_text(data, "match_mode") or "contains").lower()
    if mode not in MATCH_MODES:
        raise ValueError(f"Text match '{mode[:20]}' is unknown: use contains, exact, starts or ends.")
    out["match_mode"] = mode

    out["valid_from"] = _moment(data, "valid_from", "Valid from", zone)
    out["valid_until"] = _moment(data, "valid_until", "Valid until", zone)
    if out["valid_from"] and out["valid_until"] and out["valid_until"] <= out["valid_from"]:
        raise ValueError("'Valid until' must be after 'valid from'.")

    out["treat_as_success"] = _bool(data, "treat_as_success", True)
    out["active"] = _bool(data, "active", True)
    return out



# --- Describing a rule ------------------------------------------------------------------------

def describe(rule: Override) -> str:
    """One line for lists, flashes and the audit log."""
    if rule.level == "global":
        scope = f"global {rule.software}"
        if rule.backup_type:
            scope += f" / {rule.backup_type}"
        if rule.job_name_pattern:
            scope += f" jobs '{rule.job_name_pattern}'"
    else:
        job = rule.job if rule.job is not None else (db.session.get(Job, rule.job_id) if rule.job_id else None)
        scope = f"job '{job.job_name if job else rule.job_id}'"
        if rule.level == "object":
            scope = f"object '{rule.object_name}' of {scope}"
    what = rule.match_status or "any problem"
    if rule.match_text:
        what += f", message {MATCH_MODE_LABELS.get(rule.match_mode, rule.match_mode)} '{rule.match_text[:60]}'"
    return f"{scope}: {what}" + (" → success" if rule.treat_as_success else "")


def is_one_run_rule(rule: Override) -> bool:
    """Whether a rule covers a single run of its job ("this run only"): a job or object rule whose
    validity window is at most ``ONE_RUN_WINDOW`` long."""
    return (rule.level in ("job", "object") and rule.job_id is not None and rule.valid_from is not None
            and rule.valid_until is not None and rule.valid_until - rule.valid_from <= ONE_RUN_WINDOW)


def one_run_rule_sql():
    """``is_one_run_rule`` as a SQL condition, for filtering lists in the database."""
    return and_(Override.level.in_(("job", "object")), Override.job_id.is_not(None),
                Override.valid_from.is_not(None), Override.valid_until.is_not(None),
                Override.valid_until <= Override.valid_from + literal(ONE_RUN_WINDOW, Interval()))
