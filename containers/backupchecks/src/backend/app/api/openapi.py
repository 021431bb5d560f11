"""The OpenAPI 3.1 description of the JSON API v1, built as data: served at /api/v1/openapi.json,
rendered as the in-app docs page "JSON API" (``endpoints_markdown``), and the contract the tests
hold every real answer to (tests/api/openapi_check.py: every answer validates against the schema
documented for its path, method and status, and every documented field shows up in some answer).

Each operation carries ``x-roles`` (the current roles that may call it), ``x-write`` (a read-only
token gets 403 read_only_token) and ``x-example`` (the path with a query, and a body), from which
the docs page writes its curl examples.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache

from markdown.extensions.toc import slugify  # the heading ids of the docs page

from ..models import PORTAL_ROLE
from ..security import OPERATIONS_EDITORS, OPERATIONS_READERS, REVIEWERS
from ..services.api_data import DEFAULT_LIMIT, ITEM_STATES, MAX_LIMIT, RUN_STATUSES

READERS = list(OPERATIONS_READERS) + [PORTAL_ROLE]
BASE = "/api/v1"


def _nullable(schema: dict) -> dict:
    out = dict(schema)
    kind = out.get("type")
    out["type"] = [kind, "null"] if isinstance(kind, str) else list(kind) + ["null"]
    return out


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
N_STR = _nullable(STR)
N_INT = _nullable(INT)
N_TIME = _nullable(TIME)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict, *, optional: tuple = (), description: str = "") -> dict:
    out = {"type": "object", "properties": properties,
           "required": [k for k in properties if k not in optional], "additionalProperties": False}
    if description:
        out["description"] = description
    return out


def _page(item: str) -> dict:
    return _object({"data": {"type": "array", "items": _ref(item)},
                    "next_cursor": _nullable({"type": "string", "description":
                                              "Pass as ?cursor= for the next page; null on the last page."})},
                   description=f"One page of {item} rows.")


def _one(item: str) -> dict:
    return _object({"data": _ref(item)})


SCHEMAS: dict = {
    "Error": _object({"error": _object({
        "code": {"type": "string", "enum": [
            "missing", "invalid_token", "token_expired", "token_revoked", "user_inactive", "read_only_token",
            "forbidden_role", "not_found", "bad_request", "bad_cursor", "conflict", "method_not_allowed",
            "too_large", "rate_limited", "server_error", "database_unavailable"]},
        "message": {"type": "string", "description": "For people; may change. Program against the code."},
        "field": {"type": "string", "description": "The parameter or body field that was refused (400 only)."},
    }, optional=("field",))}),
    "Customer": _object({"id": INT, "name": STR, "active": BOOL,
                         "job_count": {"type": "integer", "description": "Jobs not archived."},
                         "created_at": TIME}),
    "Schedule": _object({
        "kind": {"type": "string", "description": "daily, weekly, monthly, every_n_days, irregular or unknown."},
        "description": {"type": "string", "description": "The schedule in words, as the Jobs page shows it."},
        "manual": {"type": "boolean", "description": "Set by hand (else learned from the runs)."},
        "next_expected_slot": N_TIME}),
    "Job": _object({"id": INT, "customer_id": INT, "customer_name": STR, "job_name": STR, "software": STR,
                    "backup_type": N_STR, "archived": BOOL, "schedule": _ref("Schedule"),
                    "last_run_at": N_TIME, "last_status": N_STR}),
    "RunFields": {},  # filled below: Run and RunDetail share them
    "RunObject": _object({"name": STR, "type": N_STR, "status": N_STR, "effective_status": N_STR,
                          "shown_status": STR, "message": N_STR}),
    "LinkedTicket": _object({"id": INT, "code": STR, "resolved": BOOL}),
    "LinkedRemark": _object({"id": INT, "body": STR, "resolved": BOOL}),
    "MailParse": _object({"parsed": BOOL, "is_report": BOOL, "parser": N_STR, "software": N_STR,
                          "backup_type": N_STR, "job_name": N_STR, "status": N_STR,
                          "objects": {"type": "integer", "description": "Objects (VMs, files …) the parser found."},
                          "reason": N_STR, "error": N_STR}),
    "Mail": _object({"id": INT, "state": STR, "received_at": N_TIME, "from_address": STR, "subject": STR,
                     "parse": _ref("MailParse"),
                     "body_text": _nullable({"type": "string", "description":
                                             "Only with ?include=body (Inbox) or ?include=mail (a run)."})},
                    optional=("body_text",)),
    "DayRun": _object({"id": INT, "shown_status": STR, "started_at": N_TIME, "reviewed": BOOL}),
    "DayRow": _object({"customer_id": INT, "customer_name": STR, "job_id": INT, "job_name": STR, "software": STR,
                       "status": {"type": "string", "description": "The day's shown status: Success, Success "
                                  "(override), Warning, Failed, Missed, Expected, Maintenance …"},
                       "expected": BOOL, "slot": N_TIME, "deadline": N_TIME, "schedule": STR, "note": N_STR,
                       "runs": {"type": "array", "items": _ref("DayRun")}}),
    "Day": _object({"day": {"type": "string", "format": "date"},
                    "timezone": {"type": "string", "description": "The configured timezone the day is in."},
                    "rule": {"type": "string", "enum": ["worst", "last", "best"]},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                               "description": "Shown status -> number of jobs."},
                    "rows": {"type": "array", "items": _ref("DayRow")}}),
    "Scope": _object({"type": {"type": "string", "enum": ["customer", "job", "object"]},
                      "customer_id": N_INT, "customer_name": N_STR, "job_id": N_INT, "job_name": N_STR,
                      "object_name": N_STR}),
    "Ticket": _object({"id": INT, "code": STR, "description": STR, "active_from": TIME, "created_at": TIME,
                       "resolved": BOOL, "resolved_at": N_TIME, "resolution_note": N_STR,
                       "linked_runs": INT, "scopes": {"type": "array", "items": _ref("Scope")}}),
    "Remark": _object({"id": INT, "body": STR, "active_from": TIME, "created_at": TIME,
                       "resolved": BOOL, "resolved_at": N_TIME, "resolution_note": N_STR,
                       "linked_runs": INT, "scopes": {"type": "array", "items": _ref("Scope")}}),
    "ReviewResult": _object({"reviewed": {"type": "array", "items": INT, "description": "Marked by this call."},
                             "already_reviewed": {"type": "array", "items": INT},
                             "not_found": {"type": "array", "items": INT,
                                           "description": "No such run, or not one this token may see."}}),
    "Approval": _object({"job": _ref("Job"), "runs_created": INT}),
}

_RUN = {"id": INT, "job_id": INT, "job_name": STR, "customer_id": INT, "customer_name": STR,
        "status": {"type": "string", "description": "As reported: Success, Warning, Failed or Missed."},
        "effective_status": {"type": "string", "description": "After overrides."},
        "shown_status": {"type": "string", "description": "What the pages show, e.g. 'Success (override)'."},
        "override_id": N_INT, "started_at": N_TIME, "ended_at": N_TIME, "missed": BOOL, "message": N_STR,
        "reviewed": BOOL, "reviewed_at": N_TIME, "created_at": TIME}
del SCHEMAS["RunFields"]
SCHEMAS["Run"] = _object(dict(_RUN))
SCHEMAS["RunDetail"] = _object(dict(_RUN, objects={"type": "array", "items": _ref("RunObject")},
                                    tickets={"type": "array", "items": _ref("LinkedTicket")},
                                    remarks={"type": "array", "items": _ref("LinkedRemark")},
                                    mail={"anyOf": [_ref("Mail"), {"type": "null"}], "description":
                                          "Only with ?include=mail: the mail the run came from, with its "
                                          "text; null without a mail, or for a portal user not allowed "
                                          "mail bodies."}),
                               optional=("mail",))
SCHEMAS["RunReviewed"] = _object({"data": _ref("RunDetail"),
                                  "changed": {"type": "boolean", "description": "False: it was reviewed already."}})
for _name in ("Customer", "Job", "Run", "Ticket", "Remark", "Mail"):
    SCHEMAS[f"{_name}Page"] = _page(_name)
for _name in ("Customer", "Job", "RunDetail", "Day", "Ticket", "Remark", "Approval"):
    SCHEMAS[f"{_name}Data"] = _one(_name)

# --- Errors --------------------------------------------------------------------------------------

_ERRORS = {
    "400": "bad_request (the field is named in error.field) or bad_cursor.",
    "401": "missing, invalid_token, token_expired, token_revoked or user_inactive; with WWW-Authenticate: Bearer.",
    "403": "read_only_token (a change with a read-only token) or forbidden_role (the user's current role "
           "may not do this).",
    "404": "not_found: no such resource, or one of a customer this token may not see (never 403 for those).",
    "409": "conflict: the action can't be done in the resource's current state (already resolved, no "
           "longer in the Inbox …).",
    "429": "rate_limited: more than the limit per minute with this token; Retry-After says when to try again.",
    "default": "Any other error: method_not_allowed (405), too_large (413), server_error (500), "
               "database_unavailable (503).",
}
RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute per token.", "schema": INT},
    "X-RateLimit-Remaining": {"description": "Requests left in this minute.", "schema": INT},
    "X-RateLimit-Reset": {"description": "Seconds until the minute ends and the count starts again.", "schema": INT},
}


def _error_response(status: str) -> dict:
    out = {"description": _ERRORS[status], "content": {"application/json": {"schema": _ref("Error")}}}
    if status == "401":
        out["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": STR}}
    if status == "429":
        out["headers"] = dict(RATE_HEADERS, **{"Retry-After": {"description": "Seconds to wait.", "schema": INT}})
    return out


def _ok(schema: str, description: str, status: str = "200") -> dict:
    return {status: {"description": description, "headers": RATE_HEADERS,
                     "content": {"application/json": {"schema": _ref(schema)}}}}


# --- Parameters ----------------------------------------------------------------------------------

def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path_id(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "description": f"The {what}'s id."}


PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
           f"Rows per page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})."),
    _query("cursor", STR, "The next_cursor of the previous page (opaque); without it, the first page."),
]


def _op(summary: str, description: str, roles, responses: dict, *, errors=("401", "403", "429"),
        parameters=(), body: dict | None = None, write: bool = False, example: dict | None = None,
        tag: str = "") -> dict:
    op = {"summary": summary, "description": description, "tags": [tag] if tag else [],
          "x-roles": list(roles), "x-write": write, "parameters": list(parameters),
          "responses": dict(responses)}
    for status in (*errors, "default"):
        op["responses"][status] = _error_response(status)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body, "example": (example or {}).get("body")}}}
    op["security"] = [{"bearer": []}]
    if example:
        op["x-example"] = example
    return op


def _body_schema(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


PATHS: dict = {
    "/customers": {"get": _op(
        "List customers", "The customers the token's user may see (a portal user: only theirs), by id.",
        READERS, _ok("CustomerPage", "One page of customers."), errors=("400", "401", "403", "429"),
        parameters=[_query("active", BOOL, "Only active (true) or inactive (false) customers."), *PAGING],
        example={"path": "/customers?limit=100"}, tag="Customers")},
    "/customers/{customer_id}": {"get": _op(
        "One customer", "", READERS, _ok("CustomerData", "The customer."),
        errors=("401", "403", "404", "429"), parameters=[_path_id("customer_id", "customer")],
        example={"path": "/customers/1"}, tag="Customers")},
    "/jobs": {"get": _op(
        "List jobs", "Jobs with their schedule and last status, by id. Archived jobs (archived=true) are "
        "for admins.", READERS, _ok("JobPage", "One page of jobs."), errors=("400", "401", "403", "429"),
        parameters=[_query("customer_id", INT, "Only this customer's jobs."),
                    _query("archived", BOOL, "true: the archived jobs instead (admins only)."), *PAGING],
        example={"path": "/jobs?customer_id=1"}, tag="Jobs")},
    "/jobs/{job_id}": {"get": _op(
        "One job", "With its schedule and last status.", READERS, _ok("JobData", "The job."),
        errors=("401", "403", "404", "429"), parameters=[_path_id("job_id", "job")],
        example={"path": "/jobs/1"}, tag="Jobs")},
    "/runs": {"get": _op(
        "List runs", "Runs newest first: by when the backup started (else when the run was stored), then id. "
        "Paging is stable while new runs arrive.", READERS, _ok("RunPage", "One page of runs."),
        errors=("400", "401", "403", "429"),
        parameters=[_query("from", STR, "Runs that started at or after this: a date (YYYY-MM-DD, from 00:00 "
                                        "UTC) or an ISO 8601 date-time (UTC when it has no offset)."),
                    _query("to", STR, "Runs that started before this: a date (that whole UTC day included) "
                                      "or a date-time (not included)."),
                    _query("status", {"type": "string", "enum": list(RUN_STATUSES)},
                           "The effective status (after overrides)."),
                    _query("customer_id", INT, "Only this customer's runs."),
                    _query("job_id", INT, "Only this job's runs."),
                    _query("reviewed", BOOL, "Only reviewed (true) or not yet reviewed (false) runs."),
                    *PAGING],
        example={"path": "/runs?status=Failed&from=2026-06-09&to=2026-06-09"}, tag="Runs")},
    "/runs/{run_id}": {"get": _op(
        "One run", "With its objects and the tickets and remarks linked to it (for a portal user the "
        "tickets and remarks are always empty: they are the provider's own notes).", READERS,
        _ok("RunDetailData", "The run."), errors=("400", "401", "403", "404", "429"),
        parameters=[_path_id("run_id", "run"),
                    _query("include", {"type": "string", "enum": ["mail"]},
                           "mail: add the mail the run came from, with its text (a portal user only when an "
                           "admin allowed them mail bodies).")],
        example={"path": "/runs/1?include=mail"}, tag="Runs")},
    "/runs/{run_id}/review": {"post": _op(
        "Mark a run reviewed", "As Run Checks does; audited as the token's user.", REVIEWERS,
        _ok("RunReviewed", "The run, reviewed."), errors=("401", "403", "404", "429"),
        parameters=[_path_id("run_id", "run")], write=True, example={"path": "/runs/1/review"}, tag="Runs")},
    "/runs/review": {"post": _op(
        "Mark several runs reviewed", "One change for up to 500 runs; ids of runs this token may not see "
        "come back as not_found.", REVIEWERS, _ok("ReviewResult", "What was marked."),
        errors=("400", "401", "403", "429"), write=True,
        body=_body_schema({"ids": {"type": "array", "items": INT, "minItems": 1, "maxItems": 500}}, ("ids",)),
        example={"path": "/runs/review", "body": {"ids": [1, 2]}}, tag="Runs")},
    "/runs/{run_id}/remarks": {"post": _op(
        "Add a remark to a run", "A remark on the run's job, linked to this run and following the job's next "
        "runs until resolved.", REVIEWERS, _ok("RemarkData", "The new remark.", "201"),
        errors=("400", "401", "403", "404", "429"), parameters=[_path_id("run_id", "run")], write=True,
        body=_body_schema({"text": STR}, ("text",)),
        example={"path": "/runs/1/remarks", "body": {"text": "Disk replaced, watching the next runs."}},
        tag="Runs")},
    "/days/{day}": {"get": _op(
        "A day's status (Daily Jobs)", "Every job expected on the day or that ran on it, with the day's "
        "status, as the Daily Jobs page shows it. The day is a calendar day in the configured timezone "
        "(Settings); not paged.", READERS, _ok("DayData", "The day."), errors=("400", "401", "403", "429"),
        parameters=[{"name": "day", "in": "path", "required": True, "schema": {"type": "string", "format": "date"},
                     "description": "YYYY-MM-DD."}],
        example={"path": "/days/2026-06-09"}, tag="Days")},
    "/tickets": {
        "get": _op("List tickets", "Internal tickets, newest first. Staff only: tickets and remarks are the "
                   "provider's own notes, never shown to a portal user.", list(OPERATIONS_READERS), _ok("TicketPage", "One page of tickets."),
                   errors=("400", "401", "403", "429"),
                   parameters=[_query("state", {"type": "string", "enum": list(ITEM_STATES), "default": "open"},
                                      "open (default), resolved or all."),
                               _query("customer_id", INT, "Only tickets scoped to this customer or its jobs."),
                               *PAGING],
                   example={"path": "/tickets?state=open"}, tag="Tickets and remarks"),
        "post": _op("Create an internal ticket", "For a run (linked to it and following its job), a job or a "
                    "customer: give exactly one of run_id, job_id, customer_id.", OPERATIONS_EDITORS,
                    _ok("TicketData", "The new ticket.", "201"), errors=("400", "401", "403", "429"), write=True,
                    body=_body_schema({"code": STR, "description": STR, "run_id": INT, "job_id": INT,
                                       "customer_id": INT}, ("code",)),
                    example={"path": "/tickets", "body": {"code": "T-1234", "description": "Disk full",
                                                          "run_id": 1}},
                    tag="Tickets and remarks")},
    "/tickets/{ticket_id}": {"get": _op(
        "One ticket", "", list(OPERATIONS_READERS), _ok("TicketData", "The ticket."), errors=("401", "403", "404", "429"),
        parameters=[_path_id("ticket_id", "ticket")], example={"path": "/tickets/1"}, tag="Tickets and remarks")},
    "/tickets/{ticket_id}/resolve": {"post": _op(
        "Resolve a ticket", "No new run is linked to it from now on; the runs linked so far keep it. The body "
        "is optional.", OPERATIONS_EDITORS, _ok("TicketData", "The resolved ticket."),
        errors=("400", "401", "403", "404", "409", "429"), parameters=[_path_id("ticket_id", "ticket")],
        write=True, body=_body_schema({"note": STR}),
        example={"path": "/tickets/1/resolve", "body": {"note": "Fixed by the customer."}},
        tag="Tickets and remarks")},
    "/remarks": {"get": _op(
        "List remarks", "Remarks, newest first. Staff only, as tickets.", list(OPERATIONS_READERS),
        _ok("RemarkPage", "One page of remarks."), errors=("400", "401", "403", "429"),
        parameters=[_query("state", {"type": "string", "enum": list(ITEM_STATES), "default": "open"},
                           "open (default), resolved or all."),
                    _query("customer_id", INT, "Only remarks scoped to this customer or its jobs."), *PAGING],
        example={"path": "/remarks?state=open"}, tag="Tickets and remarks")},
    "/remarks/{remark_id}": {"get": _op(
        "One remark", "", list(OPERATIONS_READERS), _ok("RemarkData", "The remark."), errors=("401", "403", "404", "429"),
        parameters=[_path_id("remark_id", "remark")], example={"path": "/remarks/1"},
        tag="Tickets and remarks")},
    "/inbox": {"get": _op(
        "List the Inbox", "Mails waiting for approval (unknown jobs), newest first, with their parse result. "
        "Admins only.", ["admin"], _ok("MailPage", "One page of mails."), errors=("400", "401", "403", "429"),
        parameters=[_query("include", {"type": "string", "enum": ["body"]}, "body: add each mail's text."),
                    *PAGING],
        example={"path": "/inbox"}, tag="Inbox")},
    "/inbox/{message_id}/approve": {"post": _op(
        "Approve a mail to a customer", "As the Inbox page: the job is created under the customer (by id, or "
        "by name: found or created) and every Inbox mail of that job becomes a run. Give exactly one of "
        "customer_id, customer_name.", OPERATIONS_EDITORS, _ok("ApprovalData", "The job and the runs made."),
        errors=("400", "401", "403", "404", "409", "429"), parameters=[_path_id("message_id", "mail")],
        write=True, body=_body_schema({"customer_id": INT, "customer_name": STR}),
        example={"path": "/inbox/1/approve", "body": {"customer_name": "Northwind"}}, tag="Inbox")},
}

DESCRIPTION = """\
Read customers, jobs, runs, a day's status, tickets and remarks, and act on them, with an API token
(`Authorization: Bearer bc_…`; tokens are made in the user menu → API tokens, or with
`flask --app backend.app create-token`).

- **Who**: a token acts as its user in the user's current role (`x-roles` of each operation) and sees
  only the customers that user may see: staff see every customer, a portal user only theirs. An id of a
  customer the token may not see answers 404, never 403.
- **Read-only tokens** may only read: a change answers 403 `read_only_token`.
- **Errors** are `{"error": {"code": "...", "message": "..."}}` with a stable code.
- **Paging**: lists answer `{"data": [...], "next_cursor": "..." | null}`; pass `cursor` for the next page.
- **Rate limit**: a number of requests per minute per token (API_RATE_LIMIT_PER_MINUTE, default 120);
  every answer has X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset; over it: 429 with
  Retry-After.
- **Times** are UTC (ISO 8601, `Z`); a day of /days is a day in the configured timezone.
"""


@lru_cache(maxsize=1)
def _document_json() -> str:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Backupchecks API", "version": "1", "summary": "The JSON API of Backupchecks.",
                 "description": DESCRIPTION},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": BASE}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "bc_…",
                                           "description": "An API token of a Backupchecks user."}},
        },
        "security": [{"bearer": []}],
    }
    doc["paths"] = copy.deepcopy(PATHS)
    doc["paths"]["/openapi.json"] = {"get": {
        "summary": "This description", "description": "Public: no token needed.", "security": [],
        "tags": ["About"], "x-roles": [], "x-write": False, "parameters": [],
        "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
        "x-example": {"path": "/openapi.json"}}}
    return json.dumps(doc)


def openapi_document() -> dict:
    """The document (a fresh copy each call)."""
    return json.loads(_document_json())


# --- The docs page -------------------------------------------------------------------------------

def _curl(method: str, example: dict, public: bool = False) -> str:
    parts = ["curl -sS"]
    if method != "get":
        parts.append(f"-X {method.upper()}")
    if not public:
        parts.append('-H "Authorization: Bearer $BACKUPCHECKS_TOKEN"')
    body = example.get("body")
    if body is not None:
        parts.append("-H 'Content-Type: application/json'")
        parts.append(f"-d '{json.dumps(body)}'")
    parts.append(f'"$BACKUPCHECKS_URL{BASE}{example["path"]}"')
    return " \\\n  ".join(parts)


def _type_of(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    kind = schema.get("type", "object")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    return kind


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def endpoints_markdown(doc: dict) -> str:
    """The endpoint reference of the docs page, in Markdown, written from the document."""
    lines: list[str] = []
    for path, methods in doc["paths"].items():  # the list first: on a phone the page is long
        for method, op in methods.items():
            title = f"{method.upper()} {BASE}{path}"
            lines.append(f"- [`{title}`](#{slugify(title, '-')}): {op['summary']}.")
    lines.append("")
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            lines.append(f"### {method.upper()} {BASE}{path}")
            lines.append("")
            lines.append(f"**{op['summary']}.** {op.get('description', '')}".rstrip())
            lines.append("")
            roles = ", ".join(op.get("x-roles") or []) or "anyone (no token)"
            lines.append(f"Roles: {roles}." + (" Needs a read-write token." if op.get("x-write") else ""))
            lines.append("")
            if op.get("parameters"):
                lines += ["| parameter | in | type | meaning |", "|---|---|---|---|"]
                for p in op["parameters"]:
                    lines.append(f"| `{p['name']}` | {p['in']} | {_cell(_type_of(p['schema']))} | "
                                 f"{_cell(p.get('description', ''))} |")
                lines.append("")
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                required = set(body.get("required", []))
                lines += ["| body field | type | required |", "|---|---|---|"]
                for name, schema in body["properties"].items():
                    lines.append(f"| `{name}` | {_cell(_type_of(schema))} | {'yes' if name in required else 'no'} |")
                lines.append("")
            answers = []
            for status, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                answers.append(f"{status} ({_type_of(schema)})" if status < "400" else status)
            answers[-1:] = ["other errors"] if answers[-1] == "default" else answers[-1:]
            lines.append("Answers: " + ", ".join(answers) + ".")
            lines.append("")
            if op.get("x-example"):
                lines += ["```", _curl(method, op["x-example"], public=not op.get("x-roles")), "```", ""]
    lines.append("### Schemas")
    lines.append("")
    for name, schema in doc["components"]["schemas"].items():
        if name.endswith(("Page", "Data")):
            continue
        lines.append(f"**{name}**: " + ", ".join(f"`{prop}` ({_type_of(s)})"
                                                  for prop, s in schema.get("properties", {}).items()) + ".")
        lines.append("")
    lines.append("Each list answers `{\"data\": [...], \"next_cursor\": ...}` of these; each single resource "
                 "answers `{\"data\": {...}}`.")
    return "\n".join(lines)
