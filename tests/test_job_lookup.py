"""The job picker's suggestions (/jobs/lookup): a few matching jobs as JSON, searched by customer and job
name, for the roles that create tickets, remarks and overrides; a constant number of statements."""
from __future__ import annotations

import pytest

from backend.app.extensions import db
from backend.app.services.jobs import LOOKUP_LIMIT, JobLookupError, job_from_picker, lookup_jobs

from .conftest import make_customer, make_job
from .helpers import page_queries

JSON = {"Accept": "application/json"}


def job(customer, name, software="Veeam Backup & Replication", **kw):
    return make_job(customer, job_name=name, software=software, sender=f"{name.lower()}@{customer.id}.test", **kw)


def lookup(client, query: str = "", **headers):
    r = client.get("/jobs/lookup" + query, headers=headers or JSON)
    return r, r.get_json(silent=True)


def labels(body) -> list[str]:
    return [j["label"] for j in body["jobs"]]


@pytest.fixture
def world(app):
    acme, beta = make_customer("Acme Logistics"), make_customer("Beta Dental")
    jobs = {"acme_vm": job(acme, "Daily VM Backup"), "acme_sql": job(acme, "SQL Server Logs", "Veeam Agent"),
            "beta_vm": job(beta, "daily vm backup (copy)"), "beta_files": job(beta, "File Server"),
            "old": job(acme, "Old Daily Backup", archived=True)}
    db.session.commit()
    return {"acme": acme, "beta": beta, **jobs}


def test_matches_job_and_customer_names_ignoring_case_with_the_fields_the_picker_shows(as_user, world):
    op = as_user("operator")
    r, body = lookup(op, "?q=DAILY")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert labels(body) == ["Acme Logistics · Daily VM Backup", "Beta Dental · daily vm backup (copy)"]
    assert body["more"] is False and body["limit"] == LOOKUP_LIMIT
    assert body["jobs"][0] == {"id": world["acme_vm"].id, "job_name": "Daily VM Backup", "customer_id": world["acme"].id,
                               "customer_name": "Acme Logistics", "software": "Veeam Backup & Replication",
                               "backup_type": "Backup Job", "archived": False, "label": "Acme Logistics · Daily VM Backup"}
    # The customer's name matches too, and every word must match somewhere (customer or job).
    assert labels(lookup(op, "?q=dental")[1]) == ["Beta Dental · daily vm backup (copy)", "Beta Dental · File Server"]
    assert labels(lookup(op, "?q=beta%20daily")[1]) == ["Beta Dental · daily vm backup (copy)"]
    assert labels(lookup(op, "?q=acme%20file")[1]) == []
    # The label the picker shows, typed or pasted back, finds that job.
    assert labels(lookup(op, "?q=Acme%20Logistics%20%C2%B7%20SQL%20Server%20Logs")[1]) == [
        "Acme Logistics · SQL Server Logs"]


def test_the_job_named_exactly_and_names_starting_with_the_text_come_first(as_user, app):
    a, z = make_customer("Aardvark"), make_customer("Zulu")
    job(a, "Nightly Fileshare 3")
    job(a, "Fileshare 3")
    job(z, "Fileshare")
    db.session.commit()
    assert labels(lookup(as_user("operator"), "?q=fileshare")[1]) == [
        "Zulu · Fileshare", "Aardvark · Fileshare 3", "Aardvark · Nightly Fileshare 3"]


def test_no_text_gives_the_first_jobs_and_a_customer_narrows_to_its_jobs(as_user, world):
    op = as_user("operator")
    assert len(lookup(op)[1]["jobs"]) == 4  # not the archived one
    body = lookup(op, f"?customer={world['beta'].id}")[1]
    assert labels(body) == ["Beta Dental · daily vm backup (copy)", "Beta Dental · File Server"]
    assert labels(lookup(op, f"?q=daily&customer={world['acme'].id}")[1]) == ["Acme Logistics · Daily VM Backup"]
    assert lookup(op, "?customer=999999")[1]["jobs"] == []  # no such customer: nothing, not an error


def test_archived_jobs_only_when_asked(as_user, world):
    op = as_user("operator")
    assert "Acme Logistics · Old Daily Backup" not in labels(lookup(op, "?q=daily")[1])
    body = lookup(op, "?q=old&archived=1")[1]
    assert labels(body) == ["Acme Logistics · Old Daily Backup"] and body["jobs"][0]["archived"] is True
    assert labels(lookup(op, "?q=old&archived=0")[1]) == []


def test_at_most_twenty_suggestions_and_more_says_there_are_others(as_user, app):
    c = make_customer("Big Customer")
    for i in range(LOOKUP_LIMIT + 5):
        job(c, f"Backup {i:02}")
    db.session.commit()
    op = as_user("operator")
    body = lookup(op, "?q=backup")[1]
    assert len(body["jobs"]) == LOOKUP_LIMIT and body["more"] is True
    assert labels(body)[:2] == ["Big Customer · Backup 00", "Big Customer · Backup 01"]
    body = lookup(op, "?q=backup%202")[1]  # every word somewhere: Backup 02, 12, 20 … 24
    assert len(body["jobs"]) == 7 and body["more"] is False


def test_percent_and_underscore_are_the_characters_themselves(as_user, app):
    c = make_customer("Escapes")
    for name in ("100% Backup", "1000 Backup", "Under_score", "Underscore", "Back\\slash"):
        job(c, name)
    db.session.commit()
    op = as_user("operator")
    assert [j["job_name"] for j in lookup(op, "?q=100%25")[1]["jobs"]] == ["100% Backup"]
    assert [j["job_name"] for j in lookup(op, "?q=_")[1]["jobs"]] == ["Under_score"]
    assert [j["job_name"] for j in lookup(op, "?q=under_")[1]["jobs"]] == ["Under_score"]
    assert [j["job_name"] for j in lookup(op, "?q=%25")[1]["jobs"]] == ["100% Backup"]
    assert [j["job_name"] for j in lookup(op, "?q=k%5Cs")[1]["jobs"]] == ["Back\\slash"]


@pytest.mark.parametrize("role,status", [("admin", 200), ("operator", 200), ("viewer", 403), ("reporter", 403)])
def test_the_roles_that_create_tickets_may_ask(as_user, world, role, status):
    r, body = lookup(as_user(role), "?q=daily")
    assert r.status_code == status
    if status == 403:
        assert body["code"] == 403 and "may not open this page" in body["message"]  # JSON, as the picker asks


def test_anonymous_is_sent_to_the_login(client, world):
    from .conftest import make_user

    make_user("alice", roles=("admin",))
    db.session.commit()
    r = client.get("/jobs/lookup?q=daily", headers=JSON)
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]


@pytest.mark.parametrize("query,message", [
    ("?customer=abc", "'abc' is not a customer id"),
    ("?customer=2147483648", "is not a customer id"),
    ("?customer=-1", "is not a customer id"),
    ("?archived=yes", "'yes' is not a choice for archived"),
    ("?q=" + "x" * 201, "too long: at most 200 characters"),
    ("?q=daily%00", "control characters"),
    ("?q=a+b+c+d+e+f+g+h+i", "9 words: use at most 8"),
])
def test_a_question_that_cannot_be_answered_is_a_400_with_why(as_user, world, query, message):
    r, body = lookup(as_user("operator"), query, **{"Accept": "*/*"})  # JSON whatever the client accepts
    assert r.status_code == 400 and r.mimetype == "application/json"
    assert body["status"] == "error" and body["code"] == 400 and message in body["message"], body


def test_the_same_number_of_statements_for_three_jobs_as_for_three_hundred(as_user, app):
    c = make_customer("Scale Customer")
    for i in range(3):
        job(c, f"Nightly {i:03}")
    db.session.commit()
    op = as_user("operator")
    few = page_queries(op, "/jobs/lookup?q=nightly")
    for i in range(3, 300):
        job(c, f"Nightly {i:03}")
    db.session.commit()
    many = page_queries(op, "/jobs/lookup?q=nightly")
    assert many == few <= 3  # the user, then one query for the jobs
    assert page_queries(op, f"/jobs/lookup?q=nightly&customer={c.id}&archived=1") == few


# --- Resolving a form sent without choosing a suggestion -------------------------------------------

def test_a_form_sent_without_the_box_keeps_its_job_id(world):
    assert job_from_picker("42", None) == "42"  # checked later by the form's own rules


def test_the_chosen_jobs_label_keeps_the_chosen_job(world):
    vm = world["acme_vm"]
    assert job_from_picker(str(vm.id), "Acme Logistics · Daily VM Backup") == str(vm.id)
    # Typed over the chosen job (no JavaScript clears the hidden id): the text decides.
    assert job_from_picker(str(vm.id), "file server") == str(world["beta_files"].id)
    assert job_from_picker(str(vm.id), "  ") == ""


def test_typed_text_naming_one_job_is_that_job_and_several_or_none_are_refused(world):
    assert job_from_picker("", "sql server") == str(world["acme_sql"].id)
    assert job_from_picker("", "Beta Dental · File Server") == str(world["beta_files"].id)
    assert job_from_picker("", "daily vm backup") == str(world["acme_vm"].id)  # named exactly beats "(copy)"
    assert job_from_picker("", "daily", customer_id=world["beta"].id) == str(world["beta_vm"].id)
    with pytest.raises(JobLookupError, match=r"'backup' matches 2 jobs \(Acme Logistics · Daily VM Backup "
                                             r"\(Veeam Backup & Replication\); Beta Dental · daily vm backup"):
        job_from_picker("", "backup")
    with pytest.raises(JobLookupError, match="No job matches 'old daily'"):
        job_from_picker("", "old daily")  # archived jobs are not taken from typed text
    with pytest.raises(JobLookupError, match="No job of the chosen customer matches 'file'"):
        job_from_picker("", "file", customer_id=world["acme"].id)


def test_lookup_service_answers_in_one_statement(world):
    from .helpers import count_queries

    acme = world["acme"].id
    assert count_queries(lambda: lookup_jobs("daily", customer_id=acme)) == 1
