"""Feedback (/feedback, every role): list, new item, detail with replies and votes, attachments.

Admin-only actions (status, restore, permanent delete) follow the ACTIVE role.
"""
from __future__ import annotations

import io

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from ..route_helpers import commit_or_flash, or_404
from ..security import EVERYONE, has_role, roles_required, safe_next
from ..services.feedback import (
    ACCEPTED,
    IMAGE_TYPES,
    KINDS,
    MAX_DIMENSION,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_PIXELS,
    SHOW,
    SORTS,
    STATUSES,
    FeedbackError,
    ListFilters,
    Upload,
    add_reply,
    create_item,
    get_attachment,
    get_item,
    item_view,
    list_items,
    may_delete,
    purge,
    restore,
    set_status,
    soft_delete,
    toggle_vote,
)
from .blueprint import main_bp

PER_PAGE = 25


def _is_admin() -> bool:
    return has_role("admin")


def _uploads() -> list[Upload]:
    """The chosen files, each read up to one byte past the limit (enough to know it is too large)."""
    out = []
    for storage in request.files.getlist("attachments"):
        data = storage.stream.read(MAX_FILE_BYTES + 1)
        if not storage.filename and not data:
            continue  # the browser sends an empty part when no file was chosen
        out.append(Upload(storage.filename or "", data))
    return out


def _item_or_404(item_id: int):
    return or_404(get_item(item_id, is_admin=_is_admin()))


def _back(item_id: int | None = None):
    default = url_for("main.feedback_detail", item_id=item_id) if item_id else url_for("main.feedback")
    return redirect(safe_next(request.form.get("next", ""), default, within="/feedback"))


@main_bp.route("/feedback")
@roles_required(*EVERYONE)
def feedback():
    filters = ListFilters.from_args(request.args, is_admin=_is_admin())
    rows, total = list_items(current_user, filters, per_page=PER_PAGE)
    filtered = bool(filters.kind or filters.status or filters.q or filters.show != "active")
    return render_template("main/feedback.html", rows=rows, total=total, page=filters.page, per_page=PER_PAGE,
                           filters=filters, filtered=filtered, kinds=KINDS, statuses=STATUSES,
                           sorts=SORTS, shows=SHOW, is_admin=_is_admin())


@main_bp.route("/feedback/new", methods=["GET", "POST"])
@roles_required(*EVERYONE)
def feedback_new():
    form = {"kind": request.values.get("kind", "bug"), "title": request.form.get("title", ""),
            "description": request.form.get("description", "")}
    if request.method == "POST":
        with commit_or_flash(FeedbackError, message=None) as saved:
            item = create_item(current_user, form["kind"], form["title"], form["description"], _uploads())
        if saved.failed:
            # Keep what was typed; files cannot be refilled by the browser, so the message says so.
            return render_template("main/feedback_new.html", form=form, error=str(saved.error), kinds=KINDS,
                                   limits=_limits()), 400
        flash(f"Feedback #{item.id} '{item.title}' saved. Thank you.", "success")
        return redirect(url_for("main.feedback_detail", item_id=item.id))
    return render_template("main/feedback_new.html", form=form, error=None, kinds=KINDS, limits=_limits())


def _limits() -> dict:
    return {"files": MAX_FILES, "mb": MAX_FILE_BYTES // (1024 * 1024), "accepted": ACCEPTED,
            "side": MAX_DIMENSION, "megapixels": MAX_PIXELS // 1_000_000}


def _detail(item, *, reply_text: str = "", error: str | None = None, status: int = 200):
    view = item_view(current_user, item)
    is_admin = _is_admin()
    return render_template("main/feedback_detail.html", view=view, item=item, kinds=KINDS,
                           statuses=STATUSES, is_admin=is_admin, reply_text=reply_text, error=error,
                           may_delete=may_delete(current_user, item, is_admin=is_admin),
                           limits=_limits()), status


@main_bp.route("/feedback/<id:item_id>")
@roles_required(*EVERYONE)
def feedback_detail(item_id: int):
    return _detail(_item_or_404(item_id))


@main_bp.route("/feedback/<id:item_id>/reply", methods=["POST"])
@roles_required(*EVERYONE)
def feedback_reply(item_id: int):
    item = _item_or_404(item_id)
    body = request.form.get("body", "")
    with commit_or_flash(FeedbackError, message=None) as saved:
        add_reply(current_user, item, body, _uploads())
    if saved.failed:
        return _detail(item, reply_text=body, error=str(saved.error), status=400)
    flash("Reply added.", "success")
    return redirect(url_for("main.feedback_detail", item_id=item.id) + "#replies")


def _change(item_id: int, action) -> bool:
    """Run one change on an item, commit, flash its message; a refused change flashes why and changes nothing."""
    item = _item_or_404(item_id)
    # A conflict is e.g. a double-clicked vote: the unique constraint keeps one.
    with commit_or_flash(FeedbackError, conflict="That change crossed another one made at the same moment, so "
                         "nothing was changed. Reload the page to see the current state.",
                         conflict_category="warning") as saved:
        message = action(item)
    if not saved.failed:
        flash(message, "success")
    return not saved.failed


@main_bp.route("/feedback/<id:item_id>/vote", methods=["POST"])
@roles_required(*EVERYONE)
def feedback_vote(item_id: int):
    def vote(item):
        if toggle_vote(current_user, item):
            return f"Your vote for #{item.id} '{item.title}' is counted."
        return f"Your vote for #{item.id} '{item.title}' is taken back."
    _change(item_id, vote)
    return _back(item_id)


@main_bp.route("/feedback/<id:item_id>/status", methods=["POST"])
@roles_required("admin")
def feedback_status(item_id: int):
    status = request.form.get("status", "")

    def change(item):
        set_status(current_user, item, status, is_admin=_is_admin())
        return f"Status of #{item.id} '{item.title}' set to {STATUSES[status]}."
    _change(item_id, change)
    return _back(item_id)


@main_bp.route("/feedback/<id:item_id>/delete", methods=["POST"])
@roles_required(*EVERYONE)
def feedback_delete(item_id: int):
    is_admin = _is_admin()

    def delete(item):
        soft_delete(current_user, item, is_admin=is_admin)
        hint = "You can restore it from 'Deleted items'." if is_admin else "An admin can restore it."
        return f"Feedback #{item.id} '{item.title}' deleted. {hint}"
    if _change(item_id, delete) and not is_admin:
        return redirect(url_for("main.feedback"))
    return redirect(url_for("main.feedback_detail", item_id=item_id))


@main_bp.route("/feedback/<id:item_id>/restore", methods=["POST"])
@roles_required("admin")
def feedback_restore(item_id: int):
    def change(item):
        restore(current_user, item, is_admin=_is_admin())
        return f"Feedback #{item.id} '{item.title}' restored."
    _change(item_id, change)
    return redirect(url_for("main.feedback_detail", item_id=item_id))


@main_bp.route("/feedback/<id:item_id>/purge", methods=["POST"])
@roles_required("admin")
def feedback_purge(item_id: int):
    def change(item):
        label = f"#{item.id} '{item.title}'"
        purge(current_user, item, is_admin=_is_admin())
        return f"Feedback {label} deleted permanently, with its replies, votes and attachments."
    if _change(item_id, change):
        return redirect(url_for("main.feedback", show="deleted"))
    return redirect(url_for("main.feedback_detail", item_id=item_id))


@main_bp.route("/feedback/attachments/<id:attachment_id>")
@roles_required(*EVERYONE)
def feedback_attachment(attachment_id: int):
    att = or_404(get_attachment(attachment_id, is_admin=_is_admin()))
    image = att.content_type in IMAGE_TYPES
    response = send_file(io.BytesIO(att.data), mimetype=att.content_type if image else "application/octet-stream",
                         as_attachment=not image, download_name=att.filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
