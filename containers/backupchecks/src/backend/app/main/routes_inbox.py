"""The Inbox: mails that wait for a person, their detail, approve, delete, upload, re-parse."""
from __future__ import annotations

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import MailMessage
from ..route_helpers import commit_or_flash, or_404, page_arg, start_task
from ..security import EVERYONE, OPERATIONS_EDITORS, OPERATIONS_READERS, roles_required, safe_next
from ..services import audit, mail_body
from ..services.importer import import_raw_files
from ..services.inbox import (
    PER_PAGE,
    InboxError,
    InboxFilters,
    approve_message,
    count_messages,
    customer_names,
    delete_message,
    get_or_create_customer,
    list_messages,
    messages_by_ids,
    purge_message,
    reparse,
    restore_message,
    start_reparse_all,
    visible_message,
)
from ..services.tasks import task_json, visible_task
from ..web import form_ids
from .blueprint import main_bp

MAX_UPLOAD_FILES = 200

BODY_CSP = mail_body.BODY_CSP


def _filters() -> InboxFilters:
    return InboxFilters(software=request.args.get("software", "").strip(),
                        status=request.args.get("status", "").strip(),
                        q=request.args.get("q", "").strip()[:200],
                        parsed=request.args.get("parsed", "").strip(),
                        page=page_arg())


def _list(state: str) -> dict:
    """One page of a state's mails; with a filter on, also how many there are in all ("3 of 28")."""
    f = _filters()
    rows, total, software = list_messages(f, state=state)
    in_state = count_messages(state) if f.active else total
    return dict(rows=rows, total=total, in_state=in_state, software=software, f=f, per_page=PER_PAGE)


@main_bp.route("/inbox")
@roles_required(*OPERATIONS_READERS)
def inbox():
    return render_template("main/inbox.html", customers=customer_names(), deleted_view=False,
                           task_id=request.args.get("task", type=int), **_list("inbox"))


@main_bp.route("/inbox/deleted")
@roles_required("admin")
def inbox_deleted():
    return render_template("main/inbox.html", customers=[], deleted_view=True, **_list("deleted"))


def name_list(names: list[str], limit: int = 5) -> str:
    """'A, B, C' — or 'A, B, C, D, E and 3 more' when there are more than ``limit``."""
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def _visible_or_404(msg_id: int) -> MailMessage:
    """Every route of one mail asks the Inbox's visibility rule; hidden and missing look the same."""
    return or_404(visible_message(msg_id, current_user))


@main_bp.route("/inbox/<id:msg_id>")
@roles_required(*OPERATIONS_READERS)
def inbox_message(msg_id: int):
    msg = _visible_or_404(msg_id)
    return render_template("main/inbox_message.html", msg=msg, customers=customer_names(),
                           # by status as before; an object without a status (None) last, instead of a 500
                           objects=sorted((msg.parse_result or {}).get("objects") or [],
                                          key=lambda o: o.get("status") or "", reverse=True))


@main_bp.route("/inbox/<id:msg_id>/body")
@roles_required(*OPERATIONS_READERS)
def inbox_message_body(msg_id: int):
    """The mail body for the sandboxed iframe: sanitised HTML, no scripts, no remote loads."""
    msg = _visible_or_404(msg_id)
    resp = Response(mail_body.document(msg.body_html, msg.body_text), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = BODY_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@main_bp.route("/inbox/<id:msg_id>/eml")
@roles_required(*OPERATIONS_READERS)
def inbox_message_eml(msg_id: int):
    msg = _visible_or_404(msg_id)
    if msg.raw is None:
        flash("The original mail is no longer stored (raw-mail retention); its parsed data is kept.", "warning")
        return redirect(url_for("main.inbox_message", msg_id=msg.id))
    resp = Response(msg.raw, mimetype="message/rfc822")
    resp.headers["Content-Disposition"] = f'attachment; filename="mail-{msg.id}.eml"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _back():
    return redirect(safe_next(request.form.get("next"), url_for("main.inbox")))


@main_bp.route("/inbox/approve", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def inbox_approve():
    """Approve one or several mails to one customer (created when new)."""
    ids = form_ids("ids")
    if not ids:
        flash("Select at least one mail to approve.", "warning")
        return _back()
    msgs = messages_by_ids(ids, user=current_user, state="inbox")
    if not msgs:
        flash("None of the selected mails is in the Inbox any more; nothing was approved.", "warning")
        return _back()
    with commit_or_flash(InboxError) as saved:
        customer = get_or_create_customer(request.form.get("customer", ""), current_user)
        done_jobs, total_runs, skipped = [], 0, []
        for msg in msgs:
            if msg.state != "inbox":
                continue  # already processed as another mail of the same job
            try:
                with db.session.begin_nested():
                    job, n = approve_message(msg, customer, current_user)
                done_jobs.append(job.job_name)
                total_runs += n
            except InboxError as exc:
                skipped.append(f"{msg.subject[:60]}: {exc}")
    if saved.failed:
        return _back()
    if done_jobs:
        flash(f"Approved for {customer.name}: {name_list(sorted(set(done_jobs)))}. "
              f"{total_runs} mail(s) became runs.", "success")
    for s in skipped[:5]:
        flash(f"Not approved — {s}", "warning")
    if len(skipped) > 5:
        flash(f"… and {len(skipped) - 5} more mail(s) were not approved; they stay in the Inbox.", "warning")
    return _back()


@main_bp.route("/inbox/delete", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def inbox_delete():
    ids = form_ids("ids")
    msgs = messages_by_ids(ids, user=current_user, state="inbox")
    with commit_or_flash():
        for msg in msgs:
            delete_message(msg, current_user)
    flash(f"{len(msgs)} mail(s) deleted. Admins can restore them under Deleted mails." if msgs
          else "Select at least one mail to delete.", "success" if msgs else "warning")
    return _back()


@main_bp.route("/inbox/deleted/action", methods=["POST"])
@roles_required("admin")
def inbox_deleted_action():
    ids = form_ids("ids")
    action = request.form.get("action")
    msgs = messages_by_ids(ids, user=current_user, state="deleted")
    if action not in ("restore", "purge") or not msgs:
        flash("Select deleted mails and an action.", "warning")
        return redirect(url_for("main.inbox_deleted"))
    with commit_or_flash():
        for msg in msgs:
            (restore_message if action == "restore" else purge_message)(msg, current_user)
    flash(f"{len(msgs)} mail(s) {'restored to the Inbox' if action == 'restore' else 'removed permanently'}.", "success")
    return redirect(url_for("main.inbox_deleted"))


@main_bp.route("/inbox/<id:msg_id>/reparse", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def inbox_reparse(msg_id: int):
    msg = _visible_or_404(msg_id)
    back = redirect(url_for("main.inbox_message", msg_id=msg_id))
    with commit_or_flash(InboxError) as saved:
        became_run = reparse(msg, current_user)
    if saved.failed:
        return back
    if became_run:
        flash("Re-parsed: the mail matches a known job and became a run.", "success")
    elif msg.parsed:
        flash(f"Re-parsed with {msg.parser_name}: {msg.software or 'not a backup report'}.", "success")
    else:
        flash(f"Re-parsed, still not understood: {msg.parse_reason}", "warning")
    return back


@main_bp.route("/inbox/reparse-all", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def inbox_reparse_all():
    return start_reparse_all_task("main.inbox")


def start_reparse_all_task(endpoint: str, **url_args):
    """Re-parse every stored mail in the background, shown on ``endpoint`` (the Inbox, Settings → Maintenance)."""
    return start_task(lambda: start_reparse_all(current_app._get_current_object(), current_user), endpoint,
                      busy="Re-parsing is already running; its progress is shown below.",
                      started="Re-parsing all stored mails in the background.", **url_args)


@main_bp.route("/inbox/upload", methods=["POST"])
@roles_required(*OPERATIONS_EDITORS)
def inbox_upload():
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        flash("Choose one or more .eml files to upload.", "warning")
        return redirect(url_for("main.inbox"))
    if len(files) > MAX_UPLOAD_FILES:
        flash(f"At most {MAX_UPLOAD_FILES} files per upload; nothing was imported.", "danger")
        return redirect(url_for("main.inbox"))
    loaded = [(f.filename, f.read()) for f in files]
    empty = [name for name, raw in loaded if not raw.strip()]
    with commit_or_flash():
        result = import_raw_files([(n, r) for n, r in loaded if r.strip()], source="upload")
        audit.record("inbox.upload", f"Uploaded {len(loaded)} file(s): {result['new']} new, "
                                     f"{result['duplicates']} already imported", user=current_user)
    flash(f"{result['new']} new mail(s): {result['auto_processed']} became runs of known jobs, "
          f"{result['to_inbox']} wait in the Inbox; {result['duplicates']} were already imported.", "success")
    for name in empty[:5]:
        flash(f"{name} is empty; skipped.", "warning")
    for name, state, error in result["files"]:
        if state == "failed":
            flash(f"{name} could not be imported: {error}", "danger")
    return redirect(url_for("main.inbox"))


@main_bp.route("/tasks/<id:task_id>")
@roles_required(*EVERYONE)
def task_status(task_id: int):
    """Progress of a background task, for the user who started it and for admins."""
    return jsonify(task_json(or_404(visible_task(task_id, current_user))))
