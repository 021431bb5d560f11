"""Daily Jobs: expected / missed / expected-not-yet at a frozen now, several runs on a day under
worst/last/best, the day a run belongs to (23:50, DST), filters, bad input, access, query counts."""
from html import unescape
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.extensions import db
from backend.app.services.daily_jobs import build_day
from backend.app.services.schedules import effective_schedule, first_slot_in_force
from backend.app.services.settings import get_settings

from .helpers import count_queries, make_customer, make_job, make_override, make_run, make_ticket

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2026, 11, 25)  # a Wednesday

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture(autouse=True)
def _evening_of_day(clock):
    """The pages here look at days in November 2026: the clock stands on the evening of DAY."""
    clock.move_to(datetime(2026, 11, 25, 21, 30, tzinfo=AMS))


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=AMS).astimezone(UTC)


def weekdays(time_, days=(0, 1, 2, 3, 4, 5, 6), grace=120):
    return {"kind": "weekdays", "weekdays": list(days), "time": time_, "grace_minutes": grace}


def job(customer, name, schedule=None, **kw):
    """A job whose schedule is in force since it was created and that the missed-run check has
    not visited since: every slot from then on still awaits the check."""
    kw.setdefault("created_at", LONG_AGO)
    j = make_job(customer, name, sender=f"{name.lower().replace(' ', '-')}@example.test",
                 manual_schedule=schedule, **kw)
    return in_force_since(j, j.created_at)


def in_force_since(j, since):
    first = first_slot_in_force(effective_schedule(j), since, AMS)
    j.next_expected_slot, j.next_expected_at = first if first else (None, None)
    db.session.commit()
    return j


def rows_by_name(view):
    return {r.job.job_name: r for g in view.groups for r in g.rows}


def day_view(day=DAY, now=None, **kw):
    return build_day(day, AMS, now or local(2026, 11, 25, 21, 30), **kw)


def test_expected_missed_and_not_yet_at_a_frozen_now():
    acme = make_customer("Acme Testing")
    failed = job(acme, "Nightly Failed", weekdays("21:00"))
    make_run(failed, "Failed", local(2026, 11, 25, 21, 5))
    job(acme, "Early Weekday", weekdays("02:00", days=(0, 1, 2, 3, 4)))          # 02:00 + 2 h passed: Missed
    job(acme, "Late Daily", weekdays("22:00"))                                  # 22:00 still ahead: Expected
    job(acme, "Within Grace", weekdays("20:00", grace=120))                     # 20:00 passed, grace until 22:00
    job(acme, "Tuesdays Only", weekdays("02:00", days=(1,)))                    # not expected on a Wednesday
    job(acme, "Monthly 25th", {"kind": "monthdays", "monthdays": [25], "time": "03:00"})
    job(acme, "Monthly 31st", {"kind": "monthdays", "monthdays": [31], "time": "03:00"})  # Nov 30, not 25
    job(acme, "Every Two Days On", {"kind": "every_n_days", "every_n_days": 2, "anchor_date": "2026-11-23",
                                    "time": "04:00"})
    job(acme, "Every Two Days Off", {"kind": "every_n_days", "every_n_days": 2, "anchor_date": "2026-11-24",
                                     "time": "04:00"})
    unscheduled = job(acme, "No Schedule Ran")
    make_run(unscheduled, "Warning", local(2026, 11, 25, 12, 0))
    job(acme, "No Schedule Idle")
    job(acme, "Archived", weekdays("01:00"), archived=True)
    job(make_customer("Gone Testing", active=False), "Inactive Customer", weekdays("01:00"))
    job(acme, "Added Tomorrow", weekdays("01:00"), created_at=local(2026, 11, 26, 9))
    learned = job(acme, "Learned Daily")
    learned.learned_schedule = {"kind": "daily", "weekdays": [0, 1, 2, 3, 4, 5, 6], "time": "05:00", "grace_minutes": 120}
    in_force_since(learned, LONG_AGO)

    rows = rows_by_name(day_view())
    assert {n: r.status for n, r in rows.items()} == {
        "Nightly Failed": "Failed",
        "Early Weekday": "Missed",
        "Late Daily": "Expected",
        "Within Grace": "Expected",
        "Monthly 25th": "Missed",
        "Every Two Days On": "Missed",
        "No Schedule Ran": "Warning",
        "Learned Daily": "Missed",
    }
    assert rows["No Schedule Ran"].expected is False
    assert rows["Late Daily"].note == "expected at 22:00"
    assert "within grace until 22:00" in rows["Within Grace"].note
    assert rows["Early Weekday"].schedule_text == "Mon–Fri at 02:00 (set by hand)"
    # The same day seen the next morning: everything that did not run is Missed.
    later = rows_by_name(day_view(now=local(2026, 11, 26, 8)))
    assert later["Late Daily"].status == later["Within Grace"].status == "Missed"
    # A day in the future: everything expected, nothing missed.
    future = rows_by_name(day_view(day=date(2026, 11, 30)))
    assert "Monthly 31st" in future and {r.status for r in future.values()} == {"Expected"}


def test_missed_run_override_and_ticket_show():
    acme = make_customer("Acme Testing")
    missed = job(acme, "Missed Generated", weekdays("01:00"))
    slot = local(2026, 11, 25, 1)
    make_run(missed, "Missed", slot, missed=True, missed_slot=slot)
    overridden = job(acme, "Overridden", weekdays("02:00"))
    rule = make_override(overridden, match_status="Warning", treat_as_success=True)
    run = make_run(overridden, "Warning", local(2026, 11, 25, 2, 1), effective_status="Success", override_id=rule.id)
    make_ticket("T20261125.0001", "Disk replaced", runs=[run])
    # Expected before the slot, Missed after: the generated missed run decides, whatever "now" says.
    view = day_view(now=local(2026, 11, 25, 0, 30))
    rows = rows_by_name(view)
    assert rows["Missed Generated"].status == "Missed"
    assert rows["Overridden"].status == "Success (override)"
    assert [t.code for t in view.tickets[run.id]] == ["T20261125.0001"]


@pytest.mark.parametrize("rule,expected", [("worst", "Failed"), ("last", "Warning"), ("best", "Success")])
def test_several_runs_on_one_day_follow_the_rule(rule, expected):
    j = job(make_customer("Acme Testing"), "Hourly-ish", weekdays("01:00"))
    for hour, status in ((1, "Failed"), (9, "Success"), (15, "Warning")):
        make_run(j, status, local(2026, 11, 25, hour))
    make_run(j, "Failed", local(2026, 11, 26, 0, 30))  # the next day: not this day's
    row = rows_by_name(day_view(rule=rule))["Hourly-ish"]
    assert [r.status for r in row.runs] == ["Failed", "Success", "Warning"]
    assert row.status == expected


def test_worst_rule_shows_an_override_over_a_plain_success():
    j = job(make_customer("Acme Testing"), "Twice", weekdays("01:00"))
    rule = make_override(j, treat_as_success=True)
    make_run(j, "Success", local(2026, 11, 25, 1))
    make_run(j, "Warning", local(2026, 11, 25, 3), effective_status="Success", override_id=rule.id)
    assert rows_by_name(day_view(rule="worst"))["Twice"].status == "Success (override)"
    assert rows_by_name(day_view(rule="best"))["Twice"].status == "Success"


def test_a_run_that_starts_2350_and_mails_at_0010_is_yesterdays():
    j = job(make_customer("Acme Testing"), "Late Nightly", weekdays("23:45"))
    make_run(j, "Success", local(2026, 11, 24, 23, 50), ended_at=local(2026, 11, 25, 0, 10))
    tuesday = rows_by_name(day_view(day=date(2026, 11, 24)))["Late Nightly"]
    assert tuesday.status == "Success" and len(tuesday.runs) == 1
    wednesday = rows_by_name(day_view())["Late Nightly"]
    assert wednesday.runs == [] and wednesday.status == "Expected"


def test_a_late_run_across_midnight_counts_for_the_slot():
    j = job(make_customer("Acme Testing"), "Midnight Edge", weekdays("23:30", grace=60))
    make_run(j, "Success", local(2026, 11, 26, 0, 10))
    row = rows_by_name(day_view(now=local(2026, 11, 26, 9)))["Midnight Edge"]
    assert row.status == "Success" and row.runs == [] and "across midnight" in row.note
    # On its own day it shows as that day's run, without being expected there before 23:30.
    nxt = rows_by_name(day_view(day=date(2026, 11, 26), now=local(2026, 11, 26, 9)))["Midnight Edge"]
    assert nxt.status == "Success" and len(nxt.runs) == 1


def test_dst_day_2026_10_25_in_amsterdam_has_25_hours():
    acme = make_customer("Acme Testing")
    j = job(acme, "DST Daily", weekdays("02:30"))  # 02:30 happens twice: the first one (summer time)
    make_run(j, "Warning", datetime(2026, 10, 24, 22, 30, tzinfo=UTC))   # 00:30 CEST on the 25th
    make_run(j, "Success", datetime(2026, 10, 25, 22, 30, tzinfo=UTC))   # 23:30 CET on the 25th
    make_run(j, "Failed", datetime(2026, 10, 25, 23, 30, tzinfo=UTC))    # 00:30 CET on the 26th
    make_run(j, "Failed", datetime(2026, 10, 24, 21, 30, tzinfo=UTC))    # 23:30 CEST on the 24th
    row = rows_by_name(day_view(day=date(2026, 10, 25), now=datetime(2026, 10, 26, 8, tzinfo=UTC)))["DST Daily"]
    assert [r.status for r in row.runs] == ["Warning", "Success"]
    assert row.slot == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    idle = job(acme, "DST Idle", weekdays("02:30", grace=60))
    # The clock falls back at 03:00 CEST (01:00 UTC). At 02:20 winter time (01:20 UTC) the wall clock
    # is before 02:30 again, but the slot (the first 02:30) is 50 min ago: still within the grace.
    rows = rows_by_name(day_view(day=date(2026, 10, 25), now=datetime(2026, 10, 25, 1, 20, tzinfo=UTC)))
    assert rows["DST Idle"].status == "Expected"
    # At 02:40 winter time (01:40 UTC) the first 02:30 + 60 min has passed: Missed.
    rows = rows_by_name(day_view(day=date(2026, 10, 25), now=datetime(2026, 10, 25, 1, 40, tzinfo=UTC)))
    assert rows["DST Idle"].status == "Missed"
    assert idle.id


def test_filters_group_and_page():
    acme, beta = make_customer("Acme Testing"), make_customer("Beta Testing")
    a1 = job(acme, "A Failed", weekdays("01:00"))
    make_run(a1, "Failed", local(2026, 11, 25, 1))
    job(acme, "A Missed", weekdays("01:00"))
    b1 = job(beta, "B Success", weekdays("01:00"))
    make_run(b1, "Success", local(2026, 11, 25, 1))
    view = day_view()
    assert [g.customer_name for g in view.groups] == ["Acme Testing", "Beta Testing"]
    assert view.counts["Failed"] == view.counts["Missed"] == view.counts["Success"] == 1
    assert list(rows_by_name(day_view(customer_id=beta.id))) == ["B Success"]
    assert list(rows_by_name(day_view(status_filter="missed"))) == ["A Missed"]
    assert list(rows_by_name(day_view(status_filter="success"))) == ["B Success"]
    paged = day_view(per_page=2, page=2)
    assert paged.total == 3 and list(rows_by_name(paged)) == ["B Success"]


# --- The page ------------------------------------------------------------------------------------

def seed_page_day(n_jobs: int, customer_name: str = "Acme Testing"):
    cust = make_customer(customer_name)
    for i in range(n_jobs):
        j = job(cust, f"{customer_name} Job {i}", weekdays("01:00"))
        if i % 3 == 0:
            r = make_run(j, "Failed", local(2026, 11, 20, 1, 5))
            make_ticket(f"T{customer_name[:4]}{i}", "", runs=[r])
        elif i % 3 == 1:
            make_run(j, "Success", local(2026, 11, 20, 1, 5))
            make_run(j, "Warning", local(2026, 11, 20, 13, 5))
        else:  # the missed-run check stored its Missed run: shown whatever today is
            slot = local(2026, 11, 20, 1)
            make_run(j, "Missed", slot, missed=True, missed_slot=slot)
    db.session.commit()
    return cust


def test_page_shows_the_day_grouped_with_badges(as_user):
    seed_page_day(3)
    html = as_user("viewer").get("/daily-jobs?date=2026-11-20").get_data(as_text=True)
    assert "Friday 20 November 2026" in html and "? Help" in html
    assert 'data-customer-group="Acme Testing"' in html
    assert 'data-status="Failed"' in html and 'data-status="Missed"' in html and 'data-status="Warning"' in html
    assert "TAcme0" in html  # the ticket indicator
    assert "date=2026-11-19" in html and "date=2026-11-21" in html  # previous / next day


def test_page_settings_rule_decides(as_user):
    seed_page_day(2)
    settings = get_settings()
    settings.daily_status_rule = "best"
    db.session.commit()
    html = as_user("operator").get("/daily-jobs?date=2026-11-20&status=success").get_data(as_text=True)
    assert 'data-job="Acme Testing Job 1"' in html and "day status: best run" in html


def test_page_filters_and_empty_state(as_user):
    seed_page_day(3)
    beta = seed_page_day(1, "Beta Testing")
    c = as_user("viewer")
    html = c.get(f"/daily-jobs?date=2026-11-20&customer={beta.id}").get_data(as_text=True)
    assert "Beta Testing Job 0" in html and "Acme Testing Job" not in html
    html = c.get("/daily-jobs?date=2026-11-20&status=Missed").get_data(as_text=True)
    assert 'data-job="Acme Testing Job 2"' in html and 'data-status="Failed"' not in html
    html = c.get("/daily-jobs?date=2026-11-20&status=expected").get_data(as_text=True)
    assert "No job matches these filters" in html
    assert "today" in c.get("/daily-jobs").get_data(as_text=True).lower()


@pytest.mark.parametrize("query,message", [
    ("date=25-11-2026", "is not a date: use YYYY-MM-DD"),
    ("date=2026-02-30", "is not a date"),
    ("status=purple", "Unknown status 'purple'"),
    ("customer=abc", "is not a customer number"),
    ("customer=\u00b2", "is not a customer number"),  # a digit to str.isdigit, not to int()
])
def test_bad_input_is_a_clear_400(as_user, query, message):
    r = as_user("viewer").get(f"/daily-jobs?{query}")
    assert r.status_code == 400
    assert message in unescape(r.get_data(as_text=True))


def test_unknown_or_huge_customer_is_just_empty(as_user):
    seed_page_day(1)
    for cid in ("999999", "99999999999999"):
        r = as_user("viewer").get(f"/daily-jobs?date=2026-11-20&customer={cid}")
        assert r.status_code == 200 and "No job matches these filters" in r.get_data(as_text=True)


def test_access(as_user):
    for role, code in (("admin", 200), ("operator", 200), ("viewer", 200), ("reporter", 403)):
        assert as_user(role).get("/daily-jobs").status_code == code




def test_constant_number_of_queries_whatever_the_day_size(as_user):
    c = as_user("viewer")
    seed_page_day(3)
    url = "/daily-jobs?date=2026-11-20"
    c.get(url)
    small = count_queries(lambda: c.get(url))
    for k in range(4):
        seed_page_day(30, f"Bulk {k} Testing")
    computed = count_queries(lambda: c.get(url))  # the new jobs change the day: its rows are computed again
    large = count_queries(lambda: c.get(url))      # then served from the day cache
    assert computed == small + 2                   # the candidate jobs and the runs around the day
    html = c.get(url).get_data(as_text=True)
    assert html.count("data-job=") == 123
    assert small == large, (small, large)
    assert count_queries(lambda: c.get(url + "&status=failed")) == small


def test_dates_out_of_range_are_refused(as_user):
    c = as_user("viewer")
    for value in ("0001-01-01", "9999-12-31"):
        r = c.get(f"/daily-jobs?date={value}")
        assert r.status_code == 400 and "is out of range" in r.get_data(as_text=True)


# --- The day cache: a cached day still shows every change at once -------------------------------------

def test_a_cached_day_shows_a_late_run_a_review_an_override_and_a_schedule_change():
    acme = make_customer("Cache Testing")
    late = job(acme, "Late Report", weekdays("02:00"))
    other = job(acme, "Other Job", weekdays("03:00"))
    ran = make_run(other, "Warning", local(2026, 11, 25, 3, 5))
    assert rows_by_name(day_view())["Late Report"].status == "Missed"   # computed, then cached
    assert rows_by_name(day_view())["Late Report"].status == "Missed"   # from the cache

    make_run(late, "Failed", local(2026, 11, 25, 2, 40))               # the report arrives late
    assert rows_by_name(day_view())["Late Report"].status == "Failed"

    assert not rows_by_name(day_view())["Other Job"].runs[0].reviewed
    ran.reviewed_at = local(2026, 11, 25, 8, 0)                         # a review
    db.session.flush()
    assert rows_by_name(day_view())["Other Job"].runs[0].reviewed

    ran.effective_status, ran.override_id = "Success", make_override(other, comment="known").id  # an override
    db.session.flush()
    assert rows_by_name(day_view())["Other Job"].status == "Success (override)"

    quiet = job(acme, "Quiet Job", weekdays("04:00"))
    assert rows_by_name(day_view())["Quiet Job"].status == "Missed"
    quiet.manual_schedule = weekdays("04:00", days=(1,))                # not expected on a Wednesday any more
    db.session.flush()
    assert "Quiet Job" not in rows_by_name(day_view())

    acme.active = False                                                 # a deactivated customer's jobs go
    db.session.flush()
    assert rows_by_name(day_view()) == {}


def test_a_cached_day_follows_the_clock_from_expected_to_missed():
    j = job(make_customer("Clock Testing"), "Evening Job", weekdays("22:00", grace=60))
    assert rows_by_name(day_view(now=local(2026, 11, 25, 21, 30)))["Evening Job"].status == "Expected"
    assert rows_by_name(day_view(now=local(2026, 11, 25, 22, 30)))["Evening Job"].note.startswith(
        "expected at 22:00, late but within grace")
    assert rows_by_name(day_view(now=local(2026, 11, 25, 23, 5)))["Evening Job"].status == "Missed"
    # an earlier moment is never answered from a later one's rows
    assert rows_by_name(day_view(now=local(2026, 11, 25, 21, 30)))["Evening Job"].status == "Expected"
    assert j.id


def test_each_setting_and_filter_has_its_own_rows():
    acme = make_customer("Rules Testing")
    j = job(acme, "Two Runs", weekdays("01:00"))
    make_run(j, "Failed", local(2026, 11, 25, 1, 5))
    make_run(j, "Success", local(2026, 11, 25, 3, 5))
    assert rows_by_name(day_view(rule="worst"))["Two Runs"].status == "Failed"
    assert rows_by_name(day_view(rule="last"))["Two Runs"].status == "Success"
    assert rows_by_name(day_view(rule="worst", customer_id=acme.id))["Two Runs"].status == "Failed"
    assert rows_by_name(day_view(rule="worst", customer_id=acme.id + 1000)) == {}
    view = build_day(DAY, ZoneInfo("America/New_York"), local(2026, 11, 25, 21, 30))
    assert view.zone.key == "America/New_York"
