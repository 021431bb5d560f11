"""Fixtures for the PSA client tests: a running fake Autotask and a client for it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from backend.app.psa.autotask import AutotaskClient, AutotaskConfig
from tests.fakes.fake_autotask import FakeAutotask


def config_for(fake: FakeAutotask, **overrides) -> AutotaskConfig:
    """A config pointing at ``fake`` with test-speed timeouts and back-off."""
    cfg = AutotaskConfig(
        api_user=fake.api_user,
        secret=fake.secret,
        integration_code=fake.integration_code,
        environment=fake.environment,
        zone_discovery_urls=(fake.discovery_url,),
        timeout=2.0,
        retry_budget=6.0,
        backoff_base=0.05,
        max_backoff=1.5,
        lost_create_recheck_delay=0.05,
    )
    return replace(cfg, **overrides)


@pytest.fixture
def make_fake():
    """Factory: ``make_fake(thread_limit=3, latency=0.1, ...)`` -> a started FakeAutotask."""
    started: list[FakeAutotask] = []

    def make(**options) -> FakeAutotask:
        fake = FakeAutotask(**options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_autotask(make_fake) -> FakeAutotask:
    return make_fake()


@pytest.fixture
def make_client():
    clients: list[AutotaskClient] = []

    def make(fake: FakeAutotask, **overrides) -> AutotaskClient:
        client = AutotaskClient(config_for(fake, **overrides))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def autotask(fake_autotask, make_client) -> AutotaskClient:
    return make_client(fake_autotask)
