"""/customers: list, add, rename, activate, delete (refused or confirmed), CSV export and import."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, Customer, Job, JobRun, RunObject

from .conftest import make_customer, make_job, make_run, post_form
from .helpers import page_queries


def _customer(name):
    db.session.expire_all()
    return db.session.execute(select(Customer).where(Customer.name == name)).scalar_one_or_none()


def _events(prefix):
    return db.session.execute(select(AuditLog.event).where(AuditLog.event.like(prefix + "%"))).scalars().all()


def _upload(client, path, content: bytes, filename="customers.csv"):
    return post_form(client, path, {"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


# --- list ---------------------------------------------------------------------------------------

def test_list_shows_job_count_autotask_and_status(as_user):
    a = make_customer("Acme")
    make_job(a, job_name="VM backup")
    b = make_customer("Bolt", active=False)
    b.autotask_company_id, b.autotask_company_name, b.autotask_mapping_status = 42, "Bolt BV", "ok"
    db.session.commit()
    html = as_user("viewer").get("/customers").get_data(as_text=True)
    assert 'data-customer="Acme"' in html and "1 job<" in html
    assert '<span class="badge text-bg-danger" title="No jobs' in html  # Bolt: red badge with a word
    assert "Bolt BV" in html and ">ok<" in html
    assert "Deactivated" in html
    assert "customer-create" not in html and "Deactivate</button>" not in html  # viewer reads only


def test_empty_state_says_what_to_do(as_user):
    html = as_user("operator").get("/customers").get_data(as_text=True)
    assert "No customers yet" in html and "Inbox" in html


def test_filter_sort_and_page_in_the_url(as_user):
    for i in range(55):
        make_customer(f"Cust {i:02d}")
    c = as_user("operator")
    html = c.get("/customers?sort=name&dir=desc").get_data(as_text=True)
    assert html.index("Cust 54") < html.index("Cust 53")
    assert "Page 1 of 2" in html
    html = c.get("/customers?page=2&sort=name").get_data(as_text=True)
    assert "Cust 54" in html and "Cust 00" not in html
    html = c.get("/customers?q=cust 1").get_data(as_text=True)
    assert "Cust 10" in html and "Cust 20" not in html
    assert c.get("/customers?sort=bogus").status_code == 400


def test_nojobs_filter(as_user):
    make_job(make_customer("Has"))
    make_customer("Empty")
    html = as_user("viewer").get("/customers?active=nojobs").get_data(as_text=True)
    assert 'data-customer="Empty"' in html and 'data-customer="Has"' not in html


def test_list_query_count_is_constant(as_user):
    c = as_user("viewer")
    for i in range(3):
        make_job(make_customer(f"Small {i}"), job_name=f"j{i}")
    small = page_queries(c, "/customers")
    for i in range(60):
        cust = make_customer(f"Big {i}")
        make_job(cust, job_name=f"big{i}")
    big = page_queries(c, "/customers")
    assert small == big, (small, big)
    assert big <= 8


# --- add, rename, activate ---------------------------------------------------------------------

def test_operator_adds_customer_with_flash_and_audit(as_user):
    c = as_user("operator")
    r = post_form(c, "/customers/new", {"name": "  New   Customer "}, follow_redirects=True)
    assert "Customer New Customer added." in r.get_data(as_text=True)
    assert _customer("New Customer") is not None
    assert _events("customer.create") == ["customer.create"]


def test_duplicate_add_is_refused(as_user):
    make_customer("Acme")
    r = post_form(as_user("operator"), "/customers/new", {"name": "ACME"}, follow_redirects=True)
    assert "already exists" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 1


def test_empty_name_is_refused(as_user):
    r = post_form(as_user("operator"), "/customers/new", {"name": "   "}, follow_redirects=True)
    assert "Give the customer a name" in r.get_data(as_text=True)


def test_rename_and_duplicate_rename(as_user):
    a = make_customer("Acme")
    make_customer("Bolt")
    c = as_user("admin")
    r = post_form(c, f"/customers/{a.id}", {"action": "rename", "name": "bolt"}, follow_redirects=True)
    assert "Another customer is already named" in r.get_data(as_text=True)
    assert _customer("Acme") is not None
    r = post_form(c, f"/customers/{a.id}", {"action": "rename", "name": "Acme Corp"}, follow_redirects=True)
    assert "Customer Acme renamed to Acme Corp." in r.get_data(as_text=True)
    assert _customer("Acme Corp") is not None
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "customer.rename")).scalar_one()
    assert entry.before == {"name": "Acme"} and entry.after == {"name": "Acme Corp"}


def test_deactivate_and_activate(as_user):
    a = make_customer("Acme")
    c = as_user("operator")
    r = post_form(c, f"/customers/{a.id}", {"action": "deactivate"}, follow_redirects=True)
    assert "Customer Acme deactivated." in r.get_data(as_text=True)
    assert _customer("Acme").active is False
    post_form(c, f"/customers/{a.id}", {"action": "activate"})
    assert _customer("Acme").active is True
    assert _events("customer.") == ["customer.deactivate", "customer.activate"]


def test_viewer_cannot_post(as_user):
    a = make_customer("Acme")
    c = as_user("viewer")
    assert post_form(c, "/customers/new", {"name": "X"}).status_code == 403
    assert post_form(c, f"/customers/{a.id}", {"action": "deactivate"}).status_code == 403
    assert post_form(c, f"/customers/{a.id}/delete", {}).status_code == 403
    assert _upload(c, "/customers/import", b"name,active,job_count,autotask_company_id\r\nX,true,,\r\n").status_code == 403
    assert c.get(f"/customers/{a.id}/edit").status_code == 403
    assert _customer("Acme").active is True and _customer("X") is None


def test_unknown_customer_is_404(as_user):
    c = as_user("operator")
    assert c.get("/customers/999/edit").status_code == 404
    assert post_form(c, "/customers/999", {"action": "rename", "name": "x"}).status_code == 404


# --- delete -------------------------------------------------------------------------------------

def test_delete_without_jobs(as_user):
    a = make_customer("Acme")
    c = as_user("operator")
    assert "has no jobs" in c.get(f"/customers/{a.id}/delete").get_data(as_text=True)
    r = post_form(c, f"/customers/{a.id}/delete", {}, follow_redirects=True)
    assert "Customer Acme deleted." in r.get_data(as_text=True)
    assert _customer("Acme") is None
    assert _events("customer.delete") == ["customer.delete"]


def test_delete_with_jobs_is_refused_without_confirmation(as_user):
    a = make_customer("Acme")
    j1 = make_job(a, job_name="one")
    make_job(a, job_name="two")
    make_run(j1)
    c = as_user("operator")
    r = post_form(c, f"/customers/{a.id}/delete", {}, follow_redirects=True)
    assert "Acme still has 2 jobs (1 run)" in r.get_data(as_text=True)
    assert _customer("Acme") is not None


def test_delete_with_jobs_after_confirmation_names_what_goes(as_user):
    a = make_customer("Acme")
    other = make_job(make_customer("Other"), job_name="keep")
    j1 = make_job(a, job_name="one")
    make_job(a, job_name="two")
    run = make_run(j1)
    db.session.add(RunObject(job_run_id=run.id, name="vm1", status="Success"))
    make_run(j1)
    make_run(other)
    db.session.commit()
    c = as_user("admin")
    page = c.get(f"/customers/{a.id}/delete").get_data(as_text=True)
    assert "2 jobs" in page and "2 runs" in page and 'name="confirm_jobs" value="2"' in page
    # a stale confirmation (the page said 1 job) is refused
    r = post_form(c, f"/customers/{a.id}/delete", {"confirm": "yes", "confirm_jobs": "1"}, follow_redirects=True)
    assert "now has 2 jobs" in r.get_data(as_text=True)
    r = post_form(c, f"/customers/{a.id}/delete", {"confirm": "yes", "confirm_jobs": "2"}, follow_redirects=True)
    assert "Customer Acme with 2 jobs and 2 runs deleted." in r.get_data(as_text=True)
    db.session.expire_all()
    assert _customer("Acme") is None
    assert db.session.execute(select(func.count(Job.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(JobRun.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(RunObject.id))).scalar_one() == 0
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "customer.delete")).scalar_one()
    assert entry.before["jobs"] == 2 and entry.before["runs"] == 2


# --- CSV ----------------------------------------------------------------------------------------

HEADER = "name,active,job_count,autotask_company_id\r\n"


def test_export_csv(as_user):
    a = make_customer("Acme")
    a.autotask_company_id = 7
    make_job(a)
    make_customer("Bolt", active=False)
    db.session.commit()
    r = as_user("viewer").get("/customers/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows == [["name", "active", "job_count", "autotask_company_id"],
                    ["Acme", "true", "1", "7"], ["Bolt", "false", "0", ""]]
    assert as_user("viewer").get("/customers/export.xml").status_code == 404


def test_import_reports_per_line_and_is_audited(as_user):
    make_customer("Acme")
    b = make_customer("Bolt")
    b.autotask_company_id = 5
    db.session.commit()
    content = (HEADER + "Acme,true,3,\r\nbolt,false,0,5\r\nNew One,,,12\r\n\r\n").encode()
    r = _upload(as_user("operator"), "/customers/import", content)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "1 created, 1 updated, 1 unchanged" in html
    assert "active: True → False" in html and "name: Bolt → bolt" in html
    db.session.expire_all()
    assert _customer("bolt").active is False
    new = _customer("New One")
    assert new.active is True and new.autotask_company_id == 12
    assert _events("customer.import") == ["customer.import"]


def test_export_is_a_valid_import(as_user):
    make_customer("Acme")
    make_customer("Bolt", active=False)
    c = as_user("admin")
    exported = c.get("/customers/export.csv").get_data()
    html = _upload(c, "/customers/import", exported).get_data(as_text=True)
    assert "0 created, 0 updated, 2 unchanged" in html


@pytest.mark.parametrize("content,message", [
    ("name,active,autotask_company_id\r\nAcme,true,\r\n", "Line 1: the header must be exactly"),
    ("name,active,jobs,autotask_company_id\r\nAcme,true,,\r\n", "Line 1: the header must be exactly"),
    (HEADER + "Good,true,,\r\nBad,maybe,,\r\n", "Line 3: active must be true or false, not &#39;maybe&#39;"),
    (HEADER + "Good,true,,\r\n,true,,\r\n", "Line 3: Give the customer a name"),
    (HEADER + "Good,true,,abc\r\n", "Line 2: autotask_company_id must be a positive whole number"),
    (HEADER + "Good,true,\r\n", "Line 2: expected 4 values, found 3"),
    (HEADER + "Good,true,,\r\ngood,false,,\r\n", "Line 3: &#39;good&#39; is also on line 2"),
    (HEADER, "The file has a header but no customers"),
    ("", "The file is empty"),
])
def test_bad_csv_names_the_line_and_imports_nothing(as_user, content, message):
    make_customer("Acme")
    r = _upload(as_user("operator"), "/customers/import", content.encode())
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Nothing was imported" in html and message in html
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 1
    assert _events("customer.import") == []


def test_bad_csv_reports_every_bad_line(as_user):
    content = (HEADER + "A,true,,\r\nB,nope,,\r\nC,true,,-1\r\nD,true,,\r\n").encode()
    html = _upload(as_user("operator"), "/customers/import", content).get_data(as_text=True)
    assert "Line 3:" in html and "Line 4:" in html and "2 problems" in html
    assert _customer("A") is None and _customer("D") is None


def test_non_utf8_csv_is_refused(as_user):
    html = _upload(as_user("operator"), "/customers/import", (HEADER + "Caf\xe9,true,,\r\n").encode("latin-1")).get_data(as_text=True)
    assert "not UTF-8" in html


def test_import_without_file_asks_for_one(as_user):
    r = post_form(as_user("operator"), "/customers/import", {}, follow_redirects=True)
    assert "Choose a CSV file to import." in r.get_data(as_text=True)


def test_export_defuses_spreadsheet_formulas_and_import_restores_the_name(as_user):
    make_customer("=HYPERLINK(1)")
    c = as_user("admin")
    exported = c.get("/customers/export.csv").get_data()
    assert b"'=HYPERLINK(1)" in exported
    html = _upload(c, "/customers/import", exported).get_data(as_text=True)
    assert "0 created, 0 updated, 1 unchanged" in html


def test_simultaneous_add_of_the_same_name_is_a_message_not_an_error(as_user, monkeypatch):
    from backend.app.services import customers as svc
    make_customer("Acme")
    monkeypatch.setattr(svc, "_name_taken", lambda name, exclude_id=None: None)  # the other add wins the race
    r = post_form(as_user("operator"), "/customers/new", {"name": "Acme"}, follow_redirects=True)
    assert r.status_code == 200 and "was just added by someone else" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 1


def test_the_inbox_creates_customers_by_the_same_rule_as_the_customers_page(app):
    """One creation rule: the name is cleaned the same way, an existing name (any case or spacing) is
    reused, and a new customer is audited as added, saying it came from the Inbox."""
    from backend.app.services.inbox import InboxError, get_or_create_customer

    existing = make_customer("Northwind Demo")
    assert get_or_create_customer("  northwind   demo ", None).id == existing.id
    new = get_or_create_customer("  Contoso   Ltd ", None)
    assert new.name == "Contoso Ltd" and new.active
    assert db.session.execute(select(AuditLog.summary).where(AuditLog.event == "customer.create")
                              ).scalars().all() == ["Added customer Contoso Ltd (from the Inbox)"]
    with pytest.raises(InboxError, match="Choose a customer"):
        get_or_create_customer("   ", None)
    with pytest.raises(InboxError, match="longer than 200"):
        get_or_create_customer("x" * 201, None)
