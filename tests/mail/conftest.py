"""Fixtures for the mail-source tests: a running FakeGraph and a GraphConfig aimed at it."""
from __future__ import annotations

import pytest

from backend.app.mail import graph as graph_module
from backend.app.mail.graph import GraphConfig
from tests.fakes.fake_graph import FakeGraph, make_mime


def graph_config(fake: FakeGraph, **overrides) -> GraphConfig:
    """A config for ``fake`` with tiny retry waits so the suite stays fast."""
    values = dict(
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        mailbox=fake.mailbox,
        incoming_folder="Inbox/Backup reports",
        processed_folder="Inbox/Backup reports/Processed",
        authority_host=fake.authority_host,
        api_base=fake.api_base,
        timeout=5,
        max_attempts=4,
        max_retry_wait=3,
        backoff_base=0.01,
    )
    values.update(overrides)
    return GraphConfig(**values)


@pytest.fixture(autouse=True)
def _fresh_msal_apps():
    """msal caches tokens and throttled answers per application object; start every test clean."""
    graph_module.reset_token_cache()
    yield
    graph_module.reset_token_cache()


@pytest.fixture
def fake_graph(monkeypatch):
    """A running FakeGraph with three report mails in Inbox/Backup reports; the test CA is trusted."""
    mails = [make_mime(f"[Success] Backup job 'Job {i}'", message_id=f"<fake-{i}@fake.example>")
             for i in range(3)]
    with FakeGraph(mails) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        yield fake
