"""The audit log page: who, when, what; filter by user, event and date; paged."""
from datetime import datetime, timedelta, timezone

from backend.app.extensions import db
from backend.app.models import AuditLog
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
    assert "1 failed login(s) from 127.0.0.1 for alice" in text and "failed: 1" in text
    assert "alice logged in" in text
