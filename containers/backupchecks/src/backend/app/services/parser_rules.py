"""The users' own parser rules (Parsers page → Your own rules): storing, ordering, auditing, the YAML
export and import, the rule set one import batch uses, and the live tester. The matching itself is
the pure engine's, ``parsers/rules.py``; every rule is checked by its ``compile_rule`` before it is saved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

import yaml
from sqlalchemy import func, select, update

from ..extensions import db
from ..models import ParserRule, utcnow
from ..parsers.base import Message, ParseResult
from ..parsers.normalize import normalize
from ..parsers.registry import parse_message
from ..parsers.rules import PLACEMENTS, STATUSES, RuleError, RuleSet, compile_rule, compile_rules
from . import audit

# The keys of a rule besides name, enabled and runs (stored in ``ParserRule.definition``).
DEFINITION_KEYS = ("match", "job", "status", "default_status", "objects", "software", "backup_type")
MAX_YAML_BYTES = 1024 * 1024
MAX_STATUS_WORDS = 50
YAML_HEADER = ("# Backupchecks parser rules (Parsers → Your own rules). Import this file on the Parsers page:\n"
               "# rules are matched by name (changed when the name exists, added at the end when not).\n")


class ParserRuleError(ValueError):
    """A rule (or a YAML file of rules) that can't be saved; ``errors`` lists every problem."""

    def __init__(self, message: str, errors: Optional[list[str]] = None):
        super().__init__(message)
        self.errors = errors or [message]


# --- Plain data ---------------------------------------------------------------------------------

def rule_data(rule: ParserRule, *, with_id: bool = True) -> dict:
    """A stored rule as the plain data the engine and the YAML file use."""
    data = {"name": rule.name, "enabled": bool(rule.enabled), "runs": rule.placement}
    if with_id:
        data["id"] = rule.id
    for key in DEFINITION_KEYS:
        value = (rule.definition or {}).get(key)
        if value not in (None, "", [], {}):
            data[key] = value
    return data


def _clean(data: dict) -> dict:
    """Only the known keys, with the empty ones left out (what is stored and audited)."""
    out = {"name": " ".join(str(data.get("name") or "").split()), "enabled": bool(data.get("enabled", True)),
           "runs": data.get("runs") or "after"}
    for key in DEFINITION_KEYS:
        value = data.get(key)
        if value not in (None, "", [], {}):
            out[key] = value
    return out


def check(data: dict) -> dict:
    """The rule cleaned, or ``ParserRuleError`` with every problem (bad regex with its error, no job
    capture, no status word, …)."""
    if not isinstance(data, dict):
        raise ParserRuleError("A rule must be a mapping of its fields.")
    unknown = sorted(str(k) for k in set(data) - {"id", "name", "enabled", "runs", *DEFINITION_KEYS})
    data = _clean(data)
    problems = [f"unknown field {k!r}" for k in unknown]
    if len(data.get("status") or []) > MAX_STATUS_WORDS:
        problems.append(f"at most {MAX_STATUS_WORDS} status words")
    try:
        compile_rule(data)
    except RuleError as exc:
        problems += exc.problems
    if problems:
        raise ParserRuleError("The rule was not saved: " + "; ".join(problems) + ".", problems)
    return data


# --- Reading ------------------------------------------------------------------------------------

def list_rules() -> list[ParserRule]:
    return db.session.execute(select(ParserRule).order_by(ParserRule.position, ParserRule.id)).scalars().all()


def get_rule(rule_id: int) -> Optional[ParserRule]:
    return db.session.get(ParserRule, rule_id)


def load_ruleset() -> RuleSet:
    """The enabled rules compiled, in order: one query. An import batch loads them once and hands
    them to every mail (``ingest_message(rules=…)``)."""
    rows = db.session.execute(select(ParserRule).where(ParserRule.enabled.is_(True))
                              .order_by(ParserRule.position, ParserRule.id)).scalars().all()
    return compile_rules([rule_data(r) for r in rows])[0]


def record_timeouts(result: ParseResult, subject: str) -> None:
    """Remember on the rules whose regexes ran out of time on this mail when it happened (the Parsers
    page shows it). One UPDATE, and only when a rule timed out; committed with the mail."""
    ids = [c.rule_id for c in getattr(result, "rule_checks", []) or [] if c.timed_out and c.rule_id]
    if ids:
        db.session.execute(update(ParserRule).where(ParserRule.id.in_(ids))
                           .values(last_timeout_at=utcnow(), last_timeout_subject=(subject or "")[:300]))


# --- Changing -----------------------------------------------------------------------------------

def _definition(data: dict) -> dict:
    return {k: data[k] for k in DEFINITION_KEYS if k in data}


def _name_taken(name: str, rule_id: Optional[int]) -> bool:
    q = select(ParserRule.id).where(func.lower(ParserRule.name) == name.lower())
    if rule_id is not None:
        q = q.where(ParserRule.id != rule_id)
    return db.session.execute(q.limit(1)).first() is not None


def create_rule(data: dict, actor) -> ParserRule:
    data = check(data)
    if _name_taken(data["name"], None):
        raise ParserRuleError(f"A rule named '{data['name']}' exists already; choose another name.")
    last = db.session.execute(select(func.max(ParserRule.position))).scalar()
    rule = ParserRule(name=data["name"], enabled=data["enabled"], placement=data["runs"],
                      position=(last or 0) + 1, definition=_definition(data), created_by_id=getattr(actor, "id", None))
    db.session.add(rule)
    db.session.flush()
    audit.record("parser_rule.create", f"Created parser rule '{rule.name}'", user=actor, target_type="parser_rule",
                 target_id=rule.id, after=rule_data(rule, with_id=False))
    return rule


def update_rule(rule: ParserRule, data: dict, actor) -> ParserRule:
    data = check(data)
    if _name_taken(data["name"], rule.id):
        raise ParserRuleError(f"A rule named '{data['name']}' exists already; choose another name.")
    before = rule_data(rule, with_id=False)
    rule.name, rule.enabled, rule.placement = data["name"], data["enabled"], data["runs"]
    rule.definition = _definition(data)
    after = rule_data(rule, with_id=False)
    keys = [k for k in (*before, *(k for k in after if k not in before)) if before.get(k) != after.get(k)]
    b, a = {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
    if keys:
        audit.record("parser_rule.update", f"Changed parser rule '{rule.name}'", user=actor,
                     target_type="parser_rule", target_id=rule.id, before=b, after=a)
    return rule


def delete_rule(rule: ParserRule, actor) -> None:
    audit.record("parser_rule.delete", f"Deleted parser rule '{rule.name}'", user=actor, target_type="parser_rule",
                 target_id=rule.id, before=rule_data(rule, with_id=False))
    db.session.delete(rule)


def move_rule(rule: ParserRule, direction: str, actor) -> bool:
    """Move a rule one place up or down in the order (all rules renumbered 1..n). False at an end."""
    rules = list_rules()
    i = next(i for i, r in enumerate(rules) if r.id == rule.id)
    j = i - 1 if direction == "up" else i + 1
    if direction not in ("up", "down") or not 0 <= j < len(rules):
        return False
    before = [r.name for r in rules]
    rules[i], rules[j] = rules[j], rules[i]
    for n, r in enumerate(rules, 1):
        r.position = n
    audit.record("parser_rule.reorder", f"Moved parser rule '{rule.name}' {direction}", user=actor,
                 target_type="parser_rule", target_id=rule.id, before={"order": before},
                 after={"order": [r.name for r in rules]})
    return True


# --- YAML ---------------------------------------------------------------------------------------

def export_yaml() -> str:
    """Every rule, in order, as YAML (the format of the in-app docs)."""
    rules = [rule_data(r, with_id=False) for r in list_rules()]
    return YAML_HEADER + yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True, width=120)


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (f"{len(self.created)} added, {len(self.changed)} changed, "
                f"{len(self.unchanged)} unchanged")


def import_yaml(data: bytes | str, actor) -> ImportReport:
    """Check every rule of the file first; then apply all (a rule of an existing name is changed, a new
    one added at the end, in the file's order) or, with any problem, nothing: ``ParserRuleError``
    with one line per problem."""
    if isinstance(data, bytes):
        if len(data) > MAX_YAML_BYTES:
            raise ParserRuleError("The file is larger than 1 MB; nothing was imported.")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ParserRuleError("The file is not UTF-8 text; nothing was imported.") from None
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ParserRuleError(f"The file is not valid YAML ({' '.join(str(exc).split())}); nothing was imported.") from None
    items = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ParserRuleError("The file has no 'rules:' list; nothing was imported.")
    errors, cleaned, seen = [], [], set()
    for n, item in enumerate(items, 1):
        label = f"Rule {n}" + (f" ('{item.get('name')}')" if isinstance(item, dict) and item.get("name") else "")
        try:
            rule = check(item)
        except ParserRuleError as exc:
            errors += [f"{label}: {p}" for p in exc.errors]
            continue
        if rule["name"].lower() in seen:
            errors.append(f"{label}: the name appears twice in the file")
        seen.add(rule["name"].lower())
        cleaned.append(rule)
    if errors:
        raise ParserRuleError(f"Nothing was imported: {len(errors)} problem{'s' if len(errors) != 1 else ''} in the file.",
                              errors)
    existing = {r.name.lower(): r for r in list_rules()}  # one query for all of them
    report = ImportReport()
    for rule in cleaned:
        row = existing.get(rule["name"].lower())
        if row is None:
            create_rule(rule, actor)
            report.created.append(rule["name"])
        elif rule_data(row, with_id=False) == {**rule, "name": row.name}:
            report.unchanged.append(rule["name"])
        else:
            update_rule(row, rule, actor)
            report.changed.append(rule["name"])
    audit.record("parser_rule.import", f"Imported parser rules: {report.summary}", user=actor,
                 target_type="parser_rule", after={"created": report.created, "changed": report.changed})
    return report


# --- The form -----------------------------------------------------------------------------------

_ROW_KEY = re.compile(r"^status_word_(\d+)$")


def rule_from_form(form) -> dict:
    """The rule a Parsers page form describes (field names as in templates/main/parser_rule_form.html)."""
    def val(name):
        return (form.get(name) or "").strip()

    match = {}
    for fld in ("sender", "subject", "body"):
        if val(f"{fld}_value"):
            mode = val(f"{fld}_mode") if val(f"{fld}_mode") in ("contains", "regex") else "contains"
            match[fld] = {mode: form.get(f"{fld}_value").strip("\r\n")}
    job = {"fixed": val("job_fixed")} if val("job_source") == "fixed" else \
        {"group": val("job_group"), "in": val("job_in") or "subject"}
    words = []
    indexes = sorted(int(m.group(1)) for k in form.keys() if (m := _ROW_KEY.match(k)))
    for i in indexes:
        word, status = val(f"status_word_{i}"), val(f"status_value_{i}")
        if word or status:
            words.append({"word": word, "status": status})
    objects = {}
    if val("objects_mode") == "lines" and val("objects_lines"):
        objects = {"lines": val("objects_lines")}
    elif val("objects_mode") == "table" and val("objects_name"):
        objects = {"table": {k: val(f"objects_{k}") for k in ("name", "status", "message") if val(f"objects_{k}")}}
    return {"name": val("name"), "enabled": form.get("enabled") == "on", "runs": val("runs") or "after",
            "match": match, "job": job, "status": words, "default_status": val("default_status") or None,
            "objects": objects, "software": val("software"), "backup_type": val("backup_type")}


def form_values(rule: Optional[dict]) -> dict:
    """The form's field values for a rule (plain data), for the edit form and a refused save."""
    rule = rule or {}
    out = {"name": rule.get("name", ""), "enabled": rule.get("enabled", True), "runs": rule.get("runs", "after"),
           "software": rule.get("software", ""), "backup_type": rule.get("backup_type", ""),
           "default_status": rule.get("default_status") or "", "status": list(rule.get("status") or [])}
    for fld in ("sender", "subject", "body"):
        spec = (rule.get("match") or {}).get(fld) or {}
        mode, value = next(iter(spec.items())) if spec else ("contains" if fld != "subject" else "regex", "")
        out[f"{fld}_mode"], out[f"{fld}_value"] = mode, value
    job = rule.get("job") or {}
    out["job_source"] = "fixed" if job.get("fixed") else "group"
    out["job_fixed"], out["job_group"], out["job_in"] = job.get("fixed", ""), job.get("group", "job"), job.get("in", "subject")
    objects = rule.get("objects") or {}
    out["objects_mode"] = "lines" if "lines" in objects else "table" if "table" in objects else ""
    out["objects_lines"] = objects.get("lines", "")
    for k in ("name", "status", "message"):
        out[f"objects_{k}"] = (objects.get("table") or {}).get(k, "")
    return out


# --- The live tester ----------------------------------------------------------------------------

_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:[ \t]")


def tester_message(pasted: str, sender: str = "", subject: str = "") -> Message:
    """The mail the tester tries: pasted raw .eml text (it starts with header lines), else the pasted
    text as the body with the given sender and subject."""
    text = (pasted or "").replace("\r\n", "\n")
    head = text.lstrip("\n").split("\n\n", 1)[0].split("\n")
    if head and _HEADER_LINE.match(head[0]) and any(re.match(r"^(from|subject):", h, re.I) for h in head):
        return normalize(text.lstrip("\n").encode("utf-8"))
    return Message(from_address=(sender or "").strip().lower(), subject=(subject or "").strip(), text=text)


@dataclass
class TesterOutcome:
    result: ParseResult
    message: Message
    checks: list       # every rule tried, in order: rules.RuleCheck
    not_tried: list    # enabled rules not tried because something before them matched


def try_mail(msg: Message) -> TesterOutcome:
    """Which rule or built-in parser reads the mail, everything it captured, and for every rule that
    did not match why not. Nothing is stored."""
    ruleset = load_ruleset()
    result = parse_message(msg, explain=True, rules=ruleset)
    tried = {c.name for c in result.rule_checks}
    not_tried = [r.name for r in (*ruleset.before, *ruleset.after) if r.name not in tried]
    return TesterOutcome(result=result, message=msg, checks=result.rule_checks, not_tried=not_tried)


__all__ = ["ParserRuleError", "PLACEMENTS", "STATUSES", "check", "create_rule", "delete_rule", "export_yaml",
           "import_yaml", "list_rules", "load_ruleset", "move_rule", "record_timeouts", "rule_data",
           "rule_from_form", "try_mail", "update_rule"]
