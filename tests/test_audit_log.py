"""The audit log page: who, when, what; filter by user, event and date; paged by position (Older / Newer)
with a capped count; changes shown as "field: old → new" with secrets hidden, the stored entries untouched."""
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from sqlalchemy import delete, select

from backend.app.extensions import db
from backend.app.models import AuditLog
from backend.app.services import audit
from backend.app.services.settings import ui_zone

from .conftest import login


def add(event, username, when, summary="x"):
    db.session.add(AuditLog(event=event, username=username, created_at=when, summary=summary))


T0 = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def test_filters(as_user):
    c = as_user("admin")
    now = T0
    for i in range(60):
        add("settings.general", "bob", now - timedelta(minutes=i), summary=f"change {i}")
    add("user.create", "carol", now - timedelta(days=10), summary="old one")
    db.session.commit()
    page1 = c.get("/audit-log?user=bob").get_data(as_text=True)
    assert "change 0" in page1 and "change 49" in page1 and "change 50" not in page1
    by_event = c.get("/audit-log?event=user.create").get_data(as_text=True)
    assert "old one" in by_event and "change 1" not in by_event
    day = (now - timedelta(days=10)).astimezone(ui_zone()).strftime("%Y-%m-%d")  # filters are in the UI zone
    dated = c.get(f"/audit-log?from={day}&to={day}").get_data(as_text=True)
    assert "old one" in dated and "change 1" not in dated


# --- Pages: Older / Newer links that carry the position and the filters -------------------------

def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-audit-id="(\d+)"', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return unescape(found.group(1)) if found else None


def _total(html: str) -> str | None:
    found = re.search(r'id="audit-total">([^<]+)<', html)
    return found.group(1) if found else None


def test_older_and_newer_walk_every_matching_entry_once_keeping_the_filters(as_user, monkeypatch):
    monkeypatch.setattr(audit, "AUDIT_PER_PAGE", 4)
    c = as_user("admin")
    wanted = []
    for i in range(11):  # three entries share each moment: the id decides between them
        event = "settings.general" if i % 2 else "settings.mail"
        entry = AuditLog(event=event, username="Bob", created_at=T0 - timedelta(minutes=i // 3), summary=f"s{i}")
        db.session.add(entry)
        wanted.append(entry)
    # Entries the filters leave out: another user, another event, the day before the range.
    db.session.add_all([AuditLog(event="settings.general", username="carol", created_at=T0, summary="carol"),
                        AuditLog(event="user.create", username="bob", created_at=T0, summary="other event"),
                        AuditLog(event="settings.mail", username="bob", created_at=T0 - timedelta(days=1),
                                 summary="day before")])
    db.session.commit()
    newest_first = [e.id for e in sorted(wanted, key=lambda e: (e.created_at, e.id), reverse=True)]
    day = T0.astimezone(ui_zone()).strftime("%Y-%m-%d")

    first = c.get(f"/audit-log?user=bob&event=settings&from={day}&to={day}").get_data(as_text=True)
    assert _link(first, "prev") is None and _link(first, "first") is None  # the newest page
    assert _total(first) == "11 entries"
    pages, html = [_ids(first)], first
    while (older := _link(html, "next")) is not None:
        assert "user=bob" in older and "event=settings" in older and f"from={day}" in older and f"to={day}" in older
        html = c.get(older).get_data(as_text=True)
        pages.append(_ids(html))
    assert [len(p) for p in pages] == [4, 4, 3]
    assert [i for p in pages for i in p] == newest_first  # each entry once, newest first

    # And back: Newer links give the same pages in reverse; Newest goes to the first page.
    back = [pages[-1]]
    while (newer := _link(html, "prev")) is not None:
        assert "user=bob" in newer and "event=settings" in newer
        html = c.get(newer).get_data(as_text=True)
        back.append(_ids(html))
    assert back == pages[::-1]
    assert _link(html, "first") is None
    middle = c.get(_link(first, "next")).get_data(as_text=True)
    assert _ids(c.get(_link(middle, "first")).get_data(as_text=True)) == pages[0]


def test_a_new_entry_does_not_shift_the_older_pages(as_user, monkeypatch):
    monkeypatch.setattr(audit, "AUDIT_PER_PAGE", 3)
    c = as_user("admin")
    for i in range(7):
        add("job.review", "bob", T0 - timedelta(minutes=i), summary=f"r{i}")
    db.session.commit()
    first = c.get("/audit-log?user=bob").get_data(as_text=True)
    add("job.review", "bob", T0 + timedelta(minutes=1), summary="newest")
    db.session.commit()
    second = c.get(_link(first, "next")).get_data(as_text=True)
    assert [s for s in re.findall(r"<td>(r\d|newest)</td>", second)] == ["r3", "r4", "r5"]
    back = c.get(_link(second, "prev")).get_data(as_text=True)  # the page before: what was first
    assert _ids(back) == _ids(first) and _link(back, "prev") is not None  # and there is a newer one now


@pytest.mark.parametrize("arg", ["older=yesterday", "newer=2026-02-30T00:00:00.000000Z_1",
                                 "older=2026-11-25T09:30:00.000000Z_1234567890123456789",
                                 "older=2026-11-25T09:30:00.000000Z_2147483648",
                                 "older=2026-11-25T09:30:00.000000Z_1%0A",
                                 "newer=2026-11-25%2009:30:00_1", "older=%00"])
def test_a_bad_page_link_gets_a_clear_message(as_user, arg):
    r = as_user("admin").get(f"/audit-log?user=bob&{arg}")
    text = unescape(r.get_data(as_text=True))
    assert r.status_code == 400
    assert "This page link is not valid" in text and "start from the newest entries" in text


def test_past_the_oldest_entry_the_page_offers_the_way_back(as_user):
    c = as_user("admin")
    add("job.review", "bob", T0, summary="only one")
    db.session.commit()
    html = c.get("/audit-log?user=bob&older=2000-01-01T00:00:00.000000Z_1").get_data(as_text=True)
    assert "No audit entries match these filters." in html
    assert "only one" in c.get(_link(html, "prev")).get_data(as_text=True)


def test_the_count_is_exact_up_to_the_cap_and_capped_beyond(as_user, monkeypatch):
    monkeypatch.setattr(audit, "AUDIT_PER_PAGE", 2)
    monkeypatch.setattr(audit, "COUNT_CAP", 5)
    c = as_user("admin")
    for i in range(5):
        add("job.review", "bob", T0 - timedelta(minutes=i))
    db.session.commit()
    assert _total(c.get("/audit-log?user=bob").get_data(as_text=True)) == "5 entries"
    add("job.review", "bob", T0 - timedelta(minutes=9))
    db.session.commit()
    first = c.get("/audit-log?user=bob").get_data(as_text=True)
    assert _total(first) == "5+ entries"
    assert _total(c.get(_link(first, "next")).get_data(as_text=True)) == "5+ entries"  # on every page
    assert _total(c.get("/audit-log?user=bob&event=nothing.like.this").get_data(as_text=True)) is None


def test_the_count_text():
    page = audit.AuditPage(rows=[], total=audit.COUNT_CAP + 1, events=[], newer=None, older=None)
    assert page.total_text == "1,000+ entries"
    assert audit.AuditPage([], audit.COUNT_CAP, [], None, None).total_text == "1,000 entries"
    assert audit.AuditPage([], 1, [], None, None).total_text == "1 entry"


def test_the_event_list_holds_every_event_in_the_log_and_only_those(as_user):
    c = as_user("admin")  # logging in writes a "login" entry
    for event in ("user.create", "settings.mail", "user.create", "ticket.created", "settings.mail", "a_b%c"):
        add(event, "bob", T0)
    db.session.commit()
    html = c.get("/audit-log").get_data(as_text=True)
    select_html = html.split('id="f-event"')[1].split("</select>")[0]
    options = [unescape(o) for attrs, o in re.findall(r"<option([^>]*)>([^<]+)</option>", select_html) if 'value=""' not in attrs]
    present = sorted(set(db.session.execute(select(AuditLog.event)).scalars()))
    assert options == present == ["a_b%c", "login", "settings.mail", "ticket.created", "user.create"]
    # An event whose entries are gone leaves the list.
    db.session.execute(delete(AuditLog).where(AuditLog.event == "ticket.created"))
    db.session.commit()
    assert audit.event_names() == ["a_b%c", "login", "settings.mail", "user.create"]


def test_the_event_filter_matches_the_events_that_start_with_it(as_user):
    c = as_user("admin")
    for event in ("settings.general", "settings.mail", "settingsx", "a_b%c", "axb%c", "a_bc"):
        add(event, "bob", T0, summary=f"is {event}")
    db.session.commit()

    def shown(prefix):
        html = c.get("/audit-log", query_string={"user": "bob", "event": prefix}).get_data(as_text=True)
        return sorted(re.findall(r"<td>is ([^<]+)</td>", html))

    assert shown("settings.") == ["settings.general", "settings.mail"]
    assert shown("settings.mail") == ["settings.mail"]
    assert shown("a_b%") == ["a_b%c"]  # % and _ are themselves, not wildcards
    assert shown("nothing") == []


def test_a_bad_date_gets_a_clear_message(as_user):
    r = as_user("admin").get("/audit-log?from=yesterday")
    assert r.status_code == 400 and "use YYYY-MM-DD" in r.get_data(as_text=True)


def test_logins_and_failed_logins_are_listed(app, personas):
    c = app.test_client()
    login(c, "alice", "wrong-password-xx")
    login(c, "alice")
    text = c.get("/audit-log").get_data(as_text=True)
    plain = unescape(re.sub(r"<[^>]+>", "", text))
    assert "1 failed login(s) from 127.0.0.1 for alice" in text and "failed: 1" in plain
    assert "alice logged in" in text


# --- Changes shown as "field: old → new" ------------------------------------------------------

WHEN = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def _changes_of(html: str, entry_id: int) -> list[str]:
    row = html.split(f'data-audit-id="{entry_id}"')[1].split("</tr>")[0]
    cell = row.split('<td class="small">')[1].split("</td>")[0]
    return [" ".join(unescape(re.sub(r"<[^>]+>", "", d)).split())
            for d in re.findall(r'<div class="audit-change">(.*?)</div>', cell, re.S)]


def _entry(event, before=None, after=None):
    entry = audit.record(event, f"{event} test", username="alice", before=before, after=after)
    entry.created_at = WHEN
    db.session.commit()
    return entry


def test_changes_read_field_old_new_with_creations_deletions_and_secrets(as_user):
    update = _entry("settings.mail",
                    before={"graph_tenant_id": "old-tenant", "graph_client_secret": "s3cret-old",
                            "auto_import_enabled": True, "import_interval_minutes": 15},
                    after={"graph_tenant_id": "new-tenant", "graph_client_secret": "s3cret-new",
                           "auto_import_enabled": False, "import_interval_minutes": 15})
    secret_set = _entry("settings.mail", before={"graph_client_secret": None}, after={"graph_client_secret": "x1"})
    created = _entry("user.create", after={"username": "bob", "roles": ["operator", "viewer"]})
    deleted = _entry("user.delete", before={"username": "carol", "roles": ["reporter"], "runs": 0})
    schedule = _entry("job.schedule.set", before={"manual_schedule": {"kind": "weekdays", "weekdays": [0, 2],
                                                                      "time": "22:00", "grace_minutes": 120}},
                      after={"manual_schedule": {"kind": "weekdays", "weekdays": [0, 2], "time": "23:30",
                                                 "grace_minutes": 120}})
    window = _entry("override.update", before={"valid_until": None, "comment": "x" * 300},
                    after={"valid_until": datetime(2026, 11, 25, 1, 14, 1, tzinfo=timezone.utc),
                           "comment": "x" * 300})
    # An entry an older version wrote with a raw secret, and one that holds no fields at all.
    legacy = AuditLog(event="user.password", username="alice", created_at=WHEN, summary="legacy",
                      before={"password": "hunter2"}, after={"password": "hunter3"})
    odd = AuditLog(event="odd.entry", username="alice", created_at=WHEN, summary="odd", before=None,
                   after=["a", "b"])
    db.session.add_all([legacy, odd])
    db.session.commit()

    html = as_user("admin").get("/audit-log").get_data(as_text=True)
    assert _changes_of(html, update.id) == ["graph tenant id: old-tenant → new-tenant",
                                            "graph client secret: changed (hidden)",
                                            "auto import enabled: yes → no"]  # the unchanged interval is left out
    assert _changes_of(html, secret_set.id) == ["graph client secret: — → set (hidden)"]
    assert _changes_of(html, created.id) == ["username: bob", "roles: operator, viewer"]
    assert _changes_of(html, deleted.id) == ["username: carol", "roles: reporter", "runs: 0"]
    assert _changes_of(html, schedule.id) == ["manual schedule › time: 22:00 → 23:30"]
    # A moment in the UI timezone (Amsterdam, winter time); an unchanged long text is not shown.
    assert _changes_of(html, window.id) == ["valid until: — → 2026-11-25 02:14:01"]
    assert _changes_of(html, legacy.id) == ["password: changed (hidden)"]
    assert _changes_of(html, odd.id) == ["value: a, b"]
    for raw in ("s3cret", "hunter", "x1<", "{'", "['", "None", "True"):
        assert raw not in html.split('id="audit-table"')[1], raw
    assert "<th scope=\"col\">Changes</th>" in html and ">Before<" not in html

    # The stored entries are as they were recorded (secrets masked at recording, nothing else).
    db.session.refresh(update)
    assert update.before == {"graph_tenant_id": "old-tenant", "graph_client_secret": audit.MASK,
                             "auto_import_enabled": True, "import_interval_minutes": 15}
    db.session.refresh(legacy)
    assert legacy.before == {"password": "hunter2"}


def test_a_long_value_is_cut_on_the_page_but_kept_whole(as_user):
    entry = _entry("job.import", after={"jobs_created": list(range(1, 400))})
    html = as_user("admin").get("/audit-log").get_data(as_text=True)
    (line,) = _changes_of(html, entry.id)
    assert line.startswith("jobs created: 1, 2, 3") and line.endswith("…") and len(line) < 230
    db.session.refresh(entry)
    assert entry.after["jobs_created"][-1] == 399
