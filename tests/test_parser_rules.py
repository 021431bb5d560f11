"""The users' own parser rules on the Parsers page: saving (checked), order, audit, YAML export and
import (all or nothing), roles, the tester's reasons, the import using them, "Try the rules on the Inbox"."""
import io
from html import unescape

import pytest
import yaml
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, MailMessage, ParserRule
from backend.app.services import parser_rules
from backend.app.services.ingest import ingest_message

from .conftest import post_form
from .helpers import make_customer, make_job

NAS_MAIL = (b"From: StoreVault NAS <alerts@storevault.example>\r\n"
            b"To: backups@msp.example\r\n"
            b"Subject: [SV-200] Backup job 'Office shares' completed with warnings\r\n"
            b"Date: Fri, 04 Dec 2026 02:10:00 +0000\r\n"
            b"Message-ID: <sv-1@storevault.example>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            b"StoreVault OS backup report\r\n\r\n"
            b"Folder finance: OK\r\nFolder hr: WARNING - 3 files in use\r\n")

RULE = {"name": "StoreVault", "runs": "after",
        "match": {"sender": {"contains": "@storevault.example"},
                  "subject": {"regex": r"Backup job '(?P<job>[^']+)'"}},
        "job": {"group": "job", "in": "subject"},
        "status": [{"word": "with warnings", "status": "Warning"}, {"word": "failed", "status": "Failed"},
                   {"word": "completed", "status": "Success"}],
        "objects": {"lines": r"^Folder (?P<name>\w+): (?P<status>\w+)(?: - (?P<message>.*))?$"},
        "software": "StoreVault OS", "backup_type": "Folder backup"}


def form_of(rule: dict) -> dict:
    """The rule as the form posts it."""
    v = parser_rules.form_values(rule)
    data = {k: v[k] for k in v if k != "status" and not isinstance(v[k], bool)}
    if v["enabled"]:
        data["enabled"] = "on"
    for i, w in enumerate(v["status"], 1):
        data[f"status_word_{i}"], data[f"status_value_{i}"] = w["word"], w["status"]
    return data


def rule_count():
    return db.session.execute(select(func.count(ParserRule.id))).scalar_one()


def events():
    return db.session.execute(select(AuditLog.event).order_by(AuditLog.id)).scalars().all()


def test_an_admin_creates_a_rule_from_the_form_and_it_is_audited(as_user):
    c = as_user("admin")
    r = post_form(c, "/parsers/rules/new", form_of(RULE))
    assert r.status_code == 302
    rule = db.session.execute(select(ParserRule)).scalar_one()
    assert parser_rules.rule_data(rule, with_id=False) == {**RULE, "enabled": True}
    assert "parser_rule.create" in events()
    html = c.get("/parsers").get_data(as_text=True)
    assert "StoreVault" in html and "@storevault.example" in html


@pytest.mark.parametrize("change, message", [
    ({"subject_value": "Backup job '(?P<job>[^']+"}, "invalid regular expression"),
    ({"job_group": "", "job_source": "group"}, "capture the job name"),
    ({"status_word_1": "", "status_value_1": "", "status_word_2": "", "status_value_2": "",
      "status_word_3": "", "status_value_3": ""}, "map at least one word to a status"),
])
def test_a_bad_rule_shows_the_reason_and_saves_nothing(as_user, change, message):
    r = post_form(as_user("admin"), "/parsers/rules/new", {**form_of(RULE), **change})
    assert r.status_code == 400
    assert message in unescape(r.get_data(as_text=True))
    assert rule_count() == 0 and "parser_rule.create" not in events()


def test_change_reorder_and_delete_are_audited(as_user):
    admin = as_user("admin")
    a = parser_rules.create_rule({**RULE, "name": "A"}, None)
    b = parser_rules.create_rule({**RULE, "name": "B"}, None)
    db.session.commit()
    post_form(admin, f"/parsers/rules/{b.id}", {**form_of(RULE), "name": "B", "software": "Other"})
    post_form(admin, f"/parsers/rules/{b.id}/move", {"direction": "up"})
    assert [r.name for r in parser_rules.list_rules()] == ["B", "A"]
    post_form(admin, f"/parsers/rules/{a.id}/delete")
    assert [r.name for r in parser_rules.list_rules()] == ["B"]
    entries = db.session.execute(select(AuditLog).where(AuditLog.event.like("parser_rule.%"))
                                 .order_by(AuditLog.id)).scalars().all()
    assert [e.event for e in entries][-3:] == ["parser_rule.update", "parser_rule.reorder", "parser_rule.delete"]
    assert entries[-3].after == {"software": "Other"} and entries[-3].before == {"software": "StoreVault OS"}


def test_only_admins_manage_rules(as_user):
    rule = parser_rules.create_rule(RULE, None)
    db.session.commit()
    for role in ("operator", "reporter", "viewer"):
        c = as_user(role)
        assert c.get("/parsers/rules/new").status_code == 403
        assert c.get(f"/parsers/rules/{rule.id}").status_code == 403
        assert c.get("/parsers/rules/export").status_code == 403
        assert post_form(c, f"/parsers/rules/{rule.id}/delete").status_code == 403
        assert post_form(c, "/parsers/rules/try-inbox").status_code == 403
    assert rule_count() == 1


def test_yaml_export_then_import_round_trips(as_user):
    parser_rules.create_rule(RULE, None)
    parser_rules.create_rule({**RULE, "name": "Fixed", "job": {"fixed": "All"}, "runs": "before",
                              "default_status": "Success", "objects": {"table": {"name": "Folder"}}}, None)
    db.session.commit()
    c = as_user("admin")
    exported = c.get("/parsers/rules/export")
    assert exported.status_code == 200 and "parser-rules-" in exported.headers["Content-Disposition"]
    text = exported.get_data(as_text=True)
    before = [parser_rules.rule_data(r, with_id=False) for r in parser_rules.list_rules()]
    assert yaml.safe_load(text)["rules"] == before
    for r in parser_rules.list_rules():
        db.session.delete(r)
    db.session.commit()
    r = post_form(c, "/parsers/rules/import", {"file": (io.BytesIO(text.encode()), "rules.yaml")},
                  content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [parser_rules.rule_data(x, with_id=False) for x in parser_rules.list_rules()] == before
    # The same file again changes nothing.
    report = parser_rules.import_yaml(text, None)
    assert report.unchanged == ["StoreVault", "Fixed"] and not report.created and not report.changed
    assert "parser_rule.import" in events()


def test_a_broken_yaml_file_imports_nothing_and_names_every_problem(as_user):
    parser_rules.create_rule(RULE, None)
    db.session.commit()
    doc = {"rules": [{**RULE, "name": "New one"},
                     {**RULE, "name": "Bad regex", "match": {"subject": {"regex": "(x"}}},
                     {**RULE, "name": "StoreVault", "status": []}]}
    r = post_form(as_user("admin"), "/parsers/rules/import",
                  {"file": (io.BytesIO(yaml.safe_dump(doc).encode()), "rules.yaml")}, content_type="multipart/form-data")
    html = unescape(r.get_data(as_text=True))
    assert r.status_code == 400
    assert "Rule 2 ('Bad regex'): match subject: invalid regular expression" in html
    assert "Rule 3 ('StoreVault'): status: map at least one word" in html
    assert [x.name for x in parser_rules.list_rules()] == ["StoreVault"]
    assert parser_rules.list_rules()[0].definition["status"] == RULE["status"]
    r = post_form(as_user("admin"), "/parsers/rules/import",
                  {"file": (io.BytesIO(b"rules: [unclosed"), "rules.yaml")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "not valid YAML" in r.get_data(as_text=True)


def test_the_tester_shows_the_match_and_why_other_rules_did_not(as_user):
    parser_rules.create_rule({**RULE, "name": "Other sender", "match": {"sender": {"contains": "@nowhere.example"},
                                                                     "subject": RULE["match"]["subject"]}}, None)
    parser_rules.create_rule({**RULE, "name": "Bad subject", "match": {"subject": {"regex": r"Job (?P<job>\d+)"}}}, None)
    parser_rules.create_rule({**RULE, "name": "No word", "status": [{"word": "zzz", "status": "Failed"}]}, None)
    parser_rules.create_rule(RULE, None)
    db.session.commit()
    r = post_form(as_user("admin"), "/parsers", {"pasted": NAS_MAIL.decode()})
    html = unescape(r.get_data(as_text=True))
    assert "rule: StoreVault" in html and "Office shares" in html and "StoreVault OS" in html
    assert "hr" in html and "3 files in use" in html  # the objects
    assert "sender does not contain '@nowhere.example'" in html
    assert "subject regex did not match" in html
    assert "no status word found" in html
    assert db.session.execute(select(func.count(MailMessage.id))).scalar_one() == 0


def test_the_tester_takes_a_pasted_body_with_sender_and_subject(as_user):
    parser_rules.create_rule(RULE, None)
    db.session.commit()
    r = post_form(as_user("admin"), "/parsers", {"pasted": "Folder a: OK\n", "sender": "x@storevault.example",
                                                 "subject": "Backup job 'Pasted' failed"})
    html = unescape(r.get_data(as_text=True))
    assert "rule: StoreVault" in html and "Pasted" in html and "Failed" in html


def test_the_import_uses_the_rules_and_notes_a_timeout_on_the_rule(app):
    parser_rules.create_rule({**RULE, "name": "Slow", "runs": "before",
                              "match": {"body": {"regex": r"(a+)+$"}}, "job": {"fixed": "x"}}, None)
    parser_rules.create_rule(RULE, None)
    db.session.commit()
    body = NAS_MAIL.replace(b"Folder hr", b"a" * 30000 + b"!\r\nFolder hr")
    outcome = ingest_message(body)
    msg = db.session.get(MailMessage, outcome.message_id)
    assert msg.parser_name == "rule: StoreVault" and msg.job_name == "Office shares" and msg.overall_status == "Warning"
    slow = db.session.execute(select(ParserRule).where(ParserRule.name == "Slow")).scalar_one()
    assert slow.last_timeout_at is not None and "Office shares" in slow.last_timeout_subject


def test_try_the_rules_on_the_inbox_turns_a_mail_into_a_proposal_and_a_run(as_user, synchronous_tasks):
    ingest_message(NAS_MAIL)
    ingest_message(NAS_MAIL.replace(b"sv-1@", b"sv-2@").replace(b"Office shares", b"Known job"))
    assert db.session.execute(select(func.count(MailMessage.id)).where(MailMessage.parsed.is_(False))).scalar_one() == 2
    make_job(customer=make_customer(name="Acme"), sender="alerts@storevault.example", job_name="Known job",
             software="StoreVault OS")
    parser_rules.create_rule(RULE, None)
    db.session.commit()
    r = post_form(as_user("admin"), "/parsers/rules/try-inbox")
    assert r.status_code == 302 and "task=" in r.headers["Location"]
    from backend.app.models import BackgroundTask
    task = db.session.execute(select(BackgroundTask)).scalar_one()
    assert task.state == "done", task.message
    assert "1 became runs of known jobs, 1 are now read by a rule" in task.message
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 1
    proposal = db.session.execute(select(MailMessage).where(MailMessage.state == "inbox")).scalar_one()
    assert proposal.parser_name == "rule: StoreVault" and proposal.job_name == "Office shares"
    assert "inbox.try_rules" in events()


def test_the_documented_yaml_example_imports_and_reads_its_mail(app):
    import re
    from pathlib import Path

    from backend.app.parsers.base import Message
    from backend.app.parsers.registry import parse_message

    docs = (Path(__file__).parents[1] / "containers/backupchecks/src/backend/app/docs/pages/parsers.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", docs, re.S).group(1)
    assert parser_rules.import_yaml(example, None).created == ["Quillstone Q4"]
    db.session.commit()
    msg = Message(from_address="nas-q4@quillstone.example", text="volume1: done\nvolume2: skipped - target full\n",
                  subject='Q4-NAS: replication task "Branch office" finished with warnings')
    result = parse_message(msg, rules=parser_rules.load_ruleset())
    assert (result.job_name, result.overall_status, len(result.objects)) == ("Branch office", "Warning", 2)


def test_the_rule_pages_need_no_inline_code(as_user):
    from .test_csp import inline_problems

    rule = parser_rules.create_rule({**RULE, "objects": {"table": {"name": "Folder"}}}, None)
    db.session.commit()
    c = as_user("admin")
    for r in (c.get("/parsers"), c.get("/parsers/rules/new?sender=a@b.example&subject=x"),
              c.get(f"/parsers/rules/{rule.id}"), post_form(c, "/parsers", {"pasted": NAS_MAIL.decode()}),
              post_form(c, "/parsers/rules/new", {**form_of(RULE), "name": ""})):
        assert r.status_code in (200, 400)
        assert inline_problems(r.get_data(as_text=True)) == []
    # The edit form shows the stored rule.
    html = unescape(c.get(f"/parsers/rules/{rule.id}").get_data(as_text=True))
    assert "Backup job '(?P<job>[^']+)'" in html and 'value="Folder"' in html


def test_without_a_status_word_or_default_the_mail_waits_in_the_inbox_with_the_reason(app):
    parser_rules.create_rule({**RULE, "status": [{"word": "exploded", "status": "Failed"}]}, None)
    db.session.commit()
    msg = db.session.get(MailMessage, ingest_message(NAS_MAIL).message_id)
    assert msg.state == "inbox" and not msg.parsed
    assert msg.parse_reason == "your rule 'StoreVault' recognised the mail: no status word found"
