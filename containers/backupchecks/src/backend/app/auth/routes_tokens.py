"""API tokens in the user menu (/auth/profile/tokens): make one (shown once), list one's own, revoke
one. Every logged-in role, the portal too. The rules are in services/api_tokens.py; admins see and
revoke everyone's tokens on Settings → API tokens (main/routes_api_tokens.py)."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from ..models import utcnow
from ..route_helpers import commit_or_flash, render_no_store
from ..security import SIGNED_IN, roles_required
from ..services import api_tokens
from ..services.settings import ui_zone
from .blueprint import auth_bp

# Every logged-in user (security.SIGNED_IN: the staff roles and the portal); a portal user's tokens
# see what the portal user sees.
TOKEN_HOLDERS = SIGNED_IN


def _page(*, new=None, form=None, error=None, status=200):
    now = utcnow()
    tokens = api_tokens.tokens_of(current_user)
    # The page that shows a new secret must not be kept by the browser's cache or a proxy.
    return render_no_store("auth/api_tokens.html", status, tokens=[(t, api_tokens.state(t, now)) for t in tokens],
                           new=new, form=form or {}, error=error, may_write=api_tokens.may_write(current_user),
                           zone=ui_zone().key)


@auth_bp.route("/profile/tokens", methods=["GET"])
@roles_required(*TOKEN_HOLDERS)
def api_tokens_page():
    return _page()


@auth_bp.route("/profile/tokens", methods=["POST"])
@roles_required(*TOKEN_HOLDERS)
def api_token_create():
    form = request.form
    with commit_or_flash(ValueError, message=None) as saved:
        new = api_tokens.issue(current_user, form.get("name", ""), read_only=form.get("access") != "read-write",
                               expires_on=form.get("expires_on"), actor=current_user)
    if saved.failed:
        return _page(form=form, error=str(saved.error), status=400)
    return _page(new=new)


@auth_bp.route("/profile/tokens/<id:token_id>/revoke", methods=["POST"])
@roles_required(*TOKEN_HOLDERS)
def api_token_revoke(token_id: int):
    token = api_tokens.token_of(current_user, token_id)
    if token is None:
        abort(404)  # another user's token looks the same as no token
    name = token.name
    with commit_or_flash():
        done = api_tokens.revoke(token, actor=current_user)
    flash(f"API token '{name}' revoked: it no longer works." if done else f"API token '{name}' was already revoked.",
          "success" if done else "info")
    return redirect(url_for("auth.api_tokens_page"))
