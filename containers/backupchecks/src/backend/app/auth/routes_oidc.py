"""Single sign-on (OpenID Connect): start, the provider's callback, and the page of a pending account.
The rules are in services/oidc.py; the login ends in routes.finish_login like a password login."""
from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from flask_login import current_user

from ..security import client_address, public
from ..services import oidc
from .blueprint import auth_bp
from .routes import finish_login

PENDING_KEY = "_oidc_pending"


def _redirect_uri() -> str:
    return url_for("auth.oidc_callback", _external=True)


def _refused(exc: oidc.SsoRefused):
    oidc.record_refusal(exc, client_address())
    return render_template("auth/sso_refused.html", message=str(exc)), 403


@auth_bp.route("/oidc/start")
@public
def oidc_start():
    """Send the browser to the provider (code flow with PKCE, state and nonce kept in the session)."""
    try:
        url, pending = oidc.begin(_redirect_uri(), request.args.get("next") or "")
    except oidc.SsoRefused as exc:
        return _refused(exc)
    session[PENDING_KEY] = pending
    return redirect(url)


@auth_bp.route("/oidc/callback")
@public
def oidc_callback():
    """The provider sends the browser back here with a GET (response_mode query), a top-level
    navigation, so the SameSite=Lax session cookie (and the pending state in it) comes along."""
    pending = session.pop(PENDING_KEY, None)  # one use: a replayed callback finds nothing
    try:
        user = oidc.finish(pending, request.args, _redirect_uri())
    except oidc.SsoRefused as exc:
        return _refused(exc)
    return finish_login(user, method="sso", next_url=(pending or {}).get("next"))


@auth_bp.route("/pending")
@public
def pending():
    """A signed-in account without a role waits here until an admin gives it one."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role_list:
        return redirect(url_for("main.dashboard"))
    return render_template("auth/pending.html")
