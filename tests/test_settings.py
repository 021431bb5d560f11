"""Settings → General saves on its own, validates, and is audited with before/after."""
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, SystemSettings

from .conftest import post_form


def general(**over):
    data = {"ui_timezone": "Europe/Amsterdam", "daily_status_rule": "worst", "company_name": ""}
    data.update(over)
    return data


def test_saving_general_settings_is_audited_with_before_and_after(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/general", general(ui_timezone="America/New_York", sandbox_mode="on",
                                                  company_name="Example IT Services"), follow_redirects=True)
    assert "General settings saved" in r.get_data(as_text=True)
    s = db.session.get(SystemSettings, 1)
    db.session.refresh(s)
    assert s.ui_timezone == "America/New_York" and s.sandbox_mode is True
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.general")).scalar_one()
    assert entry.before["ui_timezone"] == "Europe/Amsterdam"
    assert entry.after["ui_timezone"] == "America/New_York"
    assert entry.username == "alice"
    # The sandbox banner shows on every page now.
    assert "SANDBOX" in c.get("/").get_data(as_text=True)


def test_an_unknown_timezone_is_refused_and_nothing_is_saved(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/general", general(ui_timezone="Mars/Olympus", company_name="Kept?"))
    assert r.status_code == 400
    assert "not a known IANA timezone" in r.get_data(as_text=True)
    db.session.expire_all()
    s = db.session.get(SystemSettings, 1)
    assert s.ui_timezone == "Europe/Amsterdam" and s.company_name == ""


def test_saving_without_changes_writes_no_audit_entry(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/general", general(), follow_redirects=True)
    assert "Nothing changed" in r.get_data(as_text=True)
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "settings.general")).first() is None


def test_times_are_shown_in_the_configured_timezone(app, as_user):
    from datetime import datetime, timezone

    from backend.app.filters import localtime
    c = as_user("admin")
    post_form(c, "/settings/general", general(ui_timezone="Asia/Tokyo"))
    with app.test_request_context():
        assert localtime(datetime(2026, 1, 1, 0, 30, tzinfo=timezone.utc)) == "2026-01-01 09:30"


def test_settings_pages_that_can_hold_a_secret_are_never_cached(as_user):
    """The pages whose forms hold or take a secret (mail source, notification channels, single
    sign-on, the digest's mail transport) tell the browser and any proxy not to keep them, also when
    a refused form is shown again."""
    c = as_user("admin")
    for path in ("/settings/notifications", "/settings/sign-in", "/settings/digest"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers.get("Cache-Control") == "no-store", path
    refused = post_form(c, "/settings/general", general(ui_timezone="Mars/Olympus_Mons"))
    assert refused.status_code == 400
    assert refused.headers.get("Cache-Control") == "no-store"


def test_relative_times_say_how_far_ahead_a_future_time_is():
    from backend.app.filters import _ago
    assert [_ago(s) for s in (-7 * 86400, -5 * 3600, -600, -30, 30, 600)] == \
        ["in 7 d", "in 5 h", "in 10 min", "just now", "just now", "10 min ago"]
