"""Snooze and maintenance rules without a database (services/quiet.py): validation, the snooze
end from the form, whether an instant lies inside a window (weekly ones across the DST changes),
and which runs' alerts are held and why."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.app.services.missed_runs import plan_job, slots_to_create
from backend.app.services.quiet import (
    ActiveSnooze,
    QuietError,
    Window,
    hold_reasons,
    snooze_until,
    validate_window,
    window_for,
)

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def local(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=AMS).astimezone(UTC)


def weekly(days, start, *, end=None, minutes=None, reason="patching", **kw) -> Window:
    return Window(kind="weekly", reason=reason, zone="Europe/Amsterdam", weekdays=tuple(days), local_start=start,
                  local_end=end, duration_minutes=minutes, **kw)


# --- Snooze until ----------------------------------------------------------------------------------

@pytest.mark.parametrize("choice,length", [("1d", timedelta(days=1)), ("3d", timedelta(days=3)),
                                           ("1w", timedelta(weeks=1))])
def test_quick_choices_count_from_now(choice, length):
    assert snooze_until(choice, "", NOW, AMS) == NOW + length


def test_a_chosen_moment_is_read_in_the_ui_timezone_and_stored_in_utc():
    assert snooze_until("custom", "2026-12-05T08:00", NOW, AMS) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    assert snooze_until("custom", "2027-07-01 08:00", NOW, AMS) == datetime(2027, 7, 1, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize("value,message", [
    ("2026-12-04T09:59", "has already passed"),   # 08:59 UTC
    ("2026-12-04T10:00", "has already passed"),   # exactly now
    ("yesterday", "Choose a date and time"),
    ("", "Choose a date and time"),
    ("2028-01-01T00:00", "at most a year"),
])
def test_a_snooze_in_the_past_or_unreadable_is_refused(value, message):
    with pytest.raises(QuietError, match=message):
        snooze_until("custom", value, NOW, AMS)


# --- Validation ------------------------------------------------------------------------------------

def test_a_one_off_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(QuietError, match="ends before it starts"):
        validate_window(Window(kind="once", reason="x", starts_at=NOW, ends_at=NOW - timedelta(hours=1)))
    with pytest.raises(QuietError, match="ends before it starts"):
        validate_window(Window(kind="once", reason="x", starts_at=NOW, ends_at=NOW))


@pytest.mark.parametrize("window,message", [
    (weekly([], time(22)), "at least one day"),
    (weekly([5], time(22), minutes=0), "no length"),
    (weekly([5], time(22), end=time(22)), "no length"),
    (weekly([5], time(22)), "either a length"),
    (weekly([5], time(22), end=time(23), minutes=60), "either a length"),
    (weekly([5], time(22), minutes=7 * 24 * 60 + 1), "at most 7 days"),
    (weekly([5], time(22), minutes=60, reason="   "), "Give a reason"),
    (weekly([5], time(22), minutes=60, reason="x" * 201), "too long"),
])
def test_bad_weekly_windows_are_refused_with_what_to_fix(window, message):
    with pytest.raises(QuietError, match=message):
        validate_window(window)


def test_a_valid_window_comes_back_with_its_reason_tidied():
    w = validate_window(weekly([5, 6], time(22), end=time(2), reason="  NAS   firmware "))
    assert w.reason == "NAS firmware" and w.describe() == "every Sat, Sun from 22:00 until 02:00 (next day)"


# --- Inside a window ---------------------------------------------------------------------------------

def test_one_off_window_is_half_open():
    w = Window(kind="once", reason="x", starts_at=NOW, ends_at=NOW + timedelta(hours=2))
    assert w.contains(NOW) and w.contains(NOW + timedelta(minutes=119))
    assert not w.contains(NOW - timedelta(seconds=1)) and not w.contains(NOW + timedelta(hours=2))


def test_weekly_window_across_midnight_belongs_to_the_day_it_starts():
    w = weekly([5], time(22), end=time(2))  # Saturday 22:00 – Sunday 02:00
    assert w.contains(local(2026, 12, 5, 22)) and w.contains(local(2026, 12, 6, 1, 59))
    assert not w.contains(local(2026, 12, 6, 2)) and not w.contains(local(2026, 12, 6, 22, 30))  # Sunday evening
    assert not w.contains(local(2026, 12, 5, 21, 59))


def test_weekly_window_keeps_its_wall_clock_start_across_the_dst_changes():
    w = weekly([6], time(1), end=time(4))  # Sundays 01:00–04:00 local
    # 29 March 2026: the clocks go 02:00 -> 03:00, the window is 2 real hours long
    assert w.occurrence_at(local(2026, 3, 29, 3, 30)) == (datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
                                                          datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    assert not w.contains(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    # 25 October 2026: 03:00 -> 02:00, four real hours
    lo, hi = w.occurrence_at(datetime(2026, 10, 25, 2, 30, tzinfo=UTC))
    assert (lo, hi) == (datetime(2026, 10, 24, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 3, 0, tzinfo=UTC))
    # a week before and after: still 01:00 local, whichever offset applies
    assert w.contains(local(2026, 3, 22, 1)) and w.contains(local(2026, 4, 5, 1))
    assert local(2026, 3, 22, 1).hour == 0 and local(2026, 4, 5, 1).hour == 23


def test_a_weekly_length_is_real_time_even_on_the_dst_night():
    w = weekly([6], time(1), minutes=180)  # three real hours from 01:00 local
    assert w.occurrence_at(local(2026, 3, 29, 1, 30)) == (datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
                                                          datetime(2026, 3, 29, 3, 0, tzinfo=UTC))


def test_a_multi_day_weekly_window():
    w = weekly([4], time(20), minutes=60 * 60)  # Friday 20:00 to Monday 08:00
    assert w.contains(local(2026, 12, 6, 12)) and w.contains(local(2026, 12, 7, 7, 59))
    assert not w.contains(local(2026, 12, 7, 8)) and not w.contains(local(2026, 12, 4, 19))


def test_next_occurrence_is_the_current_one_or_the_next_to_start():
    w = weekly([5], time(22), end=time(2))
    assert w.next_occurrence(local(2026, 12, 4, 9)) == (local(2026, 12, 5, 22), local(2026, 12, 6, 2))
    assert w.next_occurrence(local(2026, 12, 6, 1)) == (local(2026, 12, 5, 22), local(2026, 12, 6, 2))


def test_window_for_matches_the_job_or_its_customer():
    job_w = Window(kind="once", reason="job", starts_at=NOW, ends_at=NOW + timedelta(hours=1), job_id=1)
    cust_w = Window(kind="once", reason="customer", starts_at=NOW, ends_at=NOW + timedelta(hours=1), customer_id=9)
    assert window_for([job_w, cust_w], 1, 3, NOW) is job_w
    assert window_for([job_w, cust_w], 2, 9, NOW) is cust_w
    assert window_for([job_w, cust_w], 2, 3, NOW) is None


# --- Effects -----------------------------------------------------------------------------------------

def test_a_slot_inside_maintenance_gets_no_missed_run():
    daily = {"kind": "daily", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 120, "source": "manual"}
    plan = plan_job(7, daily, local(2026, 12, 3, 22), local(2026, 12, 5, 1), AMS)
    assert len(plan.due) == 2
    w = Window(kind="once", reason="x", starts_at=local(2026, 12, 3, 21), ends_at=local(2026, 12, 4, 6), job_id=7)
    made = slots_to_create(plan, [], [], local(2026, 12, 5, 1), AMS,
                           lambda slot: window_for([w], 7, 1, slot) is not None)
    assert made == [local(2026, 12, 4, 22)]


def test_hold_reasons_prefer_the_snooze_and_fall_back_to_the_window():
    s = ActiveSnooze(1, None, 9, datetime(2026, 12, 5, 7, tzinfo=UTC), "migrating NAS", None)
    w = Window(kind="once", reason="firmware", starts_at=NOW, ends_at=NOW + timedelta(hours=1), job_id=2)
    runs = [(10, 1, 9, NOW), (11, 2, 3, NOW + timedelta(minutes=5)), (12, 2, 3, NOW + timedelta(hours=2))]
    assert hold_reasons(runs, [s], [w], AMS) == {10: "snoozed until 2026-12-05 08:00: migrating NAS",
                                                 11: "maintenance window: firmware"}


def test_a_filled_in_date_wins_over_the_quick_choice():
    assert snooze_until("1d", "2026-12-10T08:00", NOW, AMS) == datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
    with pytest.raises(QuietError, match="Choose 1 day"):
        snooze_until("2y", "", NOW, AMS)
