"""Command line: `flask --app backend.app <command>`."""
from __future__ import annotations

import sys

import click
from flask import Flask

from .extensions import db


def init_app(app: Flask) -> None:
    app.cli.add_command(create_user_cmd)


@click.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              help="admin, operator, reporter or viewer; repeat for several roles.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
def create_user_cmd(username: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create a user, or reset an existing user's password and roles (ops use it to recover access)."""
    from sqlalchemy import func, select

    from .models import User
    from .services import accounts, audit

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    existing = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()
    try:
        if existing:
            accounts.set_password(existing, password, actor=None, event="cli.password_reset")
            existing.role_list = accounts.normalise_roles(roles)
            existing.is_active_user = True
            audit.record("cli.user_update", f"create-user updated {existing.username}: roles {', '.join(existing.role_list)}, active",
                         username="cli", target_type="user", target_id=existing.id, after={"roles": existing.role_list})
            db.session.commit()
            click.echo(f"Updated user {existing.username}: roles {', '.join(existing.role_list)}; password reset.")
        else:
            user = accounts.create_user(username, password, roles, actor=None)
            db.session.commit()
            click.echo(f"Created user {user.username} with roles {', '.join(user.role_list)}.")
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
