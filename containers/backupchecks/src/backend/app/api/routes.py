"""The API's routes: read the request, call one service, answer JSON. What each path takes and
answers is described in ``openapi.py`` (the tests check every answer against it)."""
from __future__ import annotations

from flask import g, jsonify, request

from ..extensions import db
from ..models import PORTAL_ROLE, utcnow
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, REVIEWERS
from ..services import api_data as data
from ..services.inbox import InboxError, approve_message, get_or_create_customer
from ..services.review import mark_run_reviewed, mark_runs_reviewed
from ..services.tickets import TicketingError, create_remark, create_ticket, resolve_ticket
from . import api_bp
from .auth import ApiError, api_roles, public
from .openapi import openapi_document

# Who may read what: the web app's role groups, and portal users for their own customers' data.
READERS = OPERATIONS_READERS + (PORTAL_ROLE,)
MAX_BULK = 500


def _user():
    return g.api_token.user


def _page_args() -> dict:
    return {"cursor": request.args.get("cursor"), "limit": data.parse_limit(request.args.get("limit"))}


def _found(item):
    if item is None:
        raise ApiError(404, "not_found", "There is no such resource, or not one this token may see.")
    return jsonify({"data": item})


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "Send a JSON object (Content-Type: application/json).", field="body")
    return body


def _text_field(body: dict, name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{name} must be text.", field=name)
    if required and not value.strip():
        raise ApiError(400, "bad_request", f"{name} is required.", field=name)
    return value


def _id_field(body: dict, name: str):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= data.MAX_ID:
        raise ApiError(400, "bad_request", f"{name} must be a row id (a whole number).", field=name)
    return value


def _conflict(exc: Exception):
    db.session.rollback()
    return ApiError(409, "conflict", str(exc))


# --- The description ---------------------------------------------------------------------------

@api_bp.route("/openapi.json")
@public
def openapi():
    return jsonify(openapi_document())


# --- Customers and jobs --------------------------------------------------------------------------

@api_bp.route("/customers")
@api_roles(*READERS)
def customers():
    active = data.parse_bool("active", request.args.get("active"))
    return jsonify(data.list_customers(_user(), active=active, **_page_args()).as_json())


@api_bp.route("/customers/<id:customer_id>")
@api_roles(*READERS)
def customer(customer_id: int):
    return _found(data.get_customer(_user(), customer_id))


@api_bp.route("/jobs")
@api_roles(*READERS)
def jobs():
    archived = data.parse_bool("archived", request.args.get("archived"))
    if archived and _user().current_role != "admin":
        raise ApiError(403, "forbidden_role", "Archived jobs are for admins.")
    customer_id = data.parse_id_param("customer_id", request.args.get("customer_id"))
    return jsonify(data.list_jobs(_user(), customer_id=customer_id, archived=bool(archived),
                                  **_page_args()).as_json())


@api_bp.route("/jobs/<id:job_id>")
@api_roles(*READERS)
def job(job_id: int):
    return _found(data.get_job(_user(), job_id))


# --- Runs ----------------------------------------------------------------------------------------

@api_bp.route("/runs")
@api_roles(*READERS)
def runs():
    args = request.args
    f = data.RunFilters(
        start=data.parse_moment("from", args.get("from")),
        end=data.parse_moment("to", args.get("to"), end_of_day=True),
        status=data.parse_choice("status", args.get("status"), data.RUN_STATUSES),
        customer_id=data.parse_id_param("customer_id", args.get("customer_id")),
        job_id=data.parse_id_param("job_id", args.get("job_id")),
        reviewed=data.parse_bool("reviewed", args.get("reviewed")),
    )
    return jsonify(data.list_runs(_user(), f, **_page_args()).as_json())


@api_bp.route("/runs/<id:run_id>")
@api_roles(*READERS)
def run(run_id: int):
    include = data.parse_choice("include", request.args.get("include"), ("mail",))
    return _found(data.get_run(_user(), run_id, include_mail=include == "mail"))


@api_bp.route("/runs/<id:run_id>/review", methods=["POST"])
@api_roles(*REVIEWERS, write=True)
def review_run(run_id: int):
    run_row = data.visible_run(_user(), run_id)
    if run_row is None:
        raise ApiError(404, "not_found", "There is no such run, or not one this token may see.")
    changed = mark_run_reviewed(run_row, _user())
    return jsonify({"data": data.get_run(_user(), run_id), "changed": changed})


@api_bp.route("/runs/review", methods=["POST"])
@api_roles(*REVIEWERS, write=True)
def review_runs():
    ids = _body().get("ids")
    if (not isinstance(ids, list) or not ids or len(ids) > MAX_BULK
            or any(isinstance(i, bool) or not isinstance(i, int) for i in ids)):
        raise ApiError(400, "bad_request", f"ids must be a list of 1 to {MAX_BULK} run ids.", field="ids")
    wanted = sorted({i for i in ids})
    visible = data.visible_run_ids(_user(), wanted)
    marked = mark_runs_reviewed(visible, _user())
    return jsonify({"reviewed": marked, "already_reviewed": sorted(set(visible) - set(marked)),
                    "not_found": sorted(set(wanted) - set(visible))})


@api_bp.route("/runs/<id:run_id>/remarks", methods=["POST"])
@api_roles(*REVIEWERS, write=True)
def add_remark(run_id: int):
    body = _body()
    text = _text_field(body, "text", required=True)
    run_row = data.visible_run(_user(), run_id)
    if run_row is None:
        raise ApiError(404, "not_found", "There is no such run, or not one this token may see.")
    try:
        remark = create_remark(text, [{"type": "job", "job_id": run_row.job_id}], _user(), run=run_row)
        db.session.commit()
    except TicketingError as exc:
        db.session.rollback()
        raise ApiError(400, "bad_request", str(exc), field="text") from None
    return jsonify({"data": data.item_json("remark", _user(), remark.id)}), 201


# --- A day ---------------------------------------------------------------------------------------

@api_bp.route("/days/<day>")
@api_roles(*READERS)
def day(day: str):
    return jsonify({"data": data.day_json(_user(), data.parse_day_param(day), utcnow())})


# --- Tickets and remarks -------------------------------------------------------------------------

def _item_list(kind: str):
    state = data.parse_choice("state", request.args.get("state"), data.ITEM_STATES, default="open")
    customer_id = data.parse_id_param("customer_id", request.args.get("customer_id"))
    return jsonify(data.list_items(kind, _user(), state=state, customer_id=customer_id, **_page_args()).as_json())


@api_bp.route("/tickets")
@api_roles(*OPERATIONS_READERS)
def tickets():
    return _item_list("ticket")


@api_bp.route("/tickets/<id:ticket_id>")
@api_roles(*OPERATIONS_READERS)
def ticket(ticket_id: int):
    return _found(data.item_json("ticket", _user(), ticket_id))


@api_bp.route("/tickets", methods=["POST"])
@api_roles(*OPERATIONS_EDITORS, write=True)
def new_ticket():
    """An internal ticket for a run (linked to it and following its job), a job or a customer."""
    body = _body()
    code = _text_field(body, "code", required=True)
    description = _text_field(body, "description")
    targets = {name: _id_field(body, name) for name in ("run_id", "job_id", "customer_id")}
    given = [name for name, value in targets.items() if value is not None]
    if len(given) != 1:
        raise ApiError(400, "bad_request", "Give exactly one of run_id, job_id or customer_id.",
                       field=given[1] if len(given) > 1 else "run_id")
    run_row = None
    if targets["run_id"] is not None:
        run_row = data.visible_run(_user(), targets["run_id"])
        if run_row is None:
            raise ApiError(400, "bad_request", "There is no such run.", field="run_id")
        scopes = [{"type": "job", "job_id": run_row.job_id}]
    elif targets["job_id"] is not None:
        if data.get_job(_user(), targets["job_id"]) is None:
            raise ApiError(400, "bad_request", "There is no such job.", field="job_id")
        scopes = [{"type": "job", "job_id": targets["job_id"]}]
    else:
        if data.visible_customer(_user(), targets["customer_id"]) is None:
            raise ApiError(400, "bad_request", "There is no such customer.", field="customer_id")
        scopes = [{"type": "customer", "customer_id": targets["customer_id"]}]
    try:
        item = create_ticket(code, description, scopes, _user(), run=run_row)
        db.session.commit()
    except TicketingError as exc:
        db.session.rollback()
        raise ApiError(400, "bad_request", str(exc), field="code") from None
    return jsonify({"data": data.item_json("ticket", _user(), item.id)}), 201


@api_bp.route("/tickets/<id:ticket_id>/resolve", methods=["POST"])
@api_roles(*OPERATIONS_EDITORS, write=True)
def resolve(ticket_id: int):
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "Send a JSON object (or nothing).", field="body")
    note = _text_field(body, "note")
    item = data.visible_item("ticket", _user(), ticket_id)
    if item is None:
        raise ApiError(404, "not_found", "There is no such ticket, or not one this token may see.")
    try:
        resolve_ticket(item, _user(), note)
        db.session.commit()
    except TicketingError as exc:
        raise _conflict(exc) from None
    return jsonify({"data": data.item_json("ticket", _user(), ticket_id)})


@api_bp.route("/remarks")
@api_roles(*OPERATIONS_READERS)
def remarks():
    return _item_list("remark")


@api_bp.route("/remarks/<id:remark_id>")
@api_roles(*OPERATIONS_READERS)
def remark(remark_id: int):
    return _found(data.item_json("remark", _user(), remark_id))


# --- The Inbox -----------------------------------------------------------------------------------

@api_bp.route("/inbox")
@api_roles("admin")
def inbox():
    include = data.parse_choice("include", request.args.get("include"), ("body",))
    return jsonify(data.list_inbox(with_body=include == "body", **_page_args()).as_json())


@api_bp.route("/inbox/<id:message_id>/approve", methods=["POST"])
@api_roles(*OPERATIONS_EDITORS, write=True)
def approve(message_id: int):
    """Approve a mail to a customer (by id, or by name: found or created), as the Inbox page does."""
    body = _body()
    customer_id = _id_field(body, "customer_id")
    name = _text_field(body, "customer_name")
    if (customer_id is None) == (not name.strip()):
        raise ApiError(400, "bad_request", "Give exactly one of customer_id or customer_name.", field="customer_id")
    msg = data.inbox_message(message_id)
    if msg is None:
        raise ApiError(404, "not_found", "There is no such mail in the Inbox.")
    try:
        if customer_id is not None:
            target = data.visible_customer(_user(), customer_id)
            if target is None:
                raise ApiError(400, "bad_request", "There is no such customer.", field="customer_id")
        else:
            target = get_or_create_customer(name, _user())
        job_row, runs_created = approve_message(msg, target, _user())
        db.session.commit()
    except InboxError as exc:
        raise _conflict(exc) from None
    return jsonify({"data": {"job": data.get_job(_user(), job_row.id), "runs_created": runs_created}})
