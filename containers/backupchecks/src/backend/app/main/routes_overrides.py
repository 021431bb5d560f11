"""Overrides: the list of rules (everyone who may read), create and edit (admin, operator),
delete (admin only, a separate route)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Override
from ..route_helpers import commit_or_flash
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, has_role, roles_required
from ..services.jobs import job_from_picker, job_match
from ..services.overrides import (
    PER_PAGE,
    STATES,
    OverrideFilters,
    backup_type_choices,
    list_overrides,
    software_choices,
    unreviewed_runs_using,
)
from ..services.overrides import (
    LEVELS,
    MATCH_MODE_LABELS,
    MATCH_MODES,
    create_override,
    delete_override,
    describe,
    update_override,
)
from ..services.settings import ui_zone
from .blueprint import main_bp

FIELDS = ("level", "software", "backup_type", "job_name_pattern", "job_id", "object_name", "match_status",
          "match_text", "match_mode", "valid_from", "valid_until", "comment")
LIST_ARGS = ("q", "level", "state", "sort", "dir", "page")
LEVEL_LABELS = {"object": "Object (one object of a job)", "job": "Job (one job)",
                "global": "Global (a software, optionally a type and job-name pattern)"}


def _get_rule(rule_id: int) -> Override:
    return db.get_or_404(Override, rule_id)


def _local_input(value) -> str:
    """A stored UTC moment as the value of a datetime-local input in the UI timezone."""
    return value.astimezone(ui_zone()).strftime("%Y-%m-%dT%H:%M") if value else ""


def _values_of(rule: Override) -> dict:
    values = {f: getattr(rule, f) for f in FIELDS}
    values.update(valid_from=_local_input(rule.valid_from), valid_until=_local_input(rule.valid_until),
                  treat_as_success=rule.treat_as_success, active=rule.active)
    return {k: ("" if v is None else v) for k, v in values.items()}


def _submitted() -> dict:
    """The form as the service expects it; fields the chosen level does not use are dropped, and an
    unticked box is an explicit no."""
    data = {f: request.form.get(f, "") for f in FIELDS}
    if data["level"] == "global":
        data["job_id"] = data["object_name"] = ""
    elif data["level"] in ("job", "object"):
        data["software"] = data["backup_type"] = data["job_name_pattern"] = ""
    data["job_text"] = request.form.get("job_text") if data["level"] in ("job", "object") else None
    data["treat_as_success"] = "1" if request.form.get("treat_as_success") else "0"
    data["active"] = "1" if request.form.get("active") else "0"
    return data


def _render_form(values: dict, rule: Override | None = None, error: str | None = None, status: int = 200):
    return render_template(
        "main/overrides_form.html", values=values, rule=rule, error=error, levels=LEVELS,
        level_labels=LEVEL_LABELS, match_modes=MATCH_MODES, match_mode_labels=MATCH_MODE_LABELS,
        chosen_job=job_match(values.get("job_id")), job_text=values.get("job_text"),
        softwares=software_choices(), backup_types=backup_type_choices(), zone=ui_zone().key,
    ), status


def _with_job(data: dict) -> dict:
    """The form's data with the job its picker sent: the chosen one, or the one job the typed text
    names (else JobLookupError, a ValueError, says why). Known now, the box shows that job."""
    if data["job_text"] is None:
        return data
    return {**data, "job_id": job_from_picker(data["job_id"], data["job_text"]), "job_text": None}


def _refused(data: dict, error: Exception, rule: Override | None = None):
    """The form again, as it was sent, with why it was not saved."""
    return _render_form({**data, "treat_as_success": data["treat_as_success"] == "1",
                         "active": data["active"] == "1"}, rule=rule, error=str(error), status=400)


def _list_args() -> dict:
    """The list's filters from the address, so a delete comes back to the same view."""
    return {k: v for k, v in request.args.items() if k in LIST_ARGS}


def _saved_message(rule: Override, verb: str) -> str:
    n = unreviewed_runs_using(rule.id)
    tail = (f" Unreviewed runs were re-checked: it now decides {n} of them." if n
            else " Unreviewed runs were re-checked; none match it right now.")
    return f"Override #{rule.id} {verb}: {describe(rule)}.{tail}"


@main_bp.route("/overrides")
@roles_required(*OPERATIONS_READERS)
def overrides():
    filters = OverrideFilters.from_args(request.args)
    now = datetime.now(timezone.utc)
    rows, total, page = list_overrides(filters, now)
    return render_template("main/overrides.html", rows=rows, total=total, page=page, per_page=PER_PAGE,
                           filters=filters, levels=LEVELS, states=STATES, match_mode_labels=MATCH_MODE_LABELS,
                           can_edit=has_role(*OPERATIONS_EDITORS), can_delete=has_role("admin"), list_args=_list_args())


@main_bp.route("/overrides/new", methods=["GET", "POST"])
@roles_required(*OPERATIONS_EDITORS)
def overrides_new():
    if request.method == "GET":
        values = {f: request.args.get(f, "") for f in FIELDS}
        values.setdefault("level", "job")
        values["level"] = values["level"] if values["level"] in LEVELS else "job"
        values.update(treat_as_success=True, active=True, match_mode=values["match_mode"] or "contains")
        return _render_form(values)
    data = _submitted()
    with commit_or_flash(ValueError, message=None) as saved:
        data = _with_job(data)
        rule = create_override(data, current_user, zone=ui_zone())
    if saved.failed:
        return _refused(data, saved.error)
    flash(_saved_message(rule, "created"), "success")
    return redirect(url_for("main.overrides"))


@main_bp.route("/overrides/<id:rule_id>/edit", methods=["GET", "POST"])
@roles_required(*OPERATIONS_EDITORS)
def overrides_edit(rule_id: int):
    rule = _get_rule(rule_id)
    if request.method == "GET":
        return _render_form(_values_of(rule), rule=rule)
    data = _submitted()
    with commit_or_flash(ValueError, message=None) as saved:
        data = _with_job(data)
        update_override(rule, data, current_user, zone=ui_zone())
    if saved.failed:
        return _refused(data, saved.error, _get_rule(rule_id))
    flash(_saved_message(rule, "saved"), "success")
    return redirect(url_for("main.overrides"))


@main_bp.route("/overrides/<id:rule_id>/delete", methods=["POST"])
@roles_required("admin")
def overrides_delete(rule_id: int):
    rule = _get_rule(rule_id)
    n = unreviewed_runs_using(rule.id)
    text = describe(rule)
    delete_override(rule, current_user)
    tail = (f" {n} unreviewed run{'s' if n != 1 else ''} it decided were re-checked against the other rules."
            if n else "")
    flash(f"Override #{rule_id} deleted: {text}.{tail}", "success")
    return redirect(url_for("main.overrides", **_list_args()))
