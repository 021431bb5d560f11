"""Command line: `flask --app backend.app <command>`."""
from __future__ import annotations

import sys

import click
from flask import Flask

from .extensions import db


def init_app(app: Flask) -> None:
    app.cli.add_command(create_user_cmd)
    app.cli.add_command(reset_2fa_cmd)
    app.cli.add_command(create_token_cmd)
    app.cli.add_command(list_tokens_cmd)
    app.cli.add_command(revoke_token_cmd)
    app.cli.add_command(import_mail_cmd)
    app.cli.add_command(import_eml_cmd)
    app.cli.add_command(rotate_secrets_cmd)
    app.cli.add_command(digest_cmd)
    app.cli.add_command(notify_cmd)
    app.cli.add_command(smtpd_cmd)


@click.command("import-mail")
@click.option("--batch-size", type=int, default=None, help="Messages to fetch (default: the Imports setting).")
def import_mail_cmd(batch_size):
    """Run one mail import cycle from Microsoft Graph and print the counts."""
    from .services.importer import ImportBusy, run_import_cycle

    try:
        cycle = run_import_cycle(trigger="cli", batch_size=batch_size)
    except ImportBusy as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"fetched={cycle.fetched} new={cycle.new} duplicates={cycle.duplicates} "
               f"auto_processed={cycle.auto_processed} to_inbox={cycle.to_inbox} failed={cycle.failed}")
    if cycle.error:
        click.echo(f"error: {cycle.error}", err=True)
    if cycle.state == "failed":
        sys.exit(1)


@click.command("import-eml")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def import_eml_cmd(files):
    """Import .eml files through the same pipeline as the mailbox (duplicates are skipped)."""
    from .services.importer import import_raw_files

    loaded = []
    for path in files:
        with open(path, "rb") as fh:
            loaded.append((path, fh.read()))
    result = import_raw_files(loaded, source="cli")
    for name, state, error in result["files"]:
        click.echo(f"{name}: {state}{' - ' + error if error else ''}")
    click.echo(f"new={result['new']} duplicates={result['duplicates']} auto_processed={result['auto_processed']} "
               f"to_inbox={result['to_inbox']} failed={result['failed']}")
    if result["failed"]:
        sys.exit(1)


@click.command("smtpd")
def smtpd_cmd():
    """Run the built-in SMTP receiver in the foreground (SMTP_LISTEN); SIGTERM or Ctrl+C stops it."""
    import os

    from flask import current_app

    from .mail.smtpd import Receiver, ReceiverError
    from .services.smtp_receiver import describe

    cfg = current_app.config.get("SMTP_RECEIVER")
    if cfg is None:
        raise click.ClickException("The SMTP receiver is off: set SMTP_LISTEN=host:port and SMTP_ALLOWED_DOMAINS "
                                   "(docs/configuration.md).")
    receiver = Receiver(current_app._get_current_object(), cfg)
    try:
        receiver.run(on_ready=lambda: click.echo(
            f"Backupchecks SMTP receiver {current_app.config.get('APP_VERSION', '')} (process {os.getpid()}): "
            f"{describe(cfg)}; SIGTERM or Ctrl+C stops it."))
    except ReceiverError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Backupchecks SMTP receiver stopped.")


@click.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              help="admin, operator, reporter or viewer (repeat for several), or portal alone.")
@click.option("--customer", "customers", multiple=True, type=int,
              help="A portal user's customer (its id); repeat for several.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
def create_user_cmd(username: str, roles: tuple[str, ...], customers: tuple[int, ...], password_stdin: bool) -> None:
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
            if existing.is_portal:
                existing.customers = accounts.portal_customers(customers)
            existing.is_active_user = True
            audit.record("cli.user_update", f"create-user updated {existing.username}: roles {', '.join(existing.role_list)}, active",
                         username="cli", target_type="user", target_id=existing.id, after={"roles": existing.role_list})
            db.session.commit()
            click.echo(f"Updated user {existing.username}: roles {', '.join(existing.role_list)}; password reset.")
        else:
            user = accounts.create_user(username, password, roles, actor=None, customer_ids=customers)
            db.session.commit()
            click.echo(f"Created user {user.username} with roles {', '.join(user.role_list)}.")
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc


@click.command("reset-2fa")
@click.argument("username")
def reset_2fa_cmd(username: str) -> None:
    """Switch off a user's two-factor authentication (a lost phone, no recovery codes, no other admin)."""
    from sqlalchemy import func, select

    from .models import User
    from .services import two_factor

    user = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user named '{username}'.")
    two_factor.admin_reset(user, actor=None, actor_name="cli")
    db.session.commit()
    click.echo(f"Two-factor authentication of {user.username} reset; their sessions have ended.")


def _refuse(message: str) -> None:
    """A refused command: the reason on standard error, exit 2 (bad input, unknown user or token)."""
    db.session.rollback()
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _user_named(username: str):
    from sqlalchemy import func, select

    from .models import User

    user = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()
    if user is None:
        _refuse(f"No user named '{username}'.")
    return user


@click.command("create-token")
@click.argument("username")
@click.option("--name", required=True, help="What will use the token, e.g. 'nightly check'.")
@click.option("--read-only", is_flag=True, help="Only read (required for a viewer, reporter or portal user).")
@click.option("--expires", default=None, metavar="YYYY-MM-DD",
              help="Last day it works (UI timezone); default: it does not expire.")
def create_token_cmd(username: str, name: str, read_only: bool, expires) -> None:
    """Make an API token for USERNAME and print only the token (shown once) on standard output."""
    from .services import api_tokens

    user = _user_named(username)
    try:
        new = api_tokens.issue(user, name, read_only=read_only, expires_on=expires if expires is not None else "",
                               actor_name="cli")
    except ValueError as exc:
        _refuse(str(exc))
    db.session.commit()
    click.echo(new.secret)


@click.command("list-tokens")
@click.argument("username")
def list_tokens_cmd(username: str) -> None:
    """List USERNAME's API tokens: id, state, access, prefix, expiry, last use, name (tab-separated)."""
    from .models import utcnow
    from .services import api_tokens

    def when(value) -> str:
        return value.isoformat(timespec="seconds") if value else "-"

    user = _user_named(username)
    now = utcnow()
    for t in api_tokens.tokens_of(user):
        click.echo("\t".join([str(t.id), api_tokens.state(t, now), "read-only" if t.read_only else "read-write",
                              t.prefix, when(t.expires_at), when(t.last_used_at), t.name]))


@click.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token_cmd(token_id: int) -> None:
    """Revoke the API token with this id (see list-tokens); it stops working at once."""
    from .models import ApiToken
    from .services import api_tokens

    token = db.session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if token is None:
        _refuse(f"No API token with id {token_id}.")
    done = api_tokens.revoke(token, actor_name="cli")
    db.session.commit()
    click.echo(f"API token {token.id} '{token.name}' of {token.user.username} "
               f"{'revoked' if done else 'was already revoked'}.")


@click.command("rotate-secrets")
def rotate_secrets_cmd() -> None:
    """Encrypt the stored secrets again with the first key of APP_ENCRYPTION_KEY.

    Rotation: set APP_ENCRYPTION_KEY="new,old", restart, run this, then drop the old key."""
    from .services.settings import SettingsError, rotate_stored_secrets

    try:
        done, unreadable = rotate_stored_secrets(username="cli")
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if done:
        click.echo(f"Re-encrypted with the first key of APP_ENCRYPTION_KEY: {', '.join(done)}.")
    elif not unreadable:
        click.echo("No secrets are stored in the database; nothing to do.")
    if unreadable:
        click.echo(f"Not readable with any key of APP_ENCRYPTION_KEY, left as they are: {', '.join(unreadable)}. "
                   "Add the key they were stored with, or enter them again on the Settings page.", err=True)
        sys.exit(1)
    click.echo("The old key(s) can now be removed from APP_ENCRYPTION_KEY.")


@click.command("digest")
@click.option("--print", "print_", is_flag=True, help="Print the digest (required: it is not sent from here).")
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD",
              help="The local day (UI timezone) to report on; default yesterday, the night's backups.")
@click.option("--html", is_flag=True, help="Print the mail's HTML part instead of the text.")
@click.option("--base-url", default=None, metavar="URL",
              help="Backupchecks address for the links (default: Settings → Autotask's Backupchecks URL; "
                   "relative links without one).")
def digest_cmd(print_: bool, day, html: bool, base_url) -> None:
    """Print the morning digest: the day's failed, missed and warning jobs per customer."""
    from .services import digest
    from .services.timezones import check_day_in_range, parse_day

    if not print_:
        raise click.UsageError("Nothing to do: add --print to print the digest.")
    parsed = None
    if day is not None:
        try:
            parsed = check_day_in_range(parse_day(day or "-"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--date") from None
    if base_url is not None:
        base_url = base_url.strip().rstrip("/")
        if base_url and not base_url.lower().startswith(("http://", "https://")):
            raise click.BadParameter("use an address starting with http:// or https://.", param_hint="--base-url")
    else:
        base_url = digest.default_base_url()
    result = digest.build_digest(parsed, base_url=base_url or None)
    click.echo(digest.render_html(result) if html else digest.render_text(result), nl=False)
@click.command("notify")
@click.option("--test", "url", required=True, metavar="URL",
              help="Send one test message to this Apprise URL (an http(s) URL gets a JSON webhook POST).")
def notify_cmd(url: str) -> None:
    """Send a test notification; exits 0 only when it was delivered."""
    from .services.notifications.channels import ChannelError, check_url, kind_for_url, send_test

    kind = kind_for_url(url)
    try:
        url = check_url(kind, url)
    except ChannelError as exc:
        click.echo(f"Not sent: {exc}", err=True)
        sys.exit(1)
    result = send_test(kind, url)
    if result.sent:
        click.echo("Delivered.")
        return
    click.echo(f"Not delivered: {result.error}", err=True)
    sys.exit(1)
