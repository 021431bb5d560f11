"""A fake Autotask PSA REST API on 127.0.0.1, strict about the protocol.

It speaks real HTTP on a random free port from a background thread and
enforces the rules of the real API the client has to follow:

* zone discovery ``GET /atservicesrest/v1.0/zoneInformation?user=`` (no auth),
  unknown user -> 500 ``{"errors": [...]}``; the REST API itself lives under a
  zone prefix, and :meth:`FakeAutotask.move_zone` makes the old prefix answer
  401 until the client re-discovers;
* the three auth headers on every entity call (names case-insensitive), 401 when
  missing or wrong; ``read_only=True`` -> 500 "does not have the adequate
  permissions" on writes;
* Tickets create: required ``companyID, title, status, priority`` plus
  ``extra_required`` (default ``queueID``), picklist values must exist and be
  active, company must exist, string lengths, no ``null`` anywhere (500),
  assignedResourceID needs assignedResourceRoleID; returns only ``{"itemId"}``;
* PATCH updates only present keys (``null``/``""`` clear the field), PUT
  replaces everything (absent writable fields become null); clearing a
  description that had text is recorded as a violation;
* status 5 sets completedDate/resolvedDateTime, leaving 5 clears them;
* queries: full filter grammar, unknown and non-queryable fields rejected,
  MaxRecords capped at 500, paging through absolute ``nextPageUrl``,
  ``includeFields``, ``query/count``;
* TicketNotes under ``/Tickets/{id}/Notes`` with required fields;
* entityInformation/fields with picklists (string values, inactive entries);
* limits: a request threshold per window (429 + errors, optional Retry-After,
  ``ThresholdInformation``) and ``thread_limit`` concurrent requests per
  entity and integration code (error containing ``Itgenatr005``);
* fault injection: a create whose response is lost (connection dropped, delayed
  past the client timeout, or a 502 after the ticket was made) and generic
  failures of the next N requests.

Everything is recorded: ``requests`` (secrets masked), ``violations`` (things a
correct client must never do), ``throttled`` (limit rejections).
"""
from __future__ import annotations

import itertools
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

COMPLETE = 5

# --------------------------------------------------------------------- metadata


@dataclass
class Field:
    name: str
    data_type: str = "integer"  # integer | string | datetime | boolean
    length: int = 0
    required: bool = False
    read_only: bool = False
    queryable: bool = True
    picklist: list[dict[str, Any]] | None = None
    parent_field: str = ""
    reference: str = ""

    def as_metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataType": self.data_type,
            "length": self.length,
            "isRequired": self.required,
            "isReadOnly": self.read_only,
            "isQueryable": self.queryable,
            "isReference": bool(self.reference),
            "referenceEntityType": self.reference,
            "isPickList": self.picklist is not None,
            "picklistParentValueField": self.parent_field,
            "isSupportedWebhookField": False,
            "picklistValues": list(self.picklist) if self.picklist is not None else None,
        }


def _pl(*values: tuple) -> list[dict[str, Any]]:
    """(value, label[, active[, default[, parent]]]) -> Autotask picklist entries."""
    out = []
    for order, spec in enumerate(values, start=1):
        value, label, *rest = spec
        active = rest[0] if len(rest) > 0 else True
        default = rest[1] if len(rest) > 1 else False
        parent = rest[2] if len(rest) > 2 else ""
        out.append({
            "value": str(value), "label": label, "isDefaultValue": default,
            "sortOrder": order, "parentValue": str(parent), "isActive": active,
            "isSystem": value in (1, 5),
        })
    return out


def ticket_fields() -> list[Field]:
    return [
        Field("id", read_only=True),
        Field("ticketNumber", "string", 50, read_only=True),
        Field("title", "string", 255, required=True),
        Field("description", "string", 8000),
        Field("status", required=True, picklist=_pl(
            (1, "New", True, True), (5, "Complete"), (7, "Waiting Customer"),
            (8, "In Progress"), (13, "Old status", False))),
        Field("priority", required=True, picklist=_pl(
            (1, "High"), (2, "Medium", True, True), (3, "Low"), (4, "Critical"),
            (6, "Legacy", False))),
        Field("queueID", picklist=_pl(
            (29683482, "Monitoring Alert"), (29683483, "Service Desk"),
            (29683490, "Old queue", False))),
        Field("source", picklist=_pl(
            (-2, "Insourced"), (2, "Phone"), (4, "Email", True, True), (8, "Monitoring Alert"),
            (11, "Fax", False))),
        Field("issueType", picklist=_pl((10, "Backup"), (11, "Network"))),
        Field("subIssueType", parent_field="issueType", picklist=_pl(
            (200, "Backup failed", True, False, 10), (201, "Backup missed", True, False, 10),
            (300, "Switch down", True, False, 11))),
        Field("ticketType", picklist=_pl((1, "Service Request", True, True), (5, "Alert"))),
        Field("ticketCategory", picklist=_pl((3, "Standard", True, True), (4, "Alert"))),
        Field("companyID", required=True, reference="Company"),
        Field("contactID", reference="Contact"),
        Field("dueDateTime", "datetime"),
        Field("createDate", "datetime", read_only=True),
        Field("lastActivityDate", "datetime", read_only=True),
        Field("completedDate", "datetime", read_only=True),
        Field("completedByResourceID", read_only=True, reference="Resource"),
        Field("resolvedDateTime", "datetime", read_only=True),
        Field("resolution", "string", 32000),
        Field("assignedResourceID", reference="Resource"),
        Field("assignedResourceRoleID", reference="Role"),
        Field("billingCodeID", reference="BillingCode"),
        Field("serviceLevelAgreementID"),
        Field("externalID", "string", 50),
        Field("creatorType", read_only=True, queryable=False),
        Field("lastActivityPersonType", read_only=True, queryable=False),
    ]


def note_fields() -> list[Field]:
    return [
        Field("id", read_only=True),
        Field("ticketID", required=True, reference="Ticket"),
        Field("title", "string", 250, required=True),
        Field("description", "string", 32000, required=True),
        Field("noteType", required=True, picklist=_pl(
            (1, "Task Summary", True, True), (2, "Task Detail"), (13, "Old note type", False))),
        Field("publish", required=True, picklist=_pl(
            (1, "All Autotask Users", True, True), (2, "Internal Only"))),
        Field("createDateTime", "datetime", read_only=True),
        Field("creatorResourceID", read_only=True),
        Field("lastActivityDate", "datetime", read_only=True),
    ]


def company_fields() -> list[Field]:
    return [
        Field("id", read_only=True),
        Field("companyName", "string", 100, required=True),
        Field("companyNumber", "string", 50),
        Field("isActive", "boolean"),
        Field("companyType", picklist=_pl((1, "Customer", True, True), (3, "Prospect"))),
        Field("parentCompanyID", reference="Company"),
        Field("webAddress", "string", 255),
    ]


ENTITY_FIELDS = {"Tickets": ticket_fields, "TicketNotes": note_fields, "Companies": company_fields}
ENTITY_INFO_NAME = {"Tickets": "Ticket", "TicketNotes": "TicketNote", "Companies": "Company"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_dt(value: Any) -> datetime:
    text = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class ApiError(Exception):
    def __init__(self, status: int, errors: list[str], headers: dict[str, str] | None = None):
        super().__init__("; ".join(errors))
        self.status = status
        self.errors = errors
        self.headers = headers or {}


# ------------------------------------------------------------------------- fake


class FakeAutotask:
    """Usage::

        with FakeAutotask() as at:
            cfg = AutotaskConfig(api_user=at.api_user, secret=at.secret,
                                 integration_code=at.integration_code,
                                 zone_discovery_urls=(at.discovery_url,))
    """

    def __init__(
        self,
        *,
        environment: str = "production",
        extra_required: tuple[str, ...] = ("queueID",),
        page_size: int = 500,
        thread_limit: int = 3,
        thread_limit_status: int = 500,
        request_threshold: int | None = None,
        threshold_window: float = 3600.0,
        retry_after: float | None = None,
        latency: float = 0.0,
        read_only: bool = False,
        companies: list[dict[str, Any]] | None = None,
    ):
        self.environment = environment
        # Obviously fake credentials, made at run time.
        self.api_user = f"api-{secrets.token_hex(4)}@fake-{environment}.invalid"
        self.secret = secrets.token_urlsafe(18)
        self.integration_code = secrets.token_hex(12).upper()
        self.extra_required = tuple(extra_required)
        self.page_size = page_size
        self.thread_limit = thread_limit
        self.thread_limit_status = thread_limit_status
        self.request_threshold = request_threshold
        self.threshold_window = threshold_window
        self.retry_after = retry_after
        self.latency = latency
        self.read_only = read_only
        #: when True, zone discovery answers 503 (the lookup service is down)
        self.zone_lookup_down = False
        #: when True, PATCH on Tickets answers 405 (a tenant said to refuse it; clients fall back to PUT)
        self.patch_unsupported = False
        #: when set, ``nextPageUrl`` points under this base instead of the zone (a hostile or broken
        #: answer: a correct client never sends its credentials there)
        self.next_page_base: str | None = None

        self._lock = threading.RLock()
        self.fields = {name: make() for name, make in ENTITY_FIELDS.items()}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        for c in companies if companies is not None else DEFAULT_COMPANIES:
            self.add_company(**c)

        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.throttled: list[dict[str, Any]] = []
        self.max_in_flight: dict[str, int] = {}

        self._ids = itertools.count(70001)
        self._note_ids = itertools.count(9001)
        self._numbers = itertools.count(1)
        self._in_flight: dict[str, int] = {}
        self._hits: deque[float] = deque()
        self._pages: dict[str, dict[str, Any]] = {}
        self._zone_prefix = "/zone14/atservicesrest/"
        self._old_prefixes: set[str] = set()
        self._lose: dict[str, deque[tuple[str, float]]] = {"ticket": deque(), "note": deque()}
        self._failures: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "FakeAutotask":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-autotask", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeAutotask":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    url = origin

    @property
    def discovery_url(self) -> str:
        """Base the client appends ``v1.0/zoneInformation`` to."""
        return f"{self.origin}/atservicesrest/"

    @property
    def zone_url(self) -> str:
        """What zone discovery returns as ``url`` (REST base without v1.0/)."""
        return f"{self.origin}{self._zone_prefix}"

    @property
    def web_url(self) -> str:
        return f"{self.origin}/web/"

    # ------------------------------------------------------------ test hooks

    def add_company(self, id: int, companyName: str, isActive: bool = True, **extra: Any) -> dict:
        row = {"id": id, "companyName": companyName, "isActive": isActive,
               "companyNumber": extra.pop("companyNumber", f"C{id}"), "companyType": 1,
               "parentCompanyID": None, "webAddress": None}
        row.update(extra)
        with self._lock:
            self.companies[id] = row
        return row

    def move_zone(self) -> None:
        """The tenant moved: the old REST prefix answers 401 from now on."""
        with self._lock:
            self._old_prefixes.add(self._zone_prefix)
            n = int(re.search(r"\d+", self._zone_prefix).group()) + 1
            self._zone_prefix = f"/zone{n}/atservicesrest/"

    def lose_next_create_response(self, mode: str = "drop", delay: float = 2.0, what: str = "ticket") -> None:
        """The next ticket create is carried out, then its response is lost.

        ``drop``: the connection is closed without an answer; ``delay``: the
        answer comes after ``delay`` seconds (past the client's timeout);
        ``502``: a gateway error page comes back although the ticket exists.
        ``what``: ``ticket`` or ``note`` (a ticket note create).
        """
        assert mode in ("drop", "delay", "502") and what in ("ticket", "note")
        self._lose[what].append((mode, delay))

    def fail_next(self, count: int = 1, *, status: int = 503, errors: list[str] | None = None,
                  method: str | None = None, entity: str | None = None, path_suffix: str | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """The next ``count`` matching entity calls fail before being processed.

        ``path_suffix`` e.g. ``"/Tickets"`` matches only ticket creates/updates, not queries."""
        self._failures.append({"count": count, "status": status, "errors": errors, "method": method,
                               "entity": entity, "suffix": path_suffix, "headers": headers or {}})

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()
            for queue in self._lose.values():
                queue.clear()

    def complete_out_of_band(self, ticket_id: int) -> None:
        """Someone completes the ticket in Autotask itself."""
        with self._lock:
            self._set_status(self.tickets[ticket_id], COMPLETE)

    def reopen_out_of_band(self, ticket_id: int, status: int = 8) -> None:
        with self._lock:
            self._set_status(self.tickets[ticket_id], status)

    def add_ticket(self, **values: Any) -> dict[str, Any]:
        """Seed a ticket directly (no validation), e.g. one made by a technician."""
        with self._lock:
            row = self._new_ticket_row()
            row.update(values)
            self.tickets[row["id"]] = row
            return row

    def calls(self, method: str | None = None, path_contains: str = "") -> list[dict[str, Any]]:
        return [r for r in self.requests
                if (method is None or r["method"] == method) and path_contains in r["path"]]

    # ------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes):
        """Returns (status, payload-or-None, headers, special) where special is
        None, ("drop",) or ("delay", seconds)."""
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query)
        entry = {"method": method, "path": path, "query": split.query,
                 "headers": _masked_headers(headers), "body": None, "status": None,
                 "at": time.monotonic()}
        with self._lock:
            self.requests.append(entry)
        try:
            parsed = _parse_json(body) if body else None
            entry["body"] = parsed
            status, payload, extra_headers, special = self._route(method, path, query, headers, parsed)
        except ApiError as exc:
            status, payload, extra_headers, special = exc.status, {"errors": exc.errors}, exc.headers, None
            if exc.status == 401:
                payload = None
        entry["status"] = status
        return status, payload, extra_headers, special

    def _route(self, method, path, query, headers, body):
        low = path.lower()
        if low.rstrip("/") == "/atservicesrest/v1.0/zoneinformation":
            if method != "GET":
                raise ApiError(405, ["The requested resource does not support this method."])
            return self._zone_information(query)

        prefix = None
        for candidate in [self._zone_prefix, *self._old_prefixes]:
            if low.startswith(candidate.lower() + "v1.0/"):
                prefix = candidate
                break
        if prefix is None:
            return 404, {"errors": [f"No route for {path}"]}, {}, None
        self._check_auth(headers)
        if prefix != self._zone_prefix:
            raise ApiError(401, ["This tenant is not served from this zone."])

        rest = path[len(prefix) + len("v1.0/"):].strip("/")
        parts = rest.split("/")
        entity = _canonical_entity(parts[0])
        if entity is None and parts[0].lower() != "thresholdinformation":
            return 404, {"errors": [f"No route for {path}"]}, {}, None
        if parts[0].lower() == "thresholdinformation":
            entity = "ThresholdInformation"

        self._count_request(entity)
        failure = self._take_failure(method, entity, path)
        if failure is not None:
            errs = failure["errors"]
            return failure["status"], ({"errors": errs} if errs is not None else None), failure["headers"], None

        with self._lock:
            inflight = self._in_flight.get(entity, 0) + 1
            if inflight > self.thread_limit:
                self.throttled.append({"kind": "thread", "entity": entity, "in_flight": inflight})
                raise ApiError(self.thread_limit_status, [
                    "Itgenatr005: The thread threshold for this integration on the "
                    f"{entity} endpoint has been exceeded. Concurrent requests are limited "
                    f"to {self.thread_limit}."])
            self._in_flight[entity] = inflight
            self.max_in_flight[entity] = max(self.max_in_flight.get(entity, 0), inflight)
        try:
            if self.latency:
                time.sleep(self.latency)
            with self._lock:
                return self._entity_call(method, entity, parts[1:], query, body)
        finally:
            with self._lock:
                self._in_flight[entity] -= 1

    def _zone_information(self, query):
        if self.zone_lookup_down:
            return 503, None, {}, ("html",)
        user = (query.get("user") or [""])[0].strip()
        if not user or user.lower() != self.api_user.lower():
            raise ApiError(500, ["Invalid user name or the user is not found in any zone."])
        return 200, {"zoneName": f"Fake {self.environment} zone", "url": self.zone_url,
                     "webUrl": self.web_url, "ci": 424242}, {}, None

    def _check_auth(self, headers) -> None:
        code = headers.get("ApiIntegrationCode")
        user = headers.get("UserName")
        secret = headers.get("Secret")
        if (code != self.integration_code or (user or "").lower() != self.api_user.lower()
                or secret != self.secret):
            raise ApiError(401, ["Unauthorized"])

    def _count_request(self, entity: str) -> None:
        if self.request_threshold is None:
            with self._lock:
                self._hits.append(time.monotonic())
            return
        with self._lock:
            now = time.monotonic()
            while self._hits and now - self._hits[0] >= self.threshold_window:
                self._hits.popleft()
            self._hits.append(now)
            if len(self._hits) > self.request_threshold:
                self.throttled.append({"kind": "threshold", "entity": entity, "count": len(self._hits)})
                hdrs = {}
                if self.retry_after is not None:
                    hdrs["Retry-After"] = str(max(1, int(round(self.retry_after))))
                raise ApiError(429, [
                    "API request threshold exceeded: the database has used more than "
                    f"{self.request_threshold} requests in the current timeframe."], hdrs)

    def _take_failure(self, method: str, entity: str, path: str):
        with self._lock:
            for f in self._failures:
                if (f["count"] > 0 and f["method"] in (None, method) and f["entity"] in (None, entity)
                        and (f["suffix"] is None or path.rstrip("/").lower().endswith(f["suffix"].lower()))):
                    f["count"] -= 1
                    return f
        return None

    # ------------------------------------------------------------ entities

    def _entity_call(self, method, entity, parts, query, body):
        if entity == "ThresholdInformation":
            if method != "GET":
                raise ApiError(405, ["The requested resource does not support this method."])
            return 200, {"externalRequestThreshold": self.request_threshold or 10000,
                         "requestThresholdTimeframe": int(self.threshold_window // 60) or 1,
                         "currentTimeframeRequestCount": len(self._hits)}, {}, None

        if parts and parts[0].lower() == "entityinformation":
            if len(parts) == 1:
                return 200, {"info": {"name": ENTITY_INFO_NAME[entity], "canCreate": entity != "Companies",
                                      "canUpdate": entity == "Tickets", "canQuery": True,
                                      "canDelete": False, "hasUserDefinedFields": False}}, {}, None
            if parts[1].lower() == "fields":
                return 200, {"fields": [f.as_metadata() for f in self.fields[entity]]}, {}, None
            if parts[1].lower() == "userdefinedfields":
                return 200, {"fields": []}, {}, None
            raise ApiError(404, [f"No route for entityInformation/{parts[1]}"])

        if parts and parts[0].lower() == "query":
            if len(parts) == 1:
                if method == "POST":
                    return self._query(entity, body)
                if method == "GET":
                    search = (query.get("search") or [None])[0]
                    if not search:
                        raise ApiError(500, ["A search parameter is required."])
                    return self._query(entity, _parse_json(search.encode()))
            elif parts[1].lower() == "count" and method == "POST":
                items = self._filtered(entity, body)
                return 200, {"queryCount": len(items)}, {}, None
            elif parts[1].lower() == "next" and method == "GET":
                return self._next_page(entity, query)
            raise ApiError(405, ["The requested resource does not support this method."])

        if entity == "Tickets" and len(parts) >= 2 and parts[1].lower() == "notes":
            ticket_id = _int_or_error(parts[0], "ticketId")
            if method == "POST" and len(parts) == 2:
                return self._create_note(ticket_id, body)
            if method == "GET":
                notes = [n for n in self.notes.values() if n["ticketID"] == ticket_id]
                if len(parts) == 3:
                    nid = _int_or_error(parts[2], "noteId")
                    item = next((n for n in notes if n["id"] == nid), None)
                    return 200, {"item": dict(item) if item else None}, {}, None
                return 200, {"items": [dict(n) for n in notes], "pageDetails": _page_details(len(notes), 500)}, {}, None
            raise ApiError(405, ["The requested resource does not support this method."])

        store = self._store(entity)
        if len(parts) == 1 and method == "GET":
            item = store.get(_int_or_error(parts[0], "id"))
            return 200, {"item": dict(item) if item else None}, {}, None
        if len(parts) == 0 and entity == "Tickets":
            if method == "POST":
                return self._create_ticket(body)
            if method == "PATCH" and not self.patch_unsupported:
                return self._update_ticket(body, replace=False)
            if method == "PUT":
                return self._update_ticket(body, replace=True)
        raise ApiError(405, ["The requested resource does not support this method."])

    def _store(self, entity):
        return {"Tickets": self.tickets, "TicketNotes": self.notes, "Companies": self.companies}[entity]

    # tickets ---------------------------------------------------------------

    def _new_ticket_row(self) -> dict[str, Any]:
        row = {f.name: None for f in self.fields["Tickets"]}
        tid = next(self._ids)
        stamp = now_iso()
        row.update(id=tid, ticketNumber=f"T{datetime.now(timezone.utc):%Y%m%d}.{next(self._numbers):04d}",
                   createDate=stamp, lastActivityDate=stamp, creatorType=2, status=1, priority=2)
        return row

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise ApiError(500, [f"The logged in Resource does not have the adequate permissions to {what}."])

    def _create_ticket(self, body):
        self._require_writable("create this entity type")
        body = self._object_body(body, "POST Tickets")
        self._reject_nulls(body, "POST Tickets")
        values = self._validate_values("Tickets", body, creating=True)
        missing = [f.name for f in self.fields["Tickets"] if f.required and f.name not in values]
        missing += [name for name in self.extra_required if name not in values]
        if missing:
            raise ApiError(500, [f"Missing required field: {name}." for name in missing])
        if values.get("assignedResourceID") is not None and values.get("assignedResourceRoleID") is None:
            raise ApiError(500, ["When assigning a Resource, you must assign both a assignedResourceID "
                                 "and assignedResourceRoleID."])
        ext = values.get("externalID")
        if ext and any(t.get("externalID") == ext for t in self.tickets.values()):
            self.violations.append(f"duplicate ticket created for externalID {ext!r}")
        row = self._new_ticket_row()
        row.update(values)
        if row["dueDateTime"] is None:
            row["dueDateTime"] = now_iso()
        if row["status"] == COMPLETE:
            self._set_status(row, COMPLETE)
        self.tickets[row["id"]] = row
        return self._created(row["id"], "ticket")

    def _created(self, item_id: int, what: str):
        if self._lose[what]:
            mode, delay = self._lose[what].popleft()
            if mode == "drop":
                return 200, {"itemId": item_id}, {}, ("drop",)
            if mode == "delay":
                return 200, {"itemId": item_id}, {}, ("delay", delay)
            return 502, None, {}, ("html",)
        return 200, {"itemId": item_id}, {}, None

    def _update_ticket(self, body, *, replace: bool):
        self._require_writable("update this entity type")
        verb = "PUT" if replace else "PATCH"
        body = self._object_body(body, f"{verb} Tickets")
        key = next((k for k in body if k.lower() == "id"), None)
        if key is None or body[key] is None:
            raise ApiError(500, ["The id field is required for an update."])
        tid = body.pop(key)
        if not isinstance(tid, int) or tid not in self.tickets:
            raise ApiError(500, [f"Unable to find Ticket with id {tid}."])
        for k, v in body.items():
            if v is None:
                self.violations.append(f"{verb} Tickets {tid}: null sent for {k}")
        values = self._validate_values("Tickets", body, creating=False)
        row = self.tickets[tid]
        before = dict(row)
        if replace:
            for f in self.fields["Tickets"]:
                if not f.read_only and f.name not in values:
                    values[f.name] = None
            missing = [f.name for f in self.fields["Tickets"] if f.required and values.get(f.name) is None]
            if missing:
                raise ApiError(500, [f"Missing required field: {name}." for name in missing])
        old_status = row["status"]
        for k, v in values.items():
            row[k] = None if v == "" else v
        for f in self.fields["Tickets"]:
            if not f.read_only and before.get(f.name) not in (None, "") and row.get(f.name) in (None, ""):
                self.violations.append(f"{verb} Tickets {tid}: {f.name} blanked (was {before[f.name]!r:.40})")
        if row["status"] != old_status:
            self._set_status(row, row["status"])
        row["lastActivityDate"] = now_iso()
        return 200, {"itemId": tid}, {}, None

    def _set_status(self, row: dict[str, Any], status: int) -> None:
        row["status"] = status
        if status == COMPLETE:
            stamp = now_iso()
            row["completedDate"] = row.get("completedDate") or stamp
            row["resolvedDateTime"] = row.get("resolvedDateTime") or stamp
        else:
            row["completedDate"] = None
            row["resolvedDateTime"] = None
        row["lastActivityDate"] = now_iso()

    # notes ------------------------------------------------------------------

    def _create_note(self, ticket_id: int, body):
        self._require_writable("create this entity type")
        body = self._object_body(body, "POST TicketNotes")
        self._reject_nulls(body, "POST TicketNotes")
        values = self._validate_values("TicketNotes", body, creating=True)
        if values.setdefault("ticketID", ticket_id) != ticket_id:
            raise ApiError(500, ["The ticketID in the body does not match the parent ticket."])
        if ticket_id not in self.tickets:
            raise ApiError(500, ["Value does not reference an existing entity for ticketID."])
        missing = [f.name for f in self.fields["TicketNotes"] if f.required and values.get(f.name) in (None, "")]
        if missing:
            raise ApiError(500, [f"Missing required field: {name}." for name in missing])
        nid = next(self._note_ids)
        stamp = now_iso()
        self.notes[nid] = {"id": nid, **values, "createDateTime": stamp, "lastActivityDate": stamp,
                           "creatorResourceID": None}
        self.tickets[ticket_id]["lastActivityDate"] = stamp
        return self._created(nid, "note")

    # validation ------------------------------------------------------------------

    @staticmethod
    def _object_body(body, what: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(500, [f"{what}: the request body must be a JSON object."])
        return dict(body)

    def _reject_nulls(self, body: dict[str, Any], what: str) -> None:
        nulls = [k for k, v in body.items() if v is None]
        if nulls:
            self.violations.append(f"{what}: null sent for {', '.join(nulls)}")
            raise ApiError(500, [f"Object reference not set to an instance of an object. ({k})" for k in nulls])

    def _validate_values(self, entity: str, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        by_name = {f.name.lower(): f for f in self.fields[entity]}
        errors, values = [], {}
        for key, value in body.items():
            f = by_name.get(key.lower())
            if f is None:
                errors.append(f"Unable to find {key} in the {ENTITY_INFO_NAME[entity]} Entity.")
                continue
            if f.read_only:
                continue  # ignored, as Autotask does
            if value is None or value == "":
                values[f.name] = value
                continue
            if f.data_type == "integer":
                if isinstance(value, bool) or not isinstance(value, int):
                    errors.append(f"Value for {f.name} must be an integer.")
                    continue
                if f.picklist is not None:
                    entry = next((p for p in f.picklist if p["value"] == str(value)), None)
                    if entry is None:
                        errors.append(f"Value {value} is not a valid picklist value for {f.name}.")
                        continue
                    if not entry["isActive"]:
                        errors.append(f"Value {value} for {f.name} is inactive.")
                        continue
                if f.name == "companyID" and value not in self.companies:
                    errors.append("Value does not reference an existing entity for companyID.")
                    continue
            elif f.data_type == "string":
                if not isinstance(value, str):
                    errors.append(f"Value for {f.name} must be a string.")
                    continue
                if f.length and len(value) > f.length:
                    errors.append(f"{f.name} exceeds the maximum length of {f.length} characters.")
                    continue
            elif f.data_type == "datetime":
                try:
                    parse_dt(value)
                except ValueError:
                    errors.append(f"Value for {f.name} is not a valid date/time.")
                    continue
            elif f.data_type == "boolean" and not isinstance(value, bool):
                errors.append(f"Value for {f.name} must be true or false.")
                continue
            values[f.name] = value
        if errors:
            raise ApiError(500, errors)
        return values

    # queries ------------------------------------------------------------------

    def _query(self, entity: str, body):
        items = self._filtered(entity, body)
        spec = _ci(body)
        max_records = spec.get("maxrecords") or 500
        if not isinstance(max_records, int) or max_records < 1:
            raise ApiError(500, ["MaxRecords must be between 1 and 500."])
        size = min(max_records, 500, self.page_size)
        include = spec.get("includefields") or []
        return 200, self._page(entity, [it["id"] for it in items], include, size), {}, None

    def _page(self, entity: str, ids: list[int], include: list[str], size: int) -> dict[str, Any]:
        store = self._store(entity)
        by_name = {f.name.lower(): f.name for f in self.fields[entity]}
        fields = []
        for name in include:
            if name.lower() not in by_name:
                raise ApiError(500, [f"Unable to find {name} in the {ENTITY_INFO_NAME[entity]} Entity."])
            fields.append(by_name[name.lower()])
        chosen, rest = ids[:size], ids[size:]
        out = []
        for i in chosen:
            row = store[i]
            out.append({k: row.get(k) for k in fields} if fields else dict(row))
        next_url = None
        if rest:
            token = uuid.uuid4().hex
            self._pages[token] = {"entity": entity, "ids": rest, "include": include, "size": size}
            next_url = f"{self.next_page_base or self.zone_url}v1.0/{entity}/query/next?paging={quote(token)}"
        return {"items": out, "pageDetails": {"count": len(out), "requestCount": size,
                                              "prevPageUrl": None, "nextPageUrl": next_url}}

    def _next_page(self, entity: str, query):
        token = (query.get("paging") or [""])[0]
        state = self._pages.pop(token, None)
        if state is None or state["entity"] != entity:
            raise ApiError(500, ["The paging token is invalid or has expired."])
        return 200, self._page(entity, state["ids"], state["include"], state["size"]), {}, None

    def _filtered(self, entity: str, body) -> list[dict[str, Any]]:
        spec = _ci(body)
        filters = spec.get("filter")
        if not isinstance(filters, list) or not filters:
            raise ApiError(500, ["A query requires at least one filter."])
        by_name = {f.name.lower(): f for f in self.fields[entity]}
        conditions = [_Condition.build(c, by_name) for c in filters]
        store = self._store(entity)
        return [store[i] for i in sorted(store) if all(c.test(store[i]) for c in conditions)]


DEFAULT_COMPANIES = [
    {"id": 174, "companyName": "Example Dental Practice BV"},
    {"id": 175, "companyName": "Example Logistics Ltd"},
    {"id": 176, "companyName": "Sample Bakery"},
    {"id": 177, "companyName": "Old Example Customer", "isActive": False},
    {"id": 0, "companyName": "Fake MSP (owner)"},
]


# ------------------------------------------------------------------ filters


_OPS = {"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains",
        "exist", "notexist", "in", "notin", "and", "or"}


class _Condition:
    def __init__(self, op, field=None, value=None, children=()):
        self.op, self.field, self.value, self.children = op, field, value, children

    @classmethod
    def build(cls, raw, by_name) -> "_Condition":
        if not isinstance(raw, dict):
            raise ApiError(500, ["Each filter must be an object."])
        spec = _ci(raw)
        op = str(spec.get("op", "")).lower()
        if op not in _OPS:
            raise ApiError(500, [f"Invalid filter operator {spec.get('op')!r}."])
        if op in ("and", "or"):
            items = spec.get("items")
            if not isinstance(items, list) or not items:
                raise ApiError(500, [f"The {op} operator requires items."])
            return cls(op, children=[cls.build(i, by_name) for i in items])
        name = spec.get("field")
        f = by_name.get(str(name).lower()) if name is not None else None
        if f is None:
            raise ApiError(500, [f"Unable to find {name} in the Entity."])
        if not f.queryable:
            raise ApiError(500, [f"The field {f.name} is not queryable."])
        if spec.get("udf"):
            raise ApiError(500, ["User-defined field queries are not supported by this fake."])
        value = spec.get("value")
        if op in ("in", "notin") and not isinstance(value, list):
            raise ApiError(500, [f"The {op} operator requires an array value."])
        if op not in ("exist", "notexist", "in", "notin") and value is None:
            raise ApiError(500, [f"The {op} operator requires a value."])
        return cls(op, f, value)

    def test(self, row) -> bool:
        if self.op == "and":
            return all(c.test(row) for c in self.children)
        if self.op == "or":
            return any(c.test(row) for c in self.children)
        actual = row.get(self.field.name)
        if self.op == "exist":
            return actual not in (None, "")
        if self.op == "notexist":
            return actual in (None, "")
        if actual is None:
            return self.op in ("noteq", "notin")
        a = _norm(actual, self.field)
        if self.op in ("in", "notin"):
            found = any(a == _norm(v, self.field) for v in self.value)
            return found if self.op == "in" else not found
        v = _norm(self.value, self.field)
        if self.op in ("beginswith", "endswith", "contains"):
            a, v = str(a), str(v)
            return {"beginswith": a.startswith, "endswith": a.endswith, "contains": a.__contains__}[self.op](v)
        try:
            return {"eq": a == v, "noteq": a != v, "gt": a > v, "gte": a >= v, "lt": a < v,
                    "lte": a <= v}[self.op]
        except TypeError:
            raise ApiError(500, [f"Value {self.value!r} is not valid for {self.field.name}."]) from None


def _norm(value, f: Field):
    try:
        if f.data_type == "integer":
            return int(value)
        if f.data_type == "datetime":
            return parse_dt(value)
        if f.data_type == "boolean":
            if isinstance(value, bool):
                return value
            return str(value).lower() == "true"
    except (TypeError, ValueError):
        raise ApiError(500, [f"Value {value!r} is not valid for {f.name}."]) from None
    return str(value).lower()


# ------------------------------------------------------------------ helpers


def _ci(obj) -> dict[str, Any]:
    """Model binding is case-insensitive: lower-case the keys."""
    if not isinstance(obj, dict):
        raise ApiError(500, ["The request body must be a JSON object."])
    return {str(k).lower(): v for k, v in obj.items()}


def _parse_json(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(500, ["The request body is not valid JSON."]) from None


def _int_or_error(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(500, [f"The value '{text}' is not valid for {what}."]) from None


def _canonical_entity(segment: str) -> str | None:
    for name in ENTITY_FIELDS:
        if name.lower() == segment.lower():
            return name
    return None


def _page_details(count: int, size: int) -> dict[str, Any]:
    return {"count": count, "requestCount": size, "prevPageUrl": None, "nextPageUrl": None}


_SECRET_HEADERS = {"secret", "apiintegrationcode"}


def _masked_headers(headers) -> dict[str, str]:
    return {k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAutotask

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, extra_headers, special = self.fake.handle(self.command, self.path, self.headers, body)
        if special and special[0] == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if special and special[0] == "delay":
            time.sleep(special[1])
        if special and special[0] == "html":
            data, ctype = b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
        elif payload is None:
            data, ctype = b"", "application/json"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
