"""/tickets: viewers read, operators create, edit and resolve; every change flashed and audited."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Remark, RemarkJobRun, Ticket, TicketJobRun
from backend.app.services import tickets as tk

from .conftest import make_customer, make_job, make_run, post_form
from .helpers import queries
from tests.clock import TEST_NOW

NOW = TEST_NOW


def audit_events():
    return [a.event for a in db.session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()
            if not a.event.startswith("login")]


def count(model):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def seed_ticket(code="T-100", job=None, resolved=False, actor=None):
    job = job or make_job()
    t = tk.create_ticket(code, "VM host disk full", [{"type": "job", "job_id": job.id}], actor,
                         active_from=NOW - timedelta(days=1))
    if resolved:
        tk.resolve_ticket(t, actor, "cleaned up")
    db.session.commit()
    return t


def test_viewer_sees_tickets_with_scope_copy_button_and_linked_runs_but_no_forms(as_user):
    job = make_job(make_customer("Northwind Demo"), job_name="Daily VM Backup")
    t = seed_ticket("T-100", job)
    run = make_run(job, status="Failed")
    tk.link_open_internal_tickets_to_run(run)
    db.session.commit()
    html = as_user("viewer").get("/tickets").get_data(as_text=True)
    assert "T-100" in html and 'data-copy="T-100"' in html
    assert "Job: Northwind Demo · Daily VM Backup" in html
    assert '<td class="text-end linked-runs">1</td>' in html
    assert "? Help" in html
    assert 'action="/tickets/new"' not in html and f"/tickets/{t.id}/resolve" not in html


def test_viewer_cannot_create_edit_or_resolve(as_user):
    t = seed_ticket()
    viewer = as_user("viewer")
    job_id = t.scopes[0].job_id
    for path, data in [("/tickets/new", {"code": "X-1", "scope_type": "job", "job_id": job_id}),
                       (f"/tickets/{t.id}/edit", {"code": "HACKED"}),
                       (f"/tickets/{t.id}/resolve", {"note": "no"}),
                       ("/tickets/remarks/new", {"body": "x", "scope_type": "job", "job_id": job_id})]:
        assert post_form(viewer, path, data).status_code == 403, path
    db.session.expire_all()
    assert count(Ticket) == 1 and count(Remark) == 0
    assert db.session.get(Ticket, t.id).code == "T-100" and db.session.get(Ticket, t.id).resolved_at is None
    assert as_user("reporter").get("/tickets").status_code == 403


def test_operator_creates_a_ticket_for_a_job_and_it_follows_new_runs(as_user, personas):
    job = make_job(make_customer("Northwind Demo"))
    op = as_user("operator")
    r = post_form(op, "/tickets/new", {"code": " PSA-4711 ", "description": "Disk full", "scope_type": "job",
                                       "job_id": str(job.id)}, follow_redirects=True)
    assert r.status_code == 200 and "Ticket PSA-4711 created." in r.get_data(as_text=True)
    t = db.session.execute(select(Ticket)).scalar_one()
    assert t.code == "PSA-4711" and t.created_by_id == personas["operator"].id
    assert [(s.scope_type, s.job_id) for s in t.scopes] == [("job", job.id)]
    run = make_run(job, started_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert tk.link_open_internal_tickets_to_run(run) == (1, 0)
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "ticket.created")).scalar_one()
    assert entry.username == "oscar" and entry.target_id == str(t.id)


def test_operator_creates_from_a_run_and_goes_back_where_they_came_from(as_user):
    job = make_job()
    run = make_run(job, status="Failed")
    r = post_form(as_user("operator"), "/tickets/new",
                  {"code": "T-7", "run_id": str(run.id), "next": "/run-checks?job=1"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/run-checks?job=1")
    t = db.session.execute(select(Ticket)).scalar_one()
    assert [s.job_id for s in t.scopes] == [job.id]  # no scope chosen: the run's job
    assert db.session.execute(select(TicketJobRun.job_run_id)).scalars().all() == [run.id]
    # An outside address is not followed.
    r = post_form(as_user("operator"), "/tickets/remarks/new",
                  {"body": "note", "run_id": str(run.id), "next": "//evil.example/"})
    assert r.headers["Location"].endswith("/tickets?tab=remarks")
    assert db.session.execute(select(RemarkJobRun.job_run_id)).scalars().all() == [run.id]


def test_bad_input_is_flashed_and_saves_nothing(as_user):
    job = make_job()
    op = as_user("operator")
    cases = [
        ({"code": "T-1", "description": "x"}, "Choose at least one scope"),
        ({"code": "", "scope_type": "job", "job_id": str(job.id)}, "code is empty"),
        ({"code": "T-1", "scope_type": "job", "job_id": "987654"}, "Unknown job"),
        ({"code": "T-1", "scope_type": "job", "job_id": ""}, "The job is missing"),
        ({"code": "T-1", "scope_type": "object", "job_id": str(job.id), "object_name": ""}, "needs the object"),
        ({"code": "T-1", "scope_type": "job", "job_id": str(job.id), "active_from": "tomorrow"}, "not a date"),
        ({"code": "T-1", "run_id": "424242"}, "does not exist"),
        ({"code": "T-1", "run_id": "2147483648"}, "does not exist"),
        ({"code": "T-1", "run_id": "\u00b2"}, "does not exist"),
    ]
    for data, message in cases:
        r = post_form(op, "/tickets/new", data, follow_redirects=True)
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and "Ticket not created" in html and message in html, (data, html[-3000:])
    assert count(Ticket) == 0 and audit_events() == []


def test_operator_edits_and_resolves_with_a_note_then_resolving_again_is_refused(as_user, personas):
    t = seed_ticket("T-100")
    op = as_user("operator")
    r = post_form(op, f"/tickets/{t.id}/edit", {"code": "T-101", "description": "Disk replaced, watching"},
                  follow_redirects=True)
    assert "Ticket T-101 saved." in r.get_data(as_text=True)
    r = post_form(op, f"/tickets/{t.id}/resolve", {"note": "Host replaced"}, follow_redirects=True)
    assert "Ticket T-101 resolved" in r.get_data(as_text=True)
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.resolved_by_id == personas["operator"].id and t.resolution_note == "Host replaced"
    r = post_form(op, f"/tickets/{t.id}/resolve", {"note": "again"}, follow_redirects=True)
    assert "Ticket not resolved" in r.get_data(as_text=True) and "already resolved" in r.get_data(as_text=True)
    assert audit_events() == ["ticket.created", "ticket.updated", "ticket.resolved"]
    # Open filter hides it, resolved shows it with the note.
    assert "T-101" not in op.get("/tickets").get_data(as_text=True)
    html = op.get("/tickets?state=resolved").get_data(as_text=True)
    assert "T-101" in html and "Host replaced" in html
    assert post_form(op, "/tickets/999999/resolve", {"note": "x"}).status_code == 404


def test_saving_an_unchanged_edit_form_changes_nothing(as_user):
    t = seed_ticket("T-100")
    op = as_user("operator")
    html = op.get("/tickets").get_data(as_text=True)
    shown = html.split(f'id="af-{t.id}"')[1].split('value="')[1].split('"')[0]
    r = post_form(op, f"/tickets/{t.id}/edit", {"code": "T-100", "description": "VM host disk full",
                                                "active_from": shown}, follow_redirects=True)
    assert "nothing changed" in r.get_data(as_text=True)
    assert "ticket.updated" not in audit_events()


def test_remarks_tab_create_edit_resolve(as_user):
    customer = make_customer("Contoso Demo")
    op = as_user("operator")
    r = post_form(op, "/tickets/remarks/new", {"body": "Customer on holiday", "scope_type": "customer",
                                               "customer_id": str(customer.id)}, follow_redirects=True)
    assert "Remark created." in r.get_data(as_text=True)
    remark = db.session.execute(select(Remark)).scalar_one()
    html = op.get("/tickets?tab=remarks").get_data(as_text=True)
    assert "Customer on holiday" in html and "Customer: Contoso Demo" in html
    r = post_form(op, f"/tickets/remarks/{remark.id}/edit", {"body": ""}, follow_redirects=True)
    assert "Remark not changed" in r.get_data(as_text=True) and "remark is empty" in r.get_data(as_text=True)
    r = post_form(op, f"/tickets/remarks/{remark.id}/resolve", {"note": "back"}, follow_redirects=True)
    assert "Remark resolved" in r.get_data(as_text=True)
    assert audit_events() == ["remark.created", "remark.resolved"]


def test_filters_by_customer_and_bad_filters_are_rejected(as_user):
    a, b = make_customer("Alpha Demo"), make_customer("Beta Demo")
    seed_ticket("ALPHA-1", make_job(a, job_name="A job"))
    seed_ticket("BETA-1", make_job(b, job_name="B job", sender="b@example.test"))
    viewer = as_user("viewer")
    html = viewer.get(f"/tickets?customer={a.id}").get_data(as_text=True)
    assert "ALPHA-1" in html and "BETA-1" not in html
    assert viewer.get("/tickets?state=sideways").status_code == 400
    assert viewer.get("/tickets?tab=nope").status_code == 400


def test_the_list_pages_in_the_database_with_constant_queries(as_user, app):
    job = make_job()
    for i in range(60):
        tk.create_ticket(f"T-{i:03}", "x", [{"type": "job", "job_id": job.id}], None)
    db.session.commit()
    viewer = as_user("viewer")

    def queries_for(path):
        with queries() as seen:
            html = viewer.get(path).get_data(as_text=True)
        return len(seen), html

    n1, html1 = queries_for("/tickets")
    assert html1.count("data-copy=") == 50 and "Page 1 of 2" in html1
    n2, html2 = queries_for("/tickets?page=2")
    assert html2.count("data-copy=") == 10
    few_rows, _ = queries_for("/tickets?state=resolved")
    assert n1 == n2 and n1 <= few_rows + 1  # the rows' scopes come in one query, not one per row


def test_partials_for_run_pages_show_links_from_the_link_table_and_post_a_linked_ticket(app, as_user):
    """The integrator includes tickets_run_badges.html and tickets_from_run_form.html in Run Checks."""
    import re

    from flask import render_template

    from backend.app.models import RunObject

    job = make_job()
    run = make_run(job, status="Failed")
    db.session.add(RunObject(job_run_id=run.id, name="SQL01", status="Failed"))
    seed_ticket("OPEN-1", job)
    done = seed_ticket("DONE-1", job)
    tk.link_open_internal_tickets_to_run(run)
    tk.resolve_ticket(done, None, "fixed")
    db.session.commit()
    with app.test_request_context("/run-checks"):
        badges = render_template("main/tickets_run_badges.html", run_tickets=tk.tickets_for_runs([run.id])[run.id],
                                 run_remarks=[])
        form = render_template("main/tickets_from_run_form.html", run=run, next_url="/run-checks")
    assert 'data-copy="OPEN-1"' in badges and 'data-copy="DONE-1"' in badges
    assert "text-decoration-line-through" in badges.split("DONE-1")[0].rsplit("<span", 1)[1]
    assert '<option value="object">' in form and "<option>SQL01</option>" in form
    # Post the form as a browser would: hidden fields plus what the operator typed.
    ticket_form = form.split('action="/tickets/remarks/new"')[0]
    fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', ticket_form))
    fields.pop("csrf_token")
    fields.update(code="OBJ-9", scope_type="object", object_name="SQL01")
    r = post_form(as_user("operator"), "/tickets/new", fields)
    assert r.status_code == 302 and r.headers["Location"].endswith("/run-checks")
    t = db.session.execute(select(Ticket).where(Ticket.code == "OBJ-9")).scalar_one()
    assert [(s.scope_type, s.job_id, s.object_name) for s in t.scopes] == [("object", job.id, "SQL01")]
    assert "OBJ-9" in [x.code for x in tk.tickets_for_runs([run.id])[run.id]]


# --- The job picker: the page does not list every job ------------------------------------------------

def test_the_page_size_does_not_grow_with_the_number_of_jobs(as_user):
    customer = make_customer("Scale Demo")
    shown = make_job(customer, job_name="Shown Job 000", sender="s@example.test")
    seed_ticket("T-1", shown)
    op = as_user("operator")
    before = op.get("/tickets").get_data(as_text=True)
    for i in range(1, 300):
        make_job(customer, job_name=f"Hidden Job {i:03}", sender=f"h{i}@example.test")
    db.session.commit()
    for path in ("/tickets", "/tickets?tab=remarks"):
        html = op.get(path).get_data(as_text=True)
        assert "Hidden Job" not in html, path  # no job beyond the ones the list shows
        assert 'data-lookup-url="/jobs/lookup"' in html and "js/pages/job_picker.js" in html
    after = op.get("/tickets").get_data(as_text=True)
    assert len(after) == len(before)  # (same CSRF token length, same rows: not one byte per job)
    assert "Shown Job 000" in after  # the ticket's scope in the list


def test_viewers_get_no_picker_and_no_script(as_user):
    make_job()
    html = as_user("viewer").get("/tickets").get_data(as_text=True)
    assert "data-job-picker" not in html and "job_picker.js" not in html


def test_a_form_sent_with_the_typed_job_name_and_no_choice_takes_the_one_job_it_names(as_user):
    acme, beta = make_customer("Acme Demo"), make_customer("Beta Demo")
    vm = make_job(acme, job_name="Daily VM Backup", sender="a@example.test")
    beta_vm = make_job(beta, job_name="Daily VM Backup", sender="b@example.test")
    sql = make_job(beta, job_name="SQL Logs", sender="c@example.test")
    op = as_user("operator")
    # No JavaScript: the hidden id stays empty and the box's text is sent.
    r = post_form(op, "/tickets/new", {"code": "T-1", "scope_type": "job", "job_id": "", "job_text": "sql logs"},
                  follow_redirects=True)
    assert "Ticket T-1 created." in r.get_data(as_text=True)
    r = post_form(op, "/tickets/new", {"code": "T-2", "scope_type": "job", "job_id": "", "job_text": "daily vm",
                                       "customer_id": str(acme.id)}, follow_redirects=True)
    assert "Ticket T-2 created." in r.get_data(as_text=True)  # the chosen customer narrows it to one
    r = post_form(op, "/tickets/remarks/new", {"body": "Watch it", "scope_type": "object", "job_id": "",
                                               "job_text": "Beta Demo · Daily VM Backup", "object_name": "VM1"},
                  follow_redirects=True)
    assert "Remark created." in r.get_data(as_text=True)
    # Several jobs match: nothing saved, and the message names them.
    r = post_form(op, "/tickets/new", {"code": "T-3", "scope_type": "job", "job_id": "", "job_text": "daily"},
                  follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Ticket not created" in html and "&#39;daily&#39; matches 2 jobs (Acme Demo · Daily VM Backup" in html
    r = post_form(op, "/tickets/new", {"code": "T-4", "scope_type": "job", "job_id": "", "job_text": "nothing like it"},
                  follow_redirects=True)
    assert "No job matches &#39;nothing like it&#39;" in r.get_data(as_text=True)
    tickets = {t.code: [(s.scope_type, s.job_id) for s in t.scopes] for t in db.session.execute(select(Ticket)).scalars()}
    assert tickets == {"T-1": [("job", sql.id)], "T-2": [("job", vm.id)]}
    remark = db.session.execute(select(Remark)).scalar_one()
    assert [(s.scope_type, s.job_id, s.object_name) for s in remark.scopes] == [("object", beta_vm.id, "VM1")]


def test_the_chosen_job_wins_over_nothing_and_its_label_keeps_it(as_user):
    job = make_job(make_customer("Acme Demo"), job_name="Daily VM Backup")
    make_job(make_customer("Beta Demo"), job_name="Daily VM Backup", sender="b@example.test")
    op = as_user("operator")
    # With JavaScript: a suggestion was chosen, so the hidden id is set and the box shows its label.
    r = post_form(op, "/tickets/new", {"code": "T-1", "scope_type": "job", "job_id": str(job.id),
                                       "job_text": "Acme Demo · Daily VM Backup"}, follow_redirects=True)
    assert "Ticket T-1 created." in r.get_data(as_text=True)
    t = db.session.execute(select(Ticket)).scalar_one()
    assert [s.job_id for s in t.scopes] == [job.id]
