"""Run Checks: the queue, reviewing, overrides from a run, tickets from a run, access."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, Override, RunObject, Ticket, TicketJobRun

from .conftest import count_queries, make_customer, make_job, make_run, post_form
from tests.clock import TEST_NOW

NOW = TEST_NOW


def run_with_objects(job, status, objects, minutes_ago=60, message=None):
    run = make_run(job, status=status, started_at=NOW - timedelta(minutes=minutes_ago), message=message)
    for name, st, msg in objects:
        db.session.add(RunObject(job_run_id=run.id, name=name, type="VM", status=st, effective_status=st, message=msg))
    db.session.commit()
    return run


def seed():
    a, b = make_customer("Alpha Testing"), make_customer("Beta Testing")
    ok = make_job(a, "Nightly OK", sender="a@example.test")
    bad = make_job(b, "Nightly Broken", sender="b@example.test")
    warn = make_job(a, "Nightly Warn", sender="c@example.test")
    make_run(ok, "Success", NOW - timedelta(hours=2))
    run_with_objects(bad, "Failed", [("VM-A", "Failed", "Disk full"), ("VM-B", "Success", "")], message="VM-A: Disk full")
    run_with_objects(warn, "Warning", [("VM-C", "Warning", "Snapshot took long")], message="VM-C: Snapshot took long")
    return ok, bad, warn


def test_queue_is_worst_first_and_grouped_by_customer(as_user):
    ok, bad, warn = seed()
    html = as_user("operator").get("/run-checks").get_data(as_text=True)
    # Beta (a failure) comes before Alpha (a warning and a success); within Alpha the warning first.
    assert html.index("Beta Testing") < html.index("Alpha Testing")
    assert "3 unreviewed runs" in html
    # Alpha's job with only a success is folded into one line; unfolded, it comes after the warning.
    assert "Nightly OK" not in html and "1 job with only successful runs" in html
    unfolded = as_user("operator").get(f"/run-checks?expand={ok.customer_id}").get_data(as_text=True)
    assert unfolded.index("Nightly Warn") < unfolded.index("Nightly OK")
    # The worst job is opened by default, failed objects on top.
    assert html.index("Disk full") < html.index("VM-B")


def test_mark_job_reviewed_moves_on_and_records_who(as_user):
    ok, bad, warn = seed()
    c = as_user("operator")
    r = post_form(c, "/run-checks/review", {"job_id": bad.id, "next_job": warn.id})
    assert r.headers["Location"].endswith(f"job={warn.id}")
    run = db.session.execute(select(JobRun).where(JobRun.job_id == bad.id)).scalar_one()
    db.session.refresh(run)
    assert run.reviewed_at is not None and run.reviewed_by.username == "oscar"
    assert f'data-job-id="{bad.id}"' not in c.get("/run-checks").get_data(as_text=True)
    # A second operator reviewing the same job finds nothing left and is told so.
    r = post_form(as_user("admin"), "/run-checks/review", {"job_id": bad.id}, follow_redirects=True)
    assert "already reviewed" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(AuditLog.id)).where(AuditLog.event == "job.review")).scalar_one() == 1


def test_bulk_review_empties_the_queue(as_user):
    seed()
    c = as_user("operator")
    ids = [j for (j,) in db.session.execute(select(JobRun.job_id))]
    r = post_form(c, "/run-checks/bulk-review", {"job_ids": ids}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "3 runs of 3 jobs marked reviewed" in text
    assert "All runs reviewed" in text


def test_mark_as_success_creates_an_override_and_shows_the_run_as_overridden(as_user):
    ok, bad, warn = seed()
    c = as_user("operator")
    run = db.session.execute(select(JobRun).where(JobRun.job_id == warn.id)).scalar_one()
    r = post_form(c, "/run-checks/mark-success", {"run_id": run.id, "future": "yes"}, follow_redirects=True)
    assert "Marked as success (this run and future runs)" in r.get_data(as_text=True)
    rule = db.session.execute(select(Override)).scalar_one()
    assert rule.job_id == warn.id and rule.valid_until is None
    db.session.refresh(run)
    assert run.effective_status == "Success" and run.override_id == rule.id
    page = c.get(f"/run-checks?job={warn.id}").get_data(as_text=True)
    assert "Success (override)" in page


def test_ticket_from_a_run_is_linked_and_follows_the_job(as_user):
    ok, bad, warn = seed()
    c = as_user("operator")
    run = db.session.execute(select(JobRun).where(JobRun.job_id == bad.id)).scalar_one()
    r = post_form(c, "/run-checks/ticket", {"run_id": run.id, "kind": "ticket", "code": "T-20261126-01",
                                            "description": "Disk full on the repository", "scope": "job"},
                  follow_redirects=True)
    assert "Ticket T-20261126-01 added" in r.get_data(as_text=True)
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert db.session.execute(select(TicketJobRun).where(TicketJobRun.ticket_id == ticket.id)).scalar_one().job_run_id == run.id
    assert 'data-copy="T-20261126-01"' in c.get(f"/run-checks?job={bad.id}").get_data(as_text=True)
    # An empty code is refused with a message.
    r = post_form(c, "/run-checks/ticket", {"run_id": run.id, "kind": "ticket", "code": " "}, follow_redirects=True)
    assert "Not saved" in r.get_data(as_text=True)


def test_include_reviewed_and_unreview_are_for_admins(as_user):
    ok, bad, warn = seed()
    op, admin = as_user("operator"), as_user("admin")
    post_form(op, "/run-checks/review", {"job_id": bad.id})
    op.get("/run-checks")  # consume the flash
    assert f'data-job-id="{bad.id}"' not in op.get("/run-checks?include_reviewed=1").get_data(as_text=True)
    assert f'data-job-id="{bad.id}"' in admin.get("/run-checks?include_reviewed=1").get_data(as_text=True)
    run = db.session.execute(select(JobRun).where(JobRun.job_id == bad.id)).scalar_one()
    assert post_form(op, "/run-checks/unreview", {"run_id": run.id}).status_code == 403
    post_form(admin, "/run-checks/unreview", {"run_id": run.id})
    db.session.refresh(run)
    assert run.reviewed_at is None


def test_bad_input_gets_clear_answers(as_user):
    c = as_user("operator")
    assert "All runs reviewed" in c.get("/run-checks").get_data(as_text=True)
    assert c.get("/run-checks?job=abc").status_code == 400
    r = c.get("/run-checks?job=999999", follow_redirects=True)
    assert "no longer exists" in r.get_data(as_text=True)
    assert post_form(c, "/run-checks/review", {"job_id": "999999"}).status_code == 404
    assert as_user("viewer").get("/run-checks").status_code == 403




def test_constant_number_of_queries_whatever_the_queue_size(as_user):
    c = as_user("operator")
    cust = make_customer("Gamma Testing")
    jobs = [make_job(cust, f"Job {i}", sender=f"j{i}@example.test") for i in range(3)]
    for j in jobs:
        run_with_objects(j, "Failed", [("X", "Failed", "boom")])
    small = count_queries(lambda: c.get(f"/run-checks?job={jobs[0].id}"))
    more = [make_job(cust, f"Job {i}", sender=f"k{i}@example.test") for i in range(3, 25)]
    for j in more + jobs[:1]:
        for k in range(3):
            run_with_objects(j, "Warning", [("Y", "Warning", "slow"), ("Z", "Success", "")], minutes_ago=30 + k)
    large = count_queries(lambda: c.get(f"/run-checks?job={jobs[0].id}"))
    assert small == large, (small, large)


def test_every_reviewer_is_told_about_the_keys_and_admins_see_the_reviewed_window(as_user):
    make_run(make_job(), "Failed", datetime(2024, 3, 5, 22, 0, tzinfo=timezone.utc))
    admin, operator = as_user("admin").get("/run-checks"), as_user("operator").get("/run-checks")
    for r in (admin, operator):
        assert "press <kbd>?</kbd> for the keys" in r.get_data(as_text=True)
    assert "Include the reviewed runs of the last 7 days" in admin.get_data(as_text=True)
    assert 'id="include-reviewed"' not in operator.get_data(as_text=True)
    shown = as_user("admin").get("/run-checks?include_reviewed=1").get_data(as_text=True)
    assert "Including the reviewed runs of the last 7 days" in shown


def test_ids_that_are_no_ids_are_left_out_of_a_bulk_review(as_user):
    run = make_run(make_job(make_customer("Northwind Demo")), status="Failed")
    c = as_user("operator")
    for bad in ("2147483648", "\u00b2", "abc"):
        r = post_form(c, "/run-checks/bulk-review", {"job_ids": [bad]}, follow_redirects=True)
        assert r.status_code == 200 and "Select one or more jobs in the queue first." in r.get_data(as_text=True)
    r = post_form(c, "/run-checks/review", {"job_id": "2147483648"})
    assert r.status_code == 404
    db.session.refresh(run)
    assert run.reviewed_at is None


# --- Jobs with only successful runs: folded per customer, reviewed in one action ----------------------

def seed_many_successes(n=40):
    quiet = make_customer("Quiet Testing")
    busy = make_customer("Busy Testing")
    quiet_jobs = [make_job(quiet, f"Quiet Job {i:02d}", sender=f"q{i}@example.test") for i in range(n)]
    for i, j in enumerate(quiet_jobs):
        make_run(j, "Success", NOW - timedelta(hours=2, minutes=i))
    mixed = make_job(busy, "Mixed Job", sender="m@example.test")
    make_run(mixed, "Success", NOW - timedelta(hours=3))
    make_run(mixed, "Failed", NOW - timedelta(hours=2))
    calm = make_job(busy, "Calm Job", sender="c@example.test")
    make_run(calm, "Success", NOW - timedelta(hours=2))
    return quiet, busy, quiet_jobs, mixed, calm


def test_successful_jobs_are_one_line_per_customer_and_the_keys_walk_the_rest(as_user):
    quiet, busy, quiet_jobs, mixed, calm = seed_many_successes()
    c = as_user("operator")
    html = c.get("/run-checks").get_data(as_text=True)
    assert "43 unreviewed runs" in html
    assert "Quiet Job" not in html and "40 jobs with only successful runs" in html and "(40 runs)" in html
    assert "Calm Job" not in html and "1 job with only successful runs" in html
    assert "Mixed Job" in html                       # a failure among its runs: listed, opened first
    assert f'data-job-id="{mixed.id}"' in html and 'data-next-url=""' in html
    assert "Review all successful (41)" in html
    # The page does not grow with the successful jobs.
    more = count_queries(lambda: c.get("/run-checks"))
    assert len(html) < 30_000
    # Unfolded, the keyboard walks them too, and the unfolding is kept from job to job.
    unfolded = c.get(f"/run-checks?expand={quiet.id}").get_data(as_text=True)
    assert unfolded.count('name="job_ids"') == 41
    assert f'data-next-url="/run-checks?expand={quiet.id}&amp;job=' in unfolded
    assert "Fold the jobs with only successful runs" in unfolded
    every = c.get("/run-checks?expand=all").get_data(as_text=True)
    assert every.count('name="job_ids"') == 42 and "folded-successful" not in every
    assert count_queries(lambda: c.get("/run-checks?expand=all")) == more - 1  # nothing folded to count


def test_reviewing_a_customers_successful_jobs_leaves_the_rest(as_user):
    quiet, busy, quiet_jobs, mixed, calm = seed_many_successes(5)
    c = as_user("operator")
    r = post_form(c, "/run-checks/review-successful", {"customer_id": busy.id}, follow_redirects=True)
    assert "1 successful run of 1 job marked reviewed." in r.get_data(as_text=True)
    unreviewed = dict(db.session.execute(select(JobRun.job_id, func.count()).where(JobRun.reviewed_at.is_(None))
                                         .group_by(JobRun.job_id)).all())
    assert calm.id not in unreviewed and unreviewed[mixed.id] == 2 and len(unreviewed) == 6
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "job.review")).scalar_one()
    assert entry.summary == "1 successful run of 1 job of 'Busy Testing' marked reviewed"
    assert entry.target_type == "customer" and entry.target_id == str(busy.id) and entry.user_id is not None
    # Every customer at once: the mixed job, with its failure, stays whole.
    r = post_form(c, "/run-checks/review-successful", {}, follow_redirects=True)
    assert "5 successful runs of 5 jobs marked reviewed." in r.get_data(as_text=True)
    left = db.session.execute(select(JobRun.job_id).where(JobRun.reviewed_at.is_(None))).scalars().all()
    assert sorted(left) == [mixed.id, mixed.id]
    r = post_form(c, "/run-checks/review-successful", {}, follow_redirects=True)
    assert "Nothing to mark" in r.get_data(as_text=True)


def test_a_job_that_failed_since_the_page_was_shown_is_not_reviewed_with_the_successful_ones(as_user):
    quiet, busy, quiet_jobs, mixed, calm = seed_many_successes(3)
    c = as_user("operator")
    assert "3 jobs with only successful runs" in c.get("/run-checks").get_data(as_text=True)
    make_run(quiet_jobs[0], "Failed", NOW - timedelta(minutes=5))   # arrives before the click
    post_form(c, "/run-checks/review-successful", {"customer_id": quiet.id})
    left = db.session.execute(select(JobRun.job_id, JobRun.status).where(JobRun.reviewed_at.is_(None))
                              .where(JobRun.job_id == quiet_jobs[0].id)).all()
    assert sorted(s for _, s in left) == ["Failed", "Success"]


def test_reviewing_successful_jobs_checks_its_input_and_the_role(as_user):
    seed_many_successes(2)
    r = post_form(as_user("operator"), "/run-checks/review-successful", {"customer_id": "abc"})
    assert r.status_code == 400 and "not a number" in r.get_data(as_text=True)
    assert post_form(as_user("viewer"), "/run-checks/review-successful", {}).status_code == 403
    assert db.session.execute(select(func.count()).where(JobRun.reviewed_at.is_not(None))).scalar_one() == 0


def test_a_long_queue_is_paged_by_whole_customers_and_the_keys_cross_pages(as_user, monkeypatch):
    from backend.app.services import run_checks
    monkeypatch.setattr(run_checks, "QUEUE_PAGE_LINES", 4)
    jobs = {}
    for name in ("Amber", "Birch", "Cedar"):   # all warnings: worst first is then by name
        cust = make_customer(f"{name} Testing")
        for k in (1, 2):
            jobs[name, k] = make_job(cust, f"{name} Job {k}", sender=f"{name}{k}@example.test")
            make_run(jobs[name, k], "Warning", NOW - timedelta(hours=k))
    c = as_user("operator")
    html = c.get("/run-checks").get_data(as_text=True)
    assert "Amber Job 1" in html and "Birch Testing" not in html        # 3 lines a customer: one a page
    assert "Customers 1–1 of 3" in html and "6 unreviewed runs" in html
    # The last job of page 1 leads (j) to the first job of page 2, which opens on its page.
    last = c.get(f"/run-checks?job={jobs['Amber', 2].id}").get_data(as_text=True)
    assert f'data-next-url="/run-checks?job={jobs["Birch", 1].id}"' in last
    second = c.get(f"/run-checks?job={jobs['Birch', 1].id}").get_data(as_text=True)
    assert "Customers 2–2 of 3" in second and "Amber Job" not in second
    assert f'data-prev-url="/run-checks?job={jobs["Amber", 2].id}"' in second
    # A page number opens that page with its first job; one past the end is the last page.
    third = c.get("/run-checks?page=3").get_data(as_text=True)
    assert "Customers 3–3 of 3" in third and '<h2 class="h4 mb-0">Cedar Job 1</h2>' in third
    assert "Customers 3–3 of 3" in c.get("/run-checks?page=99").get_data(as_text=True)


def test_reviewed_runs_show_as_history_without_actions(as_user):
    ok, bad, warn = seed()
    c = as_user("admin")
    post_form(c, "/run-checks/review", {"job_id": bad.id})
    html = c.get(f"/run-checks?include_reviewed=1&job={bad.id}").get_data(as_text=True)
    assert "Disk full" in html and "Un-review" in html
    assert "Mark as success" not in html and "New ticket" not in html
