"""User management (admin): create (staff or portal users), roles, a portal user's customers,
invitations to the portal, reset password, deactivate, delete."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import User, utcnow
from ..route_helpers import commit_or_flash, render_no_store
from ..security import keep_session, roles_required
from ..services import accounts, customers, invitations, two_factor
from ..web import form_ids
from .blueprint import main_bp


def _users_page(new_invitation=None, new_link=None):
    """The Users page; never cached (``render_no_store``): it shows a new invitation's link once."""
    return render_no_store("main/users.html", users=accounts.list_users(), section="users",
                           two_factor_roles=two_factor.required_roles(),
                           two_factor_remember=two_factor.remember_allowed(),
                           customer_choices=customers.choices(), invitations=invitations.listed(),
                           invitation_state=lambda inv: invitations.state_of(inv, utcnow()),
                           new_invitation=new_invitation, new_link=new_link,
                           valid_days=invitations.VALID_FOR.days)


@main_bp.route("/settings/users")
@roles_required("admin")
def users():
    return _users_page()


@main_bp.route("/settings/users/two-factor", methods=["POST"])
@roles_required("admin")
def users_two_factor_policy():
    """Who must have two-factor authentication, and whether a browser may be remembered for 30 days."""
    with commit_or_flash():
        changed = two_factor.set_policy(request.form.getlist("two_factor_roles"),
                                        request.form.get("two_factor_remember") == "1", actor=current_user)
    flash("Two-factor policy saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("main.users"))


def _portal_fields() -> dict:
    """The portal fields of a form: the customers (a multi-select) and "may see mail bodies"."""
    return {"customer_ids": form_ids("customer_ids"), "mail_bodies": request.form.get("mail_bodies") == "1"}


@main_bp.route("/settings/users/new", methods=["POST"])
@roles_required("admin")
def user_create():
    with commit_or_flash(accounts.AccountError, message="User not created: {error}") as saved:
        user = accounts.create_user(request.form.get("username", ""), request.form.get("password", ""),
                                    request.form.getlist("roles"), actor=current_user, **_portal_fields())
    if not saved.failed:
        flash(f"User {user.username} created.", "success")
    return redirect(url_for("main.users"))


@main_bp.route("/settings/users/<id:user_id>", methods=["POST"])
@roles_required("admin")
def user_update(user_id: int):
    user = db.get_or_404(User, user_id)
    action = request.form.get("action")
    with commit_or_flash(accounts.AccountError, message="Not changed: {error}") as saved:
        if action == "roles":
            accounts.set_roles(user, request.form.getlist("roles"), actor=current_user, **_portal_fields())
            message = f"Roles of {user.username} saved."
        elif action == "portal":
            changed = accounts.set_portal_access(user, actor=current_user, **_portal_fields())
            message = (f"Customers of {user.username} saved: they see only those from their next page on."
                       if changed else "Nothing changed.")
        elif action == "password":
            accounts.set_password(user, request.form.get("password", ""), actor=current_user)
            message = f"Password of {user.username} reset; their open sessions have ended."
        elif action in ("deactivate", "activate"):
            accounts.set_active(user, action == "activate", actor=current_user)
            message = f"{user.username} {action}d." + (" Their open sessions have ended." if action == "deactivate" else "")
        elif action == "reset_2fa":
            two_factor.admin_reset(user, actor=current_user)
            message = (f"Two-factor authentication of {user.username} reset; their open sessions have ended. "
                       "They enrol again when their role requires it.")
        elif action == "delete":
            name = user.username
            accounts.delete_user(user, actor=current_user)
            message = f"User {name} deleted."
        else:
            raise accounts.AccountError("Unknown action.")
    if saved.failed:
        return redirect(url_for("main.users"))
    if action != "delete":
        keep_session(user)  # an admin changing their own roles or password stays logged in here
    flash(message, "success")
    return redirect(url_for("main.users"))


@main_bp.route("/settings/users/invitations", methods=["POST"])
@roles_required("admin")
def invitation_create():
    """A portal invitation: the page shows its link once (only its hash is stored)."""
    with commit_or_flash(accounts.AccountError, message="No invitation made: {error}") as saved:
        invitation, secret = invitations.create(note=request.form.get("note", ""), actor=current_user,
                                                **_portal_fields())
    if saved.failed:
        return redirect(url_for("main.users") + "#invitations")
    link = url_for("auth.invitation", token=secret, _external=True)
    return _users_page(new_invitation=invitation, new_link=link)


@main_bp.route("/settings/users/invitations/<id:invitation_id>/revoke", methods=["POST"])
@roles_required("admin")
def invitation_revoke(invitation_id: int):
    invitation = invitations.get(invitation_id)
    if invitation is None:
        abort(404)
    with commit_or_flash():
        revoked = invitations.revoke(invitation, actor=current_user)
    flash(f"Invitation #{invitation.id} revoked: its link no longer works." if revoked
          else f"Invitation #{invitation.id} was no longer open.", "success" if revoked else "info")
    return redirect(url_for("main.users") + "#invitations")
