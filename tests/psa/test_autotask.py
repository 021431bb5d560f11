"""The Autotask client against the fake Autotask REST API over real HTTP."""
from __future__ import annotations

import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backend.app import psa
from backend.app.psa.autotask import (
    ZONE_DISCOVERY_URLS,
    AutotaskClient,
    AutotaskConfig,
    strip_none,
)
from backend.app.psa.base import (
    PsaAuthError,
    PsaError,
    PsaNotFoundError,
    PsaRateLimitError,
    PsaValidationError,
)

from .conftest import config_for

QUEUE = 29683482  # "Monitoring Alert" in the fake's picklist
OLD_QUEUE = 29683490  # inactive


def dead_url() -> str:
    """A discovery base on a port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/atservicesrest/"


def new_ticket(client: AutotaskClient, reference: str = "bc-run-1", **kw):
    args = dict(company_id=174, title="Backup failed: SQL01 nightly", description="Job SQL01 failed.\nObject X: error",
                reference=reference, queue_id=QUEUE)
    args.update(kw)
    return client.create_ticket(**args)


# ------------------------------------------------------------------ zones and auth


def test_zone_discovery_finds_the_tenant_zone_without_auth_headers(fake_autotask, autotask):
    zone = autotask.zone()
    assert zone.url == fake_autotask.zone_url
    assert zone.web_url == fake_autotask.web_url
    lookups = fake_autotask.calls("GET", "zoneInformation")
    assert len(lookups) == 1
    assert not {"secret", "apiintegrationcode"} & {h.lower() for h in lookups[0]["headers"]}
    autotask.zone()
    AutotaskClient(config_for(fake_autotask)).zone()  # another client object in the same process
    assert len(fake_autotask.calls("GET", "zoneInformation")) == 1, "zone is cached"


def test_zone_discovery_falls_back_to_the_next_host(fake_autotask, make_client):
    client = make_client(fake_autotask, zone_discovery_urls=(dead_url(), fake_autotask.discovery_url))
    assert client.zone().url == fake_autotask.zone_url
    assert client.get_company(174).name == "Example Dental Practice BV"


def test_configured_base_url_is_used_when_no_discovery_host_answers(fake_autotask, make_client):
    fake_autotask.zone_lookup_down = True
    client = make_client(fake_autotask, zone_discovery_urls=(dead_url(), fake_autotask.discovery_url),
                         fallback_base_url=fake_autotask.zone_url)
    zone = client.zone()
    assert zone.url == fake_autotask.zone_url and zone.discovered is False
    assert client.get_company(175).name == "Example Logistics Ltd"
    client.get_company(176)
    assert len(fake_autotask.calls("GET", "zoneInformation")) == 1, "discovery is not re-tried on every call"


def test_discovery_unreachable_without_fallback_is_a_clear_error(fake_autotask, make_client):
    client = make_client(fake_autotask, zone_discovery_urls=(dead_url(),))
    with pytest.raises(psa.PsaUnavailableError, match="zone discovery failed"):
        client.zone()


def test_sandbox_has_its_own_discovery_hosts_and_works_against_a_sandbox_tenant(make_fake, make_client):
    cfg = AutotaskConfig(api_user="someone@example.invalid", secret="x", integration_code="y", environment="sandbox")
    assert cfg.discovery_urls() == ZONE_DISCOVERY_URLS["sandbox"]
    assert cfg.discovery_urls() != ZONE_DISCOVERY_URLS["production"]
    assert "webservices.autotask.net" in ZONE_DISCOVERY_URLS["sandbox"][-1], "global host is the last resort"
    sandbox = make_fake(environment="sandbox")
    production = make_fake()
    # The production tenant does not know the sandbox user; the client tries the next host.
    client = make_client(sandbox, zone_discovery_urls=(production.discovery_url, sandbox.discovery_url))
    assert client.zone().url == sandbox.zone_url
    assert client.reference_data()["statuses"]
    with pytest.raises(PsaError, match="Unknown Autotask environment"):
        AutotaskConfig(api_user="a", secret="b", integration_code="c", environment="staging")


def test_unknown_api_user_is_reported_as_such(fake_autotask, make_client):
    client = make_client(fake_autotask, api_user="nobody@fake.invalid")
    with pytest.raises(PsaAuthError) as err:
        client.zone()
    assert "does not know the API user" in err.value.message
    assert err.value.errors


def test_missing_settings_are_named():
    with pytest.raises(PsaAuthError, match="secret"):
        AutotaskConfig(api_user="a@b.invalid", secret="", integration_code="c")


def test_wrong_secret_gives_an_actionable_error_that_never_shows_the_secret(fake_autotask, make_client, caplog):
    wrong = "wrong-" + fake_autotask.secret[::-1]
    client = make_client(fake_autotask, secret=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PsaAuthError) as err:
        client.get_company(174)
    assert err.value.status == 401
    assert "secret" in err.value.message and "integration code" in err.value.message
    assert wrong not in err.value.message and wrong not in caplog.text
    assert fake_autotask.integration_code not in caplog.text
    assert wrong not in repr(client.config)


def test_all_three_auth_headers_go_with_every_entity_call(fake_autotask, autotask):
    autotask.reference_data()
    new_ticket(autotask)
    entity_calls = [r for r in fake_autotask.requests if "zoneInformation" not in r["path"]]
    assert entity_calls
    for r in entity_calls:
        names = {h.lower() for h in r["headers"]}
        assert {"apiintegrationcode", "username", "secret"} <= names, r["path"]
        assert r["status"] == 200, (r["path"], r["status"])


def test_a_moved_tenant_is_rediscovered_after_401(fake_autotask, autotask):
    autotask.get_company(174)
    old = autotask.zone().url
    fake_autotask.move_zone()
    assert autotask.get_company(175).id == 175
    assert autotask.zone().url == fake_autotask.zone_url != old


def test_missing_write_permission_is_explained(make_fake, make_client):
    fake = make_fake(read_only=True)
    with pytest.raises(PsaAuthError, match="lacks permission"):
        new_ticket(make_client(fake))


# -------------------------------------------------------------- reference data


def test_reference_data_comes_from_picklists_and_is_cached(fake_autotask, autotask):
    data = autotask.reference_data()
    assert set(data) == {"queues", "sources", "priorities", "statuses"}
    queues = {v.value: v for v in data["queues"]}
    assert queues[QUEUE].label == "Monitoring Alert" and queues[QUEUE].active
    assert queues[OLD_QUEUE].active is False
    statuses = {v.label: v for v in data["statuses"]}
    assert statuses["Complete"].value == 5 and statuses["New"].is_default
    assert all(isinstance(v.value, int) for v in data["priorities"])
    assert data["queues"][0].to_dict()["label"] == "Monitoring Alert"  # plain data for storage

    autotask.reference_data()
    new_ticket(autotask)
    assert len(fake_autotask.calls("GET", "Tickets/entityInformation/fields")) == 1
    autotask.refresh_reference_data()
    assert len(fake_autotask.calls("GET", "Tickets/entityInformation/fields")) == 2


# ---------------------------------------------------------------------- companies


def test_company_search_follows_pages_and_matches_ids(make_fake, make_client):
    fake = make_fake(page_size=2)
    for i in range(5):
        fake.add_company(id=500 + i, companyName=f"Paging Customer {i}")
    client = make_client(fake)
    found = client.search_companies("paging customer")
    assert [c.id for c in found] == [500, 501, 502, 503, 504]
    assert len(fake.calls("GET", "/Companies/query/next")) == 2
    assert [c.id for c in client.search_companies("502")] == [502]
    assert client.search_companies("  ") == []
    assert [c.active for c in client.search_companies("Old Example")] == [False]
    assert client.search_companies("Old Example", include_inactive=False) == []


def test_a_next_page_link_to_another_host_is_not_followed(make_fake, make_client, caplog):
    fake = make_fake(page_size=2)
    elsewhere = make_fake()  # stands in for a host that is not the tenant's zone
    for i in range(5):
        fake.add_company(id=500 + i, companyName=f"Paging Customer {i}")
    fake.next_page_base = elsewhere.zone_url
    client = make_client(fake)
    with caplog.at_level(logging.DEBUG), pytest.raises(PsaError) as info:
        client.search_companies("paging customer")
    message = info.value.message
    assert "link to the next page points to 127.0.0.1:%d" % elsewhere._server.server_address[1] in message
    assert "sends the API credentials only to the zone host" in message
    assert elsewhere.requests == [], "the credentials went to another host"
    assert fake.calls("GET", "/Companies/query/next") == []
    assert fake.secret not in caplog.text and fake.integration_code not in caplog.text


@pytest.mark.parametrize("link,followed", [
    ("https://webservices5.autotask.net/ATServicesRest/V1.0/Companies/query/next?paging=x", True),
    ("https://WebServices5.autotask.net:443/atservicesrest/v1.0/Companies/query/next", True),
    ("http://webservices5.autotask.net/atservicesrest/v1.0/Companies/query/next", False),  # downgrade
    ("https://webservices5.autotask.net:8443/atservicesrest/v1.0/Companies/query/next", False),
    ("https://webservices6.autotask.net/atservicesrest/v1.0/Companies/query/next", False),
    ("https://webservices5.autotask.net.evil.example/atservicesrest/v1.0/x", False),
    ("https://webservices5.autotask.net@evil.example/atservicesrest/v1.0/x", False),
    ("https:///atservicesrest/v1.0/x", False),
])
def test_only_links_on_the_zone_origin_are_followed(link, followed):
    from backend.app.psa.autotask.transport import _origin

    zone = "https://webservices5.autotask.net/atservicesrest/"
    assert (_origin(link) is not None and _origin(link) == _origin(zone)) is followed


def test_get_company_and_missing_company(autotask):
    c = autotask.get_company(176)
    assert (c.id, c.name, c.active) == (176, "Sample Bakery", True)
    with pytest.raises(PsaNotFoundError):
        autotask.get_company(99999)


# ------------------------------------------------------------------------ tickets


def test_create_ticket_sends_no_nulls_and_returns_the_server_ticket(fake_autotask, autotask):
    t = new_ticket(autotask)
    assert t.number.startswith("T") and t.title == "Backup failed: SQL01 nightly"
    assert (t.status, t.status_label, t.completed) == (1, "New", False)
    assert t.priority == 2 and t.queue_id == QUEUE and t.company_id == 174
    assert t.external_id == "bc-run-1"
    assert t.web_url.endswith(f"workItemId={t.id}")
    posts = fake_autotask.calls("POST", "/Tickets")
    create = [r for r in posts if r["path"].endswith("/Tickets")]
    assert len(create) == 1
    assert None not in create[0]["body"].values()
    assert "source" not in create[0]["body"]
    assert fake_autotask.violations == []
    assert len(fake_autotask.tickets) == 1


def test_missing_required_field_is_surfaced_with_the_servers_errors(fake_autotask, autotask):
    with pytest.raises(PsaValidationError) as err:
        new_ticket(autotask, queue_id=None)
    assert "queueID" in err.value.message
    assert any("queueID" in e for e in err.value.errors)
    assert err.value.status == 500
    assert fake_autotask.tickets == {}


def test_inactive_picklist_value_and_unknown_company_are_refused(fake_autotask, autotask):
    with pytest.raises(PsaValidationError, match="inactive"):
        new_ticket(autotask, queue_id=OLD_QUEUE)
    with pytest.raises(PsaValidationError, match="existing entity for companyID"):
        new_ticket(autotask, company_id=424242)
    assert fake_autotask.tickets == {}


def test_long_title_is_clipped_to_the_field_length(fake_autotask, autotask):
    t = new_ticket(autotask, title="x" * 400)
    assert len(t.title) == 255


@pytest.mark.parametrize("mode", ["drop", "delay", "502"])
def test_a_lost_create_response_never_makes_a_second_ticket(make_fake, make_client, mode):
    fake = make_fake()
    client = make_client(fake, timeout=0.6)
    fake.lose_next_create_response(mode, delay=1.2)
    t = new_ticket(client, reference=f"bc-lost-{mode}")
    assert list(fake.tickets) == [t.id]
    assert t.external_id == f"bc-lost-{mode}"
    creates = [r for r in fake.calls("POST") if r["path"].endswith("/Tickets")]
    assert len(creates) == 1
    assert fake.violations == []


def test_a_create_that_was_not_carried_out_is_sent_again_once(fake_autotask, autotask):
    fake_autotask.fail_next(status=503, method="POST", path_suffix="/Tickets")
    t = new_ticket(autotask, reference="bc-retry")
    assert list(fake_autotask.tickets) == [t.id]
    creates = [r for r in fake_autotask.calls("POST") if r["path"].endswith("/Tickets")]
    assert [r["status"] for r in creates] == [503, 200]


def test_creating_again_with_the_same_reference_returns_the_existing_ticket(fake_autotask, autotask):
    first = new_ticket(autotask, reference="bc-job-7")
    second = new_ticket(autotask, reference="bc-job-7", title="Different wording")
    assert second.id == first.id
    assert len(fake_autotask.tickets) == 1


def test_get_ticket_and_missing_ticket(autotask):
    t = new_ticket(autotask)
    assert autotask.get_ticket(t.id).number == t.number
    with pytest.raises(PsaNotFoundError, match="deleted or merged"):
        autotask.get_ticket(1)


def test_find_ticket_by_number(fake_autotask, autotask):
    t = new_ticket(autotask)
    fake_autotask.add_ticket(companyID=175, title="Made by a technician", queueID=QUEUE)
    assert autotask.find_ticket_by_number(t.number).id == t.id
    assert autotask.find_ticket_by_number(f"  {t.number.lower()} ").id == t.id
    assert autotask.find_ticket_by_number("T19990101.0001") is None
    assert autotask.find_ticket_by_number("") is None


def test_update_sends_only_changed_fields_and_never_blanks_the_description(fake_autotask, autotask):
    t = new_ticket(autotask)
    updated = autotask.update_ticket(t.id, {"title": "Backup failed again", "description": None,
                                            "priority": t.priority, "queueID": None})
    assert updated.title == "Backup failed again"
    assert updated.description == t.description
    patches = fake_autotask.calls("PATCH")
    assert [p["body"] for p in patches] == [{"id": t.id, "title": "Backup failed again"}]
    assert not fake_autotask.calls("PUT")

    autotask.update_ticket(t.id, {"title": "Backup failed again"})  # nothing changed: nothing sent
    assert len(fake_autotask.calls("PATCH")) == 1
    with pytest.raises(PsaValidationError, match="Refusing to blank description"):
        autotask.update_ticket(t.id, {"description": "   "})
    assert len(fake_autotask.calls("PATCH")) == 1
    assert fake_autotask.tickets[t.id]["description"] == t.description
    assert fake_autotask.violations == []


def test_a_tenant_refusing_patch_gets_a_full_put_that_keeps_every_field(fake_autotask, autotask):
    t = new_ticket(autotask, extra={"issueType": 10, "subIssueType": 200, "source": 8})
    fake_autotask.patch_unsupported = True
    done = autotask.update_ticket(t.id, {"status": 5})
    assert done.completed and done.description == t.description
    row = fake_autotask.tickets[t.id]
    assert (row["issueType"], row["subIssueType"], row["source"]) == (10, 200, 8)
    assert len(fake_autotask.calls("PUT")) == 1
    assert fake_autotask.violations == []


def test_add_ticket_note_uses_the_note_picklists(fake_autotask, autotask):
    t = new_ticket(autotask)
    note = autotask.add_ticket_note(t.id, "Backup failed again 2026-11-26", "Object X: error 5")
    stored = fake_autotask.notes[note.id]
    assert stored["ticketID"] == t.id and stored["description"] == "Object X: error 5"
    assert (stored["noteType"], stored["publish"]) == (1, 1)  # picklist defaults
    with pytest.raises(PsaValidationError, match="existing entity"):
        autotask.add_ticket_note(123, "x", "y")
    assert fake_autotask.violations == []


def test_a_lost_note_response_never_makes_a_second_note(make_fake, make_client):
    fake = make_fake()
    client = make_client(fake, timeout=0.6)
    t = new_ticket(client)
    fake.lose_next_create_response("drop", what="note")
    note = client.add_ticket_note(t.id, "Backup failed again", "details")
    assert list(fake.notes) == [note.id]


def test_when_autotask_stays_silent_the_error_says_a_retry_is_safe(make_fake, make_client):
    fake = make_fake()
    client = make_client(fake, timeout=0.6, retry_budget=0.2)
    new_ticket(client, reference="bc-other")  # pre-create lookups work
    fake.lose_next_create_response("drop")
    fake.fail_next(100, status=503, method="POST", path_suffix="/Tickets/query")
    with pytest.raises(psa.PsaUnavailableError, match="safe to try again") as err:
        new_ticket(client, reference="bc-silent", check_existing=False)
    assert "bc-silent" in err.value.message
    assert len(fake.tickets) == 2
    fake.clear_failures()
    again = new_ticket(client, reference="bc-silent")  # the next attempt finds it
    assert len(fake.tickets) == 2 and fake.tickets[again.id]["externalID"] == "bc-silent"
    assert fake.violations == []


def test_complete_ticket_adds_the_note_then_sets_complete(fake_autotask, autotask):
    t = new_ticket(autotask)
    done = autotask.complete_ticket(t.id, "Backups succeed again; resolved by J. Doe.")
    assert done.completed and done.status == 5 and done.status_label == "Complete"
    assert done.completed_at is not None
    assert done.description == t.description
    writes = [r for r in fake_autotask.requests if r["method"] in ("POST", "PATCH") and "query" not in r["path"]]
    assert [r["method"] for r in writes][-2:] == ["POST", "PATCH"]
    assert writes[-2]["path"].endswith(f"/Tickets/{t.id}/Notes")
    assert writes[-1]["body"] == {"id": t.id, "status": 5}
    assert fake_autotask.violations == []


def test_polling_sees_tickets_completed_in_autotask(fake_autotask, make_client):
    client = make_client(fake_autotask, closed_status_labels=("Waiting Customer",))
    a = new_ticket(client, reference="bc-a")
    b = new_ticket(client, reference="bc-b")
    c = new_ticket(client, reference="bc-c")
    fake_autotask.complete_out_of_band(a.id)
    fake_autotask.reopen_out_of_band(b.id, status=7)  # a status configured as closed
    seen = client.get_tickets([a.id, b.id, c.id, 1])
    assert set(seen) == {a.id, b.id, c.id}
    assert (seen[a.id].completed, seen[b.id].completed, seen[c.id].completed) == (True, True, False)
    assert seen[a.id].completed_at is not None


# --------------------------------------------------------------- errors and limits


def test_server_errors_list_is_surfaced_readably(fake_autotask, autotask):
    fake_autotask.fail_next(status=500, errors=["Business rule: contract expired.", "Second reason."],
                            method="GET", entity="Companies")
    with pytest.raises(PsaValidationError) as err:
        autotask.get_company(174)
    assert "contract expired" in err.value.message and "Second reason" in err.value.message
    assert err.value.errors == ("Business rule: contract expired.", "Second reason.")


def test_transient_5xx_on_a_read_is_retried(fake_autotask, autotask):
    fake_autotask.fail_next(2, status=503, method="GET", entity="Companies")
    assert autotask.get_company(174).id == 174


def test_hourly_threshold_429_is_backed_off_and_retried(make_fake, make_client):
    fake = make_fake(request_threshold=4, threshold_window=1.0, retry_after=1)
    client = make_client(fake)
    for cid in (174, 175, 176, 174, 175, 176):
        assert client.get_company(cid).id == cid
    assert any(t["kind"] == "threshold" for t in fake.throttled)
    statuses = [r["status"] for r in fake.requests if "Companies" in r["path"]]
    assert 429 in statuses and statuses[-1] == 200


def test_throttling_that_outlasts_the_retry_budget_raises_rate_limited(make_fake, make_client):
    fake = make_fake(request_threshold=1, threshold_window=60, retry_after=30)
    client = make_client(fake, retry_budget=0.5)
    client.get_company(174)
    with pytest.raises(PsaRateLimitError) as err:
        client.get_company(175)
    assert err.value.retry_after == 30 and "limiting requests" in err.value.message


def test_own_hourly_budget_stops_before_autotask_does(fake_autotask, make_client):
    client = make_client(fake_autotask, hourly_request_budget=2)
    client.get_company(174)
    client.get_company(175)
    sent = len(fake_autotask.requests)
    with pytest.raises(PsaRateLimitError, match="request budget"):
        client.get_company(176)
    assert len(fake_autotask.requests) == sent


def _parallel_reads(client: AutotaskClient, n: int = 9) -> list[int]:
    barrier = threading.Barrier(n)

    def read(cid: int) -> int:
        barrier.wait()
        return client.get_company(cid).id

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(read, [174, 175, 176] * (n // 3)))


def test_client_keeps_to_three_concurrent_requests_per_endpoint(make_fake, make_client):
    fake = make_fake(latency=0.15)
    client = make_client(fake)
    client.zone()
    assert sorted(_parallel_reads(client)) == sorted([174, 175, 176] * 3)
    assert fake.max_in_flight["Companies"] == 3
    assert fake.throttled == []


def test_thread_limit_errors_are_backed_off(make_fake, make_client):
    # Another process of the same integration is busy: only one slot is left.
    fake = make_fake(latency=0.1, thread_limit=1)
    client = make_client(fake)
    client.zone()
    assert sorted(_parallel_reads(client, 6)) == sorted([174, 175, 176] * 2)
    assert any(t["kind"] == "thread" for t in fake.throttled)
    rejected = [r for r in fake.requests if r["status"] == 500 and "Companies" in r["path"]]
    assert rejected, "the fake rejected some calls with its Itgenatr005 error"


# -------------------------------------------------------------- the fake is strict


def _raw(fake, method: str, path: str, **kw):
    headers = {"apiintegrationcode": fake.integration_code, "USERNAME": fake.api_user, "Secret": fake.secret}
    return requests.request(method, fake.zone_url + "v1.0/" + path, headers=headers, timeout=5, **kw)


def test_fake_records_blanking_and_nulls(fake_autotask):
    r = _raw(fake_autotask, "POST", "Tickets", json={"companyID": 174, "title": "t", "status": 1, "priority": 2,
                                                     "queueID": QUEUE, "description": "keep me"})
    tid = r.json()["itemId"]
    assert _raw(fake_autotask, "PUT", "Tickets", json={"id": tid, "title": "t", "companyID": 174, "status": 5,
                                                       "priority": 2}).status_code == 200
    assert fake_autotask.tickets[tid]["description"] is None
    assert any("description blanked" in v for v in fake_autotask.violations)
    r = _raw(fake_autotask, "POST", "Tickets", json={"companyID": 174, "title": "t", "status": 1, "priority": 2,
                                                     "queueID": QUEUE, "contactID": None})
    assert r.status_code == 500 and r.json()["errors"]
    assert any("null sent for contactID" in v for v in fake_autotask.violations)
    fake_autotask.violations.clear()
    assert _raw(fake_autotask, "PATCH", "Tickets", json={"id": tid, "description": "back"}).status_code == 200
    assert _raw(fake_autotask, "PATCH", "Tickets", json={"id": tid, "description": None}).status_code == 200
    assert fake_autotask.tickets[tid]["description"] is None
    assert any("null sent for description" in v for v in fake_autotask.violations)
    assert any("description blanked" in v for v in fake_autotask.violations)
    assert _raw(fake_autotask, "PATCH", "Tickets", json={"title": "no id"}).status_code == 500


def test_fake_enforces_auth_and_query_grammar(fake_autotask):
    assert requests.get(fake_autotask.zone_url + "v1.0/Companies/174", timeout=5).status_code == 401
    r = _raw(fake_autotask, "POST", "Tickets/query", json={"filter": [{"op": "eq", "field": "nope", "value": 1}]})
    assert r.status_code == 500 and "Unable to find nope" in r.json()["errors"][0]
    r = _raw(fake_autotask, "POST", "Tickets/query", json={"filter": [{"op": "eq", "field": "creatorType",
                                                                       "value": 1}]})
    assert r.status_code == 500
    assert _raw(fake_autotask, "POST", "Companies/query", json={}).status_code == 500
    r = _raw(fake_autotask, "POST", "Companies/query", json={"Filter": [
        {"op": "or", "items": [{"op": "beginsWith", "field": "companyName", "value": "sample"},
                               {"op": "in", "field": "id", "value": [175]}]}],
        "IncludeFields": ["companyName"]})
    assert [i["companyName"] for i in r.json()["items"]] == ["Example Logistics Ltd", "Sample Bakery"]
    search = json.dumps({"filter": [{"op": "endsWith", "field": "companyName", "value": "BAKERY"}]})
    r = _raw(fake_autotask, "GET", "Companies/query", params={"search": search})
    assert [i["id"] for i in r.json()["items"]] == [176]
    r = _raw(fake_autotask, "POST", "Companies/query/count", json={"filter": [{"op": "gte", "field": "id",
                                                                                "value": 0}]})
    assert r.json() == {"queryCount": 5}


# ----------------------------------------------------------------------- registry


def test_registry_lists_autotask():
    assert ("autotask", "Autotask PSA") in psa.available()
    assert psa.get_client_class("autotask") is AutotaskClient
    with pytest.raises(PsaError, match="Unknown PSA"):
        psa.get_client_class("connectwise")
    with pytest.raises(TypeError):
        psa.create_client("autotask", {"api_user": "x"})


def test_strip_none_removes_nulls_recursively():
    assert strip_none({"a": None, "b": {"c": None, "d": 1}, "e": [None, 2]}) == {"b": {"d": 1}, "e": [2]}
