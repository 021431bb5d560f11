"""The helpers the vendor parsers share: status rules, first-match lookups, table cells and columns, dates."""
import re
from datetime import datetime, timedelta, timezone

import lxml.html

from backend.app.parsers.base import (
    FAILED, SUCCESS, WARNING, Message, Parser, first_group, first_label, status_from_rules, vendor_status,
)
from backend.app.parsers.dates import combine_date_time, mail_tz, parse_with_formats, strptime_any
from backend.app.parsers.tables import (
    cell_at, column_index, html_label_text, label_value_rows, row_texts, split_columns,
)

RULES = ((WARNING, re.compile(r"with errors")), (FAILED, re.compile(r"fail|error")), (SUCCESS, re.compile(r"ok")))


def test_status_rules_take_the_first_rule_that_matches():
    assert status_from_rules("completed with errors", RULES) == WARNING   # before "error" makes it a failure
    assert status_from_rules("error", RULES) == FAILED
    assert status_from_rules("ok", RULES) == SUCCESS
    assert status_from_rules("pending", RULES) is None


def test_vendor_status_falls_back_to_the_shared_words():
    assert vendor_status("OK", RULES) == SUCCESS                  # no rule matches "OK"; the shared words do
    assert vendor_status("OK", RULES, lower=True) == SUCCESS      # the rule matches "ok"
    assert vendor_status("Erfolgreich", RULES) == SUCCESS
    assert vendor_status("Pending", RULES) is None


def test_first_label_and_first_group():
    table = (("restore", "Restore"), ("verify", "Verify"))
    assert first_label("job restore verify", table, "Backup") == "Restore"
    assert first_label("job", table, "Backup") == "Backup"
    rx = re.compile(r"^Start:\s*(?P<v>.+)$", re.M)
    assert first_group(rx, "x\nStart: 10:00", "v") == "10:00"
    assert first_group(rx, "no start line") is None


def test_a_parser_describes_itself_in_its_docstring():
    class Example(Parser):
        """Mails with   'X' in the subject;
        one object per row."""

    assert Example.description == "Mails with 'X' in the subject; one object per row."


def _tree(html):
    return lxml.html.document_fromstring(html)


def test_table_rows_and_label_value_pairs():
    tree = _tree("<table><tr><th> Job\xa0name: </th><td>Nightly  run</td></tr>"
                 "<tr><td>VM</td><td>Status</td><td>Notes</td></tr></table>")
    rows = list(tree.iter("tr"))
    assert row_texts(rows[1]) == ["VM", "Status", "Notes"]
    assert list(label_value_rows(tree)) == [("Job name:", "Nightly run")]
    assert html_label_text(Message(html="<html><body>" + lxml.html.tostring(tree, encoding="unicode")
                                   + "</body></html>")) == "Job name: Nightly run"


def test_columns():
    header = ["vm", "status", "notes"]
    assert column_index(header, ("status", "result")) == 1
    assert column_index(header, ("size",)) is None
    assert cell_at(["a", "b"], 1) == "b"
    assert cell_at(["a"], 2) == "" and cell_at(["a"], None) == ""
    assert split_columns("  app01\tSuccess   disk full ") == ["app01", "Success", "disk full"]
    assert split_columns("app01 | Failed | -") == ["app01", "Failed", "-"]


def test_dates():
    cet = timezone(timedelta(hours=1))
    msg = Message(date=datetime(2024, 3, 5, 23, 0, tzinfo=cet))
    assert mail_tz(msg) is cet and mail_tz(Message()) is timezone.utc
    assert strptime_any("05.03.2024 22:00", ("%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M")) == datetime(2024, 3, 5, 22, 0)
    assert strptime_any("yesterday", ("%d.%m.%Y",)) is None
    assert parse_with_formats(" 05.03.2024   22:00 ", ("%d.%m.%Y %H:%M",), msg) == datetime(2024, 3, 5, 22, 0, tzinfo=cet)
    day = datetime(2024, 3, 5, tzinfo=cet)
    assert combine_date_time(day, "10:00:14 PM") == datetime(2024, 3, 5, 22, 0, 14, tzinfo=cet)
    assert combine_date_time(day, "12:05 AM") == datetime(2024, 3, 5, 0, 5, tzinfo=cet)
    assert combine_date_time(day, "no time") is None
