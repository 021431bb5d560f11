"""Parsers users define without code ("Your own rules" on the Parsers page): the pure engine.

A rule is plain data (a dict, as stored in ``parser_rules.definition`` and as written in the YAML
export), so the engine knows nothing of the database:

    name: Acme NAS nightly             # shown as the parser: "rule: Acme NAS nightly"
    runs: after                        # before | after the built-in parsers (default after)
    match:                             # each of sender/subject/body optional, at least one; all must hold
      sender:  {contains: "@nas.example.com"}
      subject: {regex: "Backup task (?P<job>.+?) (?:finished|failed)"}
      body:    {contains: "AcmeNAS"}
    job: {group: job, in: subject}     # a group (name or number) of that regex, or {fixed: "Nightly"}
    status:                            # first word (in this order) found in the subject or body wins
      - {word: "with errors", status: Warning}
      - {word: "failed", status: Failed}
      - {word: "finished", status: Success}
    default_status: null               # when no word is found; null: the mail stays in the Inbox
    objects: {lines: "^(?P<name>\\S+): (?P<status>\\w+)(?: - (?P<message>.*))?$"}
             # or {table: {name: "Share", status: "Result", message: "Details"}} (column headers)
    software: AcmeNAS
    backup_type: Snapshot

Matching is case-insensitive; ``contains`` is plain text, ``regex`` a regular expression of the
``regex`` module (Python syntax, ``^``/``$`` at every line). A regex is at most
:data:`MAX_PATTERN` characters and every match runs with a time limit: a rule whose regexes take
more than :data:`RULE_BUDGET` seconds on a mail counts as not matching ("timeout") and the mail goes
on to the next rule or parser. Nothing here reads the database, the network or the clock's date;
the only clock is the time limit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import regex

from .base import FAILED, SUCCESS, WARNING, Message, ParsedObject, ParseResult, clean_text, status_from_word

STATUSES = (SUCCESS, WARNING, FAILED)
PLACEMENTS = ("before", "after")
FIELDS = ("sender", "subject", "body")
MAX_PATTERN = 500            # characters of one regex
MAX_TEXT = 200_000           # characters of a body a rule looks at
MAX_OBJECT_LINES = 2000      # lines an objects regex is tried on
MAX_OBJECTS = 500
CALL_TIMEOUT = 0.25          # seconds, one regex call
RULE_BUDGET = 0.5            # seconds, all regex calls of one rule on one mail
FLAGS = regex.IGNORECASE | regex.MULTILINE | regex.VERSION0
PREFIX = "rule: "            # ParseResult.parser of a rule's result: "rule: <name>"


class RuleError(ValueError):
    """A rule that can't be used, with every problem found (``problems``)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class _Timeout(Exception):
    pass


@dataclass
class RuleCheck:
    """What one rule made of one mail: matched, or why not."""

    rule_id: Optional[int]
    name: str
    placement: str
    matched: bool
    reason: str                  # "matched" or why not ("sender did not match", "timeout", …)
    timed_out: bool = False


@dataclass
class CompiledRule:
    rule_id: Optional[int]
    name: str
    placement: str
    match: dict                  # field -> ("contains", lower-cased text) | ("regex", compiled)
    job_fixed: Optional[str]
    job_field: Optional[str]
    job_group: object            # str or int
    status_words: list           # [(lower-cased word, status)]
    default_status: Optional[str]
    objects_lines: object        # compiled or None
    objects_table: Optional[dict]
    software: str
    backup_type: str


@dataclass
class RuleSet:
    """Compiled enabled rules, in position order, split by placement. Built once per import batch."""

    before: list[CompiledRule] = field(default_factory=list)
    after: list[CompiledRule] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.before or self.after)


# --- Validation and compiling ---------------------------------------------------------------------

def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a user's regex; ``RuleError`` with the regex module's message when it is refused."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(["the regular expression is empty"])
    if len(pattern) > MAX_PATTERN:
        raise RuleError([f"the regular expression is longer than {MAX_PATTERN} characters"])
    try:
        return regex.compile(pattern, FLAGS)
    except (regex.error, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise RuleError([f"invalid regular expression {pattern!r}: {exc}"]) from None


def _text(value, what: str, problems: list[str], *, required: bool = False, limit: int = 200) -> str:
    if value is None:
        value = ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        problems.append(f"{what} must be text")
        return ""
    value = str(value).strip()
    if required and not value:
        problems.append(f"{what} is required")
    if len(value) > limit:
        problems.append(f"{what} is longer than {limit} characters")
    return value


def _group_exists(rx: regex.Pattern, group) -> bool:
    if isinstance(group, int):
        return 0 <= group <= rx.groups
    return group in rx.groupindex


def _as_group(value):
    """A group reference: a number ("1", 1) or a name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() else text


def compile_rule(rule: dict) -> CompiledRule:
    """Check and compile one rule (the plain data described at the top). Raises ``RuleError`` listing
    every problem: a bad regex (with the regex error), no match criterion, no job capture, a job group
    the regex does not have, an empty status list without a default, an unknown status."""
    problems: list[str] = []
    if not isinstance(rule, dict):
        raise RuleError(["a rule must be a mapping of its fields"])
    name = _text(rule.get("name"), "the name", problems, required=True, limit=90)
    placement = rule.get("runs") or "after"
    if placement not in PLACEMENTS:
        problems.append(f"runs must be 'before' or 'after', not {placement!r}")
    match_in = rule.get("match") or {}
    match: dict = {}
    bad_fields: set = set()
    if not isinstance(match_in, dict):
        problems.append("match must be a mapping of sender/subject/body")
        match_in = {}
    for key in match_in:
        if key not in FIELDS:
            problems.append(f"match: unknown field {key!r} (use sender, subject or body)")
    for fld in FIELDS:
        spec = match_in.get(fld)
        if spec in (None, "", {}):
            continue
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("contains", "regex"):
            problems.append(f"match {fld}: give either contains or regex")
            continue
        mode, value = next(iter(spec.items()))
        value = "" if value is None else str(value)
        if not value.strip():
            problems.append(f"match {fld}: the {mode} text is empty")
        elif mode == "contains":
            if len(value) > MAX_PATTERN:
                problems.append(f"match {fld}: the text is longer than {MAX_PATTERN} characters")
            match[fld] = ("contains", value.lower(), value)
        else:
            try:
                match[fld] = ("regex", compile_pattern(value), value)
            except RuleError as exc:
                problems.append(f"match {fld}: {exc}")
                bad_fields.add(fld)
    if not match and not any(p.startswith("match ") for p in problems):
        problems.append("match: give at least one of sender, subject or body")
    job = rule.get("job") or {}
    job_fixed = job_field = job_group = None
    if not isinstance(job, dict):
        job = {}
    if job.get("fixed") not in (None, ""):
        job_fixed = _text(job.get("fixed"), "the fixed job name", problems, required=True, limit=500)
    elif job.get("group") not in (None, ""):
        job_field = job.get("in") or "subject"
        job_group = _as_group(job.get("group"))
        spec = match.get(job_field)
        if job_field not in FIELDS:
            problems.append(f"job: 'in' must be sender, subject or body, not {job_field!r}")
        elif spec is None or spec[0] != "regex":
            if job_field not in bad_fields:
                problems.append(f"job: the job name comes from a group of the {job_field} regex, but the rule has no "
                                f"{job_field} regex")
        elif job_group is None or not _group_exists(spec[1], job_group):
            problems.append(f"job: the {job_field} regex has no group {job.get('group')!r}")
    else:
        problems.append("job: capture the job name with a group of a regex, or give a fixed job name")
    words_in = rule.get("status") or []
    status_words = []
    if not isinstance(words_in, list):
        problems.append("status must be a list of {word, status}")
        words_in = []
    for i, item in enumerate(words_in, 1):
        if not isinstance(item, dict):
            problems.append(f"status word {i}: give a word and a status")
            continue
        word = _text(item.get("word"), f"status word {i}", problems, required=True)
        status = item.get("status")
        if status not in STATUSES:
            problems.append(f"status word {i}: the status must be one of {', '.join(STATUSES)}, not {status!r}")
        elif word:
            status_words.append((word.lower(), status))
    default_status = rule.get("default_status") or None
    if default_status is not None and default_status not in STATUSES:
        problems.append(f"default_status must be one of {', '.join(STATUSES)} or empty, not {default_status!r}")
    if not words_in and default_status is None:
        problems.append("status: map at least one word to a status (or give a default status)")
    objects = rule.get("objects") or {}
    objects_lines = objects_table = None
    if not isinstance(objects, dict) or len(objects) > 1:
        problems.append("objects: give either lines (a regex) or table (column headers)")
    elif "lines" in objects:
        try:
            objects_lines = compile_pattern(str(objects["lines"] or ""))
            if "name" not in objects_lines.groupindex:
                problems.append("objects lines: the regex needs a group named name, e.g. (?P<name>\\S+)")
        except RuleError as exc:
            problems.append(f"objects lines: {exc}")
    elif "table" in objects:
        cols = objects["table"] if isinstance(objects["table"], dict) else {}
        objects_table = {k: _text(cols.get(k), f"objects table {k} column", problems, required=(k == "name")).lower()
                         for k in ("name", "status", "message")}
    elif objects:
        problems.append("objects: give either lines (a regex) or table (column headers)")
    software = _text(rule.get("software"), "the software", problems, required=True, limit=100)
    backup_type = _text(rule.get("backup_type"), "the backup type", problems, limit=100)
    if problems:
        raise RuleError(problems)
    return CompiledRule(rule_id=rule.get("id"), name=name, placement=placement, match=match, job_fixed=job_fixed,
                        job_field=job_field, job_group=job_group, status_words=status_words,
                        default_status=default_status, objects_lines=objects_lines, objects_table=objects_table,
                        software=software, backup_type=backup_type)


def compile_rules(rules: list[dict]) -> tuple[RuleSet, dict]:
    """The enabled rules (in the given order) compiled into a :class:`RuleSet`; a rule that does not
    compile is left out and its problems returned by name (stored rules were checked at save)."""
    out, broken = RuleSet(), {}
    for rule in rules:
        if not rule.get("enabled", True):
            continue
        try:
            compiled = compile_rule(rule)
        except RuleError as exc:
            broken[rule.get("name") or "?"] = exc.problems
            continue
        (out.before if compiled.placement == "before" else out.after).append(compiled)
    return out, broken


# --- Matching -----------------------------------------------------------------------------------

class _Budget:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def search(self, rx: regex.Pattern, text: str):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Timeout()
        try:
            return rx.search(text, timeout=min(CALL_TIMEOUT, left))
        except TimeoutError:
            raise _Timeout() from None


def _fields(msg: Message) -> dict:
    return {"sender": msg.from_address or "", "subject": msg.subject or "", "body": (msg.text or "")[:MAX_TEXT]}


_FIELD_WORDS = {"sender": "sender", "subject": "subject", "body": "body"}


def check_rule(rule: CompiledRule, msg: Message, budget_seconds: float = RULE_BUDGET
               ) -> tuple[Optional[ParseResult], RuleCheck]:
    """Apply one rule to a mail: its result, or None and why not."""
    def miss(reason: str, timed_out: bool = False):
        return None, RuleCheck(rule.rule_id, rule.name, rule.placement, False, reason, timed_out)

    budget = _Budget(budget_seconds)
    values = _fields(msg)
    found: dict = {}
    try:
        for fld in FIELDS:
            spec = rule.match.get(fld)
            if spec is None:
                continue
            if spec[0] == "contains":
                if spec[1] not in values[fld].lower():
                    return miss(f"{_FIELD_WORDS[fld]} does not contain '{spec[2]}'")
            else:
                m = budget.search(spec[1], values[fld])
                if m is None:
                    return miss(f"{_FIELD_WORDS[fld]} regex did not match")
                found[fld] = m
        if rule.job_fixed:
            job = rule.job_fixed
        else:
            try:
                job = clean_text(found[rule.job_field].group(rule.job_group))
            except (IndexError, KeyError):
                job = ""
            if not job:
                return miss(f"the job name group of the {rule.job_field} regex is empty")
        status = _status_from_words(rule.status_words, values["subject"], values["body"]) or rule.default_status
        if status is None:
            return miss("no status word found")
        objects = _objects(rule, msg, values["body"], budget)
    except _Timeout:
        return miss(f"timeout: its regular expressions took longer than {budget_seconds:g} s on this mail", True)
    result = ParseResult(software=rule.software, backup_type=rule.backup_type or None, job_name=job[:500],
                         overall_status=status, objects=objects, parser=PREFIX + rule.name,
                         reason=f"your rule '{rule.name}' matched", match_reason=f"your rule '{rule.name}' matched")
    return result, RuleCheck(rule.rule_id, rule.name, rule.placement, True, "matched")


def _status_from_words(words: list, *texts: str) -> Optional[str]:
    lowered = [t.lower() for t in texts]
    for word, status in words:
        if any(word in t for t in lowered):
            return status
    return None


def _object_status(rule: CompiledRule, word: str) -> Optional[str]:
    word = (word or "").strip()
    if not word:
        return None
    return _status_from_words(rule.status_words, word) or status_from_word(word)


def _objects(rule: CompiledRule, msg: Message, body: str, budget: _Budget) -> list[ParsedObject]:
    out: list[ParsedObject] = []
    if rule.objects_lines is not None:
        rx = rule.objects_lines
        for line in body.splitlines()[:MAX_OBJECT_LINES]:
            m = budget.search(rx, line)
            if m is None:
                continue
            groups = m.groupdict()
            name = clean_text(groups.get("name"))
            if name:
                out.append(ParsedObject(name=name[:500], status=_object_status(rule, groups.get("status") or ""),
                                        message=clean_text(groups.get("message"))))
            if len(out) >= MAX_OBJECTS:
                break
    elif rule.objects_table:
        out = _table_objects(rule, msg)
    return out


def _table_objects(rule: CompiledRule, msg: Message) -> list[ParsedObject]:
    """Rows of the first table whose header row has the rule's name column."""
    tree = msg.html_tree()
    if tree is None:
        return []
    cols = rule.objects_table
    for table in tree.iter("table"):
        rows = table.findall(".//tr")
        for h, row in enumerate(rows):
            heads = [clean_text(c.text_content()).lower() for c in row if c.tag in ("td", "th")]
            if cols["name"] not in heads:
                continue
            at = {k: heads.index(v) if v in heads else None for k, v in cols.items()}
            out = []
            for r in rows[h + 1:h + 1 + MAX_OBJECTS]:
                cells = [clean_text(c.text_content()) for c in r if c.tag in ("td", "th")]

                def cell(k):
                    i = at.get(k)
                    return cells[i] if i is not None and i < len(cells) else ""
                if cell("name"):
                    out.append(ParsedObject(name=cell("name")[:500], status=_object_status(rule, cell("status")),
                                            message=cell("message")))
            return out
    return []


def apply_rules(rules: list[CompiledRule], msg: Message, checks: list[RuleCheck]) -> Optional[ParseResult]:
    """The first of ``rules`` (in order) that matches the mail; every rule tried is added to ``checks``."""
    for rule in rules:
        try:
            result, check = check_rule(rule, msg)
        except Exception as exc:  # noqa: BLE001 - a rule must never break the import
            result, check = None, RuleCheck(rule.rule_id, rule.name, rule.placement, False,
                                            f"error: {type(exc).__name__}: {exc}")
        checks.append(check)
        if result is not None:
            return result
    return None
