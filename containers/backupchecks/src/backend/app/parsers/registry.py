"""The ordered list of parsers and the one entry point the rest of the app uses.

Order matters: more specific parsers come first. The registry never raises:
whatever the bytes, :func:`parse_raw` returns a :class:`ParseResult`.
"""
from __future__ import annotations

import traceback
from typing import Iterable

from . import acronis, backupexec, cove, duplicati, hornetsecurity, macrium, nakivo, not_report, panel3
from . import proxmox, qnap, syncovery, synology, veeam, windows_server_backup
from .base import Message, ParseResult, Parser
from .normalize import normalize
from .rules import RuleSet, apply_rules

# Explicit, ordered: each module exposes PARSERS, most specific first within it.
_MODULES = (
    not_report,           # newsletters, update notices: recognised, software None
    veeam,                # VSPC/Cloud Connect, VB365, agents, VBR job types
    windows_server_backup,
    synology,
    qnap,
    proxmox,
    nakivo,
    acronis,
    cove,
    backupexec,
    macrium,
    hornetsecurity,
    duplicati,
    syncovery,
    panel3,
)

PARSERS: tuple[Parser, ...] = tuple(p for mod in _MODULES for p in mod.PARSERS)


def all_parsers() -> Iterable[Parser]:
    return PARSERS


def parse_message(msg: Message, explain: bool = False, rules: RuleSet | None = None) -> ParseResult:
    """Run the first matching parser over a normalised message. Never raises.

    ``rules`` are the users' own rules (``parsers/rules.py``, compiled once per import batch): those
    that run "before" are tried first, those that run "after" only when no built-in parser matched.
    What each rule tried made of the mail is in the result's ``rule_checks`` (matched, or why not).

    The result keeps what the parser's ``matches()`` said in ``match_reason``. With ``explain`` the
    result also lists the parser's declared criteria that the message meets (``evidence``), for the
    Parsers page; the import leaves it off (it costs a pass over the body per marker)."""
    checks: list = []
    if rules:
        found = apply_rules(rules.before, msg, checks)
        if found is not None:
            found.rule_checks = checks
            return found
    result = _builtin(msg, explain)
    if result is None and rules:
        result = apply_rules(rules.after, msg, checks)
    if result is None:
        why = [c for c in checks if c.reason == "no status word found"]
        reason = "no parser recognised this message"
        if why:
            reason = f"your rule '{why[0].name}' recognised the mail: no status word found"
        result = ParseResult(parsed=False, reason=reason)
    result.rule_checks = checks
    return result


def _builtin(msg: Message, explain: bool) -> ParseResult | None:
    """The first built-in parser's result; None when none matches."""
    for parser in PARSERS:
        try:
            reason = parser.matches(msg)
        except Exception as exc:  # noqa: BLE001 - a broken matcher must not stop the rest
            reason = None
            _ = exc
        if not reason:
            continue
        try:
            result = parser.parse(msg)
        except Exception as exc:  # noqa: BLE001
            result = ParseResult(
                parser=parser.name,
                parsed=False,
                reason=f"{parser.name} matched ({reason}) but raised {type(exc).__name__}: {exc}",
                error="".join(traceback.format_exception_only(type(exc), exc)).strip(),
            )
        result.parser = parser.name
        result.match_reason = str(reason)
        if not result.reason:
            result.reason = result.match_reason
        if explain:
            try:
                result.evidence = parser.evidence(msg)
            except Exception:  # noqa: BLE001 - an explanation must never break a parse
                result.evidence = []
        return result
    return None


def parse_raw(raw: bytes | str, explain: bool = False, rules: RuleSet | None = None) -> ParseResult:
    """Normalise raw RFC 822 bytes and parse them (see :func:`parse_message`). Never raises."""
    try:
        msg = normalize(raw)
    except Exception as exc:  # noqa: BLE001
        return ParseResult(parsed=False, reason=f"unreadable message: {type(exc).__name__}: {exc}",
                           error=str(exc))
    return parse_message(msg, explain=explain, rules=rules)
