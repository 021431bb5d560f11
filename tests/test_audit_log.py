"""The audit log page: who, when, what; filter by user, event and date; paged; changes shown as
"field: old → new" with secrets hidden, the stored entries untouched."""
import re
from datetime import datetime, timedelta, timezone
from html import unescape

from backend.app.extensions import db
from backend.app.models import AuditLog
from backend.app.services import audit
from backend.app.services.settings import ui_zone

from .conftest import login


def add(event, username, when, summary="x"):
    db.session.add(AuditLog(event=event, username=username, created_at=when, summary=summary))


def test_filters_and_paging(as_user):
    c = as_user("admin")
    now = datetime.now(timezone.utc)
    for i in range(60):
        add("settings.general", "bob", now - timedelta(minutes=i), summary=f"change {i}")
    add("user.create", "carol", now - timedelta(days=10), summary="old one")
    db.session.commit()
    page1 = c.get("/audit-log?user=bob").get_data(as_text=True)
    assert "change 0" in page1 and "change 55" not in page1 and "Page 1 of 2" in page1
    page2 = c.get("/audit-log?user=bob&page=2").get_data(as_text=True)
    assert "change 55" in page2
    by_event = c.get("/audit-log?event=user.create").get_data(as_text=True)
    assert "old one" in by_event and "change 1" not in by_event
    day = (now - timedelta(days=10)).astimezone(ui_zone()).strftime("%Y-%m-%d")  # filters are in the UI zone
    dated = c.get(f"/audit-log?from={day}&to={day}").get_data(as_text=True)
    assert "old one" in dated and "change 1" not in dated


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
