"""Overrides: validation, matching and precedence, validity windows, re-evaluation of unreviewed runs."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, Override, RunObject
from backend.app.services import overrides as ov
from backend.app.services.status import display_status

from ..helpers import discard_built, make_customer, make_job, make_run, make_user, queries

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------

def run_with_objects(job, status, objects=(), started_at=T0, message=None, **kw):
    """objects: (name, status, message) triples."""
    r = make_run(job, status, started_at, message=message, **kw)
    for name, ostatus, omsg in objects:
        db.session.add(RunObject(job_run_id=r.id, name=name, type="VM", status=ostatus,
                                 effective_status=ostatus, message=omsg))
    db.session.commit()
    db.session.refresh(r)
    return r


def reload(run):
    db.session.expire_all()
    return db.session.get(JobRun, run.id)


@pytest.fixture
def oscar(app):
    return make_user("oscar", roles=("operator",))


def job_rule(job, **kw):
    return {"level": "job", "job_id": job.id, **kw}


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({}, "global, job or object"),
    ({"level": "customer"}, "global, job or object"),
    ({"level": "global"}, "needs the software"),
    ({"level": "job"}, "needs a job"),
    ({"level": "job", "job_id": "abc"}, "Unknown job"),
    ({"level": "job", "job_id": 999999}, "Unknown job 999999"),
    ({"level": "job", "job_id": "99999999999999"}, "Unknown job 99999999999999"),
    ({"level": "job", "job_id": -1}, "Unknown job -1"),
    ({"level": "global", "software": "Veeam", "match_mode": "regex"}, "contains, exact, starts or ends"),
    ({"level": "global", "software": "Veeam", "match_status": "Success"}, "cannot be matched"),
    ({"level": "global", "software": "Veeam", "match_status": "Missed"}, "Only a job-level"),
    ({"level": "global", "software": "Veeam", "treat_as_success": "maybe"}, "yes or no"),
    ({"level": "global", "software": "Veeam", "valid_from": "yesterday"}, "not a date"),
    ({"level": "global", "software": "Veeam", "valid_from": "2026-03-02T10:00",
      "valid_until": "2026-03-01T10:00"}, "after"),
    ({"level": "global", "software": "Veeam", "comment": "x" * 1001}, "too long"),
])
def test_validation_refuses_bad_input_with_a_clear_message(app, data, message):
    with pytest.raises(ValueError, match=message):
        ov.validate_override(data, zone=AMS)


def test_object_level_needs_a_job_and_an_object_name(app):
    job = make_job()
    with pytest.raises(ValueError, match="needs a job"):
        ov.validate_override({"level": "object", "object_name": "SRV01"})
    with pytest.raises(ValueError, match="needs the object name"):
        ov.validate_override({"level": "object", "job_id": job.id, "object_name": "  "})
    with pytest.raises(ValueError, match="choose level 'object'"):
        ov.validate_override({"level": "job", "job_id": job.id, "object_name": "SRV01"})
    out = ov.validate_override({"level": "object", "job_id": str(job.id), "object_name": " SRV01 ",
                                "software": "ignored"})
    assert out["job_id"] == job.id and out["object_name"] == "SRV01" and out["software"] is None


@pytest.mark.parametrize("pattern, message", [
    ("Daily[", "without a closing"),
    ("Daily]", "without an opening"),
    ("Daily[]", "empty set"),
    ("Job[z-a]", "reversed range"),
    ("Daily\nBackup", "control characters"),
    ("*" * 3, "only wildcards"),
    ("*a" * 11, "too many wildcards"),
    ("D" * 201, "too long"),
])
def test_an_invalid_or_absurd_job_name_pattern_is_refused(app, pattern, message):
    with pytest.raises(ValueError, match=message):
        ov.validate_override({"level": "global", "software": "Veeam", "job_name_pattern": pattern})


def test_valid_input_is_cleaned(app):
    out = ov.validate_override({"level": " Global ", "software": " Veeam ", "job_name_pattern": "Daily*",
                                "match_status": "failed", "match_mode": "", "match_text": "",
                                "valid_from": "2026-03-29T08:00", "treat_as_success": "on",
                                "job_id": "12", "object_name": ""}, zone=AMS)
    assert out["level"] == "global" and out["software"] == "Veeam" and out["match_status"] == "Failed"
    assert out["match_mode"] == "contains" and out["match_text"] is None and out["job_id"] is None
    assert out["valid_from"] == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert out["treat_as_success"] is True and out["active"] is True
    assert ov.validate_override({"level": "global", "software": "V", "job_name_pattern": "Job[0-9]?",
                                 "treat_as_success": "0"})["treat_as_success"] is False


def test_glob_patterns_match_case_insensitively():
    assert ov.pattern_matches("Daily*", "daily VM backup")
    assert ov.pattern_matches("*-SQL-?", "Customer-SQL-1")
    assert not ov.pattern_matches("Daily*", "Weekly daily")
    assert ov.pattern_matches(None, "anything")


# --- matching ------------------------------------------------------------------------------

def test_global_rule_by_software_type_and_pattern(app, oscar):
    cust = make_customer()
    daily = make_job(cust, job_name="Daily VM Backup")
    weekly = make_job(cust, job_name="Weekly VM Backup")
    copy = make_job(cust, job_name="Daily copy", backup_type="Backup Copy Job")
    other = make_job(cust, job_name="Daily files", software="Acronis Cyber Protect", sender="a@example.test")
    runs = [make_run(j, "Warning", T0, message="Low disk space") for j in (daily, weekly, copy, other)]

    rule = ov.create_override({"level": "global", "software": "veeam backup & replication",
                               "backup_type": "backup job", "job_name_pattern": "daily*"}, oscar)
    got = [reload(r) for r in runs]
    assert [r.effective_status for r in got] == ["Success", "Warning", "Warning", "Warning"]
    assert got[0].override_id == rule.id and display_status(got[0]) == "Success (override)"
    assert got[0].status == "Warning"  # the report's own status is kept


def test_status_and_message_matching_modes(app, oscar):
    job = make_job()
    db.session.commit()
    msg = "Backup completed with warnings: VSS snapshot timeout"
    cases = [
        ({"match_mode": "contains", "match_text": "vss SNAPSHOT"}, True),
        ({"match_mode": "exact", "match_text": msg.upper()}, True),
        ({"match_mode": "exact", "match_text": "VSS snapshot timeout"}, False),
        ({"match_mode": "starts", "match_text": "backup completed"}, True),
        ({"match_mode": "starts", "match_text": "VSS"}, False),
        ({"match_mode": "ends", "match_text": "Snapshot Timeout"}, True),
        ({"match_mode": "contains", "match_text": "disk full"}, False),
        ({"match_status": "Failed"}, False),
        ({"match_status": "Warning"}, True),
        ({}, True),  # empty status and text: any problem
    ]
    for fields, expected in cases:
        r = make_run(job, "Warning", T0, message=msg)
        rule = Override(**ov.validate_override(job_rule(job, **fields)))
        rule.id = 1
        ov.apply_overrides(r, [rule])
        assert (r.effective_status == "Success") is expected, fields
        discard_built()  # the case's run goes, the job stays


def test_a_success_run_is_left_alone(app, oscar):
    job = make_job()
    ov.create_override(job_rule(job), oscar)
    r = reload(make_run(job, "Success", T0))
    ov.apply_overrides(r)
    assert r.effective_status == "Success" and r.override_id is None


def test_override_valid_only_in_a_window(app, oscar):
    job = make_job()
    before = make_run(job, "Failed", datetime(2026, 2, 28, 23, 30, tzinfo=UTC))  # 1 March 00:30 local
    inside = make_run(job, "Failed", datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    edge = make_run(job, "Failed", datetime(2026, 3, 1, 23, 0, tzinfo=UTC))  # 2 March 00:00 local: until is exclusive
    after = make_run(job, "Failed", datetime(2026, 3, 3, 10, 0, tzinfo=UTC))
    ov.create_override(job_rule(job, valid_from="2026-03-01T01:00", valid_until="2026-03-02T00:00"), oscar)
    assert [reload(r).effective_status for r in (before, inside, edge, after)] == \
        ["Failed", "Success", "Failed", "Failed"]


def test_object_rule_wins_over_a_global_rule(app, oscar):
    job = make_job()
    r = run_with_objects(job, "Failed", [("SRV01", "Failed", "Changed block tracking reset"),
                                         ("SRV02", "Success", None)])
    glob = ov.create_override({"level": "global", "software": job.software}, oscar)
    obj = ov.create_override({"level": "object", "job_id": job.id, "object_name": "srv01",
                              "match_text": "changed block"}, oscar)
    r = reload(r)
    srv01 = r.objects[0]
    assert srv01.override_id == obj.id and srv01.effective_status == "Success"
    assert r.objects[1].override_id is None and r.objects[1].effective_status == "Success"
    # The run's own status is matched by the global rule (object rules only look at objects).
    assert r.effective_status == "Success" and r.override_id == glob.id

    # A specific rule that only acknowledges (no "treat as success") is still checked first:
    # the object stays Failed even though a global rule would have turned it into a success.
    ov.update_override(obj, {"level": "object", "job_id": job.id, "object_name": "SRV01",
                             "treat_as_success": False}, oscar)
    srv01 = reload(r).objects[0]
    assert srv01.override_id == obj.id and srv01.effective_status == "Failed"


def test_run_is_success_only_when_every_problem_object_is_overridden(app, oscar):
    job = make_job()
    r = run_with_objects(job, "Failed", [("SRV01", "Failed", "Timeout"), ("SRV02", "Warning", "Low space"),
                                         ("SRV03", "Success", None)])
    first = ov.create_override({"level": "object", "job_id": job.id, "object_name": "SRV01"}, oscar)
    r = reload(r)
    assert [o.effective_status for o in r.objects] == ["Success", "Warning", "Success"]
    assert r.effective_status == "Failed" and r.override_id is None

    ov.create_override({"level": "object", "job_id": job.id, "object_name": "SRV02"}, oscar)
    r = reload(r)
    assert [o.effective_status for o in r.objects] == ["Success", "Success", "Success"]
    assert r.effective_status == "Success" and r.override_id == first.id
    assert display_status(r) == "Success (override)"


def test_a_failed_run_without_problem_objects_needs_a_run_level_match(app, oscar):
    job = make_job()
    r = run_with_objects(job, "Failed", [("SRV01", "Success", None)], message="Job aborted")
    ov.create_override({"level": "object", "job_id": job.id, "object_name": "SRV01"}, oscar)
    assert reload(r).effective_status == "Failed"


def test_missed_runs_only_yield_to_job_rules_matching_missed(app, oscar):
    job = make_job()
    missed = make_run(job, "Missed", None, missed=True, missed_slot=T0)
    missed.started_at = None
    db.session.commit()
    ov.create_override({"level": "global", "software": job.software}, oscar)
    ov.create_override(job_rule(job), oscar)  # any problem: but not a Missed run
    assert reload(missed).effective_status == "Missed"
    rule = ov.create_override(job_rule(job, match_status="Missed"), oscar)
    m = reload(missed)
    assert m.effective_status == "Success" and m.override_id == rule.id


def test_inactive_rules_and_other_jobs_rules_are_ignored(app, oscar):
    cust = make_customer()
    a, b = make_job(cust, job_name="A"), make_job(cust, job_name="B")
    ra, rb = make_run(a, "Failed", T0), make_run(b, "Failed", T0)
    ov.create_override(job_rule(a, active=False), oscar)
    ov.create_override(job_rule(b, match_status="Warning"), oscar)
    assert reload(ra).effective_status == "Failed" and reload(rb).effective_status == "Failed"


def test_apply_overrides_on_a_new_run_before_it_is_committed(app, oscar):
    """The import flow: build the run and its objects, apply, then commit."""
    job = make_job()
    rule = ov.create_override({"level": "object", "job_id": job.id, "object_name": "SRV01"}, oscar)
    run = JobRun(job_id=job.id, status="Warning", effective_status="Warning", started_at=T0)
    run.objects.append(RunObject(name="SRV01", status="Warning", message="Retry succeeded"))
    db.session.add(run)
    ov.apply_overrides(run)
    db.session.commit()
    run = reload(run)
    assert run.effective_status == "Success" and run.override_id == rule.id
    assert run.objects[0].effective_status == "Success"


def test_active_overrides_for_many_jobs_is_one_query(app, oscar):
    cust = make_customer()
    jobs = [make_job(cust, job_name=f"Daily {i}") for i in range(6)]
    jobs.append(make_job(cust, job_name="Other", software="Acronis", sender="x@example.test"))
    for j in jobs[:3]:
        ov.create_override(job_rule(j), oscar)
    ov.create_override({"level": "global", "software": "Veeam Backup & Replication", "job_name_pattern": "Daily*"},
                       oscar)
    ov.create_override({"level": "global", "software": "Acronis"}, oscar)
    db.session.expire_all()
    jobs = [db.session.merge(j) for j in jobs]
    for j in jobs:
        j.software, j.job_name, j.backup_type  # load before counting
    with queries() as seen:
        rules = ov.active_overrides_for(jobs)
    assert len(seen) == 1
    assert [len(rules[j.id]) for j in jobs] == [2, 2, 2, 1, 1, 1, 1]
    assert [r.level for r in rules[jobs[0].id]] == ["job", "global"]  # job rules first


def test_reevaluation_query_count_does_not_grow_with_runs(app, oscar):
    cust = make_customer()

    def seed(n):
        for i in range(n):
            j = make_job(cust, job_name=f"Job {n}-{i}")
            run_with_objects(j, "Failed", [("SRV", "Failed", "x")])

    seed(3)
    db.session.commit()
    with queries() as small:
        ov.reevaluate_unreviewed_runs()
    seed(12)
    with queries() as large:
        ov.reevaluate_unreviewed_runs()
    selects = lambda qs: [q for q in qs if q.lstrip().upper().startswith("SELECT")]  # noqa: E731
    assert len(selects(large)) == len(selects(small))


# --- re-evaluation after changes -------------------------------------------------------------

def test_create_update_delete_reevaluate_unreviewed_runs_and_leave_reviewed_ones(app, oscar):
    job = make_job()
    reviewed = make_run(job, "Failed", T0, message="VSS timeout")
    reviewed.reviewed_at, reviewed.reviewed_by_id = T0 + timedelta(hours=6), oscar.id
    open_run = make_run(job, "Failed", T0 + timedelta(days=1), message="VSS timeout")

    rule = ov.create_override(job_rule(job, match_text="vss"), oscar)
    assert reload(open_run).effective_status == "Success"
    assert reload(reviewed).effective_status == "Failed"  # reviewed as Failed: stays Failed

    # Reviewed now while overridden, then the rule stops matching.
    r = reload(open_run)
    r.reviewed_at = T0 + timedelta(days=1, hours=6)
    late = make_run(job, "Failed", T0 + timedelta(days=2), message="VSS timeout")
    assert reload(late).effective_status == "Failed"  # created without the import flow
    ov.reevaluate_unreviewed_runs([job.id])
    db.session.commit()
    assert reload(late).effective_status == "Success"

    rule = db.session.get(Override, rule.id)
    ov.update_override(rule, job_rule(job, match_text="disk full"), oscar)
    assert reload(late).effective_status == "Failed" and reload(late).override_id is None
    assert reload(open_run).effective_status == "Success"  # reviewed while overridden

    rule = db.session.get(Override, rule.id)
    ov.update_override(rule, job_rule(job, match_text="VSS"), oscar)
    assert reload(late).effective_status == "Success"

    ov.delete_override(db.session.get(Override, rule.id), oscar)
    assert db.session.get(Override, rule.id) is None
    assert reload(late).effective_status == "Failed" and reload(late).override_id is None
    assert reload(open_run).effective_status == "Success"  # reviewed: keeps what it showed
    events = db.session.execute(select(AuditLog.event).order_by(AuditLog.id)).scalars().all()
    assert events == ["override.create", "override.update", "override.update", "override.delete"]
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "override.update")).scalars().first()
    assert entry.username == "oscar" and entry.before == {"match_text": "vss"} and \
        entry.after == {"match_text": "disk full"}


def test_moving_a_rule_to_another_job_reevaluates_both(app, oscar):
    cust = make_customer()
    a, b = make_job(cust, job_name="A"), make_job(cust, job_name="B")
    ra, rb = make_run(a, "Failed", T0), make_run(b, "Failed", T0)
    rule = ov.create_override(job_rule(a), oscar)
    assert reload(ra).effective_status == "Success"
    ov.update_override(db.session.get(Override, rule.id), job_rule(b), oscar)
    assert reload(ra).effective_status == "Failed" and reload(rb).effective_status == "Success"


def test_an_invalid_update_changes_nothing(app, oscar):
    job = make_job()
    r = make_run(job, "Failed", T0)
    rule = ov.create_override(job_rule(job), oscar)
    with pytest.raises(ValueError, match="without a closing"):
        ov.update_override(rule, {"level": "global", "software": "Veeam", "job_name_pattern": "Daily["}, oscar)
    db.session.expire_all()
    rule = db.session.get(Override, rule.id)
    assert rule.level == "job" and rule.job_id == job.id
    assert reload(r).effective_status == "Success"
    assert db.session.execute(select(AuditLog.event)).scalars().all() == ["override.create"]


# --- Mark as success from Run Checks --------------------------------------------------------------

def test_mark_as_success_for_this_run_only(app, oscar):
    job = make_job()
    r = make_run(job, "Failed", T0, message="Error: target unreachable\nDetails: 10.0.0.5")
    other_open = make_run(job, "Failed", T0 - timedelta(days=1), message="Error: target unreachable")
    rule = ov.override_from_run(reload(r), oscar, future=False)
    assert rule.level == "job" and rule.match_status == "Failed" and rule.match_text == "Error: target unreachable"
    assert rule.valid_until == T0 + timedelta(seconds=1)
    assert reload(r).effective_status == "Success" and reload(r).override_id == rule.id
    assert reload(other_open).effective_status == "Failed"
    # Tomorrow the same failure is a failure again.
    tomorrow = JobRun(job_id=job.id, status="Failed", effective_status="Failed", started_at=T0 + timedelta(days=1),
                      message="Error: target unreachable")
    db.session.add(tomorrow)
    ov.apply_overrides(tomorrow)
    assert tomorrow.effective_status == "Failed"


def test_mark_as_success_for_future_runs_uses_the_one_failing_object(app, oscar):
    job = make_job()
    r = run_with_objects(job, "Warning", [("SRV01", "Success", None), ("SQL01", "Warning", "Log truncation skipped")])
    rule = ov.override_from_run(r, oscar, future=True)
    assert rule.level == "object" and rule.object_name == "SQL01" and rule.match_status == "Warning"
    assert rule.valid_until is None
    assert reload(r).effective_status == "Success"
    later = run_with_objects(job, "Warning", [("SQL01", "Warning", "Log truncation skipped")],
                             started_at=T0 + timedelta(days=1))
    ov.reevaluate_unreviewed_runs([job.id])
    db.session.commit()
    assert reload(later).effective_status == "Success"
    assert db.session.execute(select(AuditLog.event)).scalars().all() == ["override.create"]


def test_mark_as_success_on_a_missed_or_successful_run(app, oscar):
    job = make_job()
    missed = make_run(job, "Missed", T0, missed=True, missed_slot=T0, message="No report received")
    rule = ov.override_from_run(missed, oscar, future=False)
    assert rule.level == "job" and rule.match_status == "Missed"
    assert reload(missed).effective_status == "Success"
    with pytest.raises(ValueError, match="already a success"):
        ov.override_from_run(make_run(job, "Success", T0 + timedelta(days=1)), oscar, future=True)


def test_mark_as_success_on_a_reviewed_run_shows_it_at_once(app, oscar):
    job = make_job()
    r = make_run(job, "Warning", T0, reviewed_at=T0 + timedelta(hours=1), reviewed_by_id=oscar.id)
    ov.override_from_run(r, oscar, future=False)
    assert reload(r).effective_status == "Success"


# --- races -----------------------------------------------------------------------------------

def test_a_run_reviewed_while_a_new_rule_is_applied_keeps_what_the_reviewer_saw(app, oscar):
    import threading

    from sqlalchemy import text

    job = make_job()
    seen_by_reviewer = make_run(job, "Failed", T0, message="VSS timeout")
    still_open = make_run(job, "Failed", T0 + timedelta(days=1), message="VSS timeout")
    db.session.commit()  # the other connections read these rows
    job_id, oscar_id, reviewed_id, open_id = job.id, oscar.id, seen_by_reviewer.id, still_open.id

    # Olga's review of the first run is in flight (row locked, not committed) ...
    olga = db.engine.connect()
    tx = olga.begin()
    olga.execute(text("UPDATE job_runs SET reviewed_at = now() WHERE id = :id"), {"id": reviewed_id})

    # ... while Oscar creates a rule that would clear both runs.
    result = {}

    def create():
        from backend.app.models import User
        with app.app_context():
            try:
                result["rule"] = ov.create_override(job_rule_dict(job_id), db.session.get(User, oscar_id)).id
            except BaseException as exc:  # noqa: BLE001
                result["error"] = exc
            finally:
                db.session.remove()

    t = threading.Thread(target=create)
    t.start()
    try:
        for _ in range(100):
            with db.engine.connect() as probe:
                waiting = probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).scalar()
            if waiting:
                break
            threading.Event().wait(0.05)
        assert waiting, "the re-evaluation should wait for the review in flight"
    finally:
        tx.commit()
        olga.close()
    t.join(10)
    assert "error" not in result, result.get("error")
    assert reload(seen_by_reviewer).effective_status == "Failed"  # reviewed as Failed: stays Failed
    assert reload(still_open).effective_status == "Success"


def job_rule_dict(job_id):
    return {"level": "job", "job_id": job_id, "match_text": "vss"}


def test_reevaluation_walks_every_chunk(app, oscar, monkeypatch):
    monkeypatch.setattr(ov, "REEVALUATE_CHUNK", 2)
    job = make_job()
    runs = [make_run(job, "Failed", T0 + timedelta(hours=i)) for i in range(5)]
    ov.create_override(job_rule(job), oscar)
    assert [reload(r).effective_status for r in runs] == ["Success"] * 5


def test_missed_runs_made_in_bulk_get_their_rules_in_constant_queries(app, oscar):
    cust = make_customer()
    jobs = [make_job(cust, job_name=f"Nightly {i}") for i in range(8)]
    for j in jobs[::2]:
        ov.create_override(job_rule(j, match_status="Missed", valid_from="2026-01-01T00:00"), oscar)
    ov.create_override({"level": "global", "software": jobs[0].software}, oscar)  # never clears a Missed run
    made = []
    for j in jobs:
        r = JobRun(job_id=j.id, status="Missed", effective_status="Missed", missed=True, missed_slot=T0,
                   started_at=T0, message="No report received")
        db.session.add(r)
        made.append(r)
    db.session.flush()
    db.session.expire_all()  # as after the generator's flushes: nothing loaded
    made = [db.session.get(JobRun, r.id) for r in made]
    with queries() as seen:
        ov.apply_overrides_to_runs(made)
    assert len(seen) <= 3
    db.session.commit()
    assert [reload(r).effective_status for r in made] == ["Success", "Missed"] * 4
