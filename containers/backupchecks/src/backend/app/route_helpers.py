"""What every route module does the same way: save a change (commit, or roll back and say why),
find a row or answer 404, read the page number, start a background task, import an uploaded file.

A route reads the request, calls one service function inside ``commit_or_flash`` and answers with
a redirect or a page; the rules stay in the services (docs/architecture.md).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional, TypeVar

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .services.tasks import TaskBusy

T = TypeVar("T")


@dataclass
class Saved:
    """What ``commit_or_flash`` did: ``error`` is the refused change's exception, None when it was saved."""

    error: Optional[Exception] = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def conflict(self) -> bool:
        """Refused by the database: someone changed the same rows at the same moment."""
        return isinstance(self.error, IntegrityError)


def no_store(response) -> Response:
    """``response`` marked never to be cached: a settings page whose form may hold a secret just typed."""
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    return response


def render_no_store(template: str, status: int = 200, **context) -> Response:
    """``template`` rendered with ``context``, answered with ``status`` and never cached (``no_store``)."""
    return no_store(make_response(render_template(template, **context), status))


@contextmanager
def commit_or_flash(*refusals: type[Exception], message: Optional[str] = "{error}", category: str = "danger",
                    conflict: Optional[str] = None, conflict_category: str = "danger") -> Iterator[Saved]:
    """Run the block and commit. When the block (or the commit) raises one of ``refusals`` (the
    service's "not allowed, here is why"), roll back, flash ``message`` (``{error}`` is the reason;
    None flashes nothing, for a page that shows the reason itself) and set ``saved.error``; the
    caller then answers with its "not saved" page. With ``conflict`` an IntegrityError (a change
    that crossed another one) is refused the same way with that text; otherwise it is not caught.

        with commit_or_flash(CustomerError, message="Not deleted: {error}") as saved:
            delete_customer(customer, current_user)
        if saved.failed:
            return redirect(back)
    """
    saved = Saved()
    caught = refusals + ((IntegrityError,) if conflict is not None else ())
    try:
        yield saved
        db.session.commit()
    except caught as exc:
        db.session.rollback()
        saved.error = exc
        if conflict is not None and isinstance(exc, IntegrityError):
            flash(conflict, conflict_category)
        elif message is not None:
            flash(message.format(error=exc), category)


def flash_changed(changed: bool, done: str, unchanged: str = "Nothing changed.") -> None:
    """Say what a save did: ``done`` (success) when it changed something, else ``unchanged`` (info)."""
    flash(done if changed else unchanged, "success" if changed else "info")


def or_404(row: Optional[T], description: Optional[str] = None) -> T:
    """``row``, or a 404 page when there is none (missing and hidden look the same)."""
    if row is None:
        abort(404, description=description)
    return row


def posted_row(model, field: str):
    """The row whose id the form posted in ``field``, or 404."""
    return db.get_or_404(model, request.form.get(field, type=int) or 0)


def page_arg() -> int:
    """The list page asked for in ``?page=``: 1 when absent or not a positive number."""
    return max(1, request.args.get("page", 1, type=int) or 1)


def search_arg(limit: int = 200) -> str:
    """The search text in ``?q=``, trimmed and cut to ``limit`` characters."""
    return (request.args.get("q") or "").strip()[:limit]


def sorted_list_args(sorts, default_sort: str, *, filters_ok: bool = True) -> dict:
    """A sortable list's ``?q=``, ``?sort=``, ``?dir=`` and ``?page=``. A sort the page does not offer,
    or a filter value it does not offer (``filters_ok`` false), is a 400."""
    sort = request.args.get("sort", default_sort)
    direction = request.args.get("dir", "asc")
    if sort not in sorts or direction not in ("asc", "desc") or not filters_ok:
        abort(400, "Unknown sort or filter value: use the column headers and the filter form.")
    return {"q": search_arg(), "sort": sort, "direction": direction, "page": page_arg()}


def start_task(start: Callable, endpoint: str, *, busy: str, started: str, **url_args):
    """Start a background task and show its page with the progress (``?task=``). When one of that
    kind is running, show that one's progress with the ``busy`` message instead."""
    try:
        task = start()
    except TaskBusy as running:
        flash(busy, "info")
        return redirect(url_for(endpoint, **url_args, task=running.task.id))
    flash(started, "info")
    return redirect(url_for(endpoint, **url_args, task=task.id))


def dated_download(body, mimetype: str, name: str, extension: str) -> Response:
    """An export as a file download named ``name-YYYYMMDD.extension`` (today, UTC)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{extension}"'})


def import_upload(run_import: Callable, refused: type[Exception], *, what: str, template: str, back: str,
                  choose: str, conflict: str, **context):
    """Import the uploaded ``file`` with ``run_import(data, user)``: all rows or none. A refused file
    shows its errors (400); a file that crossed another change goes ``back`` with ``conflict``."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(choose, "danger")
        return redirect(back)
    with commit_or_flash(refused, message=None, conflict=conflict) as saved:
        report = run_import(upload.read(), current_user)
    if saved.conflict:
        return redirect(back)
    if saved.failed:
        return render_template(template, errors=saved.error.errors, message=str(saved.error),
                               filename=upload.filename, **context), 400
    flash(f"{what} imported from {upload.filename}: {report.summary}.", "success")
    return render_template(template, report=report, filename=upload.filename, **context)
