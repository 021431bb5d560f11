"""The morning digest as its reader sees it: the mail delivered over SMTP, its HTML part opened in a
real browser (desktop and phone width), showing the counts, the failed and missed jobs by customer
with their error lines and working links into Run Checks, and loading nothing from outside."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from flask import g

from backend.app.extensions import db
from backend.app.services import digest_delivery
from backend.app.services.settings import get_settings

from ..fakes.smtp import FakeSMTP
from ..helpers import make_customer, make_job, make_run, make_user

pytestmark = [pytest.mark.browser]
AMS = ZoneInfo("Europe/Amsterdam")
MORNING = datetime(2026, 12, 4, 8, 0, tzinfo=AMS).astimezone(timezone.utc)


def test_the_digest_mail_reads_well_in_a_browser(app, browser, monkeypatch, clock):
    clock.move_to(MORNING - timedelta(hours=1))
    with FakeSMTP(user="mailer", password="pw") as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", smtp.ca_bundle)
        monkeypatch.setitem(app.config, "SMTP_ENV_OVERRIDES", {})
        s = get_settings()
        s.ui_timezone = "Europe/Amsterdam"
        s.autotask_base_url = "https://backupchecks.msp.example"
        s.smtp_host, s.smtp_port, s.smtp_security = smtp.host, smtp.port, "starttls"
        s.smtp_username, s.smtp_password, s.smtp_from = "mailer", "pw", "digest@msp.example"
        s.digest_enabled, s.digest_time, s.digest_transport = True, "08:00", "smtp"
        user = make_user("ann")
        user.email, user.digest_subscribed = "ann@msp.example", True
        day = datetime.combine(date(2026, 12, 3), datetime.min.time(), AMS)
        northwind, contoso = make_customer("Northwind Testing"), make_customer("Contoso Testing")
        vm = make_job(northwind, "Daily VM Backup")
        make_run(vm, "Failed", day + timedelta(hours=2),
                 message="Processing SRV-FILE01 Error: Failed to create VM snapshot: the datastore is full")
        sql = make_job(contoso, "SQL Log Backup")
        make_run(sql, "Warning", day + timedelta(hours=3), message="Transaction log is nearly full")
        ok = make_job(contoso, "File Server Backup")
        make_run(ok, "Success", day + timedelta(hours=1))
        db.session.commit()
        g.pop("ui_zone", None)
        assert digest_delivery.send_due(MORNING)["sent"] == 1
        (mail,) = smtp.messages
    msg = mail.message
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "the datastore is full" in text and "Northwind Testing" in text

    requests = []
    for size, name in [((1100, 900), "desktop"), ((390, 844), "phone")]:
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.on("request", lambda r: requests.append(r.url))
        page.set_content(html)
        body = page.inner_text("body")
        assert "Northwind Testing" in body and "Daily VM Backup" in body
        assert "the datastore is full" in body
        assert "Contoso Testing" in body and "Transaction log is nearly full" in body
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert f"https://backupchecks.msp.example/run-checks?job={vm.id}" in hrefs
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the digest is {overflow}px wider than the {name} screen"
        page.screenshot(path=f"/tmp/backupchecks-digest-mail-{name}.png", full_page=True)
        page.close()
    assert [u for u in requests if not u.startswith(("about:", "data:"))] == []  # nothing loaded from outside
