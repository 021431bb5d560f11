"""Every action that starts a background task lands on a page that shows its progress.

The tests follow the redirect to the page the user lands on (a test that stopped at the 302
once missed that every such page was an Error 500)."""
from __future__ import annotations

import re
import time

import pytest

from .conftest import post_form
from .test_inbox import V01, sample, upload

ACTIONS = [
    # (role, form URL, form data, landing page)
    ("admin", "/settings/imports/run", {}, "/settings"),
    ("operator", "/inbox/reparse-all", {}, "/inbox"),
    ("admin", "/settings/maintenance", {"action": "reparse_all"}, "/settings"),
]


def _wait_until_finished(client, url: str) -> dict:
    for _ in range(300):  # the import-now thread runs on its own; at most ~30 s
        status = client.get(url).json
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    return status


@pytest.mark.parametrize("role,url,data,landing", ACTIONS, ids=["import-now", "inbox-reparse-all",
                                                                "maintenance-reparse-all"])
def test_the_page_after_starting_a_task_shows_its_progress(as_user, app, role, url, data, landing):
    c = as_user(role)
    upload(c, [("1.eml", sample(V01))])
    app.config["TASKS_SYNCHRONOUS"] = True
    try:
        r = post_form(c, url, data, follow_redirects=True)
    finally:
        app.config.pop("TASKS_SYNCHRONOUS")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert r.request.path == landing
    task_id = int(r.request.args["task"])
    page = r.get_data(as_text=True)
    card = re.search(r'class="card mb-3 task-progress" data-task-url="([^"]+)"', page)
    assert card and card.group(1) == f"/tasks/{task_id}"
    status = _wait_until_finished(c, card.group(1))
    assert status["state"] in ("done", "failed") and status["message"]
    # A reload (the id stays in the URL) shows the same progress, not an error.
    again = c.get(f"{landing}?{r.request.query_string.decode()}")
    assert again.status_code == 200 and f'data-task-url="/tasks/{task_id}"' in again.get_data(as_text=True)


def test_a_task_id_that_is_not_a_number_is_ignored(as_user):
    c = as_user("admin")
    for path in ("/inbox?task=abc", "/settings?section=imports&task=1x", "/settings?section=maintenance&task="):
        r = c.get(path)
        assert r.status_code == 200 and "task-progress" not in r.get_data(as_text=True), path


# --- Whose progress: the user who started the task, and admins ----------------------------------

@pytest.mark.parametrize("who,expected", [
    ("starter", 200), ("admin", 200), ("other operator", 404), ("viewer", 404), ("reporter", 404),
])
def test_a_task_is_readable_by_the_user_who_started_it_and_admins(as_user, app, who, expected):
    from .conftest import login, make_user

    starter = as_user("operator")
    upload(starter, [("1.eml", sample(V01))])
    app.config["TASKS_SYNCHRONOUS"] = True
    try:
        r = post_form(starter, "/inbox/reparse-all", {})
    finally:
        app.config.pop("TASKS_SYNCHRONOUS")
    url = "/tasks/" + r.headers["Location"].split("task=")[1]
    if who == "starter":
        c = starter
    elif who == "other operator":
        make_user("olga", roles=("operator",))
        c = app.test_client()
        assert login(c, "olga").status_code == 302
    else:
        c = as_user(who)
    got = c.get(url, headers={"Accept": "application/json"})
    assert got.status_code == expected
    if expected == 200:
        assert got.json["state"] == "done" and "Re-parsed 1 mails" in got.json["message"]
    else:
        assert "Re-parsed" not in got.get_data(as_text=True)


def test_a_task_that_does_not_exist_is_not_found(as_user):
    assert as_user("admin").get("/tasks/424242").status_code == 404
