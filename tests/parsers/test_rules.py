"""The users' own rules (parsers/rules.py): pure, no database."""
import time

import pytest

from backend.app.parsers.base import Message
from backend.app.parsers.registry import parse_message
from backend.app.parsers.rules import RuleError, check_rule, compile_rule, compile_rules

BODY = """AcmeNAS backup report

Task: Nightly shares
Result: finished with errors

share-finance: OK
share-hr: Failed - disk full
share-it: Warning - 2 files skipped
"""


def mail(**kw):
    base = dict(from_address="nas01@acme-nas.example", subject="Backup task Nightly shares finished with errors",
                text=BODY)
    base.update(kw)
    return Message(**base)


def rule(**kw):
    base = {"name": "AcmeNAS", "match": {"sender": {"contains": "@acme-nas.example"},
                                         "subject": {"regex": r"Backup task (?P<job>.+?) finished"}},
            "job": {"group": "job", "in": "subject"},
            "status": [{"word": "with errors", "status": "Warning"}, {"word": "failed", "status": "Failed"},
                       {"word": "finished", "status": "Success"}],
            "software": "AcmeNAS", "backup_type": "Shares"}
    base.update(kw)
    return base


def test_contains_and_regex_capture_the_job_and_first_status_word_wins():
    result, check = check_rule(compile_rule(rule()), mail())
    assert check.matched and check.reason == "matched"
    assert (result.job_name, result.overall_status, result.software, result.backup_type) == \
        ("Nightly shares", "Warning", "AcmeNAS", "Shares")
    assert result.parser == "rule: AcmeNAS"


def test_status_words_are_tried_in_their_order():
    r = rule(status=[{"word": "finished", "status": "Success"}, {"word": "with errors", "status": "Warning"}])
    result, _ = check_rule(compile_rule(r), mail())
    assert result.overall_status == "Success"


def test_numbered_group_and_fixed_job_name():
    r = rule(match={"subject": {"regex": r"task (\w+)"}}, job={"group": 1, "in": "subject"})
    assert check_rule(compile_rule(r), mail())[0].job_name == "Nightly"
    r = rule(job={"fixed": "All shares"})
    assert check_rule(compile_rule(r), mail())[0].job_name == "All shares"


def test_why_a_rule_did_not_match():
    assert check_rule(compile_rule(rule()), mail(from_address="x@other.example"))[1].reason == \
        "sender does not contain '@acme-nas.example'"
    assert check_rule(compile_rule(rule()), mail(subject="Hello"))[1].reason == "subject regex did not match"
    r = rule(status=[{"word": "zzz", "status": "Failed"}])
    assert check_rule(compile_rule(r), mail())[1].reason == "no status word found"
    r["default_status"] = "Success"
    assert check_rule(compile_rule(r), mail())[0].overall_status == "Success"


def test_objects_from_repeated_lines():
    r = rule(objects={"lines": r"^(?P<name>share-[\w-]+): (?P<status>\w+)(?: - (?P<message>.*))?$"})
    result, _ = check_rule(compile_rule(r), mail())
    assert [(o.name, o.status, o.message) for o in result.objects] == [
        ("share-finance", "Success", ""), ("share-hr", "Failed", "disk full"),
        ("share-it", "Warning", "2 files skipped")]


def test_objects_from_table_rows():
    html = ("<table><tr><th>Share</th><th>Result</th><th>Details</th></tr>"
            "<tr><td>docs</td><td>Success</td><td></td></tr><tr><td>mail</td><td>Failed</td><td>locked</td></tr></table>")
    r = rule(objects={"table": {"name": "Share", "status": "Result", "message": "Details"}})
    result, _ = check_rule(compile_rule(r), mail(html=html, text="finished"))
    assert [(o.name, o.status, o.message) for o in result.objects] == [("docs", "Success", ""),
                                                                       ("mail", "Failed", "locked")]


def test_before_rules_come_before_the_builtins_and_after_rules_after():
    # A Synology-like mail that a built-in parser would read: a "before" rule takes it first.
    from pathlib import Path
    from backend.app.parsers.normalize import normalize
    msg = normalize((Path(__file__).parent / "samples" / "acronis_backup_succeeded_en.eml").read_bytes())
    builtin = parse_message(msg)
    assert builtin.parsed and not builtin.parser.startswith("rule: ")
    grab_all = rule(name="grab", match={"subject": {"regex": r"(?P<job>.+)"}}, default_status="Success")
    rs, _ = compile_rules([dict(grab_all, runs="after")])
    assert parse_message(msg, rules=rs).parser == builtin.parser
    rs, _ = compile_rules([dict(grab_all, runs="before")])
    assert parse_message(msg, rules=rs).parser == "rule: grab"
    # An unknown mail: the after rule reads it, and the checks say so.
    rs, _ = compile_rules([dict(rule(), runs="after")])
    result = parse_message(mail(), rules=rs)
    assert result.parser == "rule: AcmeNAS" and [c.reason for c in result.rule_checks] == ["matched"]


def test_rules_are_tried_in_order_and_disabled_rules_are_left_out():
    first = rule(name="first", job={"fixed": "one"})
    second = rule(name="second", job={"fixed": "two"})
    rs, _ = compile_rules([dict(first, enabled=False), second])
    assert parse_message(mail(), rules=rs).job_name == "two"
    rs, _ = compile_rules([first, second])
    assert parse_message(mail(), rules=rs).job_name == "one"


def test_no_status_word_leaves_the_mail_unparsed_with_the_reason():
    rs, _ = compile_rules([rule(status=[{"word": "zzz", "status": "Failed"}])])
    result = parse_message(mail(), rules=rs)
    assert not result.parsed and result.reason == "your rule 'AcmeNAS' recognised the mail: no status word found"


def test_a_catastrophic_regex_times_out_within_the_limit():
    r = rule(match={"body": {"regex": r"(a+)+$"}}, job={"fixed": "x"})
    compiled = compile_rule(r)
    t = time.monotonic()
    result, check = check_rule(compiled, mail(text="a" * 50_000 + "!"))
    assert time.monotonic() - t < 2
    assert result is None and check.timed_out and check.reason.startswith("timeout")
    # The mail goes on to the next rule.
    rs, _ = compile_rules([r, rule(name="next", match={"body": {"contains": "aaa"}}, job={"fixed": "y"},
                                   default_status="Success")])
    result = parse_message(mail(text="a" * 50_000 + "!"), rules=rs)
    assert result.job_name == "y" and [c.timed_out for c in result.rule_checks] == [True, False]


@pytest.mark.parametrize("change, problem", [
    ({"match": {"subject": {"regex": "(unclosed"}}}, "invalid regular expression"),
    ({"match": {"subject": {"regex": "x" * 600}}}, "longer than 500"),
    ({"job": {}}, "capture the job name"),
    ({"job": {"group": "nope", "in": "subject"}}, "has no group 'nope'"),
    ({"job": {"group": "job", "in": "body"}}, "has no body regex"),
    ({"status": []}, "map at least one word"),
    ({"status": [{"word": "ok", "status": "Great"}]}, "must be one of"),
    ({"match": {}}, "at least one of sender, subject or body"),
    ({"software": ""}, "the software is required"),
    ({"objects": {"lines": r"(?P<x>\w+)"}}, "group named name"),
])
def test_invalid_rules_are_refused_with_the_reason(change, problem):
    with pytest.raises(RuleError) as err:
        compile_rule(rule(**change))
    assert problem in str(err.value)
