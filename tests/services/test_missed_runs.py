"""Missed runs: created exactly where a person expects them, once, and replaced by a late real run."""
from __future__ import annotations

import random
import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import Job, JobRun, TicketJobRun
from backend.app.services import background, missed_runs
from backend.app.services.missed_runs import (
    detect_missed_runs,
    reconcile_late_run,
    run_missed_run_check,
)
from backend.app.services.schedules import local_to_utc, recompute_job_schedule

from ..helpers import make_customer, make_job, make_override, make_run, make_ticket, make_user, queries

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def L(y, m, d, hh=0, mm=0) -> datetime:
    """A local Amsterdam wall time as a UTC instant."""
    return local_to_utc(date(y, m, d), time(hh, mm), AMS)


def days(start: date, end: date):
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def seed_runs(job, day_filter, hh, mm, start, end, skip=(), jitter=6, seed=1):
    """Real runs at a local time (plus a few minutes), one per matching day, except the skipped days."""
    rnd = random.Random(seed)
    runs = [JobRun(job_id=job.id, status="Success", effective_status="Success",
                   started_at=L(d.year, d.month, d.day, hh, mm) + timedelta(minutes=rnd.randint(0, jitter)))
            for d in days(start, end) if day_filter(d) and d not in skip]
    db.session.add_all(runs)
    db.session.commit()


def missed_of(job=None):
    q = select(JobRun).where(JobRun.missed.is_(True)).order_by(JobRun.job_id, JobRun.missed_slot)
    if job is not None:
        q = q.where(JobRun.job_id == job.id)
    return db.session.execute(q).scalars().all()


def manual_daily(job, hhmm="22:00", grace=120, now=None):
    """Give a job a manual daily schedule and its first open slot."""
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": hhmm, "grace_minutes": grace}
    recompute_job_schedule(job, now or L(2026, 10, 10, 12), AMS)
    db.session.commit()
    return job


# --- The seeded month -------------------------------------------------------------------------------

@pytest.mark.slow  # over 5 s
def test_a_seeded_month_gets_missed_runs_exactly_at_the_removed_slots(app):
    """October 2026 in Europe/Amsterdam (summer time ends Sunday 25 October), simulated hour by hour."""
    contoso = make_customer("Contoso Demo")
    fabrikam = make_customer("Fabrikam Demo")
    dormant = make_customer("Dormant Demo", active=False)
    hist, end = date(2026, 8, 1), date(2026, 10, 31)

    daily22 = make_job(contoso, job_name="Daily VM Backup 22:00")
    seed_runs(daily22, lambda d: True, 22, 0, hist, end, skip={date(2026, 10, 3), date(2026, 10, 25)})
    daily0230 = make_job(contoso, job_name="Nightly SQL 02:30")
    # On 25 October the scheduler fires at the first 02:30 (still summer time).
    seed_runs(daily0230, lambda d: True, 2, 30, hist, end, skip={date(2026, 10, 12)}, jitter=4, seed=2)
    weekdays = make_job(contoso, job_name="Office files Mon-Fri")
    seed_runs(weekdays, lambda d: d.weekday() < 5, 21, 0, hist, end,
              skip={date(2026, 10, 14), date(2026, 10, 26)}, seed=3)
    every3 = make_job(contoso, job_name="Offsite copy every 3 days")
    every3.manual_schedule = {"kind": "every_n_days", "every_n_days": 3, "anchor_date": "2026-10-02",
                              "time": "01:00", "grace_minutes": 90}
    seed_runs(every3, lambda d: (d - date(2026, 10, 2)).days % 3 == 0, 1, 0, hist, end,
              skip={date(2026, 10, 26)}, seed=4)
    saturday = make_job(fabrikam, job_name="Weekly full Saturday")
    seed_runs(saturday, lambda d: d.weekday() == 5, 23, 30, hist, end, skip={date(2026, 10, 17)}, seed=5)
    monthly = make_job(fabrikam, job_name="Archive 1st and 15th")
    seed_runs(monthly, lambda d: d.day in (1, 15), 4, 0, date(2026, 5, 1), end, skip={date(2026, 10, 15)}, seed=6)
    late_evening = make_job(fabrikam, job_name="NAS 23:50")  # starts 23:50, mails after midnight
    seed_runs(late_evening, lambda d: True, 23, 50, hist, end, jitter=5, seed=7)
    irregular = make_job(fabrikam, job_name="Ad hoc exports")
    rnd = random.Random(8)
    db.session.add_all([JobRun(job_id=irregular.id, status="Success", effective_status="Success",
                               started_at=L(2026, 8, 1) + timedelta(minutes=rnd.randint(0, 91 * 24 * 60)))
                        for _ in range(40)])
    archived = make_job(fabrikam, job_name="Old server")
    seed_runs(archived, lambda d: True, 22, 0, hist, date(2026, 9, 30), seed=9)
    dormant_job = make_job(dormant, job_name="Dormant daily")
    seed_runs(dormant_job, lambda d: True, 22, 0, hist, date(2026, 9, 30), seed=10)
    db.session.commit()

    start = L(2026, 10, 1, 0)
    # The old server is learned, then archived; the dormant customer's job keeps a schedule too.
    run_missed_run_check(start, AMS)
    archived.archived = True
    db.session.commit()
    assert archived.schedule_kind == "daily" and dormant_job.schedule_kind == "daily"
    assert irregular.schedule_kind == "irregular" and irregular.next_expected_at is None
    assert monthly.schedule_kind == "monthly" and weekdays.schedule_kind == "weekly"
    assert every3.schedule_kind == "every_n_days" and saturday.learned_schedule["weekdays"] == [5]

    now, created = start, 0
    while now <= L(2026, 11, 1, 0):
        created += run_missed_run_check(now, AMS)
        now += timedelta(hours=1)

    got = {(r.job.job_name, r.missed_slot.astimezone(AMS).date().isoformat()) for r in missed_of()}
    assert got == {
        ("Daily VM Backup 22:00", "2026-10-03"),
        ("Daily VM Backup 22:00", "2026-10-25"),
        ("Nightly SQL 02:30", "2026-10-12"),
        ("Office files Mon-Fri", "2026-10-14"),
        ("Office files Mon-Fri", "2026-10-26"),
        ("Offsite copy every 3 days", "2026-10-26"),
        ("Weekly full Saturday", "2026-10-17"),
        ("Archive 1st and 15th", "2026-10-15"),
    }
    assert created == 8
    nominal = {daily22.id: (22, 0), daily0230.id: (2, 30), weekdays.id: (21, 0), every3.id: (1, 0),
               saturday.id: (23, 30), monthly.id: (4, 0)}
    for run in missed_of():
        # At the job's usual local time (the learned median lies within the seeded few minutes).
        local = run.missed_slot.astimezone(AMS)
        hh, mm = nominal[run.job_id]
        assert local.hour == hh and mm <= local.minute <= mm + 6, (run.job.job_name, local)
        assert run.status == run.effective_status == "Missed" and run.started_at == run.missed_slot
        assert run.message == f"No report received for the run expected at {local:%H:%M}"
        assert run.reviewed_at is None
    # On the day summer time ended the 22:00 slot is 21:00 UTC (CET), not 20:00.
    dst_missed = [r for r in missed_of(daily22) if r.missed_slot.astimezone(AMS).day == 25][0]
    assert dst_missed.missed_slot.astimezone(UTC).hour == 21
    # Nothing for the archived job, the inactive customer, the irregular job, the 23:50 job.
    for job in (archived, dormant_job, irregular, late_evening):
        assert missed_of(job) == []
    # Running the detector again adds nothing.
    assert detect_missed_runs(L(2026, 11, 1, 0), AMS) == 0
    assert detect_missed_runs(L(2026, 11, 1, 0), AMS) == 0
    assert len(missed_of()) == 8


# --- Rules of one job -------------------------------------------------------------------------------

def test_a_missed_run_appears_only_after_slot_plus_grace(app):
    job = manual_daily(make_job(), "22:00", grace=120)
    assert job.next_expected_slot == L(2026, 10, 10, 22) and job.next_expected_at == L(2026, 10, 11, 0)
    assert detect_missed_runs(L(2026, 10, 10, 23, 59), AMS) == 0
    assert detect_missed_runs(L(2026, 10, 11, 0, 0), AMS) == 1
    (run,) = missed_of()
    assert run.missed_slot == L(2026, 10, 10, 22)
    assert run.message == "No report received for the run expected at 22:00"
    job = db.session.get(Job, job.id)
    assert job.next_expected_slot == L(2026, 10, 11, 22) and job.next_expected_at == L(2026, 10, 12, 0)


def test_a_run_on_time_early_or_late_before_the_check_satisfies_the_slot(app):
    c = make_customer()
    on_time = manual_daily(make_job(c, job_name="On time"))
    make_run(on_time, started_at=L(2026, 10, 10, 22, 5))
    early = manual_daily(make_job(c, job_name="Early"))
    make_run(early, started_at=L(2026, 10, 10, 19, 30))
    late = manual_daily(make_job(c, job_name="Late, imported before the check"))
    make_run(late, started_at=L(2026, 10, 11, 1, 30))   # after the deadline, but the loop was down
    yesterday = manual_daily(make_job(c, job_name="Only yesterday's run"))
    make_run(yesterday, started_at=L(2026, 10, 9, 22, 0))
    assert detect_missed_runs(L(2026, 10, 11, 3), AMS) == 1
    assert [r.job_id for r in missed_of()] == [yesterday.id]


def test_a_run_started_2350_and_mailed_0010_is_the_previous_days_run(app):
    job = manual_daily(make_job(), "23:50", grace=60)
    # Started 23:50 on the 10th; the mail (and the import) came at 00:10 on the 11th.
    make_run(job, started_at=L(2026, 10, 10, 23, 50), created_at=L(2026, 10, 11, 0, 10))
    assert detect_missed_runs(L(2026, 10, 11, 0, 50), AMS) == 0
    # The 11th's own slot is still open and gets its missed run when nothing comes.
    assert detect_missed_runs(L(2026, 10, 12, 0, 50), AMS) == 1
    assert missed_of()[0].missed_slot.astimezone(AMS).date() == date(2026, 10, 11)


def test_dst_days_give_no_false_missed_runs_for_0230_and_2200_jobs(app):
    for year, month, day in ((2026, 3, 29), (2026, 10, 25)):
        db.session.query(JobRun).delete()
        db.session.query(Job).delete()
        db.session.commit()
        before = L(year, month, day - 2, 12)
        c = make_customer(f"DST Demo {month}")
        j0230 = manual_daily(make_job(c, job_name="02:30"), "02:30", now=before)
        j2200 = manual_daily(make_job(c, job_name="22:00"), "22:00", now=before)
        for d in days(date(year, month, day - 2), date(year, month, day + 2)):
            # Real schedulers: 02:30 does not exist in spring (runs 03:30); in autumn the first 02:30.
            make_run(j0230, started_at=L(d.year, d.month, d.day, 2, 30))
            make_run(j2200, started_at=L(d.year, d.month, d.day, 22, 0))
        t = before
        while t <= L(year, month, day + 2, 6):
            assert detect_missed_runs(t, AMS) == 0, t
            t += timedelta(minutes=30)
        assert db.session.get(Job, j2200.id).next_expected_slot == L(year, month, day + 2, 22)


def test_a_job_scheduled_in_the_dst_gap_that_never_runs_is_missed_once_per_day(app):
    job = manual_daily(make_job(), "02:30", grace=60, now=L(2026, 3, 28, 6))
    t = L(2026, 3, 28, 6)
    while t <= L(2026, 3, 31, 6):
        detect_missed_runs(t, AMS)
        t += timedelta(minutes=15)
    slots = [r.missed_slot for r in missed_of(job)]
    assert slots == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC),   # 03:30 CEST on the change day
                     datetime(2026, 3, 30, 0, 30, tzinfo=UTC), datetime(2026, 3, 31, 0, 30, tzinfo=UTC)]


def test_after_downtime_missed_runs_catch_up_but_only_for_the_last_seven_days(app):
    job = manual_daily(make_job(), "22:00", now=L(2026, 10, 1, 12))
    assert detect_missed_runs(L(2026, 10, 20, 12), AMS) == 7
    slots = [r.missed_slot.astimezone(AMS).date() for r in missed_of(job)]
    assert slots == [date(2026, 10, d) for d in range(13, 20)]
    assert db.session.get(Job, job.id).next_expected_slot == L(2026, 10, 20, 22)


def test_archived_inactive_irregular_and_unknown_jobs_get_no_missed_runs(app):
    c = make_customer()
    archived = manual_daily(make_job(c, job_name="Archived"))
    archived.archived = True
    inactive = manual_daily(make_job(make_customer("Gone Demo", active=False), job_name="Inactive customer"))
    irregular = manual_daily(make_job(c, job_name="Irregular"))
    irregular.manual_schedule = None
    irregular.learned_schedule = {"kind": "irregular"}
    unknown = manual_daily(make_job(c, job_name="Unknown"))
    unknown.manual_schedule = None
    unknown.learned_schedule = None
    db.session.commit()
    assert detect_missed_runs(L(2026, 10, 15), AMS) == 0
    assert missed_of() == []
    # The irregular and unknown jobs leave the due list; the others are left alone.
    assert db.session.get(Job, irregular.id).next_expected_at is None
    assert db.session.get(Job, unknown.id).next_expected_at is None


def test_the_detector_reads_a_constant_number_of_rows_sets(app):
    def one_round(n, name):
        customer = make_customer(name)
        for i in range(n):
            manual_daily(make_job(customer, job_name=f"{name} {i}"))
        with queries() as seen:
            made = detect_missed_runs(L(2026, 10, 11, 1), AMS)
        selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        return made, len(selects)

    made3, selects3 = one_round(3, "Small Demo")
    db.session.query(JobRun).delete()
    db.session.query(Job).delete()
    db.session.commit()
    made9, selects9 = one_round(9, "Large Demo")
    assert (made3, made9) == (3, 9)
    # due jobs, runs near the slots, existing missed runs; then the jobs and rules for overrides
    assert selects3 == selects9 <= 5


def test_the_detector_asks_the_due_index(app):
    from sqlalchemy import text

    query = missed_runs._due_jobs_query(L(2026, 10, 11, 1))
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.execute(text("EXPLAIN " + sql)).scalars())
    db.session.rollback()
    assert "ix_jobs_next_expected_due" in plan, plan


def test_a_missed_run_that_already_exists_is_not_made_twice(app, monkeypatch):
    job = manual_daily(make_job())
    assert detect_missed_runs(L(2026, 10, 11, 1), AMS) == 1
    # Another runner reset the job to the old slot, and our read of existing missed runs was stale:
    # the unique constraint and the savepoint keep it at one, and the job still moves on.
    job.next_expected_slot, job.next_expected_at = L(2026, 10, 10, 22), L(2026, 10, 11, 0)
    db.session.commit()
    monkeypatch.setattr(missed_runs, "_existing_missed", lambda ids, lo, hi: {})
    assert detect_missed_runs(L(2026, 10, 11, 1), AMS) == 0
    assert len(missed_of(job)) == 1
    assert db.session.get(Job, job.id).next_expected_slot == L(2026, 10, 11, 22)


def test_a_relearned_time_does_not_make_a_second_missed_run_for_the_same_day(app):
    job = manual_daily(make_job(), "22:00")
    assert detect_missed_runs(L(2026, 10, 11, 0, 5), AMS) == 1
    # Relearning moved the expected time 10 minutes later: the same evening is due again.
    job.manual_schedule = {**job.manual_schedule, "time": "22:10"}
    job.next_expected_slot, job.next_expected_at = L(2026, 10, 10, 22, 10), L(2026, 10, 11, 0, 10)
    db.session.commit()
    assert detect_missed_runs(L(2026, 10, 11, 0, 15), AMS) == 0
    assert len(missed_of(job)) == 1
    assert db.session.get(Job, job.id).next_expected_slot == L(2026, 10, 11, 22, 10)


def test_two_runners_at_once_make_one_missed_run(app):
    customer = make_customer()
    jobs = [manual_daily(make_job(customer, job_name=f"Job {i}")) for i in range(5)]
    results, errors = [], []
    barrier = threading.Barrier(2)

    def runner():
        try:
            with app.app_context():
                barrier.wait()
                results.append(detect_missed_runs(L(2026, 10, 11, 1), AMS))
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sum(results) == 5
    db.session.expire_all()
    assert sorted(r.job_id for r in missed_of()) == sorted(j.id for j in jobs)


# --- Tickets and late runs --------------------------------------------------------------------------

def _ticket(job, code="T-100", resolved=False):
    return make_ticket(code, job=job, active_from=L(2026, 10, 1), resolved_at=L(2026, 10, 5) if resolved else None)


def _linked_tickets(run_id):
    return sorted(db.session.execute(select(TicketJobRun.ticket_id).where(TicketJobRun.job_run_id == run_id))
                  .scalars())


def test_open_tickets_link_to_a_missed_run_and_resolved_ones_do_not(app):
    job = manual_daily(make_job())
    open_t = _ticket(job, "T-OPEN")
    _ticket(job, "T-DONE", resolved=True)
    detect_missed_runs(L(2026, 10, 11, 1), AMS)
    (run,) = missed_of(job)
    assert _linked_tickets(run.id) == [open_t.id]


def test_a_late_run_replaces_an_unreviewed_missed_run_and_takes_its_ticket(app):
    job = manual_daily(make_job())
    ticket = _ticket(job)
    detect_missed_runs(L(2026, 10, 11, 1), AMS)
    (missed,) = missed_of(job)
    missed_id = missed.id
    missed.autotask_ticket_id, missed.autotask_ticket_number = 4711, "T20261011.0001"
    db.session.commit()
    late = make_run(job, started_at=L(2026, 10, 11, 2, 30))  # 4.5 h late; the mail came later still
    replaced = reconcile_late_run(late, AMS)
    db.session.commit()
    assert replaced is not None and replaced.id == missed_id
    assert missed_of(job) == []
    assert _linked_tickets(late.id) == [ticket.id]
    assert late.autotask_ticket_id == 4711 and late.autotask_ticket_number == "T20261011.0001"
    # The next slot is unaffected and still checked.
    assert db.session.get(Job, job.id).next_expected_slot == L(2026, 10, 11, 22)


def test_a_late_run_is_added_next_to_a_reviewed_missed_run(app):
    reviewer = make_user("oscar", roles=("operator",))
    job = manual_daily(make_job())
    detect_missed_runs(L(2026, 10, 11, 1), AMS)
    (missed,) = missed_of(job)
    missed.reviewed_at, missed.reviewed_by_id = L(2026, 10, 11, 8), reviewer.id
    db.session.commit()
    late = make_run(job, started_at=L(2026, 10, 11, 2, 30))
    assert reconcile_late_run(late, AMS) is None
    db.session.commit()
    assert [r.id for r in missed_of(job)] == [missed.id]
    assert len(db.session.execute(select(JobRun).where(JobRun.job_id == job.id)).scalars().all()) == 2


def test_a_run_for_another_slot_does_not_replace_a_missed_run(app):
    job = manual_daily(make_job())
    detect_missed_runs(L(2026, 10, 11, 1), AMS)
    (missed,) = missed_of(job)
    next_day = make_run(job, started_at=L(2026, 10, 11, 22, 1))
    assert reconcile_late_run(next_day, AMS) is None
    way_late = make_run(job, started_at=L(2026, 10, 11, 14, 0))  # closer to the 11th's slot
    assert reconcile_late_run(way_late, AMS) is None
    db.session.commit()
    assert [r.id for r in missed_of(job)] == [missed.id]


def test_the_import_flow_hook_reconciles_late_runs(app):
    from backend.app.services.ingest import after_run_created

    job = manual_daily(make_job())
    ticket = _ticket(job)
    detect_missed_runs(L(2026, 10, 11, 1), AMS)
    late = make_run(job, started_at=L(2026, 10, 11, 1, 15))
    after_run_created(late)  # uses the UI timezone from Settings (Europe/Amsterdam by default)
    db.session.commit()
    assert missed_of(job) == []
    assert _linked_tickets(late.id) == [ticket.id]


def test_register_adds_the_missed_runs_loop(app):
    before = list(background.LOOPS)
    try:
        background.LOOPS[:] = [loop for loop in background.LOOPS if loop.name != "missed-runs"]
        missed_runs.register(app)
        missed_runs.register(app)  # twice is harmless
        loops = [loop for loop in background.LOOPS if loop.name == "missed-runs"]
        assert len(loops) == 1 and loops[0].interval_seconds(app) == 300
    finally:
        background.LOOPS[:] = before


def test_a_job_level_override_for_missed_applies_to_generated_missed_runs(app):
    """A known gap (e.g. a planned holiday) is treated as success when the rule matches Missed."""
    zone = ZoneInfo("Europe/Amsterdam")
    job = make_job(make_customer("Holiday Testing"), "Nightly", sender="h@example.test")
    for day in range(1, 15):
        make_run(job, "Success", datetime(2026, 6, day, 20, 0, tzinfo=timezone.utc))
    now = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
    recompute_job_schedule(job, now, zone)
    make_override(job, match_status="Missed", match_mode="contains", treat_as_success=True, active=True)
    assert detect_missed_runs(datetime(2026, 6, 16, 12, 0, tzinfo=timezone.utc), zone) == 1
    missed = db.session.execute(select(JobRun).where(JobRun.missed.is_(True))).scalar_one()
    assert missed.status == "Missed" and missed.effective_status == "Success" and missed.override_id is not None


# --- One definition of "missed" (slot_verdict) ---------------------------------------------------

DAILY_0100 = {"kind": "daily", "weekdays": list(range(7)), "time": "01:00", "grace_minutes": 60}


class _Run:
    def __init__(self, started_at, missed=False):
        self.started_at, self.missed = started_at, missed


def verdict(slot, now, created_at=L(2026, 1, 1), pointer=L(2026, 10, 1, 1), runs=(), schedule=DAILY_0100):
    return missed_runs.slot_verdict(schedule, slot, created_at=created_at, next_expected_slot=pointer,
                                    now=now, zone=AMS, real_runs=runs)


def test_a_slot_awaiting_the_check_is_expected_then_missed_unless_a_run_belongs_to_it():
    slot = L(2026, 10, 5, 1)
    assert verdict(slot, L(2026, 10, 5, 1, 59)).state == missed_runs.EXPECTED_SLOT
    missed = verdict(slot, L(2026, 10, 5, 2))
    assert (missed.state, missed.deadline) == (missed_runs.MISSED_SLOT, L(2026, 10, 5, 2))
    late = verdict(slot, L(2026, 10, 5, 9), runs=[_Run(L(2026, 10, 5, 7))])
    assert late.state == missed_runs.RAN_SLOT and late.runs[0].started_at == L(2026, 10, 5, 7)
    # A Missed run, or a run nearer to the next slot, does not make the slot ran.
    assert verdict(slot, L(2026, 10, 6, 9), runs=[_Run(slot, missed=True), _Run(L(2026, 10, 5, 14))]
                   ).state == missed_runs.MISSED_SLOT


def test_slots_the_check_has_passed_or_that_predate_the_job_or_schedule_are_never_inferred():
    slot = L(2026, 10, 5, 1)
    # Before next_expected_slot: settled, only a stored Missed run can make it missed.
    assert verdict(slot, L(2026, 10, 6), pointer=L(2026, 10, 6, 1)).state == missed_runs.SETTLED_SLOT
    # After more than seven days the check skips a slot (catch-up limit): settled as well.
    assert verdict(slot, slot + timedelta(days=8)).state == missed_runs.SETTLED_SLOT
    # No next_expected_slot at all (archived, or never scheduled): nothing awaits the check.
    assert verdict(slot, L(2026, 10, 6), pointer=None).state == missed_runs.SETTLED_SLOT
    assert verdict(slot, L(2026, 10, 6), created_at=L(2026, 10, 5, 9)) is None  # added after the slot
    assert verdict(None, L(2026, 10, 6)) is None
    assert verdict(slot, L(2026, 10, 6), schedule={"kind": "irregular"}) is None
    assert verdict(slot, L(2026, 10, 6), schedule=None) is None
