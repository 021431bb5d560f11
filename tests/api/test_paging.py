"""Cursor paging: ``limit`` and ``cursor``, stable while new runs arrive between pages (no run twice,
none skipped of those that existed at the start), and a bad cursor or limit is a 400 naming it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.app.extensions import db

from tests.clock import TEST_NOW
from tests.helpers import make_customer, make_job, make_run

from .conftest import error_code


@pytest.fixture
def many_runs(app):
    customer = make_customer("Northwind Demo")
    jobs = [make_job(customer, f"Job {i}", sender=f"job{i}@example.test") for i in range(3)]
    runs = []
    for i in range(23):
        # Several runs share a start time: the id breaks the tie.
        runs.append(make_run(jobs[i % 3], "Failed" if i % 4 == 0 else "Success",
                             started_at=TEST_NOW - timedelta(hours=(i // 2) + 1)))
    db.session.commit()
    return jobs, runs


def _pages(api, token, path, **query):
    seen, cursor, pages = [], None, 0
    while True:
        q = dict(query, **({"cursor": cursor} if cursor else {}))
        body = api.get(path, token, **q).get_json()
        seen += [row["id"] for row in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_paging_walks_every_run_once_newest_first(api, tokens, many_runs):
    _, runs = many_runs
    seen, pages = _pages(api, tokens["viewer"], "/runs", limit=5)
    assert pages == 5 and sorted(seen) == sorted(r.id for r in runs) and len(seen) == len(set(seen))
    starts = [api.get(f"/runs/{i}", tokens["viewer"]).get_json()["data"]["started_at"] for i in seen]
    assert starts == sorted(starts, reverse=True)


def test_paging_is_stable_while_new_runs_arrive_between_pages(api, tokens, many_runs):
    jobs, runs = many_runs
    at_start = {r.id for r in runs}
    seen, cursor, added = [], None, []
    while True:
        body = api.get("/runs", tokens["operator"], limit=4, **({"cursor": cursor} if cursor else {})).get_json()
        seen += [row["id"] for row in body["data"]]
        # Between pages: a new run tonight, and a late report of a backup that ran hours ago.
        added.append(make_run(jobs[0], started_at=TEST_NOW + timedelta(minutes=len(added))).id)
        added.append(make_run(jobs[1], started_at=TEST_NOW - timedelta(hours=3, minutes=30)).id)
        db.session.commit()
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a run came twice"
    assert at_start <= set(seen), f"skipped: {sorted(at_start - set(seen))}"
    assert not set(seen) & set(added[::2]), "a run newer than the first page came on a later page"


def test_other_lists_page_by_cursor_too(api, tokens, many_runs):
    seen, pages = _pages(api, tokens["admin"], "/jobs", limit=2)
    assert pages == 2 and len(seen) == 3
    assert _pages(api, tokens["admin"], "/customers", limit=1)[0] == [many_runs[0][0].customer_id]


def test_filters_and_paging_combine(api, tokens, many_runs):
    _, runs = many_runs
    failed = {r.id for r in runs if r.status == "Failed"}
    seen, _ = _pages(api, tokens["viewer"], "/runs", status="Failed", limit=2)
    assert set(seen) == failed


@pytest.mark.parametrize("cursor", ["nonsense", "e30", "WyJqb2JzIiwxXQ", "WyJydW5zIiwiMjAyNi0wNi0xMCIsMV0",
                                    "WyJydW5zIiwieCIsMV0", "WyJydW5zIiwiMjAyNi0wNi0xMFQwODozMDowMCswMDowMCIsLTFd",
                                    "%%%"])
def test_a_cursor_this_list_did_not_write_is_400_bad_cursor(api, tokens, many_runs, cursor):
    r = api.get("/runs", tokens["viewer"], cursor=cursor)
    assert r.status_code == 400 and error_code(r) == "bad_cursor"
    assert r.get_json()["error"]["field"] == "cursor"


def test_a_cursor_of_another_list_is_refused(api, tokens, many_runs):
    cursor = api.get("/jobs", tokens["viewer"], limit=1).get_json()["next_cursor"]
    r = api.get("/runs", tokens["viewer"], cursor=cursor)
    assert r.status_code == 400 and error_code(r) == "bad_cursor"


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", "1.5"])
def test_limit_is_1_to_200(api, tokens, many_runs, limit):
    r = api.get("/runs", tokens["viewer"], limit=limit)
    assert r.status_code == 400 and error_code(r) == "bad_request" and r.get_json()["error"]["field"] == "limit"


def test_limit_defaults_to_50_and_goes_up_to_200(api, tokens, app):
    customer = make_customer()
    job = make_job(customer)
    for i in range(60):
        make_run(job, started_at=TEST_NOW - timedelta(minutes=i))
    db.session.commit()
    assert len(api.get("/runs", tokens["viewer"]).get_json()["data"]) == 50
    assert len(api.get("/runs", tokens["viewer"], limit="200").get_json()["data"]) == 60
