"""Reports: the figures agree with the database and the shared status rules; PDF, CSV, preview;
the page's roles; background generation state; retention."""
from __future__ import annotations

import csv
import io
import random
import shutil
import subprocess
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, ReportDefinition, ReportRun, User
from backend.app.services import reports as svc
from backend.app.services.settings import get_settings, ui_zone
from backend.app.services.status import day_status

from tests.clock import TEST_NOW

from .conftest import active_html, make_customer, make_job, make_run, post_form
from .helpers import make_override, make_ticket, queries

UTC = timezone.utc
TODAY = date(2026, 11, 10)                                   # "last month" is October 2026
OCT_START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)        # 1 Oct 00:00 CEST
OCT_END = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)         # 1 Nov 00:00 CET (DST ended 25 Oct)


def _settings(company="Contoso IT Services", rule="worst"):
    s = get_settings()
    s.ui_timezone, s.company_name, s.daily_status_rule = "Europe/Amsterdam", company, rule
    db.session.commit()
    return s


def _definition(**kw) -> ReportDefinition:
    values = dict(name="Monthly backup report", all_customers=True, period="last_month",
                  content={k: True for k in svc.CONTENT_KEYS}, intro_markdown="", schedule="none")
    values.update(kw)
    d = ReportDefinition(**values)
    db.session.add(d)
    db.session.commit()
    return d


@pytest.fixture
def month(app):
    """October 2026 for three customers: random statuses, overrides, missed runs, two runs on one day,
    runs on both sides of the period's edges (in the UI timezone, across the DST change)."""
    _settings()
    rng = random.Random(7)
    north = make_customer("Northwind Demo")
    fabri = make_customer("Fabrikam Demo")
    gone = make_customer("Inactive Demo", active=False)
    jobs = [make_job(north, "Daily VM Backup"), make_job(north, "SQL Backup", sender="sql@example.test"),
            make_job(fabri, "File Server", software="Synology Active Backup", sender="nas@example.test")]
    quiet = make_job(fabri, "Old NAS", sender="old@example.test", archived=True)  # archived, no runs: left out
    inactive_job = make_job(gone, "Never in the report", sender="x@example.test")
    override = make_override(jobs[0], match_status="Failed", comment="Known: tape offline", treat_as_success=True)
    runs = []
    for job in jobs:
        for day in range(31):
            start = OCT_START + timedelta(days=day, hours=1 + rng.random() * 20)
            status = rng.choices(["Success", "Warning", "Failed", "Missed"], [70, 12, 10, 8])[0]
            kw = {}
            effective = status
            if status == "Failed" and job is jobs[0] and rng.random() < 0.5:
                effective, kw["override_id"] = "Success", override.id
            if status == "Missed":
                kw.update(missed=True, missed_slot=start, message="No report received for the run expected at 21:00")
            elif status != "Success":
                kw["message"] = f"{status}: disk {rng.randint(1, 9)} said no"
            runs.append(JobRun(job_id=job.id, status=status, effective_status=effective, started_at=start, **kw))
    # Edges: 1 Oct 00:30 CEST and 31 Oct 23:30 CET are in; 30 Sep 23:30 and 1 Nov 00:30 are out.
    edge = jobs[2]
    runs += [JobRun(job_id=edge.id, status="Success", effective_status="Success",
                    started_at=datetime(2026, 9, 30, 22, 30, tzinfo=UTC)),
             JobRun(job_id=edge.id, status="Failed", effective_status="Failed", message="last of October",
                    started_at=datetime(2026, 10, 31, 22, 30, tzinfo=UTC)),
             JobRun(job_id=edge.id, status="Failed", effective_status="Failed",
                    started_at=datetime(2026, 9, 30, 21, 30, tzinfo=UTC)),
             JobRun(job_id=edge.id, status="Failed", effective_status="Failed",
                    started_at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),
             JobRun(job_id=inactive_job.id, status="Failed", effective_status="Failed",
                    started_at=datetime(2026, 10, 10, 8, tzinfo=UTC))]
    # Two runs on 12 October for the SQL job: a failure at 01:00 and a success at 09:00 (local).
    runs += [JobRun(job_id=jobs[1].id, status="Failed", effective_status="Failed", message="first try",
                    started_at=datetime(2026, 10, 11, 23, 0, tzinfo=UTC)),
             JobRun(job_id=jobs[1].id, status="Success", effective_status="Success",
                    started_at=datetime(2026, 10, 12, 7, 0, tzinfo=UTC))]
    db.session.add_all(runs)
    # Tickets: open during the period (customer scope), resolved before it (left out), job scope.
    make_ticket("T-1001", "Tape drive replaced", customer=north, active_from=datetime(2026, 9, 15, tzinfo=UTC),
                resolved_at=datetime(2026, 10, 5, tzinfo=UTC))
    make_ticket("T-0999", "Old issue", customer=north, active_from=datetime(2026, 9, 1, tzinfo=UTC),
                resolved_at=datetime(2026, 9, 29, tzinfo=UTC))
    make_ticket("T-1010", "NAS volume full", job=jobs[2], active_from=datetime(2026, 10, 20, tzinfo=UTC))
    db.session.commit()
    return {"north": north, "fabri": fabri, "gone": gone, "jobs": jobs, "quiet": quiet, "override": override}


def _db_counts(customer_id):
    """Independent figures straight from the database: runs of October by shown status."""
    from backend.app.models import Job
    rows = db.session.execute(
        select(JobRun.effective_status, JobRun.override_id.is_not(None), func.count())
        .join(Job, Job.id == JobRun.job_id)
        .where(Job.customer_id == customer_id, JobRun.started_at >= OCT_START, JobRun.started_at < OCT_END)
        .group_by(JobRun.effective_status, JobRun.override_id.is_not(None))).all()
    out = Counter()
    for status, overridden, n in rows:
        out["Success (override)" if status == "Success" and overridden else status] += n
    return out


def test_period_is_last_calendar_month_in_the_ui_timezone(month):
    period = svc.period_for(_definition(), ui_zone(), TODAY)
    assert (period.start, period.end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert (period.start_utc, period.end_utc) == (OCT_START, OCT_END)
    assert period.label == "October 2026"
    assert svc.period_days("last_7_days", TODAY) == (date(2026, 11, 3), date(2026, 11, 9))


def test_a_seeded_month_agrees_with_the_database(month):
    data = svc.build_report(_definition(), today=TODAY)

    assert [c.name for c in data.customers] == ["Fabrikam Demo", "Northwind Demo"]  # active only, by name
    for cust in data.customers:
        expected = _db_counts(cust.id)
        assert +cust.counts == +expected, cust.name
        assert cust.total == sum(expected.values())
    assert data.total == sum(c.total for c in data.customers)
    north = next(c for c in data.customers if c.name == "Northwind Demo")
    assert north.counts["Success (override)"] > 0
    rate = 100.0 * (north.counts["Success"] + north.counts["Success (override)"]) / north.total
    assert north.success_rate == pytest.approx(rate)
    # The archived job without runs is left out; the edges of the period hold.
    fabri = next(c for c in data.customers if c.name == "Fabrikam Demo")
    assert [j.name for j in fabri.jobs] == ["File Server"]
    edge_runs = [r.started_at for r in fabri.jobs[0].runs]
    assert datetime(2026, 9, 30, 22, 30, tzinfo=UTC) in edge_runs
    assert datetime(2026, 10, 31, 22, 30, tzinfo=UTC) in edge_runs
    assert datetime(2026, 9, 30, 21, 30, tzinfo=UTC) not in edge_runs
    assert datetime(2026, 10, 31, 23, 30, tzinfo=UTC) not in edge_runs


def test_days_follow_the_day_rule_from_settings(month):
    sql_job = month["jobs"][1]
    data = svc.build_report(_definition(), today=TODAY)
    job = next(j for c in data.customers for j in c.jobs if j.id == sql_job.id)
    assert job.day_statuses[date(2026, 10, 12)] == "Failed"          # worst (default)
    runs_12 = [r for r in job.runs if r.day == date(2026, 10, 12)]
    assert job.day_statuses[date(2026, 10, 12)] == day_status(runs_12, "worst")

    _settings(rule="last")
    data = svc.build_report(_definition(), today=TODAY)
    job = next(j for c in data.customers for j in c.jobs if j.id == sql_job.id)
    assert job.day_statuses[date(2026, 10, 12)] == "Success"
    assert len(job.day_statuses) == len({r.day for r in job.runs})


def test_failures_overrides_and_tickets(month):
    data = svc.build_report(_definition(), today=TODAY)
    north = next(c for c in data.customers if c.name == "Northwind Demo")
    fabri = next(c for c in data.customers if c.name == "Fabrikam Demo")
    expected = _db_counts(north.id)
    assert north.failures_total == expected["Failed"] + expected["Missed"]
    assert all(f.shown in ("Failed", "Missed") for f in north.failures)
    assert any("No report received" in f.message for f in north.failures)
    assert [f.started_at for f in north.failures] == sorted(f.started_at for f in north.failures)

    [use] = north.overrides
    assert use.id == month["override"].id and use.runs == expected["Success (override)"]
    assert "Daily VM Backup" in use.description and use.comment == "Known: tape offline"
    assert fabri.overrides == []

    assert [t.code for t in north.tickets] == ["T-1001"]        # resolved before October: left out
    assert [t.code for t in fabri.tickets] == ["T-1010"]        # job scope counts for its customer


def test_chosen_customers_only(month):
    data = svc.build_report(_definition(all_customers=False, customer_ids=[month["gone"].id]), today=TODAY)
    assert [c.name for c in data.customers] == ["Inactive Demo"]
    assert data.total == 1 and data.counts["Failed"] == 1


def test_report_reads_in_a_constant_number_of_queries(month, app):
    defn = _definition()
    get_settings()
    with queries(expire=True) as small:
        svc.build_report(defn, today=TODAY)
    for i in range(10):  # ten more customers with jobs and runs: the same number of queries
        c = make_customer(f"Extra {i}")
        make_run(make_job(c, f"Job {i}", sender=f"s{i}@example.test"), started_at=datetime(2026, 10, 3, 5, tzinfo=UTC))
    with queries(expire=True) as large:
        svc.build_report(defn, today=TODAY)
    assert len(large) == len(small) <= 10


def test_csv_is_one_row_per_run_and_matches_the_database(month):
    data = svc.build_report(_definition(), today=TODAY)
    text = svc.render_csv(data).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    from backend.app.models import Customer, Job
    db_rows = db.session.execute(
        select(JobRun.id, JobRun.status, JobRun.effective_status, JobRun.override_id, Customer.name, Job.job_name)
        .join(Job, Job.id == JobRun.job_id).join(Customer, Customer.id == Job.customer_id)
        .where(Customer.active.is_(True), JobRun.started_at >= OCT_START, JobRun.started_at < OCT_END)).all()
    assert len(rows) == len(db_rows)
    by_id = {int(r["run_id"]): r for r in rows}
    for run_id, status, effective, override_id, customer, job in db_rows:
        row = by_id[run_id]
        assert (row["customer"], row["job"], row["status"], row["effective_status"]) == (customer, job, status, effective)
        assert row["overridden"] == ("yes" if override_id else "no")
        assert row["shown_status"] == ("Success (override)" if override_id and effective == "Success" else effective)
    first = next(r for r in rows if r["started_at"].startswith("2026-10-01T00:30"))
    assert first["started_at"] == "2026-10-01T00:30:00+02:00" and first["day"] == "2026-10-01"
    last = next(r for r in rows if r["message"] == "last of October")
    assert last["started_at"] == "2026-10-31T23:30:00+01:00"


def test_csv_cells_never_start_a_formula(app):
    _settings()
    c = make_customer("=HYPERLINK(\"http://x\")")
    make_run(make_job(c, "+cmd"), status="Failed", message="-2+3", started_at=datetime(2026, 10, 5, 3, tzinfo=UTC))
    rows = list(csv.reader(io.StringIO(svc.render_csv(svc.build_report(_definition(), today=TODAY)).decode("utf-8-sig"))))
    assert rows[1][0].startswith("'=") and rows[1][1] == "'+cmd" and rows[1][-1] == "'-2+3"


def test_pdf_opens_and_reads_right(month, tmp_path):
    defn = _definition(intro_markdown="Dear customer,\n\nThis is **your** backup report.\n\n- item one\n- item two\n\n"
                                      "<script>alert(1)</script>")
    data = svc.build_report(defn, today=TODAY)
    from backend.app.services.reports.pdf import render_pdf
    done = []
    pdf = render_pdf(data, progress=done.append)
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    assert done[-1] == len(data.customers)
    (tmp_path / "report.pdf").write_bytes(pdf)
    shutil.copy(tmp_path / "report.pdf", "/tmp/backupchecks-report-test.pdf")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = text.split("\f")
    assert "Contoso IT Services" in pages[0] and "Monthly backup report" in pages[0] and "October 2026" in pages[0]
    assert "your backup report" in pages[0] and "<script>alert(1)</script>" in text  # typed HTML: text
    assert "Summary per customer" in text and "Northwind Demo" in text and "Fabrikam Demo" in text
    assert "Failures and missed runs" in text and "T-1010" in text and "Known: tape offline" in text
    n = len([p for p in pages if p.strip()])
    assert f"Page 1 of {n}" in pages[0] and f"Page {n} of {n}" in pages[n - 1]
    assert f"Generated {TEST_NOW.astimezone(ZoneInfo('Europe/Amsterdam')):%Y-%m-%d}" in pages[1]


def test_intro_markdown_is_sanitised(app):
    html = str(svc.intro_html(_definition(intro_markdown="Hello **there** [link](javascript:alert(1)) "
                                                         "<img src=x onerror=alert(1)>")))
    assert "<strong>there</strong>" in html and active_html(html) == []
    assert '<a rel="noopener noreferrer">link</a>' in html  # the javascript: target is gone
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # typed HTML shows as text


def test_the_pdf_intro_shows_every_kind_of_markdown_the_app_allows(app):
    from backend.app.services.reports import pdf as report_pdf
    from backend.app.services.markdown_render import render

    html = render("# Head\n\n##### Small head\n\n| Job | State |\n|---|---|\n| VM | **ok** |\n\n> quoted\n\n"
                  "1. one\n\n```\ncode\n```\n\n<b>typed</b> ~~x~~")
    lines = [(p.style.name, p.text) for p in report_pdf.intro_flowables(html, report_pdf._styles())]
    assert ("h2", "Head") in lines and ("h3", "Small head") in lines
    assert ("body", "Job · State") in lines and ("body", "VM · <b>ok</b>") in lines  # a row per line, cells apart
    assert ("bullet", "one") in lines and ("code", "<font face=\"Courier\">code<br/></font>") in lines
    assert ("body", "&lt;b&gt;typed&lt;/b&gt; ~~x~~") in lines  # typed HTML stays text


# --- Generation as a stored, background job -------------------------------------------------------

def test_generate_run_stores_the_file_and_progress(month):
    defn = _definition()
    run = svc.request_report(defn, "csv", None, now=datetime(2026, 11, 10, 9, tzinfo=UTC))
    assert run.state == "queued"
    assert svc.generate_run(run.id) is True
    assert svc.generate_run(run.id) is False  # claimed once only
    db.session.expire_all()
    run = db.session.get(ReportRun, run.id)
    assert run.state == "done" and run.progress == run.total == 2
    assert run.filename == "monthly-backup-report_2026-10-01_2026-10-31.csv" and run.size == len(run.data)


def test_a_report_in_progress_is_polled_like_every_background_task(as_user, personas):
    """One task model: a report's row and an action's task answer in the same JSON
    (tasks.progress_json), and the list marks an unfinished report for the one poller in app.js."""
    from backend.app.models import BackgroundTask

    _settings()
    defn = _definition()
    run = ReportRun(definition_id=defn.id, fmt="pdf", state="running", progress=1, total=3,
                    period_start=datetime(2026, 9, 30, 22, tzinfo=UTC), period_end=datetime(2026, 10, 31, 23, tzinfo=UTC))
    task = BackgroundTask(kind="import", state="running", progress=1, total=3, message="Imported 1 of 3",
                          created_by_id=personas["admin"].id)
    db.session.add_all([run, task])
    db.session.commit()
    c = as_user("admin")
    report, action = c.get(f"/reports/runs/{run.id}/status").json, c.get(f"/tasks/{task.id}").json
    assert set(action) <= set(report)
    assert (report["kind"], report["state"], report["percent"]) == ("report", "running", 33) and action["percent"] == 33
    assert report["message"] == "Generating: customer 1 of 3"
    page = c.get(f"/reports/{defn.id}").get_data(as_text=True)
    assert f'data-task-url="/reports/runs/{run.id}/status" data-task-finish="reload"' in page
    assert '<div class="small task-message">Generating: customer 1 of 3</div>' in page
    db.session.execute(ReportRun.__table__.update().values(state="done"))
    db.session.commit()
    assert "data-task-url" not in c.get(f"/reports/{defn.id}").get_data(as_text=True)  # nothing left to poll


def test_a_failing_generation_shows_its_reason(month, monkeypatch):
    defn = _definition()
    run = svc.request_report(defn, "pdf", None, now=datetime(2026, 11, 10, 9, tzinfo=UTC))

    def boom(*a, **k):
        raise RuntimeError("the disk is full")
    monkeypatch.setattr("backend.app.services.reports.runs.render_pdf", boom)
    assert svc.generate_run(run.id) is False
    db.session.expire_all()
    run = db.session.get(ReportRun, run.id)
    assert run.state == "failed" and "the disk is full" in run.error


def test_retention_purges_old_files_but_keeps_undelivered(month):
    get_settings().report_retention_days = 30
    defn = _definition()
    now = datetime(2026, 11, 10, tzinfo=UTC)
    old = ReportRun(definition_id=defn.id, fmt="pdf", state="done", created_at=now - timedelta(days=31))
    waiting = ReportRun(definition_id=defn.id, fmt="pdf", state="done", created_at=now - timedelta(days=40),
                        delivery_state="pending", next_attempt_at=now)
    fresh = ReportRun(definition_id=defn.id, fmt="pdf", state="done", created_at=now - timedelta(days=2))
    db.session.add_all([old, waiting, fresh])
    db.session.commit()
    assert svc.purge_expired(now) == 1
    assert {r.id for r in db.session.execute(select(ReportRun)).scalars()} == {waiting.id, fresh.id}


# --- The page ------------------------------------------------------------------------------------

FORM = {"name": "Northwind monthly", "customer_scope": "all", "period": "last_month", "content_summary": "1",
        "content_success_rate": "1", "content_failures": "1", "intro_markdown": "Hello", "schedule": "none"}


def test_reporter_creates_generates_and_downloads(as_user, month, synchronous_tasks):
    c = as_user("reporter")
    r = post_form(c, "/reports/new", FORM)
    assert r.status_code == 302
    defn = db.session.execute(select(ReportDefinition)).scalar_one()
    assert defn.content == {"summary": True, "success_rate": True, "chart": False, "failures": True,
                            "overrides": False, "tickets": False}
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "report.create")).scalar_one().username == "rita"
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "Northwind monthly" in page and "Generate PDF" in page

    r = post_form(c, f"/reports/{defn.id}/generate", {"fmt": "pdf"})
    assert r.status_code == 302
    run = db.session.execute(select(ReportRun)).scalar_one()
    db.session.refresh(run)
    assert run.state == "done"
    r = as_user("viewer").get(f"/reports/runs/{run.id}/download")
    assert r.status_code == 200 and r.data.startswith(b"%PDF") and r.mimetype == "application/pdf"
    assert "attachment" in r.headers["Content-Disposition"]
    assert as_user("operator").get(f"/reports/runs/{run.id}/status").get_json()["state"] == "done"
    listing = as_user("operator").get("/reports").get_data(as_text=True)
    assert "Download PDF" in listing and "New report" not in listing


def test_validation_says_what_to_fix(as_user, app):
    c = as_user("admin")
    r = post_form(c, "/reports/new", dict(FORM, schedule="weekly", schedule_day_weekly="0", schedule_time="07:00",
                                          recipients="not-an-address"))
    assert r.status_code == 400
    assert "is not a mail address" in r.get_data(as_text=True)
    r = post_form(c, "/reports/new", dict(FORM, period="custom", custom_start="2026-10-31", custom_end="2026-10-01"))
    assert r.status_code == 400 and "before its start date" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(ReportDefinition.id))).scalar_one() == 0


def test_edit_is_audited_with_before_and_after(as_user, month):
    defn = _definition()
    c = as_user("reporter")
    r = post_form(c, f"/reports/{defn.id}/edit", dict(FORM, name="Renamed", schedule="monthly",
                                                      schedule_day_monthly="3", schedule_time="06:30",
                                                      recipients="a@customer.example; b@customer.example"))
    assert r.status_code == 302
    db.session.refresh(defn)
    assert defn.recipients == "a@customer.example, b@customer.example" and defn.schedule_day == 3
    assert defn.next_delivery_at is not None
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "report.update")).scalar_one()
    assert entry.before["name"] == "Monthly backup report" and entry.after["name"] == "Renamed"


@pytest.mark.parametrize("role,status", [("operator", 403), ("viewer", 403), ("reporter", 302), ("admin", 302)])
def test_only_reporter_and_admin_generate(as_user, month, synchronous_tasks, role, status):
    defn = _definition()
    assert post_form(as_user(role), f"/reports/{defn.id}/generate", {"fmt": "csv"}).status_code == status


def test_preview_shows_the_same_figures(as_user, month):
    defn = _definition(intro_markdown="**Welcome**")
    html = as_user("viewer").get(f"/reports/{defn.id}/preview").get_data(as_text=True)
    data = svc.build_report(defn)
    assert "<strong>Welcome</strong>" in html and "Northwind Demo" in html
    assert f'<div class="kpi">{data.total}</div>' in html


def test_admin_sets_retention(as_user, app):
    r = post_form(as_user("admin"), "/reports/retention", {"report_retention_days": "45"})
    assert r.status_code == 302 and get_settings().report_retention_days == 45
    assert db.session.execute(select(AuditLog).where(AuditLog.event == "settings.reports")).scalar_one()
    assert post_form(as_user("reporter"), "/reports/retention", {"report_retention_days": "5"}).status_code == 403


def test_delete_removes_files(as_user, month):
    defn = _definition()
    db.session.add(ReportRun(definition_id=defn.id, fmt="csv", state="done", data=b"x"))
    db.session.commit()
    assert post_form(as_user("reporter"), f"/reports/{defn.id}/delete").status_code == 302
    assert db.session.execute(select(func.count(ReportRun.id))).scalar_one() == 0


def test_pdf_without_system_fonts_falls_back_to_helvetica(app, monkeypatch):
    from backend.app.services.reports import pdf as report_pdf

    monkeypatch.setattr(report_pdf, "_FONT_DIRS", ())
    monkeypatch.setattr(report_pdf, "_fonts", None)
    _settings(company="Ünïcode & Co <b>")
    make_run(make_job(make_customer("Zürich Ölwerke – 日本")), status="Failed", message="<script>x</script> & more",
             started_at=datetime(2026, 10, 5, 3, tzinfo=UTC))
    pdf = report_pdf.render_pdf(svc.build_report(_definition(intro_markdown="# Title\n\n1. one\n2. two"), today=TODAY))
    assert pdf.startswith(b"%PDF") and b"/Helvetica" in pdf
    monkeypatch.setattr(report_pdf, "_fonts", None)  # the next render registers the system fonts again


def test_empty_report_still_renders(app):
    _settings()
    data = svc.build_report(_definition(all_customers=False, customer_ids=[999]), today=TODAY)
    from backend.app.services.reports.pdf import render_pdf
    assert data.customers == [] and render_pdf(data).startswith(b"%PDF")
    assert svc.render_csv(data).decode("utf-8-sig").strip() == ",".join(svc.CSV_COLUMNS)


# --- How a period reads ---------------------------------------------------------------------------

@pytest.mark.parametrize("start,end,label", [
    (date(2024, 5, 15), date(2024, 5, 15), "15 May 2024"),                          # one day
    (date(2024, 5, 1), date(2024, 5, 15), "1–15 May 2024"),                         # within a month
    (date(2024, 5, 1), date(2024, 5, 31), "May 2024"),                              # a whole month
    (date(2024, 2, 1), date(2024, 2, 29), "February 2024"),                         # leap-year February
    (date(2024, 4, 28), date(2024, 5, 3), "28 April – 3 May 2024"),                 # across months
    (date(2023, 12, 28), date(2024, 1, 3), "28 December 2023 – 3 January 2024"),    # across years
    (date(2023, 12, 31), date(2024, 1, 1), "31 December 2023 – 1 January 2024"),
])
def test_period_label_reads_like_a_person_writes_it(start, end, label):
    assert svc.period_label(start, end) == label


def test_period_label_refuses_a_period_that_ends_before_it_starts():
    with pytest.raises(ValueError, match="ends .2024-05-14. before it starts .2024-05-15."):
        svc.period_label(date(2024, 5, 15), date(2024, 5, 14))


def test_period_text_names_a_custom_range_by_its_dates_and_a_relative_one_by_what_it_covers(app):
    zone = ui_zone()
    custom = ReportDefinition(name="x", period="custom", custom_start=date(2026, 3, 1), custom_end=date(2026, 3, 1))
    assert svc.period_text(custom, zone, TODAY) == "1 March 2026"
    custom.custom_end = date(2026, 3, 15)
    assert svc.period_text(custom, zone, TODAY) == "1–15 March 2026"
    custom.custom_end = None
    assert svc.period_text(custom, zone, TODAY) == "Custom range (its dates are missing: edit the report)"
    assert (svc.period_text(ReportDefinition(name="x", period="last_month"), zone, TODAY)
            == "Last calendar month · currently October 2026")
    assert (svc.period_text(ReportDefinition(name="x", period="last_7_days"), zone, TODAY)
            == "Last 7 days · currently 3–9 November 2026")
    assert svc.period_text(ReportDefinition(name="x", period="fortnight"), zone, TODAY) == "Unknown period 'fortnight'"


def test_a_one_day_custom_report_reads_as_that_day_on_every_page_and_the_pdf(as_user, month, synchronous_tasks, tmp_path):
    c = as_user("reporter")
    r = post_form(c, "/reports/new", dict(FORM, name="Incident day", period="custom", custom_start="2026-10-14",
                                          custom_end="2026-10-14"))
    assert r.status_code == 302
    defn = db.session.execute(select(ReportDefinition)).scalar_one()
    other = _definition(name="First half", period="custom", custom_start=date(2026, 10, 1),
                        custom_end=date(2026, 10, 15))

    listing = c.get("/reports").get_data(as_text=True)
    assert "<td data-period>14 October 2026</td>" in listing
    assert "<td data-period>1–15 October 2026</td>" in listing
    assert "2026-10-14 – 2026-10-14" not in listing and "14–14" not in listing
    detail = c.get(f"/reports/{defn.id}").get_data(as_text=True)
    assert '<dd class="col-sm-8" data-period>14 October 2026</dd>' in detail
    assert "now " not in detail.split('id="report-settings"')[1].split("</dl>")[0]
    assert "Backup status report · 1–15 October 2026" in c.get(f"/reports/{other.id}/preview").get_data(as_text=True)
    form = c.get(f"/reports/{defn.id}/edit").get_data(as_text=True)
    assert 'value="2026-10-14"' in form and "choose the same date twice for one day" in form

    data = svc.build_report(defn, today=TODAY)
    from backend.app.services.reports.pdf import render_pdf
    (tmp_path / "day.pdf").write_bytes(render_pdf(data))
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    cover = subprocess.run(["pdftotext", "-layout", str(tmp_path / "day.pdf"), "-"], capture_output=True,
                           text=True, check=True).stdout.split("\f")[0]
    assert "Backup status report · 14 October 2026" in cover
    assert "14 October 2026 (1 day, Europe/Amsterdam)" in cover and "14–14" not in cover


# --- Many clicks: a small pool of threads and a per-user limit -------------------------------------

LIMIT_MESSAGE = "You already have 3 reports being generated; wait for them to finish."


def _task_threads() -> int:
    import threading

    from backend.app.services.tasks import THREAD_PREFIX
    return sum(1 for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) or t.name.startswith("report-"))


def test_twenty_quick_generate_clicks_use_at_most_the_pool_and_three_per_user(app, personas, monkeypatch):
    import threading

    from backend.app.services.tasks import MAX_WORKERS, runner

    from .conftest import csrf_token, login, make_user

    _settings()
    defn = _definition()
    release, two_working = threading.Event(), threading.Event()
    guard, working, most, generated = threading.Lock(), [0], [0], []

    def slow_generate(run_id: int) -> bool:  # holds its pool thread until the test lets go
        with guard:
            working[0] += 1
            most[0] = max(most[0], working[0])
            generated.append(run_id)
            if working[0] >= 2:
                two_working.set()
        release.wait(30)
        with guard:
            working[0] -= 1
        return True

    monkeypatch.setattr(svc.runs, "generate_run", slow_generate)
    make_user("rob", roles=("reporter",))
    make_user("ruth", roles=("reporter",))
    clients = []
    for name in ("alice", "rita", "rob", "ruth"):  # an admin and three reporters
        c = app.test_client()
        assert login(c, name).status_code == 302
        clients.append((c, csrf_token(c, "/auth/profile")))
    threads_before = threading.active_count()
    most_threads, refused, pages = 0, 0, []
    try:
        for click in range(20):
            c, token = clients[click % 4]
            r = c.post(f"/reports/{defn.id}/generate", data={"fmt": "csv", "csrf_token": token},
                       follow_redirects=True)
            assert r.status_code == 200
            page = r.get_data(as_text=True)
            refused += LIMIT_MESSAGE in page
            pages.append(page)
            most_threads = max(most_threads, _task_threads())
            assert threading.active_count() <= threads_before + MAX_WORKERS
        assert two_working.wait(10)
        most_threads = max(most_threads, _task_threads())
        assert runner().running == MAX_WORKERS and runner().queued == 12 - MAX_WORKERS
    finally:
        release.set()
    assert runner().wait_idle(30)
    assert most_threads <= MAX_WORKERS and most[0] == MAX_WORKERS
    assert refused == 8 and all(LIMIT_MESSAGE in p for p in pages[12:])
    assert not any(LIMIT_MESSAGE in p for p in pages[:12])
    # Nothing was queued or audited for a refused click; every accepted one was generated once.
    runs = db.session.execute(select(ReportRun)).scalars().all()
    assert len(runs) == 12 and sorted(generated) == sorted(r.id for r in runs)
    clickers = db.session.execute(select(User.id).where(User.username.in_(("alice", "rita", "rob", "ruth")))
                                  ).scalars().all()
    assert Counter(r.created_by_id for r in runs) == {uid: 3 for uid in clickers}
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event == "report.generate")
                              ).scalar_one() == 12


def test_the_limit_counts_only_unfinished_reports_of_that_user(app, personas, synchronous_tasks):
    _settings()
    defn = _definition()
    rita, alice = personas["reporter"], personas["admin"]
    for state in ("queued", "running", "queued"):
        db.session.add(ReportRun(definition_id=defn.id, fmt="pdf", state=state, created_by_id=rita.id))
    db.session.add(ReportRun(definition_id=defn.id, fmt="pdf", state="queued", trigger="scheduled"))
    db.session.commit()
    with pytest.raises(svc.ReportError, match=LIMIT_MESSAGE):
        svc.request_report(defn, "pdf", rita)
    assert svc.request_report(defn, "pdf", alice).state == "queued"  # someone else's work does not count
    db.session.execute(ReportRun.__table__.update().where(ReportRun.state == "running").values(state="done"))
    db.session.commit()
    assert svc.request_report(defn, "pdf", rita).created_by_id == rita.id  # one finished: room again
    with pytest.raises(svc.ReportError, match=LIMIT_MESSAGE):
        svc.request_report(defn, "csv", rita)
