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
def test_the_page_after_starting_a_task_shows_its_progress(as_user, role, url, data, landing, synchronous_tasks):
    c = as_user(role)
    upload(c, [("1.eml", sample(V01))])
    r = post_form(c, url, data, follow_redirects=True)
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
def test_a_task_is_readable_by_the_user_who_started_it_and_admins(as_user, app, who, expected, synchronous_tasks):
    from .conftest import login, make_user

    starter = as_user("operator")
    upload(starter, [("1.eml", sample(V01))])
    r = post_form(starter, "/inbox/reparse-all", {})
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


# --- One kind at a time: a second start shows the running task instead of queueing another -------

@pytest.mark.parametrize("role,url,data,kind,landing", [
    ("operator", "/inbox/reparse-all", {}, "reparse_all", "/inbox"),
    ("admin", "/settings/maintenance", {"action": "reparse_all"}, "reparse_all", "/settings"),
    ("admin", "/settings/imports/run", {}, "import", "/settings"),
], ids=["inbox-reparse-all", "maintenance-reparse-all", "import-now"])
def test_a_second_start_of_a_running_task_queues_nothing(as_user, personas, role, url, data, kind, landing):
    from sqlalchemy import func, select

    from backend.app.extensions import db
    from backend.app.models import AuditLog, BackgroundTask

    running = BackgroundTask(kind=kind, state="running", created_by_id=personas["admin"].id, message="Working…")
    db.session.add(running)
    db.session.commit()
    r = post_form(as_user(role), url, data, follow_redirects=True)
    assert r.status_code == 200 and r.request.path == landing
    assert int(r.request.args["task"]) == running.id
    assert "already running; its progress is shown below" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(BackgroundTask.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(AuditLog.id)).where(
        AuditLog.event.in_(("inbox.reparse_all", "import.manual")))).scalar_one() == 0


# --- The runner: a fixed pool; queued work is cancelled at exit, running work finishes -------------

def test_the_runner_never_works_on_more_than_its_pool_and_survives_a_failing_job(app):
    import threading

    from backend.app.services.tasks import TaskRunner

    pool = TaskRunner(max_workers=2)
    release, done, lock, now_working, most = threading.Event(), [], threading.Lock(), [0], [0]

    def job(n):
        def work():
            with lock:
                now_working[0] += 1
                most[0] = max(most[0], now_working[0])
            release.wait(10)
            with lock:
                now_working[0] -= 1
            if n == 3:
                raise RuntimeError("this one fails")
            done.append(n)
        return work

    try:
        for n in range(10):
            pool.submit(app, f"job-{n}", job(n))
        assert pool.queued + pool.running == 10 and pool.running <= 2
        for _ in range(200):  # both pool threads have picked up a job (a busy machine may be slow)
            if most[0] == 2:
                break
            release.wait(0.05)
        assert most[0] == 2 and pool.running == 2 and pool.queued == 8
    finally:
        release.set()
    assert pool.wait_idle(20)
    assert most[0] == 2 and sorted(done) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    pool.shutdown()


def test_shutting_down_cancels_what_has_not_started_and_waits_for_what_runs(app):
    import threading

    from backend.app.services.tasks import TaskRunner

    pool = TaskRunner(max_workers=1)
    started, release, ran, cancelled = threading.Event(), threading.Event(), [], []

    def first():
        started.set()
        release.wait(10)
        ran.append("first")

    pool.submit(app, "first", first, on_cancel=lambda: cancelled.append("first"))
    for n in range(3):
        pool.submit(app, f"queued-{n}", lambda n=n: ran.append(n), on_cancel=lambda n=n: cancelled.append(n))
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    pool.shutdown(wait=True)
    assert ran == ["first"] and sorted(cancelled) == [0, 1, 2]


def test_a_task_that_never_started_is_marked_failed_at_shutdown(app, personas, monkeypatch):
    import threading

    from backend.app.extensions import db
    from backend.app.models import BackgroundTask
    from backend.app.services import tasks

    pool = tasks.TaskRunner(max_workers=1)
    monkeypatch.setattr(tasks, "_runner", pool)
    hold, holding = threading.Event(), threading.Event()
    pool.submit(app, "busy", lambda: (holding.set(), hold.wait(10)))
    assert holding.wait(10)
    task = tasks.start_task(app, "test_kind", personas["operator"].id, lambda progress: "finished")
    threading.Timer(0.2, hold.set).start()
    pool.shutdown(wait=True)
    db.session.expire_all()
    task = db.session.get(BackgroundTask, task.id)
    assert task.state == "failed" and task.message.startswith("Not started: the app was stopped")


@pytest.mark.slow  # over 5 s
def test_at_interpreter_exit_queued_work_is_dropped_not_run(tmp_path):
    """In a real process: exiting with work queued behind a busy pool does not run that work first."""
    import subprocess
    import sys
    from pathlib import Path

    from backend.app.services.tasks import MAX_WORKERS

    src = Path(__file__).resolve().parents[1] / "containers" / "backupchecks" / "src"
    script = tmp_path / "exit.py"
    script.write_text(
        "import threading\n"
        "from flask import Flask\n"
        "from backend.app.extensions import db\n"
        "from backend.app.services.tasks import MAX_WORKERS, runner\n"
        f"app = Flask('t'); app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite:///{tmp_path}/t.db'; db.init_app(app)\n"
        "busy = threading.Semaphore(0)\n"
        "def slow():\n"
        "    busy.release(); threading.Event().wait(0.5); print('slow finished', flush=True)\n"
        "for _ in range(MAX_WORKERS):\n"
        "    runner().submit(app, 'slow', slow)\n"
        "for n in range(5):\n"
        "    runner().submit(app, f'q{n}', lambda n=n: print('ran', n, flush=True),\n"
        "                    on_cancel=lambda n=n: print('cancelled', n, flush=True))\n"
        "for _ in range(MAX_WORKERS):\n"
        "    busy.acquire(timeout=5)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("slow finished") == MAX_WORKERS  # what ran was waited for
    assert sorted(line for line in lines if line.startswith("cancelled")) == [f"cancelled {n}" for n in range(5)]
    assert not any(line.startswith("ran") for line in lines)
