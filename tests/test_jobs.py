"""/jobs, /jobs/archived, /jobs/<id>: grouped list, filters, detail with run history, archive,
delete, manual schedule, JSON export and import."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Customer, Job, JobRun, MailMessage, RunObject

from .conftest import make_customer, make_job, make_run, post_form
from .helpers import make_mail, make_override, page_queries
from tests.clock import TEST_NOW

NOW = TEST_NOW


def _job(job_id):
    db.session.expire_all()
    return db.session.get(Job, job_id)


def _events(prefix):
    return db.session.execute(select(AuditLog.event).where(AuditLog.event.like(prefix + "%"))).scalars().all()


def _upload(client, content: bytes, filename="jobs.json"):
    return post_form(client, "/jobs/import", {"file": (io.BytesIO(content), filename)},
                     content_type="multipart/form-data")


# --- list ---------------------------------------------------------------------------------------

def test_list_is_grouped_by_customer_with_last_run_and_status(as_user):
    a, b = make_customer("Acme"), make_customer("Bolt")
    j1 = make_job(a, job_name="Nightly", software="Veeam")
    make_job(a, job_name="Weekly", software="Synology")
    j3 = make_job(b, job_name="Files", software="Veeam", sender="b@example.test")
    make_run(j1, "Success", NOW - timedelta(days=2))
    make_run(j1, "Failed", NOW - timedelta(hours=3))
    make_run(j3, "Warning", NOW - timedelta(hours=1))
    html = as_user("viewer").get("/jobs").get_data(as_text=True)
    assert html.index('data-customer-group="Acme"') < html.index('data-job="Nightly"') \
        < html.index('data-job="Weekly"') < html.index('data-customer-group="Bolt"') < html.index('data-job="Files"')
    nightly = html[html.index('data-job="Nightly"'):html.index('data-job="Weekly"')]
    assert "status-failed" in nightly and ">Failed<" in nightly and "3 h ago" in nightly
    weekly = html[html.index('data-job="Weekly"'):html.index('data-customer-group="Bolt"')]
    assert "No run yet" in weekly
    assert "jobs-import" not in html  # viewer: no import form


def test_override_shows_as_its_own_status(as_user):
    j = make_job()
    ov = make_override(j)
    make_run(j, "Failed", effective_status="Success", override_id=ov.id)
    html = as_user("viewer").get("/jobs").get_data(as_text=True)
    assert "Success (override)" in html
    assert "Daily VM Backup" in as_user("viewer").get("/jobs?status=Success+(override)").get_data(as_text=True)
    assert "Daily VM Backup" not in as_user("viewer").get("/jobs?status=Success").get_data(as_text=True)


def test_filters_customer_software_status_and_text(as_user):
    a, b = make_customer("Acme"), make_customer("Bolt")
    j1 = make_job(a, job_name="Nightly", software="Veeam")
    make_job(a, job_name="Weekly", software="Synology")
    j3 = make_job(b, job_name="Files", software="Veeam", sender="b@example.test")
    make_run(j1, "Failed")
    make_run(j3, "Success")
    c = as_user("operator")

    def jobs(qs):
        html = c.get("/jobs" + qs).get_data(as_text=True)
        return {n for n in ("Nightly", "Weekly", "Files") if f'data-job="{n}"' in html}

    assert jobs(f"?customer={b.id}") == {"Files"}
    assert jobs("?software=Veeam") == {"Nightly", "Files"}
    assert jobs("?status=Failed") == {"Nightly"}
    assert jobs("?status=none") == {"Weekly"}
    assert jobs("?q=bolt") == {"Files"}          # global search: customer name
    assert jobs("?q=WEEK") == {"Weekly"}         # ... or job name
    assert jobs("?q=nothing-matches") == set()
    assert "No job matches these filters" in c.get("/jobs?q=zzz").get_data(as_text=True)
    assert c.get("/jobs?status=Great").status_code == 400
    assert c.get("/jobs?customer=abc").status_code == 400
    assert c.get("/jobs?customer=\u00b2").status_code == 400  # "²": a digit to str.isdigit, not to int()
    assert jobs("?customer=2147483648") == set() and jobs("?customer=0") == set()  # no row has that id


def test_sort_inside_customer_groups(as_user):
    a = make_customer("Acme")
    old = make_job(a, job_name="A old")
    new = make_job(a, job_name="B new")
    make_run(old, started_at=NOW - timedelta(days=3))
    make_run(new, started_at=NOW - timedelta(hours=1))
    html = as_user("viewer").get("/jobs?sort=last_run&dir=desc").get_data(as_text=True)
    assert html.index('data-job="B new"') < html.index('data-job="A old"')
    html = as_user("viewer").get("/jobs?sort=job&dir=asc").get_data(as_text=True)
    assert html.index('data-job="A old"') < html.index('data-job="B new"')


def test_empty_state(as_user):
    html = as_user("operator").get("/jobs").get_data(as_text=True)
    assert "No jobs yet" in html and "Inbox" in html


def test_paging(as_user):
    a = make_customer("Acme")
    for i in range(55):
        make_job(a, job_name=f"job {i:02d}")
    c = as_user("viewer")
    assert "Page 1 of 2" in c.get("/jobs").get_data(as_text=True)
    html = c.get("/jobs?page=2").get_data(as_text=True)
    assert 'data-job="job 54"' in html and 'data-job="job 00"' not in html
    assert 'data-customer-group="Acme"' in html  # the group header repeats on the next page


def test_list_query_count_is_constant(as_user):
    c = as_user("viewer")
    for i in range(2):
        make_run(make_job(make_customer(f"S{i}"), job_name=f"s{i}"))
    small = page_queries(c, "/jobs")
    for i in range(40):
        cust = make_customer(f"B{i}")
        for k in range(2):
            j = make_job(cust, job_name=f"b{i}-{k}")
            make_run(j, "Failed")
            make_run(j, "Success")
    big = page_queries(c, "/jobs")
    assert small == big, (small, big)
    assert big <= 10
    assert page_queries(c, "/jobs?q=b1&status=Success&sort=status") == big


# --- detail -------------------------------------------------------------------------------------

def test_detail_shows_runs_objects_mail_and_reviewer_for_admins_only(as_user, personas):
    j = make_job(make_customer("Acme"), job_name="Nightly")
    mail = make_mail(subject="report")
    r1 = make_run(j, "Warning", NOW - timedelta(hours=2), mail_message_id=mail.id, message="disk almost full",
                  reviewed_at=NOW - timedelta(hours=1), reviewed_by_id=personas["operator"].id)
    db.session.add(RunObject(job_run_id=r1.id, name="vm-web-01", type="VM", status="Warning", message="slow"))
    make_run(j, "Missed", NOW - timedelta(days=1), missed=True)
    db.session.commit()
    html = as_user("admin").get(f"/jobs/{j.id}").get_data(as_text=True)
    assert "vm-web-01" in html and "slow" in html and "disk almost full" in html
    assert f"Mail #{mail.id}" in html and "/inbox" in html
    assert "status-warning" in html and "status-missed" in html
    assert html.index(f'data-run="{r1.id}"') < html.index("status-missed")  # newest first
    assert "oscar" in html and "Reviewed" in html
    viewer = as_user("viewer").get(f"/jobs/{j.id}").get_data(as_text=True)
    assert "vm-web-01" in viewer and "oscar" not in viewer and "Not reviewed" not in viewer
    assert "job-delete" not in viewer and "schedule-form" not in viewer


def test_detail_shows_ticket_and_remark_indicators(as_user, personas):
    from backend.app.services import tickets as tk
    j = make_job()
    run = make_run(j, "Failed")
    tk.create_ticket("T-1001", "disk failure", [{"type": "job", "job_id": j.id}], personas["operator"],
                     active_from=NOW - timedelta(days=1))
    tk.create_remark("vendor called", [{"type": "job", "job_id": j.id}], personas["operator"],
                     active_from=NOW - timedelta(days=1))
    tk.link_open_internal_tickets_to_runs([run.id])
    db.session.commit()
    html = as_user("viewer").get(f"/jobs/{j.id}").get_data(as_text=True)
    assert "Ticket T-1001" in html and "Remark" in html


def test_run_history_pages(as_user):
    j = make_job()
    for i in range(25):
        make_run(j, started_at=NOW - timedelta(days=i), message=f"run-{i:02d}")
    c = as_user("viewer")
    html = c.get(f"/jobs/{j.id}").get_data(as_text=True)
    assert "run-00" in html and "run-19" in html and "run-20" not in html and "Page 1 of 2" in html
    html = c.get(f"/jobs/{j.id}?page=2").get_data(as_text=True)
    assert "run-24" in html and "run-00" not in html


def test_unknown_job_is_a_404_page(as_user):
    r = as_user("viewer").get("/jobs/424242")
    assert r.status_code == 404 and "There is nothing at this address" in r.get_data(as_text=True)
    assert post_form(as_user("admin"), "/jobs/424242/archive", {}).status_code == 404


def test_detail_query_count_is_constant(as_user, personas):
    c = as_user("admin")
    j = make_job()
    make_run(j)
    small = page_queries(c, f"/jobs/{j.id}")
    for i in range(30):
        mail = make_mail("x@example.test", f"s{i}")
        run = make_run(j, "Warning", NOW - timedelta(hours=i), mail_message_id=mail.id,
                       reviewed_at=NOW, reviewed_by_id=personas["operator"].id)
        db.session.add_all([RunObject(job_run_id=run.id, name=f"o{k}", status="Warning") for k in range(3)])
    db.session.commit()
    big = page_queries(c, f"/jobs/{j.id}")
    assert small == big, (small, big)
    assert big <= 12


# --- archive, delete ----------------------------------------------------------------------------

def test_admin_archives_and_unarchives(as_user):
    j = make_job(job_name="Old job", next_expected_at=NOW + timedelta(hours=1),
                 next_expected_slot=NOW - timedelta(hours=1))
    c = as_user("admin")
    r = post_form(c, f"/jobs/{j.id}/archive", {}, follow_redirects=True)
    assert "Job Old job archived" in r.get_data(as_text=True)
    job = _job(j.id)
    assert job.archived and job.archived_at is not None and job.next_expected_at is None
    assert 'data-job="Old job"' not in c.get("/jobs").get_data(as_text=True)
    assert 'data-job="Old job"' in c.get("/jobs/archived").get_data(as_text=True)
    r = post_form(c, f"/jobs/{j.id}/unarchive", {"next": "archived"}, follow_redirects=True)
    assert "Job Old job is active again" in r.get_data(as_text=True)
    assert not _job(j.id).archived
    assert 'data-job="Old job"' in c.get("/jobs").get_data(as_text=True)
    assert _events("job.") == ["job.archive", "job.unarchive"]


def test_archived_job_gets_no_missed_runs(as_user):
    from backend.app.services.missed_runs import detect_missed_runs
    j = make_job(manual_schedule={"kind": "weekdays", "weekdays": [0, 1, 2, 3, 4, 5, 6], "time": "01:00",
                                  "grace_minutes": 60},
                 schedule_kind="daily", next_expected_slot=NOW - timedelta(days=2),
                 next_expected_at=NOW - timedelta(days=2) + timedelta(hours=1))
    post_form(as_user("admin"), f"/jobs/{j.id}/archive", {})
    assert detect_missed_runs(NOW) == 0
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 0


def test_operator_cannot_archive_and_viewer_cannot_post(as_user):
    j = make_job()
    assert post_form(as_user("operator"), f"/jobs/{j.id}/archive", {}).status_code == 403
    assert as_user("operator").get("/jobs/archived").status_code == 403
    v = as_user("viewer")
    assert post_form(v, f"/jobs/{j.id}/delete", {"confirm": "yes", "confirm_runs": "0"}).status_code == 403
    assert post_form(v, f"/jobs/{j.id}/schedule", {"kind": "weekdays"}).status_code == 403
    assert _upload(v, b"[]").status_code == 403
    assert _job(j.id) is not None and not _job(j.id).archived


def test_delete_needs_the_confirmation_naming_the_runs(as_user):
    a = make_customer("Acme")
    j = make_job(a, job_name="Gone")
    keep = make_job(a, job_name="Stays")
    mail = make_mail("x@example.test", "s")
    make_run(j, mail_message_id=mail.id)
    make_run(j)
    make_run(keep)
    c = as_user("operator")
    page = c.get(f"/jobs/{j.id}").get_data(as_text=True)
    assert "Delete this job and its 2 runs" in page and 'name="confirm_runs" value="2"' in page
    r = post_form(c, f"/jobs/{j.id}/delete", {}, follow_redirects=True)
    assert "Confirm deleting job Gone and its 2 runs" in r.get_data(as_text=True)
    r = post_form(c, f"/jobs/{j.id}/delete", {"confirm": "yes", "confirm_runs": "1"}, follow_redirects=True)
    assert "now has 2 runs" in r.get_data(as_text=True)
    assert _job(j.id) is not None
    r = post_form(c, f"/jobs/{j.id}/delete", {"confirm": "yes", "confirm_runs": "2"}, follow_redirects=True)
    assert "Job Gone and its 2 runs deleted." in r.get_data(as_text=True)
    assert _job(j.id) is None
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 1
    assert db.session.get(MailMessage, mail.id).job_id is None  # the mail stays
    assert _events("job.delete") == ["job.delete"]


# --- manual schedule ----------------------------------------------------------------------------

def test_manual_schedule_set_and_clear(as_user):
    j = make_job(job_name="Nightly")
    c = as_user("operator")
    r = post_form(c, f"/jobs/{j.id}/schedule", {"action": "set", "kind": "weekdays", "weekdays": ["0", "2", "4"],
                                                 "time": "22:30", "grace_minutes": "90"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Schedule of Nightly saved: Mon, Wed, Fri at 22:30 (set by hand)." in html
    job = _job(j.id)
    assert job.manual_schedule["weekdays"] == [0, 2, 4] and job.next_expected_at is not None
    r = post_form(c, f"/jobs/{j.id}/schedule", {"action": "clear"}, follow_redirects=True)
    assert "Manual schedule removed" in r.get_data(as_text=True)
    assert _job(j.id).manual_schedule is None
    assert _events("job.schedule") == ["job.schedule.set", "job.schedule.clear"]


def test_bad_manual_schedule_changes_nothing(as_user):
    j = make_job()
    r = post_form(as_user("operator"), f"/jobs/{j.id}/schedule",
                  {"action": "set", "kind": "weekdays", "time": "25:99"}, follow_redirects=True)
    assert "Schedule not saved" in r.get_data(as_text=True)
    assert _job(j.id).manual_schedule is None
    assert _events("job.schedule") == []


# --- JSON export and import ---------------------------------------------------------------------

def test_export_json(as_user):
    a = make_customer("Acme")
    make_job(a, job_name="Nightly", manual_schedule={"kind": "weekdays", "weekdays": [0], "time": "01:00",
                                                     "grace_minutes": 120})
    make_job(a, job_name="Old", archived=True)
    r = as_user("viewer").get("/jobs/export.json")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    doc = json.loads(r.get_data())
    assert doc["format"] == "backupchecks-jobs"
    assert [j["job_name"] for j in doc["jobs"]] == ["Nightly", "Old"]
    first = doc["jobs"][0]
    assert set(first) == {"customer", "sender", "job_name", "software", "backup_type", "manual_schedule", "archived"}
    assert first["customer"] == "Acme" and first["manual_schedule"]["weekdays"] == [0]
    assert doc["jobs"][1]["archived"] is True


def test_import_creates_customers_and_skips_existing(as_user):
    make_job(make_customer("Acme"), job_name="Nightly", sender="s@example.test", software="Veeam")
    doc = {"format": "backupchecks-jobs", "version": 1, "jobs": [
        {"customer": "Acme", "sender": "S@example.test", "job_name": "nightly", "software": "veeam"},
        {"customer": "acme", "sender": "s@example.test", "job_name": "Weekly", "software": "Veeam",
         "backup_type": "Backup Job",
         "manual_schedule": {"kind": "weekdays", "weekdays": ["Sat"], "time": "03:00"}},
        {"customer": "New Co", "sender": "n@example.test", "job_name": "Files", "software": "Synology",
         "archived": True},
        {"customer": "New Co", "sender": "n@example.test", "job_name": "Files", "software": "Synology"},
    ]}
    r = _upload(as_user("operator"), json.dumps(doc).encode())
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "2 jobs created, 2 skipped, 1 customer created" in html
    assert "already exists (customer Acme)" in html and "same job as job 3 in this file" in html
    db.session.expire_all()
    weekly = db.session.execute(select(Job).where(Job.job_name == "Weekly")).scalar_one()
    assert weekly.customer.name == "Acme" and weekly.manual_schedule["weekdays"] == [5]
    assert weekly.schedule_kind == "weekly" and weekly.next_expected_at is not None
    files = db.session.execute(select(Job).where(Job.job_name == "Files")).scalar_one()
    assert files.customer.name == "New Co" and files.archived and files.next_expected_at is None
    assert _events("job.import") == ["job.import"]


def test_export_then_import_round_trip(as_user):
    a = make_customer("Acme")
    make_job(a, job_name="Nightly", manual_schedule={"kind": "monthdays", "monthdays": [1], "time": "02:00",
                                                     "grace_minutes": 60})
    c = as_user("admin")
    exported = c.get("/jobs/export.json").get_data()
    db.session.execute(Job.__table__.delete())
    db.session.execute(Customer.__table__.delete())
    db.session.commit()
    html = _upload(c, exported).get_data(as_text=True)
    assert "1 job created, 0 skipped, 1 customer created" in html
    db.session.expire_all()
    job = db.session.execute(select(Job)).scalar_one()
    assert job.manual_schedule["monthdays"] == [1]


@pytest.mark.parametrize("content,message", [
    (b"{not json", "The file is not valid JSON"),
    (b"", "The file is empty"),
    (b'{"jobs": {}}', "must hold a list of jobs"),
    (b'{"format": "other", "jobs": []}', "not a Backupchecks jobs export"),
    (b"[]", "The file holds no jobs"),
    (json.dumps([{"customer": "Acme", "job_name": "ok", "software": "x"}, {"customer": "", "job_name": "x"}]).encode(),
     "Job 2 (x): customer is missing"),
    (json.dumps([{"customer": "Acme", "job_name": 5}]).encode(), "Job 1: job_name must be text"),
    (json.dumps([{"customer": "Acme", "job_name": "j", "archived": "yes"}]).encode(), "archived must be true or false"),
    (json.dumps([{"customer": "Acme", "job_name": "j", "manual_schedule": {"kind": "hourly"}}]).encode(),
     "manual_schedule: Choose how the job is scheduled"),
    (json.dumps(["just a string"]).encode(), "Job 1: must be an object"),
])
def test_bad_json_imports_nothing(as_user, content, message):
    r = _upload(as_user("operator"), content)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Nothing was imported" in html and message in html
    assert db.session.execute(select(func.count(Job.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 0


@pytest.mark.parametrize("content", [
    b"[" * 100_000 + b"]" * 100_000,  # beyond what the JSON parser recurses into
    b'{"jobs": [' + b"[" * 600 + b"]" * 600 + b"]}",  # parses, but no export nests like this
    b'[{"customer": "Acme", "job_name": "j", "manual_schedule": ' + b'{"a": ' * 20 + b"1" + b"}" * 20 + b"}]",
], ids=["100000-levels", "600-levels", "20-levels-in-a-job"])
def test_deeply_nested_json_is_refused_with_a_clear_message(as_user, content):
    r = _upload(as_user("operator"), content)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Nothing was imported" in html and "nests lists and objects more than 16 levels deep" in html
    assert db.session.execute(select(func.count(Job.id))).scalar_one() == 0


def test_an_export_with_a_manual_schedule_is_not_too_deep(as_user):
    doc = {"format": "backupchecks-jobs", "jobs": [{"customer": "Acme", "job_name": "Nightly", "software": "x",
                                                    "manual_schedule": {"kind": "weekdays", "weekdays": [0, 2],
                                                                        "time": "22:00"}}]}
    r = _upload(as_user("operator"), json.dumps(doc).encode())
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert db.session.execute(select(func.count(Job.id))).scalar_one() == 1


def test_a_file_over_the_size_limit_is_refused(as_user, monkeypatch):
    from backend.app.services import jobs as jobs_svc

    monkeypatch.setattr(jobs_svc, "MAX_IMPORT_BYTES", 1024 * 1024)
    r = _upload(as_user("operator"), b"[" + b" " * (1024 * 1024) + b"]")
    assert r.status_code == 400 and "The file is larger than 1 MB" in r.get_data(as_text=True)


def test_import_without_file_asks_for_one(as_user):
    r = post_form(as_user("operator"), "/jobs/import", {}, follow_redirects=True)
    assert "Choose a JSON file" in r.get_data(as_text=True)


def test_archived_job_gets_no_new_runs(as_user):
    from backend.app.services.ingest import find_job_for
    j = make_job(job_name="Nightly", software="Veeam", sender="veeam@example.test")
    msg = MailMessage(from_address="veeam@example.test", subject="report", parsed=True, is_report=True,
                      job_name="Nightly", software="Veeam")
    assert find_job_for(msg).id == j.id
    post_form(as_user("admin"), f"/jobs/{j.id}/archive", {})
    db.session.expire_all()
    assert find_job_for(msg) is None  # the report goes to the Inbox instead of becoming a run
