"""The dashboard: today's counts by local day, the 30-day success rate in one query, the last
import, news (visibility windows, safe Markdown, admin-only changes, audit) and the
"first page of the day" policy."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, ImportCycle, NewsItem, User
from backend.app.services import dashboard as dashboard_svc
from backend.app.services.missed_runs import detect_missed_runs, reconcile_late_run
from backend.app.services.schedules import set_manual_schedule
from backend.app.services import news as news_svc
from backend.app.services.settings import get_settings

from .conftest import post_form
from .helpers import count_queries, make_customer, make_job, make_override, make_run

AMS = ZoneInfo("Europe/Amsterdam")




def _local(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=AMS).astimezone(timezone.utc)


def _kpis(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-kpi="(\w+)">(\d+)<', html)}


def _override():
    return make_override(software="Veeam Backup & Replication", match_status="Failed")


def _today() -> date:
    return datetime.now(AMS).date()


# --- Today's counts -----------------------------------------------------------------------

DAY = date(2026, 11, 25)  # a Wednesday in winter time


def _kpis_at(client_factory, role: str, moment: datetime) -> tuple[dict[str, int], str]:
    with time_machine.travel(moment, tick=False):
        html = client_factory(role).get("/").get_data(as_text=True)
    return _kpis(html), html


def _daily_jobs_at(client_factory, moment: datetime, query: str) -> str:
    with time_machine.travel(moment, tick=False):
        return client_factory("viewer").get(f"/daily-jobs?{query}").get_data(as_text=True)


def test_todays_cards_count_jobs_by_their_day_status_like_daily_jobs(as_user):
    customer = make_customer("Acme Testing")

    def job(name):
        return make_job(customer, name, sender=f"{name.lower().replace(' ', '-')}@example.test",
                        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))

    twice = job("Twice Fine")
    make_run(twice, "Success", _local(DAY, 0, 10))
    make_run(twice, "Success", _local(DAY, 0, 20))
    make_run(job("Overridden"), "Failed", _local(DAY, 0, 30), effective_status="Success", override_id=_override().id)
    make_run(job("Warned"), "Warning", _local(DAY, 0, 40))
    make_run(job("Broken"), "Failed", _local(DAY, 0, 50))
    make_run(job("Not Reported"), "Missed", _local(DAY, 0, 55), missed=True, missed_slot=_local(DAY, 0, 55))
    # Started the day before at 23:50 local (22:50 UTC in winter): that day's run, not this day's.
    make_run(job("Yesterday"), "Failed", _local(DAY - timedelta(days=1), 23, 50))
    make_run(job("Tomorrow"), "Warning", _local(DAY + timedelta(days=1), 0, 5))

    kpis, html = _kpis_at(as_user, "viewer", _local(DAY, 21, 30))
    # Jobs, not runs: the job with two successful runs is one successful job.
    assert kpis == {"success": 2, "warning": 1, "failed": 1, "missed": 1, "unreviewed": 8}
    assert "incl. 1 by override" in html  # an overridden failure counts as a success, said so
    assert "Missed today: 1 job. Open Daily Jobs filtered on Missed" in html


def test_missed_today_equals_the_missed_rows_of_daily_jobs_on_a_seeded_day(as_user):
    """A schedule set mid-day, a stored missed run, a slot still awaiting the missed-run check and a
    late run that replaced its missed run: the dashboard and Daily Jobs name the same missed jobs,
    before and after the check stores the pending one."""
    customer = make_customer("Acme Testing")
    before = _local(DAY - timedelta(days=1), 12)

    def job(name, hhmm, grace=60, since=before):
        j = make_job(customer, name, sender=f"{name.lower().replace(' ', '-')}@example.test", created_at=before)
        set_manual_schedule(j, {"kind": "weekdays", "weekdays": list(range(7)), "time": hhmm,
                                "grace_minutes": grace}, None, now=since, zone=AMS)
        db.session.commit()
        return j

    jobs = {name: job(name, hhmm) for name, hhmm in (("Stored Missed", "01:00"), ("Late Run", "03:00"),
                                                       ("Awaiting Check", "18:00"), ("On Time", "06:00"))}
    make_run(jobs["Awaiting Check"], "Success", _local(DAY - timedelta(days=1), 18, 5))  # the day before: fine
    make_run(jobs["On Time"], "Success", _local(DAY, 6, 5))
    # Set by hand at 14:00 for 02:00: this day's 02:00 lay before the schedule existed.
    job("Set Midday", "02:00", since=_local(DAY, 14))

    assert detect_missed_runs(_local(DAY, 4, 5), AMS) == 2  # 01:00 and 03:00 had no report by 04:05
    late = make_run(jobs["Late Run"], "Warning", _local(DAY, 5, 30))
    assert reconcile_late_run(late, AMS) is not None  # the late report replaces its missed run
    db.session.commit()
    assert detect_missed_runs(_local(DAY, 18, 58), AMS) == 0  # 18:00 + 60 min has not passed yet

    moment = _local(DAY, 19, 2)  # the 18:00 deadline passed; the check has not run again yet
    kpis, _ = _kpis_at(as_user, "viewer", moment)
    page = _daily_jobs_at(as_user, moment, f"date={DAY.isoformat()}")
    rows = dict(re.findall(r'data-job="([^"]+)" data-status="([^"]+)"', page))
    assert rows == {"Stored Missed": "Missed", "Late Run": "Warning", "Awaiting Check": "Missed",
                    "On Time": "Success"}  # "Set Midday" is not expected this day at all
    missed_page = _daily_jobs_at(as_user, moment, f"date={DAY.isoformat()}&status=missed")
    assert kpis["missed"] == missed_page.count('data-status="Missed"') == 2
    assert kpis["warning"] == 1 and kpis["success"] == 1

    # The check stores the pending slot: nothing changes on either page.
    assert detect_missed_runs(_local(DAY, 19, 5), AMS) == 1
    later = _local(DAY, 19, 6)
    kpis, _ = _kpis_at(as_user, "viewer", later)
    assert kpis["missed"] == _daily_jobs_at(as_user, later, f"date={DAY.isoformat()}&status=missed"
                                            ).count('data-status="Missed"') == 2


def test_cards_link_to_the_pages_that_list_them_for_roles_that_may_open_them(as_user):
    make_run(make_job(), "Failed")
    admin = as_user("admin").get("/").get_data(as_text=True)
    assert 'href="/daily-jobs?status=Failed"' in admin
    assert 'href="/daily-jobs?status=Missed"' in admin
    assert 'href="/run-checks" aria-label="Unreviewed runs: 1. Open Run Checks"' in admin
    viewer = as_user("viewer").get("/").get_data(as_text=True)
    assert 'href="/daily-jobs?status=Warning"' in viewer
    assert "Open Run Checks" not in viewer  # viewers may not open Run Checks
    reporter = as_user("reporter").get("/").get_data(as_text=True)
    assert "/daily-jobs?status=" not in reporter and "Open Run Checks" not in reporter
    assert _kpis(reporter)["failed"] == 1


def test_unreviewed_counts_every_day_like_run_checks(as_user):
    job = make_job()
    make_run(job, "Failed", datetime.now(timezone.utc) - timedelta(days=40))
    make_run(job, "Success", datetime.now(timezone.utc), reviewed_at=datetime.now(timezone.utc))
    assert _kpis(as_user("operator").get("/").get_data(as_text=True))["unreviewed"] == 1


# --- The 30-day chart ---------------------------------------------------------------------

def test_chart_groups_by_local_day_across_dst_in_one_query(app):
    job = make_job()
    spring = date(2026, 3, 29)  # clocks go forward at 02:00 in Amsterdam
    make_run(job, "Success", _local(spring - timedelta(days=1), 23, 50))  # Saturday
    make_run(job, "Success", _local(spring, 0, 30))
    make_run(job, "Success", _local(spring, 3, 30), effective_status="Success")
    make_run(job, "Failed", _local(spring, 4, 0), effective_status="Success", override_id=_override().id)
    make_run(job, "Missed", _local(spring, 23, 30), missed=True)
    make_run(job, "Warning", _local(spring + timedelta(days=1), 0, 10))
    make_run(job, "Failed", _local(date(2026, 2, 1), 12))  # before the window
    series = []
    n = count_queries(lambda: series.extend(dashboard_svc.chart_days(AMS, today=date(2026, 4, 10))))
    assert n == 3  # what the past days depend on, the 28 past days, today and yesterday
    assert len(series) == 30 and series[0].day == date(2026, 3, 12) and series[-1].day == date(2026, 4, 10)
    by_day = {d.day: d for d in series}
    assert (by_day[spring].success, by_day[spring].total, by_day[spring].rate) == (3, 4, 75.0)
    assert by_day[spring].by_override == 1
    assert (by_day[date(2026, 3, 28)].total, by_day[date(2026, 3, 28)].rate) == (1, 100.0)
    assert (by_day[date(2026, 3, 30)].total, by_day[date(2026, 3, 30)].rate) == (1, 0.0)
    assert by_day[date(2026, 4, 1)].rate is None  # no runs: a gap, not 0 %
    summary = dashboard_svc.chart_summary(series)
    assert (summary["success"], summary["total"], summary["rate"]) == (4, 6, 66.7)
    assert summary["lowest"].day == date(2026, 3, 30)


def test_grouping_in_sql_follows_the_local_day_rule(app):
    """PostgreSQL's timezone() grouping puts every run on the day timezones.local_day gives it."""
    from collections import Counter

    from backend.app.services.timezones import local_day

    job = make_job()
    base = date(2026, 10, 20)
    ov = _override()
    expected: dict = {}
    for i in range(12):
        status = ("Success", "Warning", "Failed", "Missed")[i % 4]
        overridden = i % 5 == 0
        started = _local(base, 0, 0) + timedelta(hours=7 * i)
        make_run(job, status, started,
                 effective_status="Success" if overridden else status, override_id=ov.id if overridden else None)
        key = "Success (override)" if overridden else status
        expected.setdefault(local_day(started, AMS), Counter())[key] += 1
    first, last = date(2026, 10, 15), date(2026, 10, 28)  # autumn DST on 25 October
    in_sql = dashboard_svc.day_status_counts(AMS, first, last)
    assert in_sql == expected and sum(sum(c.values()) for c in in_sql.values()) == 12
    assert sum(c["Success (override)"] for c in in_sql.values()) == 3


def test_chart_reads_its_runs_from_one_index_alone(app):
    """The 30-day query reads only what ix_job_runs_started_status holds (started_at, and
    effective_status and override_id beside it): PostgreSQL answers it from the index, without
    reading a table row per run. A column added to the query would need adding to the index."""
    from sqlalchemy import event, text

    job, ov = make_job(), _override()
    for i in range(60):
        make_run(job, "Failed", _local(DAY - timedelta(days=i % 30), 9, i), effective_status="Success",
                 override_id=ov.id if i % 3 == 0 else None)
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE job_runs"))  # marks the pages all-visible, as autovacuum does
    sent = []
    listener = lambda conn, cursor, statement, params, *a: sent.append((statement, params))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        counts = dashboard_svc.day_status_counts(AMS, DAY - timedelta(days=29), DAY)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert sum(sum(c.values()) for c in counts.values()) == 60
    (statement, params), = sent
    conn = db.session.connection()
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a few rows: a table scan would be cheaper
    plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, params).scalars())
    db.session.rollback()
    assert "Index Only Scan using ix_job_runs_started_status" in plan, plan


def test_chart_has_a_text_alternative_with_the_figures(as_user):
    job = make_job()
    yesterday = _today() - timedelta(days=1)
    make_run(job, "Success", _local(yesterday, 9))
    make_run(job, "Failed", _local(yesterday, 10))
    html = as_user("reporter").get("/").get_data(as_text=True)
    assert 'id="success-chart"' in html and "chart.umd.min.js" in html
    assert re.search(r'aria-label="Line chart of the daily success rate[^"]*50.0% overall, 1 of 2 runs', html)
    row = re.search(rf'<tr data-day="{yesterday.isoformat()}">(.*?)</tr>', html, re.S).group(1)
    assert "50.0%" in row


def test_dashboard_runs_a_constant_number_ofcount_queries(as_user):
    admin = as_user("admin")
    make_run(make_job(), "Success")
    admin.get("/")  # warm-up (settings row, first-day hook)
    db.session.expire_all()  # the logged-in user is loaded by both requests alike
    few = count_queries(lambda: admin.get("/"))
    customer = make_customer("Many Runs Testing")
    jobs = [make_job(customer, f"Job {i}", sender=f"j{i}@example.test") for i in range(10)]
    now = datetime.now(timezone.utc)
    for i in range(300):
        make_run(jobs[i % 10], ("Success", "Warning", "Failed", "Missed")[i % 4], now - timedelta(hours=2 * i))
    for i in range(15):
        db.session.add(NewsItem(title=f"News {i}", body="**hi**"))
        db.session.add(ImportCycle(state="done", fetched=i))
    db.session.commit()
    db.session.expire_all()
    computed = count_queries(lambda: admin.get("/"))  # the new runs change today: its rows are computed again
    db.session.expire_all()
    log: list[str] = []
    many = count_queries(lambda: admin.get("/"), log)  # and then come from the day cache
    assert computed == many + 3  # the candidate jobs, the runs around the day, the chart's past days
    assert few == many, "\n".join(s[:90] for s in log)
    assert many <= 11, "\n".join(s[:90] for s in log)  # incl. the fingerprints of the cards and of the chart


# --- Last import --------------------------------------------------------------------------

def test_a_failed_import_is_shown_plainly_with_what_to_do(as_user):
    db.session.add(ImportCycle(state="failed", started_at=datetime.now(timezone.utc) - timedelta(minutes=5),
                               error="Graph refused the client secret <AADSTS7000215>"))
    db.session.commit()
    html = as_user("admin").get("/").get_data(as_text=True)
    problem = html.split('id="import-problem"')[1].split("</div>\n{% endif %}")[0]
    assert "The last import failed." in problem
    assert "Graph refused the client secret &lt;AADSTS7000215&gt;" in problem
    assert "Settings → Mail" in problem and "Nothing was lost" in problem
    assert 'href="/settings?section=mail"' in problem


def test_a_good_import_shows_its_counts(as_user):
    db.session.add(ImportCycle(state="done", started_at=datetime.now(timezone.utc), fetched=7, new=5,
                               auto_processed=4, to_inbox=1))
    db.session.commit()
    html = as_user("viewer").get("/").get_data(as_text=True)
    assert "7 fetched · 5 new · 4 auto-processed · 1 to Inbox" in html
    assert 'id="import-problem"' not in html


def test_empty_state_says_what_to_do_next(as_user):
    html = as_user("admin").get("/").get_data(as_text=True)
    assert "No backup runs yet" in html
    assert 'href="/settings?section=mail"' in html and 'href="/inbox#upload-form"' in html
    assert "No mail has been imported yet." in html
    make_run(make_job(), "Success", datetime.now(timezone.utc) - timedelta(days=90))
    assert "No backup runs yet" not in as_user("admin").get("/").get_data(as_text=True)


# --- News ---------------------------------------------------------------------------------

def _news(**kw):
    item = NewsItem(title=kw.pop("title", "Maintenance tonight"), body=kw.pop("body", "Hi"), **kw)
    db.session.add(item)
    db.session.commit()
    return item


def test_news_visibility_windows(as_user):
    now = datetime.now(timezone.utc)
    _news(title="Always on")
    _news(title="Current window", visible_from=now - timedelta(hours=1), visible_until=now + timedelta(hours=1))
    _news(title="Starts tomorrow", visible_from=now + timedelta(days=1))
    _news(title="Ended yesterday", visible_until=now - timedelta(days=1))
    html = as_user("viewer").get("/").get_data(as_text=True)
    assert "Always on" in html and "Current window" in html
    assert "Starts tomorrow" not in html and "Ended yesterday" not in html
    # The boundary: visible while from <= now < until.
    titles = [i.title for i in news_svc.visible_news(now + timedelta(hours=1))]
    assert "Current window" not in titles and "Always on" in titles
    # Admins see every item with its state, to manage scheduled and expired ones.
    admin = as_user("admin").get("/").get_data(as_text=True)
    table = admin.split('id="news-admin"')[1]
    assert "Starts tomorrow" in table and "Scheduled" in table and "Expired" in table


@pytest.mark.parametrize("body,forbidden", [
    ("<script>alert('x')</script>", "<script"),
    ("[click](javascript:alert(1))", "javascript:"),
    ("[click](JaVaScRiPt:alert(1))", "javascript:"),
    ('<a href="javascript:alert(1)">x</a>', "<a href"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ('<div onclick="steal()">x</div>', "<div onclick"),
])
def test_news_markdown_is_rendered_safely(as_user, body, forbidden):
    _news(title="Careful", body=body)
    html = as_user("viewer").get("/").get_data(as_text=True)
    article = html.split('class="news-body">')[1].split("</div></article>")[0]
    assert forbidden not in article.lower()


def test_news_markdown_keeps_formatting_and_safe_links(app):
    html = _news(body="**Bold** and [docs](https://example.test/x)\n\n- one\n- two").body_html
    assert "<strong>Bold</strong>" in html
    assert '<a href="https://example.test/x" rel="noopener noreferrer">docs</a>' in html
    assert "<li>one</li>" in html
    assert "&lt;b&gt;" in _news(body="<b>raw</b>").body_html  # raw HTML shows as text


def test_admin_posts_news_entered_in_the_ui_timezone_and_audited(as_user, personas):
    admin = as_user("admin")
    r = post_form(admin, "/news", {"title": "  Summer maintenance ", "body": "Mail server *down*",
                                   "visible_from": "2026-07-01T08:00", "visible_until": "2026-07-02 18:30"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/#news")
    item = db.session.execute(select(NewsItem)).scalar_one()
    assert item.title == "Summer maintenance"
    assert item.visible_from == datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc)  # CEST = UTC+2
    assert item.visible_until == datetime(2026, 7, 2, 16, 30, tzinfo=timezone.utc)
    assert item.created_by_id == personas["admin"].id
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "news.create")).scalar_one()
    assert entry.username == "alice" and entry.target_id == str(item.id)
    assert "News &#39;Summer maintenance&#39; posted." in admin.get("/").get_data(as_text=True)


@pytest.mark.parametrize("form,message", [
    ({"title": "   ", "body": "x"}, "Give the news item a title."),
    ({"title": "T", "visible_from": "2026-07-02T08:00", "visible_until": "2026-07-01T08:00"},
     "Visible until must be after visible from"),
    ({"title": "T", "visible_from": "2026-07-02T08:00", "visible_until": "2026-07-02T08:00"},
     "Visible until must be after visible from"),
    ({"title": "T", "visible_from": "01/07/2026"}, "Visible from &#39;01/07/2026&#39; is not a date and time"),
    ({"title": "T", "visible_until": "2026-13-40T99:00"}, "is not a date and time: use YYYY-MM-DD HH:MM"),
    ({"title": "x" * 201}, "keep it to 200"),
])
def test_bad_news_input_saves_nothing_and_says_why(as_user, form, message):
    admin = as_user("admin")
    r = post_form(admin, "/news", form)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert message in html
    assert 'id="news-post" open' in html  # the form stays open with what was typed
    if form.get("title", "").strip():
        assert f'value="{form["title"]}"' in html
    assert db.session.execute(select(func.count(NewsItem.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event.like("news.%"))).scalar_one() == 0


def test_admin_edits_and_deletes_news_audited(as_user):
    item = _news(title="Old title", visible_from=datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc))
    admin = as_user("admin")
    page = admin.get(f"/news/{item.id}/edit").get_data(as_text=True)
    assert 'value="2026-01-05T08:00"' in page  # shown in the UI timezone (CET)
    assert 'value="Old title"' in page

    r = post_form(admin, f"/news/{item.id}/edit", {"title": "New title", "body": "Hi",
                                                     "visible_from": "2026-01-05T08:00", "visible_until": ""})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(NewsItem, item.id).title == "New title"
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "news.update")).scalar_one()
    assert entry.before == {"title": "Old title"} and entry.after == {"title": "New title"}

    r = post_form(admin, f"/news/{item.id}/edit", {"title": "New title", "body": "Hi", "visible_from": "2026-01-05T08:00"})
    assert r.status_code == 302  # nothing changed: no second audit entry
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event == "news.update")).scalar_one() == 1

    r = post_form(admin, f"/news/{item.id}/edit", {"title": "", "body": "Hi"})
    assert r.status_code == 400 and "Give the news item a title." in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(NewsItem, item.id).title == "New title"

    r = post_form(admin, f"/news/{item.id}/delete")
    assert r.status_code == 302
    assert db.session.get(NewsItem, item.id) is None
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "news.delete")).scalar_one().before["title"] == "New title"
    assert post_form(admin, f"/news/{item.id}/delete").status_code == 404
    assert admin.get(f"/news/{item.id}/edit").status_code == 404


@pytest.mark.parametrize("role", ["operator", "reporter", "viewer"])
def test_only_admins_change_news(as_user, role):
    item = _news(title="Admins only")
    c = as_user(role)
    assert post_form(c, "/news", {"title": "Sneaky"}).status_code == 403
    assert c.get(f"/news/{item.id}/edit").status_code == 403
    assert post_form(c, f"/news/{item.id}/edit", {"title": "Sneaky"}).status_code == 403
    assert post_form(c, f"/news/{item.id}/delete").status_code == 403
    html = c.get("/").get_data(as_text=True)
    assert "Admins only" in html and 'id="news-post"' not in html and 'id="news-admin"' not in html
    assert db.session.execute(select(func.count(NewsItem.id))).scalar_one() == 1


def test_news_post_without_csrf_token_is_refused(as_user):
    r = as_user("admin").post("/news", data={"title": "No token"})
    assert r.status_code == 400
    assert db.session.execute(select(func.count(NewsItem.id))).scalar_one() == 0


# --- The dashboard policy: the first page of the day ---------------------------------------

def _policy(on: bool):
    get_settings().dashboard_first = on
    db.session.commit()


def test_first_page_of_the_day_is_the_dashboard_once(as_user):
    _policy(True)
    c = as_user("operator")
    r = c.get("/customers")
    assert r.status_code == 302 and r.headers["Location"].endswith("/")
    assert "here is today&#39;s overview" in c.get("/").get_data(as_text=True)
    assert c.get("/customers").status_code == 200  # the second page of the day is not redirected
    user = db.session.execute(select(User).where(User.username == "oscar")).scalar_one()
    db.session.refresh(user)
    assert user.last_dashboard_date == _today().isoformat()

    # A new day: redirected again, once.
    user.last_dashboard_date = (_today() - timedelta(days=1)).isoformat()
    db.session.commit()
    assert c.get("/customers").status_code == 302
    assert c.get("/customers").status_code == 200


def test_first_page_of_the_day_that_is_the_dashboard_counts(as_user):
    _policy(True)
    c = as_user("viewer")
    assert c.get("/").status_code == 200
    assert c.get("/customers").status_code == 200


def test_policy_is_per_user(as_user):
    _policy(True)
    a, b = as_user("operator"), as_user("viewer")
    assert a.get("/customers").status_code == 302
    assert b.get("/customers").status_code == 302
    assert a.get("/customers").status_code == 200


def test_policy_off_redirects_nobody(as_user):
    _policy(False)
    c = as_user("operator")
    assert c.get("/customers").status_code == 200
    assert c.get("/jobs").status_code == 200


def test_the_charts_past_days_are_counted_once_and_follow_every_change(app):
    job = make_job()
    today = date(2026, 4, 10)
    make_run(job, "Success", _local(date(2026, 4, 1), 22))
    chart = lambda: {d.day: d for d in dashboard_svc.chart_days(AMS, today=today)}  # noqa: E731
    assert chart()[date(2026, 4, 1)].total == 1
    series = []
    assert count_queries(lambda: series.append(chart())) == 2  # the fingerprint, today and yesterday
    assert series[0][date(2026, 4, 1)].total == 1
    late = make_run(job, "Failed", _local(date(2026, 4, 2), 23))         # a late report for a past day
    assert (chart()[date(2026, 4, 2)].total, chart()[date(2026, 4, 2)].rate) == (1, 0.0)
    rule = _override()                                                   # a new override makes it a success
    late.effective_status, late.override_id = "Success", rule.id
    db.session.flush()
    assert chart()[date(2026, 4, 2)].by_override == 1
    make_run(job, "Warning", _local(today, 1))                           # today is always counted afresh
    assert chart()[today].total == 1
