"""The rate limit: API_RATE_LIMIT_PER_MINUTE requests per token in each minute, counted in the
database (shared by every worker), with X-RateLimit-* headers; over it 429 rate_limited with
Retry-After, and the next minute counts again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.app.extensions import db
from backend.app.models import ApiRateWindow

from tests.clock import TEST_NOW

from .conftest import error_code


@pytest.fixture
def limit_3(app, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_PER_MINUTE", 3)


def test_over_the_limit_is_429_until_the_minute_ends(api, personas, clock, limit_3):
    clock.move_to(TEST_NOW.replace(second=10))
    token = api.token(personas["viewer"])
    remaining = []
    for _ in range(3):
        r = api.get("/customers", token)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "3"
        remaining.append(r.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    r = api.get("/customers", token)
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert 45 <= int(r.headers["Retry-After"]) <= 50 and r.headers["Retry-After"] == r.headers["X-RateLimit-Reset"]
    # Another token of the same user has its own count.
    assert api.get("/customers", api.token(personas["viewer"], name="other")).status_code == 200
    clock.move_to(TEST_NOW.replace(second=0) + timedelta(minutes=1, seconds=1))
    r = api.get("/customers", token)
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "2"


def test_one_row_per_token_whatever_the_number_of_minutes(api, personas, clock, limit_3):
    token = api.token(personas["viewer"])
    for minute in range(5):
        clock.move_to(TEST_NOW + timedelta(minutes=minute))
        assert api.get("/customers", token).status_code == 200
    assert db.session.execute(db.select(db.func.count()).select_from(ApiRateWindow)).scalar_one() == 1


def test_a_request_with_an_older_minute_counts_in_the_current_one(app, personas):
    from backend.app.services.api_rate_limit import count_request
    from backend.app.services.api_tokens import create_token

    token = create_token(personas["viewer"], "t").token
    db.session.commit()
    now = TEST_NOW.replace(second=30)
    assert count_request(token.id, now=now, limit=5).count == 1
    late = count_request(token.id, now=now - timedelta(minutes=1), limit=5)
    assert late.count == 2 and late.reset_at == now.replace(second=0) + timedelta(minutes=1)
    assert count_request(token.id, now=now + timedelta(minutes=1), limit=5).count == 1


def test_the_limit_is_counted_before_the_role_check(api, personas, limit_3):
    token = api.token(personas["reporter"])
    for _ in range(3):
        assert api.get("/customers", token).status_code == 403
    assert api.get("/customers", token).status_code == 429


def test_the_default_limit_is_120(app):
    from backend.app.config import load_config

    assert load_config({}, app.instance_path)["API_RATE_LIMIT_PER_MINUTE"] == 120
    assert load_config({"API_RATE_LIMIT_PER_MINUTE": "30"}, app.instance_path)["API_RATE_LIMIT_PER_MINUTE"] == 30


def test_a_limit_below_one_refuses_to_start():
    from backend.app.config import ConfigError, check_config

    with pytest.raises(ConfigError, match="API_RATE_LIMIT_PER_MINUTE"):
        check_config({"API_RATE_LIMIT_PER_MINUTE": 0, "SQLALCHEMY_DATABASE_URI": "postgresql://x/y"})
