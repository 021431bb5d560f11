"""The Daily Jobs rows cache stays bounded in a long-running process (the worker's loops compute a
new day every day: the digest's yesterday, a report's days)."""
from __future__ import annotations

from datetime import date, timedelta

from backend.app.services.daily_jobs import _CachedDay, _DayCache

from .clock import TEST_NOW


def _entry(now, rows: int) -> _CachedDay:
    return _CachedDay(fingerprint=(1,), computed_at=now, valid_until=None, rows=[object()] * rows)


def _key(day: date) -> tuple:
    return ("db", day, "Europe/Amsterdam", "worst", None)


def test_a_day_computed_once_a_day_does_not_stay():
    """A simulated month of one new day per day (as the digest does): at most the recent ones stay."""
    cache = _DayCache()
    now = TEST_NOW
    for n in range(60):
        day = now.date() - timedelta(days=1)
        cache.put(_key(day), _entry(now, 300))
        assert cache.get(_key(day), (1,), now + timedelta(minutes=5)) is not None  # read back while fresh
        now += timedelta(days=1)
    assert len(cache) == 1 and cache.rows == 300


def test_entries_read_again_stay_and_idle_ones_go():
    cache = _DayCache(idle=timedelta(hours=1))
    now = TEST_NOW
    cache.put(_key(date(2026, 6, 9)), _entry(now, 10))
    cache.put(_key(date(2026, 6, 10)), _entry(now, 10))
    for minutes in range(10, 120, 10):  # today's page is read every 10 minutes, yesterday's never again
        assert cache.get(_key(date(2026, 6, 10)), (1,), now + timedelta(minutes=minutes)) is not None
    assert cache.get(_key(date(2026, 6, 9)), (1,), now + timedelta(minutes=120)) is None
    assert len(cache) == 1 and cache.rows == 10


def test_rows_budget_and_entry_count_bound_the_cache():
    cache = _DayCache(size=32, max_rows=1000)
    for n in range(100):  # many distinct views at the same moment: the row budget holds
        cache.put(_key(date(2026, 1, 1) + timedelta(days=n)), _entry(TEST_NOW, 300))
        assert cache.rows <= 1000 and len(cache) <= 32
    assert len(cache) == 3
    small = _DayCache(size=4, max_rows=10**6)
    for n in range(50):
        small.put(_key(date(2026, 1, 1) + timedelta(days=n)), _entry(TEST_NOW, 1))
    assert len(small) == 4 and small.rows == 4
    # the newest entry stays even when it alone is over the budget
    cache.put(_key(date(2027, 1, 1)), _entry(TEST_NOW, 5000))
    assert len(cache) == 1 and cache.rows == 5000


def test_replacing_an_entry_counts_its_rows_once():
    cache = _DayCache()
    for rows in (10, 20, 30):
        cache.put(_key(date(2026, 6, 10)), _entry(TEST_NOW, rows))
    assert len(cache) == 1 and cache.rows == 30
    cache.clear()
    assert len(cache) == 0 and cache.rows == 0
