"""Internal tickets and remarks: validation, lifecycle and propagation to new and missed runs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Remark, RemarkJobRun, RunObject, Ticket, TicketJobRun, TicketScope
from backend.app.services import tickets as tk

from ..helpers import make_customer, make_job, make_run, make_user, queries
from tests.clock import TEST_NOW

NOW = TEST_NOW
EARLIER = NOW - timedelta(days=2)


# --- helpers ---------------------------------------------------------------------------------

@pytest.fixture
def world(app):
    """Two customers; Northwind has two jobs, Contoso one. Oscar operates."""
    north = make_customer("Northwind Demo")
    contoso = make_customer("Contoso Demo")
    vm = make_job(north, job_name="Daily VM Backup")
    files = make_job(north, job_name="File Server", sender="nas@example.test", software="Synology")
    other = make_job(contoso, job_name="Daily VM Backup", sender="veeam@contoso.test")
    oscar = make_user("oscar", roles=("operator",))
    db.session.commit()  # tests roll back failed changes: the world stays
    return {"north": north, "contoso": contoso, "vm": vm, "files": files, "other": other, "oscar": oscar}


def new_run(job, objects=(), status="Failed", started_at=None, **kw):
    """A run as the import creates it: the run, its objects, then the linking call."""
    run = make_run(job, status=status, started_at=started_at or NOW, **kw)
    for name in objects:
        db.session.add(RunObject(job_run_id=run.id, name=name, status=status))
    db.session.commit()
    return run


def ticket_links(ticket_id):
    return sorted(db.session.execute(
        select(TicketJobRun.job_run_id).where(TicketJobRun.ticket_id == ticket_id)).scalars())


def remark_links(remark_id):
    return sorted(db.session.execute(
        select(RemarkJobRun.job_run_id).where(RemarkJobRun.remark_id == remark_id)).scalars())


def events():
    return [a.event for a in db.session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]


def ticket(world, scopes, code="T-1", active_from=EARLIER, **kw):
    t = tk.create_ticket(code, "Backup fails on the VM host", scopes, world["oscar"], active_from=active_from, **kw)
    db.session.commit()
    return t


def remark(world, scopes, body="Disk is being replaced this week", active_from=EARLIER, **kw):
    r = tk.create_remark(body, scopes, world["oscar"], active_from=active_from, **kw)
    db.session.commit()
    return r


# --- propagation -----------------------------------------------------------------------------

def test_open_ticket_and_remark_link_to_new_runs_of_their_job(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    r = remark(world, [{"type": "job", "job_id": world["vm"].id}])
    run = new_run(world["vm"])
    assert tk.link_open_internal_tickets_to_run(run) == (1, 1)
    db.session.commit()
    assert ticket_links(t.id) == [run.id]
    assert remark_links(r.id) == [run.id]
    assert [x.code for x in tk.tickets_for_runs([run.id])[run.id]] == ["T-1"]
    assert [x.id for x in tk.remarks_for_runs([run.id])[run.id]] == [r.id]


def test_customer_scope_covers_every_job_of_that_customer_only(world):
    t = ticket(world, [{"type": "customer", "customer_id": world["north"].id}])
    vm_run, files_run, other_run = new_run(world["vm"]), new_run(world["files"]), new_run(world["other"])
    for run in (vm_run, files_run, other_run):
        tk.link_open_internal_tickets_to_run(run)
    db.session.commit()
    assert ticket_links(t.id) == sorted([vm_run.id, files_run.id])
    assert tk.tickets_for_runs([other_run.id]) == {other_run.id: []}


def test_object_scope_needs_the_job_and_an_object_of_that_name_case_insensitive(world):
    t = ticket(world, [{"type": "object", "job_id": world["vm"].id, "object_name": "SQL01"}])
    with_object = new_run(world["vm"], objects=["sql01", "web01"])
    without_object = new_run(world["vm"], objects=["web01"])
    same_name_other_job = new_run(world["other"], objects=["SQL01"])
    counts = [tk.link_open_internal_tickets_to_run(r) for r in (with_object, without_object, same_name_other_job)]
    db.session.commit()
    assert counts == [(1, 0), (0, 0), (0, 0)]
    assert ticket_links(t.id) == [with_object.id]


def test_out_of_scope_runs_are_not_linked(world):
    ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    remark(world, [{"type": "customer", "customer_id": world["contoso"].id}])
    run = new_run(world["files"])
    assert tk.link_open_internal_tickets_to_run(run) == (0, 0)
    db.session.commit()
    assert tk.tickets_for_runs([run.id])[run.id] == [] and tk.remarks_for_runs([run.id])[run.id] == []


def test_resolved_ticket_never_links_to_a_new_run_and_keeps_its_old_links(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    r = remark(world, [{"type": "job", "job_id": world["vm"].id}])
    before = new_run(world["vm"])
    tk.link_open_internal_tickets_to_run(before)
    tk.resolve_ticket(t, world["oscar"], "Host replaced")
    tk.resolve_remark(r, world["oscar"], "Disk swapped")
    db.session.commit()
    after = new_run(world["vm"], started_at=NOW + timedelta(days=1))
    assert tk.link_open_internal_tickets_to_run(after) == (0, 0)
    db.session.commit()
    assert ticket_links(t.id) == [before.id]
    assert remark_links(r.id) == [before.id]
    # The old run still shows the (resolved) ticket; the new one shows nothing.
    shown = tk.tickets_for_runs([before.id, after.id])
    assert [x.code for x in shown[before.id]] == ["T-1"] and shown[before.id][0].resolved_at is not None
    assert shown[after.id] == []


def test_linking_twice_makes_no_duplicate(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id},
                       {"type": "customer", "customer_id": world["north"].id},
                       {"type": "object", "job_id": world["vm"].id, "object_name": "SQL01"}])
    run = new_run(world["vm"], objects=["SQL01"])
    assert tk.link_open_internal_tickets_to_run(run) == (1, 0)
    assert tk.link_open_internal_tickets_to_run(run) == (0, 0)
    db.session.commit()
    assert tk.link_open_internal_tickets_to_run(run) == (0, 0)
    db.session.commit()
    assert ticket_links(t.id) == [run.id]


def test_ticket_created_from_a_run_is_linked_to_it_and_not_twice(world):
    run = new_run(world["vm"])
    t = tk.create_ticket("PSA-4711", "Follow up", [{"type": "job", "job_id": world["vm"].id}], world["oscar"], run=run)
    db.session.commit()
    assert ticket_links(t.id) == [run.id]
    assert t.active_from >= run.started_at  # created now, still linked to the run it came from
    assert tk.link_open_internal_tickets_to_run(run) == (0, 0)
    r = tk.create_remark("Known issue", [{"type": "job", "job_id": world["vm"].id}], world["oscar"], run=run)
    db.session.commit()
    assert remark_links(r.id) == [run.id]


def test_ticket_not_yet_active_does_not_link_an_earlier_run(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}], active_from=NOW + timedelta(hours=1))
    early = new_run(world["vm"], started_at=NOW)
    late = new_run(world["vm"], started_at=NOW + timedelta(hours=2))
    assert tk.link_open_internal_tickets_to_run(early) == (0, 0)
    assert tk.link_open_internal_tickets_to_run(late) == (1, 0)
    db.session.commit()
    assert ticket_links(t.id) == [late.id]


def test_missed_runs_are_linked_like_real_ones(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    r = remark(world, [{"type": "customer", "customer_id": world["north"].id}])
    slot = NOW + timedelta(hours=3)
    missed = make_run(world["vm"], status="Missed", missed=True, missed_slot=slot, started_at=None)
    db.session.commit()
    # make_run fills started_at; a generated missed run may leave it empty and only carry its slot.
    missed.started_at = None
    db.session.commit()
    assert tk.link_open_internal_tickets_to_runs([missed.id]) == (1, 1)
    db.session.commit()
    assert ticket_links(t.id) == [missed.id] and remark_links(r.id) == [missed.id]


def test_linking_uses_a_constant_number_of_queries(world):
    for i in range(15):
        ticket(world, [{"type": "job", "job_id": world["vm"].id},
                       {"type": "object", "job_id": world["vm"].id, "object_name": f"VM{i}"}], code=f"T-{i}")
        remark(world, [{"type": "customer", "customer_id": world["north"].id}], body=f"note {i}")
    runs = [new_run(world["vm"], objects=[f"VM{i}" for i in range(10)]) for _ in range(5)]
    ids = [r.id for r in runs]
    with queries() as seen:
        assert tk.link_open_internal_tickets_to_run(runs[0]) == (15, 15)
    assert len(seen) <= 1, seen  # one statement: the INSERT … SELECT for tickets and for remarks
    with queries() as seen:
        assert tk.link_open_internal_tickets_to_runs(ids[1:]) == (60, 60)
    assert len(seen) == 1, seen
    db.session.commit()
    with queries() as seen:
        shown = tk.tickets_for_runs(ids)
    assert len(seen) == 1 and all(len(shown[i]) == 15 for i in ids)


def test_open_tickets_for_job_follows_scopes_and_skips_resolved(world):
    by_job = ticket(world, [{"type": "job", "job_id": world["vm"].id}], code="JOB")
    by_customer = ticket(world, [{"type": "customer", "customer_id": world["north"].id}], code="CUST")
    by_object = ticket(world, [{"type": "object", "job_id": world["vm"].id, "object_name": "x"}], code="OBJ")
    ticket(world, [{"type": "job", "job_id": world["other"].id}], code="ELSEWHERE")
    done = ticket(world, [{"type": "job", "job_id": world["vm"].id}], code="DONE")
    tk.resolve_ticket(done, world["oscar"], "fixed")
    db.session.commit()
    assert {t.code for t in tk.open_tickets_for_job(world["vm"].id)} == {"JOB", "CUST", "OBJ"}
    assert {t.code for t in tk.open_tickets_for_job(world["files"].id)} == {"CUST"}
    assert by_job and by_customer and by_object


# --- lifecycle and audit -------------------------------------------------------------------

def test_create_edit_resolve_are_audited_with_who(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    changed = tk.update_ticket(t, world["oscar"], code="T-2", description="New text")
    db.session.commit()
    assert set(changed) == {"code", "description"} and t.code == "T-2"
    assert tk.update_ticket(t, world["oscar"], code="T-2") == {}  # nothing changed, nothing audited
    tk.resolve_ticket(t, world["oscar"], "  Replaced the disk  ")
    db.session.commit()
    assert t.resolved_at is not None and t.resolved_by_id == world["oscar"].id
    assert t.resolution_note == "Replaced the disk"
    assert events() == ["ticket.created", "ticket.updated", "ticket.resolved"]
    entries = db.session.execute(select(AuditLog)).scalars().all()
    assert all(e.username == "oscar" for e in entries)
    assert entries[1].before == {"code": "T-1", "description": "Backup fails on the VM host"}


def test_resolving_twice_is_a_clear_error(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    tk.resolve_ticket(t, world["oscar"], "done")
    db.session.commit()
    first = t.resolved_at
    with pytest.raises(tk.TicketingError, match="already resolved"):
        tk.resolve_ticket(t, world["oscar"], "again")
    db.session.rollback()
    db.session.refresh(t)
    assert t.resolved_at == first and t.resolution_note == "done"
    r = remark(world, [{"type": "job", "job_id": world["vm"].id}])
    tk.resolve_remark(r, world["oscar"], "")
    db.session.commit()
    with pytest.raises(tk.TicketingError, match="already resolved"):
        tk.resolve_remark(r, world["oscar"], "")


def test_editing_scopes_applies_to_new_runs_and_keeps_old_links(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    first = new_run(world["vm"])
    tk.link_open_internal_tickets_to_run(first)
    tk.update_ticket(t, world["oscar"], scopes=[{"type": "job", "job_id": world["files"].id}])
    db.session.commit()
    assert [s.job_id for s in t.scopes] == [world["files"].id]
    vm_again, files_run = new_run(world["vm"]), new_run(world["files"])
    tk.link_open_internal_tickets_to_run(vm_again)
    tk.link_open_internal_tickets_to_run(files_run)
    db.session.commit()
    assert ticket_links(t.id) == sorted([first.id, files_run.id])


# --- bad input saves nothing -----------------------------------------------------------------

@pytest.mark.parametrize("code, scopes, message", [
    ("T-1", [], "at least one scope"),
    ("T-1", None, "at least one scope"),
    ("", "job", "code is empty"),
    ("   ", "job", "code is empty"),
    ("x" * 101, "job", "longer than 100"),
    ("T-1", [{"type": "job", "job_id": 999999}], "Unknown job"),
    ("T-1", [{"type": "customer", "customer_id": 999999}], "Unknown customer"),
    ("T-1", [{"type": "object", "job_id": "job"}], "not a number"),
    ("T-1", "object-without-name", "needs the object's name"),
    ("T-1", [{"type": "planet", "job_id": 1}], "Unknown scope type"),
])
def test_bad_ticket_input_gives_a_clear_error_and_saves_nothing(world, code, scopes, message):
    if scopes == "job":
        scopes = [{"type": "job", "job_id": world["vm"].id}]
    elif scopes == "object-without-name":
        scopes = [{"type": "object", "job_id": world["vm"].id, "object_name": "  "}]
    with pytest.raises(tk.TicketingError, match=message):
        tk.create_ticket(code, "text", scopes, world["oscar"])
    db.session.rollback()
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(TicketScope.id))).scalar_one() == 0
    assert events() == []


def test_code_of_exactly_100_characters_is_fine(world):
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}], code="x" * 100)
    assert len(t.code) == 100


def test_bad_remark_and_edit_input(world):
    with pytest.raises(tk.TicketingError, match="remark is empty"):
        tk.create_remark("  ", [{"type": "job", "job_id": world["vm"].id}], world["oscar"])
    with pytest.raises(tk.TicketingError, match="timezone"):
        tk.create_remark("x", [{"type": "job", "job_id": world["vm"].id}], world["oscar"],
                         active_from=datetime(2026, 1, 1))
    db.session.rollback()
    assert db.session.execute(select(func.count(Remark.id))).scalar_one() == 0
    t = ticket(world, [{"type": "job", "job_id": world["vm"].id}])
    with pytest.raises(tk.TicketingError, match="can't be changed"):
        tk.update_ticket(t, world["oscar"], resolved_at=NOW)
    with pytest.raises(tk.TicketingError, match="code is empty"):
        tk.update_ticket(t, world["oscar"], code="")
    with pytest.raises(tk.TicketingError, match="at least one scope"):
        tk.update_ticket(t, world["oscar"], scopes=[])
    db.session.rollback()
    db.session.refresh(t)
    assert t.code == "T-1" and len(t.scopes) == 1 and t.resolved_at is None


# --- the list behind /tickets ------------------------------------------------------------------

def test_list_filters_by_state_and_customer_and_pages_in_three_queries(world):
    for i in range(7):
        ticket(world, [{"type": "job", "job_id": world["vm"].id}], code=f"N-{i}")
    c = ticket(world, [{"type": "customer", "customer_id": world["contoso"].id}], code="C-1")
    o = ticket(world, [{"type": "object", "job_id": world["other"].id, "object_name": "SQL01"}], code="C-2")
    tk.resolve_ticket(o, world["oscar"], "done")
    run = new_run(world["vm"])
    tk.link_open_internal_tickets_to_run(run)
    db.session.commit()
    db.session.expire_all()
    with queries() as seen:
        page = tk.list_items("ticket", "open", page=1, per_page=5)
        labels = [s.label for row in page.rows for s in row.scopes]
    assert len(seen) == 3, seen
    assert page.total == 8 and len(page.rows) == 5
    assert all(row.linked_runs in (0, 1) for row in page.rows) and sum(r.linked_runs for r in page.rows) >= 4
    assert "Job: Northwind Demo · Daily VM Backup" in labels
    assert tk.list_items("ticket", "open", page=2, per_page=5).total == 8
    assert len(tk.list_items("ticket", "open", page=2, per_page=5).rows) == 3
    assert [r.item.code for r in tk.list_items("ticket", "resolved").rows] == ["C-2"]
    assert {r.item.code for r in tk.list_items("ticket", "all", customer_id=world["contoso"].id).rows} == {"C-1", "C-2"}
    assert c.id in {r.item.id for r in tk.list_items("ticket", "open", customer_id=world["contoso"].id).rows}
    with pytest.raises(tk.TicketingError):
        tk.list_items("ticket", "sideways")


def test_the_old_module_path_still_reexports_the_service():
    """Operations notes name backend.app.ticketing_utils; it stays a re-export of services/tickets.py."""
    from backend.app import ticketing_utils

    assert ticketing_utils.create_ticket is tk.create_ticket
    assert ticketing_utils.link_open_internal_tickets_to_run is tk.link_open_internal_tickets_to_run
