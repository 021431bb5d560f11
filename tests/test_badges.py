"""Status badges (/badge/<key>.svg and .json): made, shown again, regenerated and revoked on the
customer's edit page; the status is the worst of the customer's rows on today's Daily Jobs (from
real runs and schedules on a frozen day); an unknown or revoked key is a bare 404."""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select, text

from backend.app.extensions import db
from backend.app.models import AuditLog, CustomerBadge
from backend.app.services import badges
from backend.app.services.schedules import set_manual_schedule

from .conftest import post_form
from .helpers import make_customer, make_job, make_override, make_run
from .test_csp import inline_problems

AMS = ZoneInfo("Europe/Amsterdam")
DAY = date(2026, 11, 25)  # a Wednesday in winter time (UTC+1)
SVG = "{http://www.w3.org/2000/svg}"


def _local(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=AMS).astimezone(timezone.utc)


def _job(customer, name, **kw):
    return make_job(customer, name, sender=f"{name.lower().replace(' ', '-')}@example.test",
                    created_at=_local(DAY - timedelta(days=10), 12), **kw)


def _badge_urls(client, customer) -> dict[str, str]:
    """Create the badge on the edit page as that user; the addresses the page then shows."""
    r = post_form(client, f"/customers/{customer.id}/badge", {"action": "create"}, token_from="/customers")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/customers/{customer.id}/edit#status-badge")
    return _shown_urls(client, customer)


def _shown_urls(client, customer) -> dict[str, str]:
    html = client.get(f"/customers/{customer.id}/edit").get_data(as_text=True)
    return {fmt: url.replace("http://localhost", "")
            for fmt, url in re.findall(r'id="badge-url-(svg|json)" value="([^"]+)"', html)}


def _seed_day():
    """One customer per badge status, from runs and schedules on DAY."""
    fine = make_customer("Fine Fabrics")
    make_run(_job(fine, "Fine VM"), "Success", _local(DAY, 1, 10))
    make_run(_job(fine, "Fine Overridden"), "Failed", _local(DAY, 1, 20), effective_status="Success",
             override_id=make_override(software="Veeam Backup & Replication", match_status="Failed").id)
    make_run(_job(fine, "Fine Yesterday"), "Failed", _local(DAY - timedelta(days=1), 23, 50))  # not today's

    warned = make_customer("Warned Widgets")
    make_run(_job(warned, "Warned VM"), "Warning", _local(DAY, 2))
    make_run(_job(warned, "Warned Files"), "Success", _local(DAY, 2, 30))

    failed = make_customer("Failed Foods")
    make_run(_job(failed, "Failed VM"), "Failed", _local(DAY, 3))
    make_run(_job(failed, "Failed Warned"), "Warning", _local(DAY, 3, 10))
    make_run(_job(failed, "Failed Missed"), "Missed", _local(DAY, 0, 55), missed=True, missed_slot=_local(DAY, 0, 55))

    # Missed without a stored missed run: the 01:00 slot's deadline passed and the loop has not
    # run yet. Daily Jobs (missed_runs.slot_verdict) calls it Missed; so does the badge.
    missed = make_customer("Missed Mills")
    scheduled = _job(missed, "Missed Nightly")
    set_manual_schedule(scheduled, {"kind": "weekdays", "weekdays": list(range(7)), "time": "01:00",
                                    "grace_minutes": 60}, None, now=_local(DAY - timedelta(days=2), 12), zone=AMS)
    make_run(_job(missed, "Missed Other"), "Success", _local(DAY, 1))
    make_run(scheduled, "Success", _local(DAY - timedelta(days=1), 1, 5))  # yesterday's slot did run

    idle = make_customer("Idle Inns")  # no jobs at all
    quiet = make_customer("Quiet Quarry")  # a job that only ran yesterday and has no schedule
    make_run(_job(quiet, "Quiet VM"), "Failed", _local(DAY - timedelta(days=1), 20))
    db.session.commit()
    return {"ok": fine, "warning": warned, "failed": failed, "missed": missed, "no jobs": idle, "quiet": quiet}


def test_each_status_comes_from_todays_daily_jobs_rows(as_user):
    customers = _seed_day()
    operator = as_user("operator")
    urls = {label: _badge_urls(operator, c) for label, c in customers.items()}
    anon = as_user("viewer").application.test_client()  # nobody logged in
    moment = _local(DAY, 9, 30)
    with time_machine.travel(moment, tick=False):
        answers = {label: anon.get(u["json"]).get_json() for label, u in urls.items()}
        daily = as_user("viewer").get(f"/daily-jobs?date={DAY.isoformat()}").get_data(as_text=True)

    assert {label: a["status"] for label, a in answers.items()} == {
        "ok": "ok", "warning": "warning", "failed": "failed", "missed": "missed", "no jobs": "no jobs",
        "quiet": "no jobs"}
    assert answers["failed"] == {
        "customer": "Failed Foods", "status": "failed", "date": "2026-11-25", "timezone": "Europe/Amsterdam",
        "updated_at": "2026-11-25T08:30:00Z",
        "counts": {"jobs": 3, "success": 0, "warning": 1, "failed": 1, "missed": 1, "expected": 0, "maintenance": 0}}
    assert answers["ok"]["counts"] == {"jobs": 2, "success": 2, "warning": 0, "failed": 0, "missed": 0,
                                       "expected": 0, "maintenance": 0}
    assert answers["missed"]["counts"]["missed"] == 1 and answers["missed"]["counts"]["success"] == 1
    # The same verdict as the Daily Jobs page at that moment.
    assert 'data-job="Missed Nightly" data-status="Missed"' in daily


def test_a_job_still_expected_later_today_is_ok_until_its_deadline(as_user):
    customer = make_customer("Evening Estates")
    job = _job(customer, "Evening Backup")
    set_manual_schedule(job, {"kind": "weekdays", "weekdays": list(range(7)), "time": "20:00",
                              "grace_minutes": 60}, None, now=_local(DAY - timedelta(days=2), 12), zone=AMS)
    db.session.commit()
    url = _badge_urls(as_user("admin"), customer)["json"]
    anon = as_user("admin").application.test_client()
    with time_machine.travel(_local(DAY, 12), tick=False):
        noon = anon.get(url).get_json()
    with time_machine.travel(_local(DAY, 21, 5), tick=False):
        evening = anon.get(url).get_json()
    assert (noon["status"], noon["counts"]["expected"]) == ("ok", 1)
    assert (evening["status"], evening["counts"]["missed"]) == ("missed", 1)


def test_the_svg_is_a_self_contained_image_as_wide_as_its_texts(as_user):
    customers = _seed_day()
    url = _badge_urls(as_user("operator"), customers["failed"])["svg"]
    with time_machine.travel(_local(DAY, 9, 30), tick=False):
        r = as_user("viewer").application.test_client().get(url)
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache, max-age=0"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    svg = ET.fromstring(r.data)  # well-formed XML
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Failed Foods: failed"
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["Failed Foods", "Failed Foods", "failed", "failed"]
    left, right = [rect for rect in svg.iter(f"{SVG}rect") if rect.get("fill", "").startswith("#")][1:3]
    assert right.get("fill") == badges.COLOURS["failed"]
    assert int(left.get("width")) == round(badges.text_width("Failed Foods") + 12)
    assert int(right.get("width")) == round(badges.text_width("failed") + 12)
    assert int(svg.get("width")) == int(left.get("width")) + int(right.get("width"))
    assert not [el for el in svg.iter() if el.tag in (f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject",
                                                       f"{SVG}image")]
    assert b"href" not in r.data and b"http://" not in r.data.replace(b"http://www.w3.org/2000/svg", b"")


def test_text_widths_follow_the_letters():
    assert badges.text_width("ok") < badges.text_width("no jobs") < badges.text_width("WWWWWWW")
    assert badges.text_width("iiii") < badges.text_width("mmmm")
    # A name with markup is text, not markup; a very long name is cut with an ellipsis.
    svg = badges.render_svg('<script>alert(1)</script> & "Co"', "ok", "#000")
    assert ET.fromstring(svg).find(f"{SVG}title").text == '<script>alert(1)</script> & "Co": ok'
    assert ET.fromstring(badges.render_svg("x" * 200, "ok", "#000")).find(f"{SVG}title").text == "x" * 59 + "…: ok"


def test_unknown_malformed_and_revoked_keys_are_a_bare_404(as_user):
    customer = make_customer("Revoked Rentals")
    db.session.commit()
    admin = as_user("admin")
    urls = _badge_urls(admin, customer)
    anon = admin.application.test_client()
    assert anon.get(urls["svg"]).status_code == 200
    key = re.search(r"/badge/([^.]+)\.svg", urls["svg"]).group(1)
    assert len(key) == 32  # 24 random bytes: 192 bits

    # Regenerate: the old address answers 404 at once, the new one works.
    r = post_form(admin, f"/customers/{customer.id}/badge", {"action": "create"}, token_from="/customers",
                  follow_redirects=True)
    assert "the old address no longer works" in r.get_data(as_text=True)
    new = _shown_urls(admin, customer)
    assert new["svg"] != urls["svg"] and anon.get(new["json"]).status_code == 200
    for bad in (urls["svg"], urls["json"], f"/badge/{'A' * 32}.svg", "/badge/short.json", f"/badge/{key}.png",
                new["svg"].replace(".svg", ".html"), f"/badge/{key}!.svg"):
        r = anon.get(bad)
        assert r.status_code == 404 and r.data == b"Not found\n" and r.mimetype == "text/plain", bad

    r = post_form(admin, f"/customers/{customer.id}/badge", {"action": "revoke"}, token_from="/customers",
                  follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "revoked: its address no longer works" in html and 'id="status-badge-none"' in html
    assert anon.get(new["svg"]).status_code == 404 and anon.get(new["json"]).status_code == 404
    events = db.session.execute(select(AuditLog.event, AuditLog.username).order_by(AuditLog.id)
                                ).all()
    assert [e for e in events if e[0].startswith("badge.")] == [
        ("badge.create", "alice"), ("badge.revoke", "alice"), ("badge.create", "alice"), ("badge.revoke", "alice")]


def test_the_key_is_stored_encrypted_and_looked_up_by_its_hash(as_user):
    customer = make_customer("Stored Safely")
    db.session.commit()
    urls = _badge_urls(as_user("operator"), customer)
    key = re.search(r"/badge/([^.]+)\.json", urls["json"]).group(1)
    stored, digest = db.session.execute(text("SELECT key, key_hash FROM customer_badges")).one()
    assert key not in stored and stored.startswith("fernet:")
    assert digest == hashlib.sha256(key.encode()).hexdigest()


def test_the_edit_page_shows_the_addresses_again_with_a_preview(as_user):
    customer = make_customer("Shown Again")
    db.session.commit()
    operator = as_user("operator")
    page = operator.get(f"/customers/{customer.id}/edit").get_data(as_text=True)
    assert 'id="status-badge-create"' in page and "No status badge." in page
    urls = _badge_urls(operator, customer)
    html = as_user("admin").get(f"/customers/{customer.id}/edit").get_data(as_text=True)  # another user, later
    assert _shown_urls(as_user("admin"), customer) == urls
    assert f'<img src="{urls["svg"]}" alt="Status badge of Shown Again" id="status-badge-preview">' in html
    assert f'data-copy="http://localhost{urls["json"]}"' in html
    assert inline_problems(html) == []
    assert as_user("viewer").get(f"/customers/{customer.id}/edit").status_code == 403
    assert post_form(as_user("viewer"), f"/customers/{customer.id}/badge", {"action": "create"},
                     token_from="/customers").status_code == 403


def test_a_badge_answers_without_a_session_and_sets_no_cookie(as_user, app):
    customer = make_customer("Cookieless")
    db.session.commit()
    url = _badge_urls(as_user("admin"), customer)["json"]
    r = app.test_client().get(url)
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_deleting_the_customer_deletes_its_badge(as_user):
    customer = make_customer("Gone Soon")
    db.session.commit()
    admin = as_user("admin")
    url = _badge_urls(admin, customer)["svg"]
    r = post_form(admin, f"/customers/{customer.id}/delete", {"confirm": "yes"}, token_from="/customers")
    assert r.status_code == 302
    assert db.session.execute(select(CustomerBadge)).first() is None
    assert admin.application.test_client().get(url).status_code == 404


@pytest.mark.parametrize("counts,word", [
    ({}, "no jobs"), ({"Expected": 2}, "ok"), ({"Success": 1, "Maintenance": 1}, "ok"),
    ({"Success (override)": 1}, "ok"), ({"Warning": 1, "Success": 3}, "warning"),
    ({"Missed": 1, "Warning": 1}, "missed"), ({"Failed": 1, "Missed": 2}, "failed"),
])
def test_the_worst_status_wins(counts, word):
    assert badges.status_of(counts) == word


def test_the_first_page_of_the_day_rule_leaves_a_badge_alone(as_user):
    from backend.app.services.settings import get_settings

    customer = make_customer("Morning Mill")
    db.session.commit()
    operator = as_user("operator")
    url = _badge_urls(operator, customer)["svg"]
    get_settings().dashboard_first = True
    db.session.commit()
    viewer = as_user("viewer")  # logged in, has not seen the dashboard today
    r = viewer.get(url)
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert viewer.get("/customers").status_code == 302  # the rule itself still applies to pages
