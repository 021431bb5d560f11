"""The fake enforces the protocol, so a client that cuts corners fails (graph.md §3)."""
from __future__ import annotations

import msal
import pytest
import requests

from tests.fakes.fake_graph import FakeGraph, make_mime


@pytest.fixture
def fake(monkeypatch):
    with FakeGraph([make_mime(f"m{i}") for i in range(15)]) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        yield fake


def token(fake, scope="https://graph.microsoft.com/.default"):
    app = msal.ConfidentialClientApplication(
        fake.client_id, client_credential=fake.client_secret,
        authority=f"{fake.authority_host}/{fake.tenant_id}", instance_discovery=False, validate_authority=False)
    return app.acquire_token_for_client(scopes=[scope])


def get(fake, path, tok=None, **params):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return requests.get(fake.api_base + path, headers=headers, params=params, timeout=5)


def test_bearer_token_required(fake):
    resp = get(fake, f"/users/{fake.mailbox}/mailFolders")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert get(fake, f"/users/{fake.mailbox}/mailFolders", "made-up").status_code == 401


def test_scope_must_be_default(fake):
    result = token(fake, scope="https://graph.microsoft.com/Mail.Read")
    assert result.get("error") == "invalid_scope"


def test_default_order_is_newest_first_and_paging_is_strict(fake):
    tok = token(fake)["access_token"]
    folder = fake.folder_by_path("Inbox/Backup reports").id
    path = f"/users/{fake.mailbox}/mailFolders/{requests.utils.quote(folder, safe='')}/messages"

    first = get(fake, path, tok).json()
    assert [m["subject"] for m in first["value"]][:2] == ["m14", "m13"] and len(first["value"]) == 10
    assert first["@odata.nextLink"].startswith(fake.api_base)
    assert len(requests.get(first["@odata.nextLink"], headers={"Authorization": f"Bearer {tok}"},
                            timeout=5).json()["value"]) == 5
    assert get(fake, path, tok, **{"$skiptoken": "forged"}).status_code == 400
    assert get(fake, path, tok, **{"$top": "0"}).status_code == 400
    assert get(fake, path, tok, **{"$select": "id,nonsense"}).status_code == 400
    bad = get(fake, path, tok, **{"$filter": "isRead eq false", "$orderby": "receivedDateTime asc"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InefficientFilter"


def test_me_is_rejected_for_app_tokens(fake):
    assert get(fake, "/me/mailFolders", token(fake)["access_token"]).status_code == 400
