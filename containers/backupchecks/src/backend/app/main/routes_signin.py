"""Settings → Sign-in (admin): single sign-on with OpenID Connect (``services/oidc.py``)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for

from ..models import STAFF_ROLES
from ..route_helpers import commit_or_flash, render_no_store
from ..security import roles_required
from ..services import oidc
from ..services.settings import SettingsError
from .blueprint import main_bp

ENV_NAMES = {"oidc_issuer": "OIDC_ISSUER", "oidc_tenant_id": "OIDC_TENANT_ID", "oidc_client_id": "OIDC_CLIENT_ID",
             "oidc_client_secret": "OIDC_CLIENT_SECRET", "oidc_allowed_domains": "OIDC_ALLOWED_DOMAINS",
             "oidc_allowed_tenants": "OIDC_ALLOWED_TENANTS"}


def _render(status: int = 200, form=None, error=None):
    values = oidc.form_values()
    typed = dict(form or {})
    typed.pop("oidc_client_secret", None)  # a secret typed in a refused form is not sent back
    ctx = {"section": "signin", "values": {**values, **typed} if form is not None else values,
           "secret_set": values["secret_set"], "env": oidc.env_overrides(), "env_names": ENV_NAMES,
           "roles": STAFF_ROLES, "admins": oidc.admin_choices(), "error": error,
           "callback_url": url_for("auth.oidc_callback", _external=True),
           "issuer": oidc.current_config().issuer}
    return render_no_store("main/signin_settings.html", status, **ctx)


@main_bp.route("/settings/sign-in")
@roles_required("admin")
def signin_settings():
    return _render()


@main_bp.route("/settings/sign-in", methods=["POST"])
@roles_required("admin")
def signin_settings_save():
    with commit_or_flash(SettingsError, message=None) as saved:
        changed = oidc.save_signin(request.form)
    if saved.failed:
        return _render(400, form=request.form, error=str(saved.error))
    flash("Sign-in settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.signin_settings"))
