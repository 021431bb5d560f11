"""`flask create-user`: ops create users and recover access."""
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
