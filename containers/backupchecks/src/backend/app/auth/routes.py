"""Login, logout, first-run setup, profile and role switching."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..route_helpers import commit_or_flash
from ..security import (EVERYONE, SIGNED_IN, client_address, end_session, keep_session, public, roles_required,
                        safe_next, start_session)
from ..services import accounts, audit, invitations, oidc, two_factor
from .blueprint import auth_bp
from .forms import InvitationForm, LoginForm, PasswordForm, RoleSwitchForm, SetupForm, ThemeForm


@auth_bp.route("/setup", methods=["GET", "POST"])
@public
def setup():
    """Create the first admin; once any user exists this page is closed."""
    if accounts.has_users():
        flash("Backupchecks is already set up. Log in, or ask an admin for an account.", "info")
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        with commit_or_flash(accounts.AccountError, message=None) as saved:
            user = accounts.create_first_admin(form.username.data, form.password.data)
        if isinstance(saved.error, accounts.SetupClosed):
            flash(str(saved.error), "info")
            return redirect(url_for("auth.login"))
        if saved.failed:
            form.password.errors.append(str(saved.error))
        else:
            start_session(user)
            flash(f"Welcome, {user.username}. You are the first admin. Next: Settings → Mail.", "success")
            return redirect(url_for("main.dashboard"))
    return render_template("auth/setup.html", form=form)


@auth_bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    error = None
    status = 200
    headers = {}
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                user = accounts.authenticate(form.username.data, form.password.data, client_address())
            except accounts.LoginThrottled as exc:
                error, status = str(exc), 429
                headers["Retry-After"] = str(exc.retry_after)
            except accounts.AccountError as exc:
                error, status = str(exc), 401
            else:
                return finish_login(user, method="password", next_url=request.args.get("next"))
        else:
            error, status = "Enter your user name and password.", 400
    return render_template("auth/login.html", form=form, error=error, sso=oidc.current_config()), status, headers


def finish_login(user, *, method: str, next_url=None):
    """The one step after a user proved who they are (password or single sign-on): note the
    login (accounts.complete_login); then the second factor when the user has one or must have one
    (unless this browser is remembered), else a new session and the page asked for."""
    next_url = safe_next(next_url)
    accounts.complete_login(user, method=method)
    if two_factor.needs_second_factor(user) and not two_factor.is_remembered(
            user, request.cookies.get(two_factor.REMEMBER_COOKIE)):
        two_factor.begin_second_step(user, next_url)
        return redirect(url_for("auth.two_factor_enrol" if not user.has_two_factor else "auth.two_factor_step"))
    start_session(user)
    return redirect(next_url)


@auth_bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def invitation(token: str):
    """A portal invitation's link: choose a user name and password, then land in the portal.
    Unknown link: 404; used, revoked or expired: 410 with what to do."""
    try:
        invitations.find(token)
    except invitations.InvitationError as exc:
        return render_template("auth/invitation.html", form=None, refused=str(exc)), (
            404 if exc.state == "unknown" else 410)
    form = InvitationForm()
    if form.validate_on_submit():
        with commit_or_flash(accounts.AccountError, message=None) as saved:
            user = invitations.accept(token, form.username.data, form.password.data)
        if isinstance(saved.error, invitations.InvitationError):
            return render_template("auth/invitation.html", form=None, refused=str(saved.error)), 410
        if saved.failed:
            form.password.errors.append(str(saved.error))
        else:
            if current_user.is_authenticated:
                end_session()  # whoever was logged in in this browser: the new account takes over
            flash(f"Welcome, {user.username}. This is the status of your backups.", "success")
            return finish_login(user, method="invitation", next_url=url_for("main.dashboard"))
    return render_template("auth/invitation.html", form=form, refused=None)


@auth_bp.route("/logout", methods=["GET", "POST"])
@public
def logout():
    """POST (with the CSRF token, as the user menu sends it) logs out; GET only shows a button,
    so a link or an image on another page can't log anyone out."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        return render_template("auth/logout.html")
    if current_user.is_authenticated:
        with commit_or_flash():
            accounts.log_out(current_user)
    end_session()  # also ends a half-done second step (the session is cleared)
    flash("You are logged out, on every device.", "info")
    return redirect(url_for("auth.login"))


@auth_bp.route("/profile", methods=["GET", "POST"])
@roles_required(*SIGNED_IN)
def profile():
    pw_form = PasswordForm(prefix="pw")
    theme_form = ThemeForm(prefix="theme", theme=current_user.theme)
    if request.method == "POST":
        section = request.form.get("section")
        if section == "password" and pw_form.validate_on_submit():
            if not accounts.verify_password(current_user, pw_form.current.data):
                pw_form.current.errors.append("The current password is wrong.")
            else:
                with commit_or_flash(accounts.AccountError, message=None) as saved:
                    accounts.set_password(current_user, pw_form.password.data, actor=current_user,
                                          event="user.password_change")
                if saved.failed:
                    pw_form.password.errors.append(str(saved.error))
                else:
                    keep_session(current_user)
                    flash("Your password was changed. Your other sessions have ended.", "success")
                    return redirect(url_for("auth.profile"))
        elif section == "theme" and theme_form.validate_on_submit():
            before = current_user.theme
            with commit_or_flash():
                current_user.theme = theme_form.theme.data
                audit.record("user.theme", f"Theme {before} → {current_user.theme}", target_type="user",
                             target_id=current_user.id, before={"theme": before}, after={"theme": current_user.theme})
            flash(f"Theme set to {current_user.theme}.", "success")
            return redirect(url_for("auth.profile"))
        elif section == "digest" and not current_user.is_portal:  # the digest covers every customer
            from ..services import digest_delivery

            with commit_or_flash(digest_delivery.DigestError, message=None) as saved:
                changed = digest_delivery.save_subscription(current_user, request.form)
            if saved.failed:
                return _profile_page(pw_form, theme_form, digest_form=request.form,
                                     digest_error=str(saved.error)), 400
            flash("Morning digest saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("auth.profile"))
    return _profile_page(pw_form, theme_form)


def _profile_page(pw_form, theme_form, **extra):
    return render_template("auth/profile.html", pw_form=pw_form, theme_form=theme_form,
                           recovery_left=two_factor.recovery_codes_left(current_user)
                           if current_user.has_two_factor else 0,
                           two_factor_required=two_factor.required_for(current_user), **extra)


@auth_bp.route("/switch-role", methods=["POST"])
@login_required
@roles_required(*EVERYONE)
def switch_role():
    form = RoleSwitchForm()
    role = request.form.get("role", "")
    if not form.validate_on_submit() or role not in current_user.role_list:
        abort(400, "You don't hold that role.")
    before = current_user.current_role
    with commit_or_flash():
        current_user.active_role = role
        audit.record("user.switch_role", f"Active role {before} → {role}", target_type="user",
                     target_id=current_user.id, before={"active_role": before}, after={"active_role": role})
    flash(f"You now work as {role}.", "success")
    return redirect(url_for("main.dashboard"))
