"""Settings → API tokens (admin): every user's API tokens, and revoking any of them. A user makes
and revokes their own in the user menu (auth/routes_tokens.py); the rules are in services/api_tokens.py."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from ..extensions import db
from ..models import ApiToken, utcnow
from ..route_helpers import commit_or_flash
from ..security import roles_required
from ..services import api_tokens
from .blueprint import main_bp


@main_bp.route("/settings/api-tokens")
@roles_required("admin")
def all_api_tokens():
    now = utcnow()
    rows = [(t, api_tokens.state(t, now)) for t in api_tokens.all_tokens()]
    return render_template("main/api_tokens.html", tokens=rows, section="api_tokens")


@main_bp.route("/settings/api-tokens/<id:token_id>/revoke", methods=["POST"])
@roles_required("admin")
def api_token_admin_revoke(token_id: int):
    token = db.get_or_404(ApiToken, token_id)
    name, owner = token.name, token.user.username
    with commit_or_flash():
        done = api_tokens.revoke(token, actor=current_user)
    flash(f"API token '{name}' of {owner} revoked: it no longer works." if done
          else f"API token '{name}' of {owner} was already revoked.", "success" if done else "info")
    return redirect(url_for("main.all_api_tokens"))
