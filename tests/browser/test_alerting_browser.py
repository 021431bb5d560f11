"""In a real browser, as a user would: snooze a job from its page and lift it again, add a weekly
maintenance window (refused first, then saved) and see Daily Jobs show Maintenance, add a Slack
channel with rules and an e-mail channel (the form shows the fields of the chosen kind), set the
morning digest and subscribe to it. Every page at desktop and phone size: full-page screenshots in
/tmp/backupchecks-alerting-*.png, no horizontal overflow, nothing hidden behind something else."""
from datetime import time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import (DigestDelivery, MaintenanceWindow, NotificationChannel, NotificationOutbox, Snooze, User,
                                utcnow)
from backend.app.services.schedules import local_to_utc, recompute_job_schedule

from ..clock import TEST_NOW
from ..conftest import PASSWORD, make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]
AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

# Visible controls and words whose middle is covered by another element (the fixed top bar aside:
# each is scrolled to the middle of the window first). Inside a box that scrolls sideways (a
# .table-responsive, a table on a phone) only what is scrolled into the box counts.
COVERED = """() => {
  const out = [];
  const els = document.querySelectorAll(
    'main a, main button, main input, main select, main textarea, main label, main summary, main .badge, main h1, main h2, main th, main td');
  for (const el of els) {
    if (el.closest('.visually-hidden') || el.closest('details:not([open]) > :not(summary)')) continue;
    if (el.type === 'hidden') continue;
    let r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;
    window.scrollTo({top: window.scrollY + r.top + r.height / 2 - window.innerHeight / 2, behavior: 'instant'});
    r = el.getBoundingClientRect();
    const x = r.left + Math.min(r.width / 2, 8), y = r.top + r.height / 2;
    let box = el.parentElement;
    while (box && box !== document.body && !['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) {
      box = box.parentElement;
    }
    if (box && box !== document.body) {
      const b = box.getBoundingClientRect();
      if (x < b.left || x > b.right) continue;
    }
    if (x < 0 || x >= window.innerWidth || y < 0 || y >= window.innerHeight) {
      out.push('off screen: ' + el.outerHTML.slice(0, 120));
      continue;
    }
    const hit = document.elementFromPoint(x, y);
    if (!hit || hit === el || el.contains(hit) || hit.contains(el)) continue;
    if (el.tagName === 'LABEL' && el.control === hit) continue;
    if (hit.tagName === 'LABEL' && hit.control === el) continue;
    out.push(el.outerHTML.slice(0, 120) + '  under  ' + hit.outerHTML.slice(0, 120));
  }
  window.scrollTo({top: 0, behavior: 'instant'});
  return out;
}"""


def login(page, live_server, name):
    page.goto(live_server + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)  # the login has landed


def check_page(page, name):
    """A full-page screenshot, then: the body fits the width, and no control hides behind another."""
    page.screenshot(path=f"/tmp/backupchecks-alerting-{name}.png", full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    covered = page.evaluate(COVERED)
    assert covered == [], f"{name}: hidden behind another element:\n" + "\n".join(covered)


def phone_pages(browser, live_server, user, pages):
    """Each (name, path) at phone size, checked like check_page."""
    phone = browser.new_page(viewport=PHONE)
    login(phone, live_server, user)
    for name, path in pages:
        phone.goto(live_server + path)
        check_page(phone, name + "-phone")
    phone.close()


def local(day, hh, mm=0):
    return local_to_utc(day, time(hh, mm), AMS)


# --- 1. Snooze from the job page; Run Checks shows it; an admin lifts it -------------------------

def test_operator_snoozes_a_job_and_an_admin_lifts_it(browser, live_server):
    make_user("oscar", roles=("operator",))
    make_user("alice", roles=("admin",))
    acme = make_customer("Acme Testing")
    job = make_job(acme, "File Server Backup", sender="fs@example.test")
    make_run(job, "Failed", TEST_NOW - timedelta(hours=3), message="Share \\\\nas01\\data unreachable")
    db.session.commit()

    page = browser.new_page(viewport=DESKTOP)
    login(page, live_server, "oscar")
    page.goto(f"{live_server}/jobs/{job.id}")
    page.click("#quiet summary")
    page.select_option(f"#sn-choice-{job.id}", "3d")
    page.fill(f"#sn-reason-{job.id}", "migrating the NAS")
    check_page(page, "snooze-form")
    page.click("#quiet form.snooze-form button")
    page.wait_for_url(f"**/jobs/{job.id}")
    until = (TEST_NOW + timedelta(days=3)).astimezone(AMS)
    banner = page.inner_text("#snooze-banner")
    assert f"Snoozed until {until:%Y-%m-%d}" in banner and "— migrating the NAS" in banner
    assert "snoozed: alerts are held until" in page.inner_text("main")
    check_page(page, "job-snoozed")
    page.click("#quiet summary")  # changing it starts from the reason given
    assert page.input_value(f"#sn-reason-{job.id}") == "migrating the NAS"

    page.goto(f"{live_server}/run-checks?job={job.id}")
    badge = page.locator(".snoozed").first
    expect(badge).to_have_text("Snoozed")
    assert "migrating the NAS" in badge.get_attribute("title")
    assert "Snoozed until" in page.inner_text("#snooze-banner")
    check_page(page, "run-checks-snoozed")
    phone_pages(browser, live_server, "oscar", [("job-snoozed", f"/jobs/{job.id}"),
                                                ("job-snooze-form", f"/jobs/{job.id}?snooze=1"),
                                                ("run-checks-snoozed", f"/run-checks?job={job.id}"),
                                                ("run-checks-snooze-form", f"/run-checks?job={job.id}&snooze=1")])
    page.close()

    admin = browser.new_page(viewport=DESKTOP)
    login(admin, live_server, "alice")
    admin.goto(f"{live_server}/jobs/{job.id}")
    admin.click("#snooze-banner button:has-text('Lift')")
    admin.wait_for_url(f"**/jobs/{job.id}")
    assert "Snooze lifted: alerts are sent again." in admin.inner_text("main")
    expect(admin.locator("#snooze-banner")).to_have_count(0)
    db.session.expire_all()
    (row,) = db.session.execute(select(Snooze)).scalars().all()
    assert row.lifted_by_id is not None or row.until <= utcnow()
    check_page(admin, "job-lifted")

    # The job's own "after N failures" in its notification box.
    admin.fill("#alert_after_failures", "3")
    admin.click("#job-notifications-form button")
    admin.wait_for_url(f"**/jobs/{job.id}#notifications")
    assert "a failure is sent after 3 in a row" in admin.inner_text("main")
    assert "after 3 failed or missed runs in a row" in admin.inner_text("#alert-after-text")
    assert admin.input_value("#alert_after_failures") == "3"
    check_page(admin, "job-notifications")
    admin.close()
    phone_pages(browser, live_server, "alice", [("job-notifications", f"/jobs/{job.id}#notifications")])


# --- 2. A weekly maintenance window: refused, then saved; Daily Jobs shows Maintenance ----------

def test_admin_adds_a_weekly_maintenance_window_and_daily_jobs_shows_maintenance(browser, live_server):
    make_user("alice", roles=("admin",))
    acme = make_customer("Acme Testing")
    make_customer("Beta Testing")
    day = TEST_NOW.astimezone(AMS).date() - timedelta(days=2)  # long past its 22:00 run and its grace
    job = make_job(acme, "NAS Backup", sender="nas@example.test", created_at=local(day, 0) - timedelta(days=30))
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 60}
    recompute_job_schedule(job, local(day, 12), AMS)  # the missed-run check has not visited since
    db.session.commit()

    page = browser.new_page(viewport=DESKTOP)
    login(page, live_server, "alice")
    page.goto(live_server + "/settings/maintenance-windows")
    assert "No maintenance windows" in page.inner_text("main")
    page.select_option("#mw-customer", label="Acme Testing")
    page.fill("#mw-reason", "firmware updates")
    page.fill("#mw-lstart", "21:00")
    page.fill("#mw-lend", "23:30")
    assert page.is_checked("#mw-weekly")  # typing a weekly time chose the weekly kind
    page.click("#window-form button")
    assert "at least one day" in page.inner_text("main")
    assert page.input_value("#mw-reason") == "firmware updates"
    assert page.input_value("#mw-customer") == str(acme.id)
    assert page.is_checked("#mw-weekly")
    assert (page.input_value("#mw-lstart"), page.input_value("#mw-lend")) == ("21:00", "23:30")
    assert db.session.execute(select(MaintenanceWindow)).first() is None
    check_page(page, "window-refused")

    page.click(f"label[for=mw-day-{day.weekday()}]")
    assert page.is_checked(f"#mw-day-{day.weekday()}")
    page.click("#window-form button")
    page.wait_for_url("**/settings/maintenance-windows")
    assert "Maintenance window saved for customer Acme Testing" in page.inner_text("main")
    assert "firmware updates" in page.inner_text("#windows")
    check_page(page, "windows")

    page.goto(f"{live_server}/daily-jobs?date={day.isoformat()}")
    row = page.locator("tr", has_text="NAS Backup")
    expect(row).to_contain_text("Maintenance")
    check_page(page, "daily-jobs-maintenance")
    phone_pages(browser, live_server, "alice", [("windows", "/settings/maintenance-windows"),
                                                ("daily-jobs-maintenance", f"/daily-jobs?date={day.isoformat()}")])
    page.close()

    # On a phone the day's status is in sight without scrolling the table sideways.
    phone = browser.new_page(viewport=PHONE)
    login(phone, live_server, "alice")
    phone.goto(f"{live_server}/daily-jobs?date={day.isoformat()}")
    badge = phone.locator("#daily-table tr", has_text="NAS Backup").locator("td").last
    expect(badge).to_contain_text("Maintenance")
    box = badge.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"], "the Day status column is off the phone's screen"
    phone.close()


# --- 3. Channels: Slack with rules, e-mail with recipients; the form follows the kind -----------

def test_admin_adds_a_slack_channel_with_rules_and_an_email_channel(browser, live_server):
    make_user("alice", roles=("admin",))
    acme = make_customer("Acme Testing")
    make_customer("Beta Testing")
    db.session.commit()

    page = browser.new_page(viewport=DESKTOP)
    login(page, live_server, "alice")
    page.goto(live_server + "/settings/notifications")
    page.fill("#name", "Acme Slack")
    page.select_option("#kind", "slack")
    expect(page.locator("#target_url")).to_be_visible()
    expect(page.locator("#recipients")).to_be_hidden()
    expect(page.locator("#transport")).to_be_hidden()
    expect(page.locator("#secret")).to_be_hidden()  # only webhooks are signed
    page.fill("#target_url", "https://hooks.slack.com/services/T000/B000/XXXXXXXX")
    page.check("#scope-chosen")
    page.select_option("#customers", label="Acme Testing")
    page.fill("#min_failures", "3")
    page.fill("#quiet_start", "22:00")
    page.fill("#quiet_end", "07:00")
    check_page(page, "slack-form")
    page.click("#channel-form button[type=submit]")
    page.wait_for_url("**/settings/notifications")
    assert "Channel Acme Slack added." in page.inner_text("main")
    rules = page.inner_text("#notification-channels tr:has-text('Acme Slack') .channel-rules")
    assert "Acme Testing" in rules and "after 3 failures in a row" in rules
    assert "quiet 22:00–07:00 (held)" in rules

    page.fill("#name", "NOC mail")
    page.select_option("#kind", "email")
    expect(page.locator("#recipients")).to_be_visible()
    expect(page.locator("#transport")).to_be_visible()
    expect(page.locator("#target_url")).to_be_hidden()
    expect(page.locator("#secret")).to_be_hidden()
    page.fill("#recipients", "noc@example.com, oncall@example.com")
    page.select_option("#transport", "smtp")
    check_page(page, "email-form")
    page.click("#channel-form button[type=submit]")
    page.wait_for_url("**/settings/notifications")
    assert "Channel NOC mail added." in page.inner_text("main")
    assert "noc@example.com, oncall@example.com · SMTP" in page.inner_text("#notification-channels")
    page.select_option("#kind", "webhook")  # back again: the URL and the secret, no recipients
    expect(page.locator("#target_url")).to_be_visible()
    expect(page.locator("#secret")).to_be_visible()
    expect(page.locator("#recipients")).to_be_hidden()
    check_page(page, "channels")
    db.session.expire_all()
    slack, mail = db.session.execute(select(NotificationChannel).order_by(NotificationChannel.id)).scalars().all()
    assert (slack.kind, slack.all_customers, [c.id for c in slack.customers], slack.min_failures) == \
        ("slack", False, [acme.id], 3)
    assert (slack.quiet_start, slack.quiet_end) == (time(22), time(7))
    assert (mail.kind, mail.recipients, mail.transport) == ("email", "noc@example.com, oncall@example.com", "smtp")

    # The delivery log with a message held for the quiet hours, one dropped, one held by a snooze.
    held_until = TEST_NOW + timedelta(hours=2)
    for state, extra in [("pending", {"held_until": held_until, "next_attempt_at": held_until}),
                         ("dropped", {"last_error": "quiet hours 22:00–07:00: dropped"}),
                         ("held", {"last_error": "snoozed until 2026-06-13 10:30: migrating the NAS"}),
                         ("failed", {"attempts": 3, "last_error": "HTTP 500 from https://hooks.slack.com/services/T000/B000/…"})]:
        db.session.add(NotificationOutbox(channel_id=slack.id, event_key=f"run:{len(state)}:{state}", event="failed",
                                          payload={}, state=state, created_at=TEST_NOW - timedelta(minutes=5), **extra))
    db.session.commit()
    page.goto(live_server + "/settings/notifications")
    log = page.inner_text("#delivery-log")
    assert "held until" in log and "(quiet hours)" in log and "dropped" in log and "held (snooze/maintenance)" in log
    expect(page.locator("#delivery-log button:has-text('Send anyway')")).to_have_count(1)
    expect(page.locator("#delivery-log .badge.text-bg-danger")).to_have_text("failed")  # a word in red, not colour alone
    check_page(page, "delivery-log")

    # The edit form of the e-mail channel opens on the e-mail fields.
    page.click("#notification-channels tr:has-text('NOC mail') a:has-text('Edit')")
    expect(page.locator("#recipients")).to_have_value("noc@example.com, oncall@example.com")
    expect(page.locator("#target_url")).to_be_hidden()
    check_page(page, "email-edit")
    phone_pages(browser, live_server, "alice", [("channels", "/settings/notifications"),
                                                ("email-edit", f"/settings/notifications/{mail.id}")])
    page.close()


def test_without_javascript_the_channel_form_shows_every_field(browser, live_server):
    make_user("alice", roles=("admin",))
    db.session.commit()
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    login(page, live_server, "alice")
    page.goto(live_server + "/settings/notifications")
    for sel in ("#target_url", "#secret", "#recipients", "#transport"):
        expect(page.locator(sel)).to_be_visible()
    context.close()


# --- 4. The morning digest: a bad time, a good one; a user subscribes ---------------------------

def test_digest_settings_and_the_profile_subscription(browser, live_server):
    make_user("alice", roles=("admin",))
    db.session.commit()

    page = browser.new_page(viewport=DESKTOP)
    login(page, live_server, "alice")
    page.goto(live_server + "/settings/digest")
    page.check("#digest_enabled")
    page.fill("#digest_time", "25:00")
    page.fill("#digest_recipients", "noc@example.com")
    page.click("#digest-form button[type=submit]")
    expect(page.locator("#digest-error")).to_be_visible()
    assert "25:00" in page.inner_text("#digest-error")
    assert page.input_value("#digest_recipients") == "noc@example.com"  # what was typed stays
    assert page.is_checked("#digest_enabled")
    check_page(page, "digest-refused")

    page.fill("#digest_time", "07:45")
    page.click("#digest-form button[type=submit]")
    page.wait_for_url("**/settings/digest")
    assert "Digest settings saved." in page.inner_text("main")
    assert page.input_value("#digest_time") == "07:45"
    assert "07:45" in page.inner_text("#digest-next")
    check_page(page, "digest")

    page.goto(live_server + "/auth/profile")
    page.fill("#email", "alice@example.com")
    page.check("#digest_subscribed")
    page.click("#digest-subscription button")
    page.wait_for_url("**/auth/profile")
    assert "Morning digest saved." in page.inner_text("main")
    assert page.is_checked("#digest_subscribed") and not page.is_checked("#digest_all_clear")
    check_page(page, "profile")
    db.session.expire_all()
    alice = db.session.execute(select(User).where(User.username == "alice")).scalar_one()
    assert (alice.email, alice.digest_subscribed) == ("alice@example.com", True)

    day = TEST_NOW.astimezone(AMS).date()
    db.session.add_all([
        DigestDelivery(day=day, recipient="alice@example.com", state="sent", attempts=1, sent_at=TEST_NOW,
                       subject="Backupchecks digest: 2 failed, 1 missed (Tuesday 09 June 2026)"),
        DigestDelivery(day=day, recipient="noc@example.com", state="failed", attempts=2,
                       last_error="SMTP server smtp.example.com refused the login (535 5.7.8 authentication failed)")])
    db.session.commit()
    page.goto(live_server + "/settings/digest")
    assert "alice · alice@example.com" in page.inner_text("#digest-subscribers")
    expect(page.locator("#digest-log button:has-text('Retry')")).to_have_count(1)
    expect(page.locator("#digest-log .badge")).to_have_text(["failed", "sent"])
    check_page(page, "digest-log")
    page.goto(live_server + "/auth/profile")
    page.uncheck("#digest_subscribed")
    page.click("#digest-subscription button")
    page.wait_for_url("**/auth/profile")
    assert not page.is_checked("#digest_subscribed")
    phone_pages(browser, live_server, "alice", [("digest", "/settings/digest"), ("profile", "/auth/profile")])
    page.close()
