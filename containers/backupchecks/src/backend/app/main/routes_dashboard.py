"""The dashboard (/): today's counts, the 30-day success rate, the last import and news.
Admins post, edit and delete news here."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..route_helpers import commit_or_flash, flash_changed, or_404
from ..security import SIGNED_IN, has_role, roles_required
from ..services import news, scope
from ..services.dashboard import dashboard_data, portal_dashboard_data
from ..services.settings import ui_zone
from .blueprint import main_bp


def _render_dashboard(status: int = 200, form: dict | None = None, errors: dict | None = None):
    data = dashboard_data(include_all_news=has_role("admin"))
    return render_template("main/dashboard.html", data=data, news_form=form or {}, news_errors=errors or {},
                           to_local_input=lambda v: news.to_local_input(v, ui_zone())), status


def _to_news():
    return redirect(url_for("main.dashboard") + "#news")


@main_bp.route("/")
@roles_required(*SIGNED_IN)
def dashboard():
    if scope.is_portal(current_user):  # a customer's own staff: only their customers, no news, no totals
        return render_template("main/portal_dashboard.html", data=portal_dashboard_data(current_user))
    return _render_dashboard()


@main_bp.route("/news", methods=["POST"])
@roles_required("admin")
def news_create():
    try:
        data = news.parse_form(request.form, ui_zone())
    except news.NewsError as exc:
        flash("The news item was not posted: " + str(exc), "danger")
        return _render_dashboard(400, form=request.form, errors=exc.errors)
    with commit_or_flash():
        item = news.create(data, current_user)
    flash(f"News '{item.title}' posted.", "success")
    return _to_news()


def _item_or_404(news_id: int):
    return or_404(news.get(news_id), "That news item no longer exists. It may have been deleted.")


@main_bp.route("/news/<id:news_id>/edit", methods=["GET", "POST"])
@roles_required("admin")
def news_edit(news_id: int):
    item = _item_or_404(news_id)
    zone = ui_zone()
    if request.method == "POST":
        try:
            data = news.parse_form(request.form, zone)
        except news.NewsError as exc:
            flash("Nothing was saved: " + str(exc), "danger")
            return render_template("main/news_form.html", item=item, form=request.form, errors=exc.errors), 400
        with commit_or_flash():
            changed = news.update(item, data, current_user)
        flash_changed(changed, f"News '{item.title}' saved.")
        return _to_news()
    form = {"title": item.title, "body": item.body,
            "visible_from": news.to_local_input(item.visible_from, zone),
            "visible_until": news.to_local_input(item.visible_until, zone)}
    return render_template("main/news_form.html", item=item, form=form, errors={})


@main_bp.route("/news/<id:news_id>/delete", methods=["POST"])
@roles_required("admin")
def news_delete(news_id: int):
    item = _item_or_404(news_id)
    title = item.title
    with commit_or_flash():
        news.delete(item, current_user)
    flash(f"News '{title}' deleted.", "success")
    return _to_news()
