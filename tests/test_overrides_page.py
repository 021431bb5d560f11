"""The Overrides page: list with filters and paging, create and edit (admin, operator), delete (admin
only), clear refusals with nothing saved, viewer read-only, times in the UI timezone, constant queries."""
from datetime import datetime, timedelta, timezone
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, Override

from .conftest import make_customer, make_job, make_run, post_form
from .helpers import count_queries
from tests.clock import TEST_NOW

NOW = TEST_NOW


def text(r) -> str:
    return unescape(r.get_data(as_text=True))


def job_form(job, **kw):
    data = {"level": "job", "job_id": job.id, "match_status": "Warning", "match_mode": "contains",
            "match_text": "", "treat_as_success": "1", "active": "1", "comment": "Known: snapshot is slow"}
    data.update(kw)
    return data


def warning_run(job, minutes_ago=60, message="Snapshot took long"):
    return make_run(job, "Warning", NOW - timedelta(minutes=minutes_ago), message=message)


def count(model, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_operator_creates_a_job_override_and_runs_are_reevaluated(as_user):
    job = make_job(make_customer("Acme Testing"))
    run = warning_run(job)
    c = as_user("operator")
    assert "Job (one job)" in c.get("/overrides/new").get_data(as_text=True)
    r = post_form(c, "/overrides/new", job_form(job), follow_redirects=True)
    page = text(r)
    assert r.status_code == 200
    assert "Override #1 created: job 'Daily VM Backup': Warning → success." in page
    assert "it now decides 1 of them" in page
    db.session.expire_all()
    rule = db.session.execute(select(Override)).scalar_one()
    assert rule.created_by_id is not None and rule.treat_as_success and rule.active
    assert db.session.get(JobRun, run.id).effective_status == "Success"
    assert 'data-override-id="1"' in page and "oscar" in page and "Known: snapshot is slow" in page
    assert count(AuditLog, AuditLog.event == "override.create") == 1


def test_unticked_boxes_mean_no(as_user):
    job = make_job(make_customer("Acme Testing"))
    data = job_form(job)
    del data["treat_as_success"], data["active"]
    post_form(as_user("operator"), "/overrides/new", data)
    rule = db.session.execute(select(Override)).scalar_one()
    assert rule.treat_as_success is False and rule.active is False


def test_global_rule_with_pattern_and_times_in_the_ui_timezone(as_user):
    make_job(make_customer("Acme Testing"), "Daily Files", software="Veeam Backup & Replication")
    data = {"level": "global", "software": "Veeam Backup & Replication", "backup_type": "",
            "job_name_pattern": "Daily*", "job_id": "1", "object_name": "stray", "match_status": "",
            "match_mode": "starts", "match_text": "Snapshot", "valid_from": "2026-03-29T02:30",
            "valid_until": "2026-10-25T02:30", "treat_as_success": "1", "active": "1"}
    r = post_form(as_user("admin"), "/overrides/new", data)
    assert r.status_code == 302
    rule = db.session.execute(select(Override)).scalar_one()
    # The fields a global rule does not use were dropped; times read in Europe/Amsterdam.
    assert rule.job_id is None and rule.object_name is None and rule.job_name_pattern == "Daily*"
    assert rule.valid_from == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)  # 02:30 does not exist: 03:30 CEST
    assert rule.valid_until == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)  # the first 02:30 (CEST)
    edit = as_user("admin").get(f"/overrides/{rule.id}/edit").get_data(as_text=True)
    assert 'value="2026-10-25T02:30"' in edit and 'value="Daily*"' in edit


@pytest.mark.parametrize("changes,message", [
    ({"level": "global", "software": "Veeam", "job_name_pattern": "Daily[0-9"}, "has a '[' without a closing ']'"),
    ({"level": "global", "software": ""}, "A global override needs the software"),
    ({"job_id": ""}, "A job-level override needs a job."),
    ({"job_id": "99999"}, "Unknown job 99999"),
    ({"job_id": "99999999999999"}, "Unknown job 99999999999999"),
    ({"level": "object", "object_name": ""}, "An object-level override needs the object name."),
    ({"valid_from": "2026-05-01T08:00", "valid_until": "2026-04-01T08:00"}, "'Valid until' must be after"),
    ({"valid_from": "yesterday"}, "is not a date and time"),
    ({"level": "nonsense"}, "Choose the level of the override"),
])
def test_bad_input_is_refused_with_its_reason_and_nothing_saved(as_user, changes, message):
    job = make_job(make_customer("Acme Testing"))
    run = warning_run(job)
    r = post_form(as_user("operator"), "/overrides/new", job_form(job, **changes))
    assert r.status_code == 400
    page = text(r)
    assert "Not saved:" in page and message in page
    assert 'value="Known: snapshot is slow"' in page or "Known: snapshot is slow" in page  # the input is kept
    assert count(Override) == 0 and count(AuditLog, AuditLog.event.like("override.%")) == 0
    db.session.expire_all()
    assert db.session.get(JobRun, run.id).effective_status == "Warning"


def test_edit_changes_the_rule_and_a_bad_edit_changes_nothing(as_user):
    job = make_job(make_customer("Acme Testing"))
    run = warning_run(job, message="Snapshot took long")
    c = as_user("operator")
    post_form(c, "/overrides/new", job_form(job, match_text="Snapshot"))
    rule = db.session.execute(select(Override)).scalar_one()
    r = post_form(c, f"/overrides/{rule.id}/edit", job_form(job, match_text="Disk full"), follow_redirects=True)
    assert f"Override #{rule.id} saved" in text(r) and "none match it right now" in text(r)
    db.session.expire_all()
    assert db.session.get(Override, rule.id).match_text == "Disk full"
    assert db.session.get(JobRun, run.id).effective_status == "Warning"
    r = post_form(c, f"/overrides/{rule.id}/edit", job_form(job, level="global", software="X", job_name_pattern="[]"))
    assert r.status_code == 400 and "empty set '[]'" in text(r)
    db.session.expire_all()
    assert db.session.get(Override, rule.id).level == "job"
    assert c.get("/overrides/999/edit").status_code == 404
    assert c.get("/overrides/99999999999/edit").status_code == 404


def test_only_admins_delete(as_user):
    job = make_job(make_customer("Acme Testing"))
    run = warning_run(job)
    post_form(as_user("operator"), "/overrides/new", job_form(job))
    rule = db.session.execute(select(Override)).scalar_one()
    operator = as_user("operator")
    assert post_form(operator, f"/overrides/{rule.id}/delete").status_code == 403
    assert "delete-override" not in operator.get("/overrides").get_data(as_text=True)
    assert count(Override) == 1
    admin = as_user("admin")
    assert "delete-override" in admin.get("/overrides").get_data(as_text=True)
    r = post_form(admin, f"/overrides/{rule.id}/delete", follow_redirects=True)
    assert f"Override #{rule.id} deleted" in text(r) and "1 unreviewed run it decided were re-checked" in text(r)
    assert count(Override) == 0 and count(AuditLog, AuditLog.event == "override.delete") == 1
    db.session.expire_all()
    assert db.session.get(JobRun, run.id).effective_status == "Warning"
    assert post_form(admin, f"/overrides/{rule.id}/delete").status_code == 404


def test_viewer_reads_only(as_user):
    job = make_job(make_customer("Acme Testing"))
    post_form(as_user("operator"), "/overrides/new", job_form(job))
    v = as_user("viewer")
    page = v.get("/overrides").get_data(as_text=True)
    assert 'data-override-id="1"' in page
    assert "new-override" not in page and "edit-override" not in page and "delete-override" not in page
    assert v.get("/overrides/new").status_code == 403
    assert post_form(v, "/overrides/new", job_form(job)).status_code == 403
    assert v.get("/overrides/1/edit").status_code == 403
    assert post_form(v, "/overrides/1/delete").status_code == 403
    assert as_user("reporter").get("/overrides").status_code == 403


def seed_rules(n, prefix="Rule"):
    cust = make_customer(f"{prefix} Customer")
    job = make_job(cust, f"{prefix} Job", sender=f"{prefix.lower()}@example.test")
    for i in range(n):
        kind = i % 4
        if kind == 0:
            db.session.add(Override(level="job", job_id=job.id, match_text=f"{prefix} text {i}", comment="c"))
        elif kind == 1:
            db.session.add(Override(level="object", job_id=job.id, object_name=f"VM{i}"))
        elif kind == 2:
            db.session.add(Override(level="global", software="Veeam", job_name_pattern=f"{prefix}*",
                                    valid_until=NOW - timedelta(days=1)))
        else:
            db.session.add(Override(level="global", software="Acronis", active=False))
    db.session.commit()
    return job


def test_filters_and_paging(as_user):
    seed_rules(8, "Alpha")
    seed_rules(60, "Beta")
    c = as_user("viewer")
    page = c.get("/overrides").get_data(as_text=True)
    assert page.count("data-override-id=") == 50 and "Page 1 of 2 · 68 rows" in page
    assert c.get("/overrides?page=2").get_data(as_text=True).count("data-override-id=") == 18
    assert c.get("/overrides?page=999").get_data(as_text=True).count("data-override-id=") == 18
    obj = c.get("/overrides?level=object").get_data(as_text=True)
    assert obj.count("data-override-id=") == 17 and 'data-state="current"' in obj
    expired = c.get("/overrides?state=expired").get_data(as_text=True)
    assert expired.count('data-state="expired"') == expired.count("data-override-id=") == 17
    assert c.get("/overrides?state=inactive").get_data(as_text=True).count("data-override-id=") == 17
    assert c.get("/overrides?state=current").get_data(as_text=True).count('data-state="current"') == 34
    assert c.get("/overrides?q=alpha+text").get_data(as_text=True).count("data-override-id=") == 2
    assert c.get("/overrides?q=Alpha+Customer").get_data(as_text=True).count("data-override-id=") == 4
    assert c.get("/overrides?q=100%25").get_data(as_text=True).count("data-override-id=") == 0
    assert "No override matches these filters" in c.get("/overrides?q=nothing-like-this").get_data(as_text=True)
    # Unknown filter values are ignored, never an error.
    assert c.get("/overrides?level=x&state=y&sort=z&dir=w&page=abc").status_code == 200
    asc = c.get("/overrides?sort=created&dir=asc").get_data(as_text=True)
    assert asc.index('data-override-id="1"') < asc.index('data-override-id="2"')


def test_constant_number_of_queries_whatever_the_number_of_rules(as_user):
    c = as_user("admin")
    seed_rules(4, "Alpha")
    c.get("/overrides")
    small = count_queries(lambda: c.get("/overrides"))
    small_q = count_queries(lambda: c.get("/overrides?q=text&level=job"))
    seed_rules(200, "Beta")
    assert count_queries(lambda: c.get("/overrides")) == small
    assert count_queries(lambda: c.get("/overrides?q=text&level=job")) == small_q
    form_small = count_queries(lambda: c.get("/overrides/new"))
    for i in range(30):
        make_job(make_customer(f"Many {i} Testing"), f"Job {i}", sender=f"m{i}@example.test")
    assert count_queries(lambda: c.get("/overrides/new")) == form_small


def test_delete_comes_back_to_the_same_filtered_view(as_user):
    seed_rules(4, "Alpha")
    admin = as_user("admin")
    page = admin.get("/overrides?level=job&rule_id=3&q=alpha").get_data(as_text=True)
    assert 'action="/overrides/1/delete?level=job&amp;q=alpha"' in page
    r = post_form(admin, "/overrides/1/delete?q=alpha&level=job")
    assert r.headers["Location"].endswith("/overrides?q=alpha&level=job")


# --- "This run only" --------------------------------------------------------------------------

RUN_START = datetime(2026, 11, 25, 1, 14, tzinfo=timezone.utc)  # 02:14 in Amsterdam


def test_a_this_run_only_override_says_which_run_it_was_applied_to(as_user, clock):
    clock.move_to(RUN_START + timedelta(days=30))  # after every run below
    job = make_job(make_customer("Acme Testing"), "Nightly SQL", sender="sql@example.test")
    for i in range(25):  # newer runs: the marked run is on the second page of the job's history
        make_run(job, "Success", RUN_START + timedelta(days=1 + i))
    run = make_run(job, "Warning", RUN_START, message="Snapshot took long")
    later = make_run(job, "Warning", RUN_START + timedelta(hours=2), message="Snapshot took long")
    c = as_user("operator")
    post_form(c, "/run-checks/mark-success", {"run_id": run.id, "future": "no"})
    post_form(c, "/run-checks/mark-success", {"run_id": later.id, "future": "yes"})
    one, future = db.session.execute(select(Override).order_by(Override.id)).scalars().all()

    page = text(c.get("/overrides"))
    row = page.split(f'data-override-id="{one.id}"')[1].split("</tr>")[0]
    assert 'data-state="run"' in row and "this run only" in row
    assert f"applied to run {run.id} of job Nightly SQL" in " ".join(
        unescape(re.sub(r"<[^>]+>", "", row)).split())
    assert f'href="/jobs/{job.id}?run={run.id}#run{run.id}"' in row
    assert f'href="/jobs/{job.id}"' in row and "(started 2026-11-25 02:14)" in row
    assert "expired" not in row and "not in force" not in row
    assert "Success (override)" in row and "for that run" in row
    # "Also future runs" stays an ordinary rule in force.
    assert 'data-state="current"' in page.split(f'data-override-id="{future.id}"')[1].split("</tr>")[0]
    # The state filter knows it; "expired" does not list it.
    assert f'data-override-id="{one.id}"' in text(c.get("/overrides?state=run"))
    assert f'data-override-id="{future.id}"' not in text(c.get("/overrides?state=run"))
    assert f'data-override-id="{one.id}"' not in text(c.get("/overrides?state=expired"))
    assert "This run only (applied to one run)" in page

    # The link opens the page of the job's history that holds the run, with the run highlighted.
    history = text(c.get(f"/jobs/{job.id}?run={run.id}"))
    assert f'id="run{run.id}" data-run="{run.id}" class="table-info"' in history
    assert "Page 2 of 2" in history
    # A run of another job, or no number at all, just opens the job's first page.
    assert 'class="table-info"' not in text(c.get(f"/jobs/{job.id}?run=999999"))
    assert c.get(f"/jobs/{job.id}?run=abc").status_code == 200


def test_a_this_run_only_override_whose_run_is_gone_says_so(as_user):
    job = make_job(make_customer("Acme Testing"), "Nightly SQL", sender="sql@example.test")
    run = make_run(job, "Failed", RUN_START, message="Disk full")
    c = as_user("operator")
    post_form(c, "/run-checks/mark-success", {"run_id": run.id, "future": "no"})
    db.session.delete(db.session.get(JobRun, run.id))
    db.session.commit()
    page = " ".join(unescape(re.sub(r"<[^>]+>", "", text(c.get("/overrides")))).split())
    assert ("made for the run of job Nightly SQL that started 2026-11-25 02:14; that run no longer exists"
            in page)


# --- The job picker: the form lists no jobs; typed text names one --------------------------------------

def test_the_form_lists_no_jobs_and_shows_the_rules_own_job(as_user):
    acme = make_customer("Acme Testing")
    job = make_job(acme, "Daily VM Backup")
    for i in range(30):
        make_job(acme, f"Other Job {i:02}", sender=f"o{i}@example.test")
    job.archived = True  # a rule keeps its job, archived or not
    c = as_user("operator")
    post_form(c, "/overrides/new", job_form(job))
    rule = db.session.execute(select(Override)).scalar_one()
    page = c.get("/overrides/new").get_data(as_text=True)
    assert "Other Job" not in page and "data-job-picker" in page and "js/pages/job_picker.js" in page
    edit = text(c.get(f"/overrides/{rule.id}/edit"))
    assert "Other Job" not in edit
    assert 'id="job_id" name="job_id" value="%d"' % job.id in edit
    assert 'value="Acme Testing · Daily VM Backup"' in edit and "Chosen: Acme Testing · Daily VM Backup" in edit
    assert "archived." in edit


def test_a_typed_job_name_without_a_choice_saves_that_job_and_an_unclear_one_is_refused(as_user):
    acme, beta = make_customer("Acme Testing"), make_customer("Beta Testing")
    vm = make_job(acme, "Daily VM Backup")
    make_job(beta, "Daily VM Backup", sender="b@example.test")
    c = as_user("operator")
    # Without JavaScript the hidden id is empty and the box's text is sent.
    r = post_form(c, "/overrides/new", job_form(vm, job_id="", job_text="daily", valid_from="yesterday"))
    page = text(r)
    assert r.status_code == 400 and "Not saved:</strong> 'daily' matches 2 jobs (Acme Testing · Daily VM Backup" in page
    assert 'value="daily"' in page and 'id="job_id" name="job_id" value=""' in page  # what was typed stays
    # Once the text names one job, a refusal for another reason shows that job as chosen.
    r = post_form(c, "/overrides/new", job_form(vm, job_id="", job_text="acme daily", valid_from="yesterday"))
    assert r.status_code == 400 and "is not a date and time" in text(r)
    assert f'id="job_id" name="job_id" value="{vm.id}"' in text(r)
    r = post_form(c, "/overrides/new", job_form(vm, job_id="", job_text="acme daily"), follow_redirects=True)
    assert "Override #1 created: job 'Daily VM Backup'" in text(r)
    assert db.session.execute(select(Override.job_id)).scalar_one() == vm.id
