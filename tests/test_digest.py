"""The morning digest: the day's failed, missed and warning jobs per customer (worst first) with their
error lines, what Daily Jobs counts, open tickets, Run Checks' waiting runs, links, the renderers and
the command. The clock is frozen; every call passes now=."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.extensions import db
from backend.app.services.daily_jobs import day_counts
from backend.app.services.digest import build_digest, error_line, render_html, render_text, subject
from backend.app.services.schedules import effective_schedule, first_slot_in_force

from .helpers import count_queries, make_customer, make_job, make_override, make_run, make_ticket

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2026, 12, 3)

pytestmark = pytest.mark.usefixtures("app")


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=AMS).astimezone(UTC)


MORNING = local(2026, 12, 4, 8)  # the morning after DAY


@pytest.fixture(autouse=True)
def _morning(clock):
    clock.move_to(MORNING)


def daily(time_, grace=120):
    return {"kind": "weekdays", "weekdays": [0, 1, 2, 3, 4, 5, 6], "time": time_, "grace_minutes": grace}


def job(customer, name, schedule=None, software="Veeam Backup & Replication", **kw):
    """A job whose schedule is in force since long ago and that the missed-run check has not visited."""
    kw.setdefault("created_at", LONG_AGO)
    j = make_job(customer, name, sender=f"{name.lower().replace(' ', '-')}@example.test",
                 software=software, manual_schedule=schedule, **kw)
    first = first_slot_in_force(effective_schedule(j), j.created_at, AMS)
    j.next_expected_slot, j.next_expected_at = first if first else (None, None)
    db.session.commit()
    return j


def digest_of(day=DAY, now=MORNING, **kw):
    return build_digest(day, AMS, now, "worst", **kw)


def seed_night():
    """Two customers with problems and one with only successes (names chosen so that the order by
    name and the order by severity differ)."""
    alpha = make_customer("Alpha Warnings")
    zulu = make_customer("Zulu Failures")
    calm = make_customer("Calm Customer")
    warn = job(alpha, "File Server", daily("22:00"))
    make_run(warn, "Warning", local(2026, 12, 3, 22, 5), message="3 files were skipped\nsecond line")
    fail = job(zulu, "SQL Nightly", daily("23:00"), software="Acronis")
    make_run(fail, "Failed", local(2026, 12, 3, 23, 1),
             message="\n  Error: the repository is out of space " + "x" * 300 + "\nmore")
    job(zulu, "Exchange Backup", daily("21:00"))  # no run: Missed
    ok = job(zulu, "Web Server", daily("20:00"))
    make_run(ok, "Success", local(2026, 12, 3, 20, 2))
    over = job(calm, "Overridden Warning", daily("20:30"))
    rule = make_override(over, match_status="Warning", treat_as_success=True)
    make_run(over, "Warning", local(2026, 12, 3, 20, 31), effective_status="Success", override_id=rule.id,
             message="only a warning")
    good = job(calm, "All Good", daily("19:00"))
    make_run(good, "Success", local(2026, 12, 3, 19, 1))
    db.session.commit()
    return {"warn": warn, "fail": fail, "ok": ok, "over": over}


def listed(digest):
    return [(c.name, [(j.status, j.job_name) for j in c.jobs]) for c in digest.customers]


def test_problems_are_grouped_by_customer_worst_first_with_their_error_lines():
    jobs = seed_night()
    d = digest_of()
    assert listed(d) == [
        ("Zulu Failures", [("Failed", "SQL Nightly"), ("Missed", "Exchange Backup")]),
        ("Alpha Warnings", [("Warning", "File Server")]),
    ]
    by_name = {j.job_name: j for c in d.customers for j in c.jobs}
    assert by_name["SQL Nightly"].detail.startswith("Error: the repository is out of space x")
    assert len(by_name["SQL Nightly"].detail) <= 160 and by_name["SQL Nightly"].detail.endswith("…")
    assert by_name["SQL Nightly"].software == "Acronis"
    assert by_name["File Server"].detail == "3 files were skipped"
    assert by_name["Exchange Backup"].detail == "no run arrived; expected at 21:00"
    assert by_name["File Server"].link == f"/run-checks?job={jobs['warn'].id}"
    assert d.daily_jobs_url == "/daily-jobs?date=2026-12-03"
    # The counts are Daily Jobs' counts; successes and the overridden success are counted, not listed.
    assert d.counts == day_counts(DAY, AMS, MORNING, "worst")
    assert (d.failed, d.missed, d.warnings) == (1, 1, 1)
    assert d.counts["Success"] == 2 and d.counts["Success (override)"] == 1
    assert not d.is_all_clear
    assert subject(d) == "Backups 2026-12-03: 1 failed, 1 missed, 1 warning"
    text = render_text(d)
    assert "Web Server" not in text and "Overridden Warning" not in text and "All Good" not in text
    assert text.index("Zulu Failures") < text.index("Alpha Warnings")


def test_the_default_day_is_yesterday_in_the_ui_timezone():
    seed_night()
    # 00:30 on Dec 4 in Amsterdam is still Dec 3 in UTC: the digest is about Dec 3 all the same.
    d = build_digest(None, AMS, local(2026, 12, 4, 0, 30), "worst")
    assert d.day == DAY


def test_all_clear():
    calm = make_customer("Calm Customer")
    good = job(calm, "All Good", daily("19:00"))
    make_run(good, "Success", local(2026, 12, 3, 19, 1))
    db.session.commit()
    d = digest_of()
    assert d.is_all_clear and d.customers == []
    assert subject(d) == "Backups 2026-12-03: all clear"
    assert "All clear" in render_text(d)
    assert "All clear" in render_html(d)


def test_open_tickets_remarks_and_waiting_runs_are_counted_and_links_are_absolute():
    from backend.app.models import Remark, RemarkScope

    jobs = seed_night()
    zulu = jobs["fail"].customer
    make_ticket("T-1", job=jobs["fail"])
    make_ticket("T-2", customer=zulu)
    make_ticket("T-3", job=jobs["fail"], resolved_at=local(2026, 12, 3, 12))  # resolved: not counted
    remark = Remark(body="Known issue")
    remark.scopes.append(RemarkScope(scope_type="job", job_id=jobs["warn"].id))
    db.session.add(remark)
    db.session.commit()
    d = digest_of(base_url="https://backups.example.test/")
    by_name = {j.job_name: j for c in d.customers for j in c.jobs}
    assert (by_name["SQL Nightly"].open_tickets, by_name["SQL Nightly"].open_remarks) == (2, 0)
    assert (by_name["Exchange Backup"].open_tickets, by_name["Exchange Backup"].open_remarks) == (1, 0)
    assert (by_name["File Server"].open_tickets, by_name["File Server"].open_remarks) == (0, 1)
    assert "2 open tickets" in render_text(d) and "1 open remark" in render_text(d)
    # Every stored run is unreviewed here (the missed one is not stored yet).
    assert (d.unreviewed_runs, d.unreviewed_jobs) == (5, 5)
    assert by_name["SQL Nightly"].link == f"https://backups.example.test/run-checks?job={jobs['fail'].id}"
    assert d.daily_jobs_url == "https://backups.example.test/daily-jobs?date=2026-12-03"


def test_a_constant_number_of_queries_whatever_the_number_of_jobs():
    from backend.app.services.daily_jobs import day_cache

    def problems(n, offset):
        for i in range(n):
            c = make_customer(f"Customer {offset + i}")
            j = job(c, f"Job {offset + i}", daily("22:00"))
            make_run(j, "Failed", local(2026, 12, 3, 22, 1), message="boom")
            make_ticket(f"T-{offset + i}", job=j)
        db.session.commit()

    problems(2, 0)
    day_cache.clear()
    few = count_queries(lambda: digest_of())
    problems(8, 100)
    day_cache.clear()
    many = count_queries(lambda: digest_of())
    assert few == many
    assert digest_of().failed == 10


def test_html_escapes_every_value():
    c = make_customer('Cust <i>"')
    j = job(c, '<b>&"', daily("22:00"), software="<script>x</script>")
    make_run(j, "Failed", local(2026, 12, 3, 22, 1), message="<img src=x onerror=alert(1)>")
    db.session.commit()
    html = render_html(digest_of())
    assert "<b>&" not in html and "&lt;b&gt;&amp;&#34;" in html
    assert "<script>" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_dst_day_works():
    # 2026-03-29: Amsterdam moves to summer time at 02:00, the day has 23 hours.
    c = make_customer("Spring Customer")
    late = job(c, "Late Night", daily("23:30"))
    make_run(late, "Failed", local(2026, 3, 29, 23, 35), message="failed on the short day")
    early = job(c, "Early Morning", daily("01:30"))  # before the switch: no run, Missed
    early_ok = job(c, "After Switch", daily("03:30"))
    make_run(early_ok, "Success", local(2026, 3, 29, 3, 31))
    # A run at 00:10 the next day belongs to March 30, not to the short day.
    make_run(early, "Warning", local(2026, 3, 30, 0, 10) + timedelta(minutes=0))
    db.session.commit()
    d = build_digest(None, AMS, local(2026, 3, 30, 8), "worst")
    assert d.day == date(2026, 3, 29)
    assert listed(d) == [("Spring Customer", [("Failed", "Late Night"), ("Missed", "Early Morning")])]
    assert {j.job_name: j.detail for j in d.customers[0].jobs}["Early Morning"] == \
        "no run arrived; expected at 01:30"


def test_error_line_takes_the_first_line_shortened():
    assert error_line(None) == ""
    assert error_line("\n\n  spaced   out \nnext") == "spaced out"
    assert error_line("a" * 200, limit=10) == "a" * 9 + "…"


# --- The command --------------------------------------------------------------------------------

def test_the_command_prints_the_days_failures(app):
    seed_night()
    r = app.test_cli_runner().invoke(args=["digest", "--print", "--date", "2026-12-03",
                                           "--base-url", "https://bc.example.test"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Backups 2026-12-03: 1 failed, 1 missed, 1 warning\n")
    assert "Failed: SQL Nightly [Acronis]" in r.output
    assert "https://bc.example.test/run-checks?job=" in r.output
    html = app.test_cli_runner().invoke(args=["digest", "--print", "--date", "2026-12-03", "--html"])
    assert html.exit_code == 0 and "<html" in html.output and 'href="/run-checks?job=' in html.output


def test_the_command_defaults_to_yesterday(app):
    seed_night()
    r = app.test_cli_runner().invoke(args=["digest", "--print"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Backups 2026-12-03:")


def test_the_command_refuses_a_bad_date_and_a_missing_print(app):
    r = app.test_cli_runner().invoke(args=["digest", "--print", "--date", "03-12-2026"])
    assert r.exit_code == 2
    assert "is not a date: use YYYY-MM-DD" in r.output
    r = app.test_cli_runner().invoke(args=["digest", "--print", "--date", "0001-01-01"])
    assert r.exit_code == 2 and "out of range" in r.output
    r = app.test_cli_runner().invoke(args=["digest", "--print", "--base-url", "javascript:alert(1)"])
    assert r.exit_code == 2
    r = app.test_cli_runner().invoke(args=["digest"])
    assert r.exit_code == 2 and "--print" in r.output


# --- The preview page (admin) -------------------------------------------------------------------

def test_the_preview_page_is_for_admins_and_keeps_the_pages_policy(as_user):
    from .conftest import active_html

    seed_night()
    admin = as_user("admin")
    assert 'href="/settings/digest-preview"' in admin.get("/settings?section=general").get_data(as_text=True)
    page = admin.get("/settings/digest-preview?date=2026-12-03")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Backups 2026-12-03: 1 failed, 1 missed, 1 warning" in html
    assert "style-src 'self'" in page.headers["Content-Security-Policy"]
    assert not [found for found in active_html(html) if "style=" in found or " on" in found]
    assert 'sandbox=""' in html and "/settings/digest-preview/mail?date=2026-12-03" in html
    mail = admin.get("/settings/digest-preview/mail?date=2026-12-03")
    assert mail.status_code == 200
    assert "sandbox" in mail.headers["Content-Security-Policy"]
    assert "script-src" not in mail.headers["Content-Security-Policy"]  # default-src 'none' covers scripts
    body = mail.get_data(as_text=True)
    assert "SQL Nightly" in body and "/run-checks?job=" in body
    assert admin.get("/settings/digest-preview?date=03-12-2026").status_code == 400
    for role in ("operator", "viewer", "reporter"):
        assert as_user(role).get("/settings/digest-preview").status_code == 403
        assert as_user(role).get("/settings/digest-preview/mail").status_code == 403


def test_a_stored_missed_run_is_listed_with_its_expected_time():
    c = make_customer("Stored Missed")
    j = job(c, "Nightly", daily("23:15"))
    slot = local(2026, 12, 3, 23, 15)
    make_run(j, "Missed", slot, missed=True, missed_slot=slot, message="No report arrived")
    db.session.commit()
    d = digest_of()
    assert listed(d) == [("Stored Missed", [("Missed", "Nightly")])]
    assert d.customers[0].jobs[0].detail == "no run arrived; expected at 23:15"
    assert subject(d) == "Backups 2026-12-03: 1 missed"


def test_open_counts_for_jobs_cover_job_object_and_customer_scopes_in_one_query():
    from backend.app.models import TicketScope
    from backend.app.services.tickets import open_counts_for_jobs

    c = make_customer("Scoped")
    a, b = job(c, "A"), job(c, "B")
    other = job(make_customer("Other"), "C")
    make_ticket("T-cust", customer=c)
    t = make_ticket("T-obj")
    t.scopes.append(TicketScope(scope_type="object", job_id=a.id, object_name="vm1"))
    make_ticket("T-both", job=a, customer=c)  # covers A twice: counted once
    db.session.commit()
    ids = (a.id, b.id, other.id)
    seen = []
    assert count_queries(lambda: seen.append(open_counts_for_jobs(ids))) == 1
    assert seen[0] == {ids[0]: (3, 0), ids[1]: (2, 0), ids[2]: (0, 0)}
    assert open_counts_for_jobs([]) == {}
