"""Status rules: severity and the day's status of several runs (days in the UI timezone: test_timezones.py)."""
import re
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from backend.app.extensions import db
from backend.app.filters import status_badge
from backend.app.services import status as st
from backend.app.services.settings import get_settings

from ..conftest import make_job, make_run

UTC = timezone.utc


def at(h, m=0, day=date(2026, 3, 10)):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)


def run(status, started_at, override_id=None, effective=None, id=None):
    return SimpleNamespace(status=status, effective_status=effective or status, override_id=override_id,
                           started_at=started_at, id=id)


def test_worst_orders_failed_missed_warning_success():
    assert st.worst(["Success", "Warning", "Failed", "Missed"]) == "Failed"
    assert st.worst(["Success", "Missed", "Warning"]) == "Missed"
    assert st.worst(["Success", "warning "]) == "Warning"
    assert st.worst([]) is None and st.worst([None]) is None
    # An unknown word is never mistaken for a success.
    assert st.worst(["Success", "Partial"]) == "Partial"
    assert list(st.STATUS_ORDER[:3]) == ["Failed", "Missed", "Warning"]


def test_display_status_shows_overridden_success_as_such():
    assert st.display_status(run("Failed", at(1), override_id=7, effective="Success")) == "Success (override)"
    assert st.display_status(run("Success", at(1))) == "Success"
    # A rule that matched without "treat as success" leaves the word alone.
    assert st.display_status(run("Warning", at(1), override_id=7)) == "Warning"
    # The one badge rule (the status_badge filter) gives them different colours as well as words.
    assert badge_classes("Success (override)") != badge_classes("Success")
    assert badge_classes("Success", override=True) == badge_classes("Success (override)")
    assert badge_classes("Missed") != badge_classes("Failed")


def badge_classes(status, override=False):
    return re.search(r'class="([^"]*)"', status_badge(status, override)).group(1)


def test_day_status_rules_on_several_runs_of_one_day():
    runs = [run("Failed", at(1), id=1), run("Success", at(9), id=2), run("Warning", at(5), id=3)]
    assert st.day_status(runs) == "Failed"
    assert st.day_status(runs, "worst") == "Failed"
    assert st.day_status(runs, "last") == "Success"
    assert st.day_status(runs, "best") == "Success"
    assert st.day_status([], "worst") is None


def test_day_status_uses_effective_statuses_and_names_the_override():
    runs = [run("Failed", at(1), override_id=3, effective="Success", id=1), run("Success", at(9), id=2)]
    assert st.day_status(runs, "worst") == "Success (override)"
    assert st.day_status(runs, "best") == "Success"
    assert st.day_status(runs, "last") == "Success"
    assert st.day_run(runs, "worst").id == 1


def test_day_status_rejects_an_unknown_rule():
    with pytest.raises(ValueError, match="worst, last, best"):
        st.day_status([run("Success", at(1))], "median")


def test_day_status_on_real_rows_and_the_configured_rule(app):
    job = make_job()
    r1 = make_run(job, "Warning", at(2))
    r2 = make_run(job, "Success", at(2))  # same start: the later id counts as last
    assert st.day_status([r1, r2], "last") == "Success"
    assert st.configured_day_rule() == "worst"
    settings = get_settings()
    settings.daily_status_rule = "last"
    db.session.commit()
    assert st.configured_day_rule() == "last"
    settings.daily_status_rule = "bogus"
    db.session.commit()
    assert st.configured_day_rule() == "worst"


def test_objects_without_a_status_are_not_shown_as_expected():
    obj = SimpleNamespace(status=None, effective_status=None, override_id=None)
    assert st.display_status(obj) == "Unknown"


def test_worst_first_ordering_in_the_database(app):
    from sqlalchemy import func, select

    from backend.app.models import JobRun

    from ..conftest import make_customer

    cust = make_customer()
    jobs = {name: make_job(cust, job_name=name) for name in ("ok", "overridden", "warn", "missed", "failed")}
    make_run(jobs["ok"], "Success", at(1))
    make_run(jobs["overridden"], "Success", at(1))
    make_run(jobs["overridden"], "Failed", at(2), effective_status="Success")
    make_run(jobs["warn"], "Warning", at(1))
    make_run(jobs["warn"], "Success", at(2))
    make_run(jobs["missed"], "Missed", at(1))
    make_run(jobs["failed"], "Failed", at(1))
    make_run(jobs["failed"], "Missed", at(2))
    from backend.app.models import Override

    rule = Override(level="job", job_id=jobs["overridden"].id)
    db.session.add(rule)
    db.session.flush()
    db.session.execute(JobRun.__table__.update().where(JobRun.status == "Failed", JobRun.effective_status == "Success")
                       .values(override_id=rule.id))
    db.session.commit()
    rank = func.min(st.status_rank_sql(JobRun.effective_status)).label("rank")
    rows = db.session.execute(
        select(JobRun.job_id, rank).group_by(JobRun.job_id).order_by(rank, JobRun.job_id)).all()
    names = {j.id: n for n, j in jobs.items()}
    assert [(names[j], st.status_from_rank(r)) for j, r in rows] == [
        ("failed", "Failed"), ("missed", "Missed"), ("warn", "Warning"), ("ok", "Success"), ("overridden", "Success")]
    with_override = func.min(st.status_rank_sql(JobRun.effective_status, JobRun.override_id))
    per_job = dict(db.session.execute(select(JobRun.job_id, with_override).group_by(JobRun.job_id)).all())
    assert st.status_from_rank(per_job[jobs["overridden"].id]) == "Success (override)"
    assert st.status_from_rank(per_job[jobs["ok"].id]) == "Success"
