"""`flask create-user`: ops create users and recover access."""
import pytest
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import User

from .conftest import login, make_user


def test_create_user_with_password_from_stdin(app):
    r = app.test_cli_runner().invoke(args=["create-user", "opsadmin", "--role", "admin", "--role", "operator",
                                           "--password-stdin"], input="a-long-password-1\n")
    assert r.exit_code == 0, r.output
    assert "Created user opsadmin with roles admin, operator" in r.output
    user = db.session.execute(select(User).where(User.username == "opsadmin")).scalar_one()
    assert user.role_list == ["admin", "operator"]
    assert login(app.test_client(), "opsadmin", "a-long-password-1").status_code == 302


def test_create_user_recovers_access_to_an_existing_account(app):
    make_user("locked", roles=("viewer",), active=False)
    r = app.test_cli_runner().invoke(args=["create-user", "locked", "--role", "admin", "--password-stdin"],
                                     input="recovered-password\n")
    assert r.exit_code == 0 and "password reset" in r.output
    assert login(app.test_client(), "locked", "recovered-password").status_code == 302


def test_bad_role_or_short_password_is_a_clear_error(app):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["create-user", "x", "--role", "root", "--password-stdin"], input="a-long-password-1\n")
    assert r.exit_code != 0 and "Unknown role" in r.output
    r = runner.invoke(args=["create-user", "x", "--role", "viewer", "--password-stdin"], input="short\n")
    assert r.exit_code != 0 and "at least 10" in r.output
    assert db.session.execute(select(User)).first() is None


def test_create_user_makes_a_portal_user_bound_to_customers(app):
    from .conftest import make_customer

    acme = make_customer("Acme Portal")
    db.session.commit()
    runner = app.test_cli_runner()
    r = runner.invoke(args=["create-user", "pat", "--role", "portal", "--customer", str(acme.id), "--password-stdin"],
                      input="a-long-password-1\n")
    assert r.exit_code == 0, r.output
    pat = db.session.execute(select(User).where(User.username == "pat")).scalar_one()
    assert pat.role_list == ["portal"] and [c.name for c in pat.customers] == ["Acme Portal"]
    r = runner.invoke(args=["create-user", "pete", "--role", "portal", "--password-stdin"], input="a-long-password-1\n")
    assert r.exit_code != 0 and "Choose at least one customer" in r.output


# --- API tokens: create-token, list-tokens, revoke-token -------------------------------------------

def test_create_token_prints_only_a_token_the_api_accepts(app):
    from backend.app.services import api_tokens

    make_user("scripter", roles=("operator",))
    db.session.commit()
    r = app.test_cli_runner().invoke(args=["create-token", "scripter", "--name", "nightly check"])
    assert r.exit_code == 0, r.output
    assert r.stderr == "" and len(r.stdout.splitlines()) == 1
    secret = r.stdout.strip()
    token = api_tokens.authenticate(secret)
    assert token.user.username == "scripter" and token.name == "nightly check" and not token.read_only
    assert token.expires_at is None
    from backend.app.models import AuditLog
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "api_token.create")).scalar_one()
    assert entry.username == "cli" and secret not in str(entry.after)


def test_create_token_read_only_with_an_expiry_day(app):
    from datetime import datetime, timedelta, timezone

    from backend.app.services import api_tokens

    from .clock import TEST_NOW

    make_user("wallboard", roles=("viewer",))
    db.session.commit()
    day = (TEST_NOW + timedelta(days=30)).date()
    r = app.test_cli_runner().invoke(args=["create-token", "WALLBOARD", "--name", "NOC", "--read-only",
                                           "--expires", day.isoformat()])
    assert r.exit_code == 0, r.output
    token = api_tokens.authenticate(r.stdout.strip())
    assert token.read_only
    # Until the end of that day in the UI timezone (Europe/Amsterdam, summer time: UTC+2).
    assert token.expires_at == datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=22)


@pytest.mark.parametrize("args,message", [
    (["create-token", "nobody", "--name", "x"], "No user named 'nobody'."),
    (["create-token", "viewer1", "--name", "x"], "can only have read-only tokens"),
    (["create-token", "viewer1", "--name", "x", "--read-only", "--expires", "2020-01-01"], "is in the past"),
    (["create-token", "viewer1", "--name", "x", "--read-only", "--expires", "tomorrow"], "is not a date"),
    (["create-token", "viewer1", "--name", "  ", "--read-only"], "Give the token a name"),
    (["list-tokens", "nobody"], "No user named 'nobody'."),
    (["revoke-token", "999"], "No API token with id 999."),
])
def test_token_commands_refuse_bad_input_with_exit_2_on_stderr(app, args, message):
    make_user("viewer1", roles=("viewer",))
    db.session.commit()
    r = app.test_cli_runner().invoke(args=args)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert message in r.stderr
    from backend.app.models import ApiToken
    assert db.session.execute(select(ApiToken)).first() is None


def test_list_and_revoke_token(app):
    from backend.app.services import api_tokens

    make_user("scripter", roles=("admin",))
    db.session.commit()
    runner = app.test_cli_runner()
    secret = runner.invoke(args=["create-token", "scripter", "--name", "backup check"]).stdout.strip()
    listed = runner.invoke(args=["list-tokens", "scripter"])
    assert listed.exit_code == 0
    token_id, state, access, prefix, expires, used, name = listed.stdout.rstrip("\n").split("\t")
    assert (state, access, prefix, expires, used, name) == ("active", "read-write", secret[:10], "-", "-", "backup check")
    r = runner.invoke(args=["revoke-token", token_id])
    assert r.exit_code == 0 and r.stdout == f"API token {token_id} 'backup check' of scripter revoked.\n"
    with pytest.raises(api_tokens.TokenError):
        api_tokens.authenticate(secret)
    assert runner.invoke(args=["list-tokens", "scripter"]).stdout.split("\t")[1] == "revoked"


def test_create_token_refuses_an_inactive_user(app):
    make_user("gone", roles=("admin",), active=False)
    db.session.commit()
    r = app.test_cli_runner().invoke(args=["create-token", "gone", "--name", "x"])
    assert r.exit_code == 2 and "An inactive user or a user without a role can't have a token." in r.stderr


def test_create_token_refuses_an_expiry_day_out_of_range(app):
    make_user("far", roles=("viewer",))
    db.session.commit()
    r = app.test_cli_runner().invoke(args=["create-token", "far", "--name", "x", "--read-only", "--expires", "3000-01-01"])
    assert r.exit_code == 2 and "3000-01-01 is out of range; choose a date between" in r.stderr
