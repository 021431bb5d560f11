"""Login throttling: per (user name, address) and per address, so an attacker at one address
can't lock the real user out; per user name only a growing wait; refused logins audited as one
row per address and window."""
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, LoginAttempt
from backend.app.services import accounts

from .conftest import PASSWORD, make_user
from .net import app_behind_proxy, client_at, http_from, http_login, login_at

ATTACKER, ALICE_HOME, ELSEWHERE = "10.0.0.66", "10.0.0.7", "10.0.0.8"


def failed_login_rows():
    return db.session.execute(select(AuditLog).where(AuditLog.event == "login.failed")
                              .order_by(AuditLog.id)).scalars().all()


@pytest.fixture
def alice(app):
    return make_user("alice", roles=("admin",))


@pytest.fixture
def waits(monkeypatch):
    """The per-name waits, recorded instead of slept."""
    seen = []
    monkeypatch.setattr(accounts, "_wait", seen.append)
    return seen


def test_fifty_failures_from_one_address_do_not_lock_alice_out_from_another(app, alice, waits):
    attacker = client_at(app, ATTACKER)
    statuses = [login_at(attacker, "ALICE" if i % 2 else "alice", "wrong-password-123").status_code
                for i in range(50)]
    assert statuses == [401] * 5 + [429] * 45  # any capitalisation is the same name

    r = login_at(attacker, "alice", PASSWORD)  # the attacker's address waits, even with the password
    text = r.get_data(as_text=True)
    assert r.status_code == 429 and 840 <= int(r.headers["Retry-After"]) <= 900
    assert "Too many failed logins from your address. Try again in 15 minutes" in text

    home = client_at(app, ALICE_HOME)
    r = login_at(home, "alice")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert home.get("/").status_code == 200
    assert waits == []  # 5 failures for the name: far from the per-name wait

    # Audited: one row for the attacker's address, with the counts; not 51 rows.
    [row] = failed_login_rows()
    assert row.ip_address == ATTACKER and row.username == "alice"
    assert (row.after["failed"], row.after["refused"], row.after["user names"]) == (5, 46, ["alice", "ALICE"])
    assert "5 failed login(s) from 10.0.0.66 for alice, ALICE; 46 more refused" in row.summary
    assert db.session.execute(select(func.count(LoginAttempt.id))).scalar_one() == 5
    page = home.get("/audit-log?event=login.failed").get_data(as_text=True)  # alice is an admin
    page = unescape(re.sub(r"<[^>]+>", "", page))  # the Changes column: one "field: value" line each
    assert "failed: 5" in page and "refused: 46" in page and "user names: alice, ALICE" in page


def test_the_wait_counts_down_and_ends_with_the_window(app, alice, clock):
    attacker = client_at(app, ATTACKER)
    for _ in range(5):
        login_at(attacker, "alice", "wrong-password-123")
    clock.shift(timedelta(minutes=10))
    r = login_at(attacker, "alice", "wrong-password-123")
    assert r.status_code == 429 and "Try again in 5 minutes" in r.get_data(as_text=True)
    clock.shift(timedelta(minutes=4, seconds=30))
    r = login_at(attacker, "alice", "wrong-password-123")
    assert r.status_code == 429 and "Try again in 1 minute," in r.get_data(as_text=True)
    clock.shift(timedelta(minutes=1))
    r = login_at(attacker, "alice", "wrong-password-123")  # the window has passed: a normal answer
    assert r.status_code == 401 and "Unknown user name or wrong password" in r.get_data(as_text=True)
    # A new window starts a new audit row; old failures are pruned.
    assert [row.after["failed"] for row in failed_login_rows()] == [5, 1]
    assert db.session.execute(select(func.count(LoginAttempt.id))).scalar_one() == 1


def test_one_address_trying_many_names_is_stopped_and_audited_in_one_row(app, alice, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_THROTTLE_MAX", 2)  # per address: 4 × 2 (fewer Argon2 runs)
    sprayer = client_at(app, ATTACKER)
    for i in range(8):
        assert login_at(sprayer, f"user{i}", "Summer2026!").status_code == 401
    for i in range(8, 13):
        r = login_at(sprayer, f"user{i}", "Summer2026!")
        assert r.status_code == 429 and "Too many failed logins from your address" in r.get_data(as_text=True)
    # Another address is not affected, nor is alice.
    assert login_at(client_at(app, ELSEWHERE), "user12", "Summer2026!").status_code == 401
    assert login_at(client_at(app, ALICE_HOME), "alice").status_code == 302

    rows = [r for r in failed_login_rows() if r.ip_address == ATTACKER]
    assert len(rows) == 1
    after = rows[0].after
    assert (after["failed"], after["refused"], len(after["user names"]), after["more names"]) == (8, 5, 10, 3)
    assert "8 failed login(s) from 10.0.0.66 for user0, user1" in rows[0].summary
    assert "and 3 more; 5 more refused" in rows[0].summary


def test_many_addresses_guessing_one_name_slow_it_down_but_never_lock_it(app, alice, waits, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_THROTTLE_MAX", 2)  # the wait starts after 4 × 2 failures
    for n in range(5):  # 10 guesses from 5 addresses, 2 each (the most one address may make)
        c = client_at(app, f"192.0.2.{n + 1}")
        for _ in range(2):
            assert login_at(c, "alice", "wrong-password-123").status_code == 401
    assert waits == [0.5, 1]  # the 9th and 10th guess waited
    r = login_at(client_at(app, ALICE_HOME), "alice")  # the real user: slower, but in
    assert r.status_code == 302
    assert waits == [0.5, 1, 2]
    # The wait belongs to the name, not to everyone.
    assert login_at(client_at(app, ELSEWHERE), "bob", "wrong-password-123").status_code == 401
    assert waits == [0.5, 1, 2]


def test_the_wait_for_a_name_doubles_up_to_a_ceiling():
    assert [accounts.name_delay(n, 5) for n in (0, 19, 20, 21, 22, 23, 24, 25, 10_000)] == \
        [0, 0, 0.5, 1, 2, 4, 5, 5, 5]


def test_x_forwarded_for_is_ignored_without_app_behind_proxy(app, alice):
    c = client_at(app, ATTACKER)
    for i in range(5):
        login_at(c, "alice", "wrong-password-123", headers={"X-Forwarded-For": f"203.0.113.{i}"})
    r = login_at(c, "alice", PASSWORD, headers={"X-Forwarded-For": ALICE_HOME})
    assert r.status_code == 429  # a header can't make it another address
    assert {row.ip_address for row in failed_login_rows()} == {ATTACKER}


def test_behind_a_trusted_proxy_the_forwarded_address_counts(app, alice):
    proxied = app_behind_proxy(app)
    proxy = client_at(proxied, "127.0.0.1")  # every request comes from the proxy
    for _ in range(5):
        login_at(proxy, "alice", "wrong-password-123", headers={"X-Forwarded-For": ATTACKER})
    r = login_at(proxy, "alice", PASSWORD, headers={"X-Forwarded-For": ATTACKER})
    assert r.status_code == 429
    r = login_at(proxy, "alice", PASSWORD, headers={"X-Forwarded-For": ALICE_HOME})
    assert r.status_code == 302
    assert {row.ip_address for row in failed_login_rows()} == {ATTACKER}


def test_over_real_http_an_attacker_address_does_not_lock_out_the_user(app, alice, live_server):
    """End to end: the server on a socket; 50 failed logins from 127.0.0.1, then alice from 127.0.0.2."""
    attacker = http_from("127.0.0.1")
    answers = [http_login(attacker, live_server, "alice", "wrong-password-123") for _ in range(50)]
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 45
    assert "Try again in 15 minutes" in answers[-1].text

    alice_browser = http_from("127.0.0.2")
    r = http_login(alice_browser, live_server, "alice")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    dashboard = alice_browser.get(live_server + "/", allow_redirects=False, timeout=30)
    assert dashboard.status_code == 200 and "alice" in dashboard.text
    [row] = failed_login_rows()
    assert (row.ip_address, row.after["failed"], row.after["refused"]) == ("127.0.0.1", 5, 45)
