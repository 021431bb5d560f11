"""Two-factor authentication pages: the code step after the password, enrolment (from the profile, or
forced right after the password when a role requires it), new recovery codes, switching it off.
The rules are in services/two_factor.py."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..route_helpers import commit_or_flash
from ..security import SIGNED_IN, client_address, keep_session, public, roles_required, safe_next
from ..services import accounts, two_factor
from .blueprint import auth_bp


def _code() -> str:
    return (request.form.get("code") or "").strip()[:40]


@auth_bp.route("/two-factor", methods=["GET", "POST"])
@public
def two_factor_step():
    """The second step of the login: the code from the app, or a recovery code."""
    user = two_factor.pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if not user.has_two_factor:
        return redirect(url_for("auth.two_factor_enrol"))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        remember = two_factor.remember_allowed() and request.form.get("remember") == "1"
        try:
            how = two_factor.verify(user, _code(), client_address())
        except accounts.LoginThrottled as exc:
            error, status = str(exc), 429
            headers["Retry-After"] = str(exc.retry_after)
        except accounts.AccountError as exc:
            error, status = str(exc), 401
        else:
            next_url = safe_next(two_factor.pending_next())
            two_factor.complete_second_step(user, how=how)
            if how == "recovery code":
                left = two_factor.recovery_codes_left(user)
                flash(f"You logged in with a recovery code; it is used up ({left} left). "
                      "Make new ones on your profile when few are left.", "warning")
            response = redirect(next_url)
            if remember:
                value, max_age = two_factor.remember_cookie(user)
                response.set_cookie(two_factor.REMEMBER_COOKIE, value, max_age=max_age, httponly=True,
                                    secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                                    samesite="Lax", path="/auth/")
            return response
    return render_template("auth/two_factor.html", user=user, error=error,
                           remember_allowed=two_factor.remember_allowed()), status, headers


def _enrol_page(user, *, pending: bool, error=None, status=200):
    with commit_or_flash(two_factor.TwoFactorError) as saved:
        secret = two_factor.start_enrolment(user)
    if saved.failed:
        return redirect(url_for("auth.profile"))
    return render_template("auth/two_factor_enrol.html", user=user, pending=pending, error=error,
                           secret=two_factor.formatted_secret(secret),
                           qr=two_factor.qr_data_uri(two_factor.provisioning_uri(user)),
                           required=two_factor.required_for(user)), status


def _confirm(user, *, pending: bool):
    """Confirm the enrolment with a code; on success show the recovery codes (once)."""
    with commit_or_flash(accounts.AccountError, message=None) as saved:
        codes = two_factor.confirm_enrolment(user, _code(), client_address())
    if saved.failed:
        status = 429 if isinstance(saved.error, accounts.LoginThrottled) else 400
        return _enrol_page(user, pending=pending, error=str(saved.error), status=status)
    if pending:
        next_url = safe_next(two_factor.pending_next())
        two_factor.complete_second_step(user, how="enrolment")
    else:
        keep_session(user)
        next_url = url_for("auth.profile")
    return render_template("auth/recovery_codes.html", codes=codes, next_url=next_url, enrolled=True)


@auth_bp.route("/two-factor/enrol", methods=["GET", "POST"])
@public
def two_factor_enrol():
    """Enrolment forced right after the password: an admin requires 2FA for the user's role."""
    user = two_factor.pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if user.has_two_factor:
        return redirect(url_for("auth.two_factor_step"))
    if request.method == "POST":
        return _confirm(user, pending=True)
    return _enrol_page(user, pending=True)


@auth_bp.route("/two-factor/setup", methods=["GET", "POST"])
@roles_required(*SIGNED_IN)
def two_factor_setup():
    """Switch 2FA on from the profile."""
    if current_user.has_two_factor:
        flash("Two-factor authentication is already on.", "info")
        return redirect(url_for("auth.profile"))
    if request.method == "POST":
        return _confirm(current_user, pending=False)
    return _enrol_page(current_user, pending=False)


@auth_bp.route("/two-factor/recovery-codes", methods=["POST"])
@roles_required(*SIGNED_IN)
def two_factor_recovery_codes():
    """New recovery codes (needs a current code); shown once."""
    with commit_or_flash(accounts.AccountError, message="No new recovery codes: {error}") as saved:
        codes = two_factor.regenerate_recovery_codes(current_user, _code(), client_address())
    if saved.failed:
        return redirect(url_for("auth.profile"))
    return render_template("auth/recovery_codes.html", codes=codes, next_url=url_for("auth.profile"), enrolled=False)


@auth_bp.route("/two-factor/disable", methods=["POST"])
@roles_required(*SIGNED_IN)
def two_factor_disable():
    """Switch 2FA off with a current code or the password."""
    with commit_or_flash(accounts.AccountError, message="Still on: {error}") as saved:
        two_factor.disable(current_user, client_address(), code=_code(),
                           password=request.form.get("password") or "")
    if not saved.failed:
        keep_session(current_user)
        flash("Two-factor authentication is off. Your other sessions have ended.", "success")
    return redirect(url_for("auth.profile"))

