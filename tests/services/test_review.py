"""Review actions: per run, per job, bulk, un-review; two operators at once never lose or double a review."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun
from backend.app.services import review

from ..helpers import make_customer, make_job, make_run, make_user, queries

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
def oscar(app):
    return make_user("oscar", roles=("operator",))


@pytest.fixture
def olga(app):
    return make_user("olga", roles=("operator",))


def runs_of(job, n, start=T0):
    return [make_run(job, "Failed", start + timedelta(days=i)) for i in range(n)]


def audit_entries(event=None):
    q = select(AuditLog).order_by(AuditLog.id)
    if event:
        q = q.where(AuditLog.event == event)
    return db.session.execute(q).scalars().all()


def test_mark_one_run_records_reviewer_and_time_once(app, oscar, olga):
    job = make_job()
    r, other = runs_of(job, 2)
    assert review.mark_run_reviewed(r, oscar) is True
    assert r.reviewed_by_id == oscar.id and r.reviewed_at is not None
    first_time = r.reviewed_at
    assert review.mark_run_reviewed(r, olga) is False  # already reviewed: the first review stands
    db.session.expire_all()
    r = db.session.get(JobRun, r.id)
    assert r.reviewed_by_id == oscar.id and r.reviewed_at == first_time
    assert db.session.get(JobRun, other.id).reviewed_at is None
    [entry] = audit_entries()
    assert entry.event == "run.review" and entry.username == "oscar" and entry.target_id == str(r.id)


def test_mark_job_reviewed_marks_all_its_unreviewed_runs_and_says_how_many(app, oscar):
    cust = make_customer()
    job, neighbour = make_job(cust, job_name="A"), make_job(cust, job_name="B")
    runs = runs_of(job, 3)
    runs_of(neighbour, 2)
    review.mark_run_reviewed(runs[0], oscar)
    assert review.mark_job_reviewed(job, oscar) == 2
    assert review.mark_job_reviewed(job, oscar) == 0  # nothing left; no audit entry for nothing
    unreviewed = db.session.execute(select(JobRun.job_id).where(JobRun.reviewed_at.is_(None))).scalars().all()
    assert unreviewed == [neighbour.id, neighbour.id]
    entries = audit_entries("job.review")
    assert len(entries) == 1 and entries[0].after["count"] == 2
    assert "2 runs of 'A' marked reviewed" in entries[0].summary


def test_mark_job_reviewed_only_the_given_runs(app, oscar):
    cust = make_customer()
    job, other = make_job(cust, job_name="A"), make_job(cust, job_name="B")
    a1, a2, a3 = runs_of(job, 3)
    [b1] = runs_of(other, 1)
    # A run of another job slipped into the list is ignored, not reviewed.
    assert review.mark_job_reviewed(job, oscar, run_ids=[a1.id, str(a3.id), b1.id]) == 2
    db.session.expire_all()
    assert [db.session.get(JobRun, r.id).reviewed_at is not None for r in (a1, a2, a3, b1)] == \
        [True, False, True, False]
    assert review.mark_job_reviewed(job, oscar, run_ids=[]) == 0  # empty selection marks nothing
    with pytest.raises(ValueError, match="not a run or job id"):
        review.mark_job_reviewed(job, oscar, run_ids=["abc"])
    assert db.session.get(JobRun, a2.id).reviewed_at is None


def test_bulk_mark_several_jobs(app, oscar):
    cust = make_customer()
    jobs = [make_job(cust, job_name=f"Job {i}") for i in range(3)]
    for j, n in zip(jobs, (2, 3, 1)):
        runs_of(j, n)
    assert review.bulk_mark_jobs_reviewed([jobs[0].id, str(jobs[1].id), 999999], oscar) == 5
    assert review.bulk_mark_jobs_reviewed([], oscar) == 0
    assert review.bulk_mark_jobs_reviewed([99999999999999, -5], oscar) == 0  # no such jobs, no error
    left = db.session.execute(select(JobRun.job_id).where(JobRun.reviewed_at.is_(None))).scalars().all()
    assert left == [jobs[2].id]
    entries = audit_entries("job.review")
    assert sorted((e.target_id, e.after["count"]) for e in entries) == [(str(jobs[0].id), 2), (str(jobs[1].id), 3)]
    assert all(e.after.get("bulk") for e in entries)


def test_bulk_review_is_one_update_whatever_the_number_of_runs(app, oscar):
    cust = make_customer()
    jobs = [make_job(cust, job_name=f"Job {i}") for i in range(4)]
    for j in jobs:
        runs_of(j, 5)
    with queries() as seen:
        assert review.bulk_mark_jobs_reviewed([j.id for j in jobs], oscar) == 20
    assert sum(1 for s in seen if s.lstrip().upper().startswith("UPDATE")) == 1


def test_unreview_puts_a_run_back_in_the_queue(app, oscar):
    alice = make_user("alice", roles=("admin",))
    job = make_job()
    r = make_run(job, "Warning", T0)
    assert review.unreview_run(r, alice) is False  # not reviewed: nothing to undo, nothing audited
    review.mark_run_reviewed(r, oscar)
    reviewed_at = r.reviewed_at
    assert review.unreview_run(r, alice) is True
    db.session.expire_all()
    r = db.session.get(JobRun, r.id)
    assert r.reviewed_at is None and r.reviewed_by_id is None
    [entry] = audit_entries("run.unreview")
    assert entry.username == "alice" and entry.before["reviewed_by_id"] == oscar.id
    assert entry.before["reviewed_at"] == reviewed_at.isoformat()
    # And it can be reviewed again.
    assert review.mark_job_reviewed(job, oscar) == 1


# --- two operators at once ------------------------------------------------------------------------

def _in_thread(app, fn):
    """Run fn() in its own thread, app context and database session (= its own connection)."""
    result = {}

    def target():
        with app.app_context():
            try:
                result["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                result["error"] = exc
            finally:
                db.session.remove()

    t = threading.Thread(target=target)
    t.start()
    return t, result


def test_two_operators_reviewing_the_same_job_at_once_never_lose_or_double_a_review(app, oscar, olga):
    job = make_job()
    runs = runs_of(job, 12)
    db.session.commit()  # the operators' threads read these rows
    ids = [r.id for r in runs]
    oscar_id, olga_id, job_id = oscar.id, olga.id, job.id

    # A third connection holds a lock on the middle run, so both operators' UPDATEs are
    # in flight at the same time and queue behind it; then it lets go.
    blocker = db.engine.connect()
    tx = blocker.begin()
    blocker.execute(text("SELECT id FROM job_runs WHERE id = :id FOR UPDATE"), {"id": ids[6]})

    from backend.app.models import Job, User

    def as_operator(user_id, run_ids=None):
        def go():
            actor = db.session.get(User, user_id)
            return review.mark_job_reviewed(db.session.get(Job, job_id), actor, run_ids=run_ids)
        return go

    # Oscar marks the whole job; Olga ticked the newest half and marks those.
    t1, r1 = _in_thread(app, as_operator(oscar_id))
    t2, r2 = _in_thread(app, as_operator(olga_id, ids[6:]))
    try:
        # Wait until both UPDATEs are waiting on the lock.
        for _ in range(100):
            with db.engine.connect() as probe:  # its own snapshot of the activity
                waiting = probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE job_runs%'")).scalar()
            if waiting >= 2:
                break
            threading.Event().wait(0.05)
        assert waiting >= 2, "both reviews should be in flight at once"
    finally:
        tx.rollback()
        blocker.close()
    t1.join(10)
    t2.join(10)
    assert "error" not in r1 and "error" not in r2, (r1.get("error"), r2.get("error"))

    db.session.expire_all()
    rows = db.session.execute(select(JobRun.id, JobRun.reviewed_by_id).where(JobRun.job_id == job_id)).all()
    assert all(by in (oscar_id, olga_id) for _, by in rows)  # every run reviewed, by exactly one of them
    assert r1["value"] + r2["value"] == 12  # counts add up: nothing lost, nothing doubled
    assert sum(1 for _, by in rows if by == oscar_id) == r1["value"]
    assert sum(1 for _, by in rows if by == olga_id) == r2["value"]
    counts = {e.username: e.after["count"] for e in audit_entries("job.review")}
    assert sum(counts.values()) == 12 and counts.get("oscar", 0) == r1["value"]


def test_many_operators_racing_on_overlapping_jobs(app):
    users = [make_user(f"op{i}", roles=("operator",)) for i in range(4)]
    cust = make_customer()
    jobs = [make_job(cust, job_name=f"Job {i}") for i in range(3)]
    for j in jobs:
        runs_of(j, 10)
    db.session.commit()  # the operators' threads read these rows
    job_ids = [j.id for j in jobs]
    start = threading.Barrier(4)

    from backend.app.models import Job, User

    def work(i, uid):
        def go():
            actor = db.session.get(User, uid)
            start.wait(5)
            if i % 2:
                return review.bulk_mark_jobs_reviewed(job_ids, actor)
            total = 0
            for jid in reversed(job_ids) if i else job_ids:
                total += review.mark_job_reviewed(db.session.get(Job, jid), actor)
            return total
        return go

    threads = [_in_thread(app, work(i, u.id)) for i, u in enumerate(users)]
    for t, _ in threads:
        t.join(20)
    results = [r for _, r in threads]
    assert all("error" not in r for r in results), [r.get("error") for r in results]
    assert sum(r["value"] for r in results) == 30
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(JobRun).where(JobRun.reviewed_at.is_(None))).scalar() == 0
    per_user = dict(db.session.execute(select(JobRun.reviewed_by_id, func.count()).group_by(JobRun.reviewed_by_id)).all())
    assert {u.id: per_user.get(u.id, 0) for u in users} == {u.id: r["value"] for u, r in zip(users, results)}


def test_an_unreviewed_run_shows_what_the_current_rules_say(app, oscar):
    from backend.app.services import overrides as ov

    alice = make_user("alice", roles=("admin",))
    job = make_job()
    r = make_run(job, "Failed", T0)
    rule = ov.create_override({"level": "job", "job_id": job.id}, oscar)
    review.mark_job_reviewed(job, oscar)
    ov.delete_override(rule, alice)
    db.session.expire_all()
    assert db.session.get(JobRun, r.id).effective_status == "Success"  # reviewed: kept
    review.unreview_run(db.session.get(JobRun, r.id), alice)
    db.session.expire_all()
    r = db.session.get(JobRun, r.id)
    assert r.reviewed_at is None and r.effective_status == "Failed"
