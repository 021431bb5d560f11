"""The Autotask client: picklists (reference data), companies and tickets, on top of
:class:`~.transport.AutotaskTransport`."""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from ..base import (
    NewTicket,
    PicklistValue,
    PsaClient,
    PsaCompany,
    PsaError,
    PsaNote,
    PsaNotFoundError,
    PsaTicket,
    PsaUnavailableError,
    PsaValidationError,
)
from .config import MAX_PAGE, REFERENCE_FIELDS, STATUS_COMPLETE, AutotaskConfig
from .transport import AutotaskTransport, _MaybeProcessed

log = logging.getLogger(__name__)


class AutotaskClient(AutotaskTransport, PsaClient):
    name = "autotask"
    label = "Autotask PSA"
    config_class = AutotaskConfig

    def __init__(self, config: AutotaskConfig, **kw: Any):
        super().__init__(config, **kw)
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._fields_lock = threading.Lock()

    # ------------------------------------------------------------ reference data

    def fields(self, entity: str = "Tickets", *, refresh: bool = False) -> list[dict[str, Any]]:
        """Field metadata of an entity (cached in this client)."""
        with self._fields_lock:
            if not refresh and entity in self._fields:
                return self._fields[entity]
        data = self._request("GET", f"{entity}/entityInformation/fields",
                             action=f"Reading Autotask {entity} fields")
        fields = list((data or {}).get("fields") or [])
        with self._fields_lock:
            self._fields[entity] = fields
        return fields

    def picklist(self, field_name: str, entity: str = "Tickets", *, refresh: bool = False) -> list[PicklistValue]:
        for f in self.fields(entity, refresh=refresh):
            if f.get("name", "").lower() == field_name.lower():
                values = [
                    PicklistValue(
                        value=_num(p.get("value")),
                        label=str(p.get("label") or ""),
                        active=bool(p.get("isActive", True)),
                        is_default=bool(p.get("isDefaultValue", False)),
                        sort_order=int(p.get("sortOrder") or 0),
                        parent_value=_num(p.get("parentValue")) if p.get("parentValue") not in (None, "") else None,
                    )
                    for p in (f.get("picklistValues") or [])
                ]
                return sorted(values, key=lambda v: (v.sort_order, str(v.label)))
        raise PsaError(f"Autotask has no picklist field {field_name!r} on {entity}.")

    def reference_data(self, *, refresh: bool = False) -> dict[str, list[PicklistValue]]:
        """Ticket queues, sources, priorities and statuses (active and inactive)."""
        if refresh:
            self.fields("Tickets", refresh=True)
        return {name: self.picklist(fname) for name, fname in REFERENCE_FIELDS.items()}

    def refresh_reference_data(self) -> dict[str, list[PicklistValue]]:
        with self._fields_lock:
            self._fields.clear()
        return self.reference_data(refresh=True)

    def _default(self, field_name: str, entity: str = "Tickets") -> int | str | None:
        values = [v for v in self.picklist(field_name, entity) if v.active]
        chosen = next((v for v in values if v.is_default), values[0] if values else None)
        return chosen.value if chosen else None

    def _max_length(self, field_name: str, entity: str = "Tickets") -> int:
        for f in self.fields(entity):
            if f.get("name", "").lower() == field_name.lower():
                return int(f.get("length") or 0)
        return 0

    def _closed_statuses(self) -> set[int]:
        closed = {STATUS_COMPLETE}
        wanted = {label.strip().lower() for label in self.config.closed_status_labels}
        if wanted:
            closed |= {v.value for v in self.picklist("status") if v.label.strip().lower() in wanted}
        return closed

    # ------------------------------------------------------------ connection test

    def test_connection(self) -> dict[str, Any]:
        """Discover the zone afresh and make one authenticated call."""
        zone = self.zone(refresh=True)
        usage = self._request("GET", "ThresholdInformation", action="Testing the Autotask connection") or {}
        return {
            "zone": zone.to_dict(),
            "request_threshold": usage.get("externalRequestThreshold"),
            "requests_used": usage.get("currentTimeframeRequestCount"),
            "timeframe_minutes": usage.get("requestThresholdTimeframe"),
        }

    # ------------------------------------------------------------------ companies

    def search_companies(self, text: str, *, limit: int = 50, include_inactive: bool = True) -> list[PsaCompany]:
        text = (text or "").strip()
        if not text:
            return []
        cond: dict[str, Any] = {"op": "contains", "field": "companyName", "value": text}
        if text.isdigit():
            cond = {"op": "or", "items": [cond, {"op": "eq", "field": "id", "value": int(text)}]}
        filters = [cond]
        if not include_inactive:
            filters.append({"op": "eq", "field": "isActive", "value": True})
        items = self._query("Companies", filters, include=("companyName", "companyNumber", "isActive"),
                            page_size=min(limit, MAX_PAGE), limit=limit, action="Searching Autotask companies")
        return [_company(i) for i in items]

    def get_company(self, company_id: int) -> PsaCompany:
        data = self._request("GET", f"Companies/{int(company_id)}", action="Reading the Autotask company")
        item = (data or {}).get("item")
        if not item:
            raise PsaNotFoundError(f"Autotask company {company_id} does not exist or is not visible to the API user.")
        return _company(item)

    # -------------------------------------------------------------------- tickets

    def _create_ticket(self, new: NewTicket, *, check_existing: bool) -> PsaTicket:
        """The ticket for ``new.reference`` in ``externalID``: looked up before creating and after
        any failure where the create may have been carried out (see the package docstring)."""
        reference = new.reference
        body: dict[str, Any] = dict(new.extra)
        named = {"queueID": new.queue_id, "source": new.source, "status": new.status, "priority": new.priority}
        body.update({k: v for k, v in named.items() if v is not None})  # named arguments win over extra
        body.setdefault("status", self._default("status"))
        body.setdefault("priority", self._default("priority"))
        body.update({
            "companyID": new.company_id,
            "title": _clip(new.title, self._max_length("title") or 255),
            "externalID": reference,
        })
        if new.description.strip():
            body["description"] = _clip(new.description, self._max_length("description") or 8000)
        created_since = datetime.now(timezone.utc) - timedelta(minutes=10)
        if check_existing:
            found = self._find_created(reference, body, created_since)
            if found is not None:
                log.info("Autotask ticket for reference %s already exists: %s", reference, found.number)
                return found
        last: PsaError | None = None
        for attempt in range(3):
            try:
                data = self._request("POST", "Tickets", body=body, idempotent=False,
                                     action="Creating the Autotask ticket")
            except _MaybeProcessed as exc:
                last = exc
                log.warning("Autotask ticket create for %s had no clear answer; looking for it", reference)
                found = self._recover_create(reference, body, created_since, exc)
                if found is not None:
                    return found
                continue
            except PsaValidationError as exc:
                if any(re.search(r"picklist|inactive|not a valid", e, re.IGNORECASE) for e in exc.errors):
                    with self._fields_lock:
                        self._fields.clear()  # picklists changed in Autotask: re-read them next time
                raise
            return self.get_ticket(int(data["itemId"]))
        raise PsaUnavailableError(
            "Creating the Autotask ticket failed: Autotask did not answer and no ticket with reference "
            f"{reference} exists there, so nothing was created. Try again later. ({last.message if last else ''})")

    def _recover_create(self, reference: str, body: Mapping[str, Any], since: datetime,
                        cause: PsaError) -> PsaTicket | None:
        """After a create with no clear answer: the ticket if Autotask has it, else None."""
        for check in range(2):
            time.sleep(self.config.lost_create_recheck_delay * (check + 1))
            try:
                found = self._find_created(reference, body, since)
            except PsaError as exc:
                raise PsaUnavailableError(
                    f"Autotask did not confirm the new ticket ({cause.message}) and could not be checked "
                    f"afterwards ({exc.message}). The ticket may exist with reference {reference}; Backupchecks "
                    "looks for it before creating another, so it is safe to try again later.",
                    errors=exc.errors, status=exc.status) from exc
            if found is not None:
                return found
        return None

    def _find_created(self, reference: str, body: Mapping[str, Any], since: datetime) -> PsaTicket | None:
        try:
            items = self._query("Tickets", [{"op": "eq", "field": "externalID", "value": reference}],
                                action="Looking for the Autotask ticket")
        except PsaValidationError:
            # externalID not queryable on this tenant: fall back to company + title + recent.
            items = self._query("Tickets", [
                {"op": "eq", "field": "companyID", "value": body["companyID"]},
                {"op": "eq", "field": "title", "value": body["title"]},
                {"op": "gte", "field": "createDate", "value": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
            ], action="Looking for the Autotask ticket")
        if not items:
            return None
        return self._ticket(min(items, key=lambda i: i["id"]))

    def get_ticket(self, ticket_id: int) -> PsaTicket:
        return self._ticket(self._raw_ticket(ticket_id))

    def _raw_ticket(self, ticket_id: int) -> dict[str, Any]:
        data = self._request("GET", f"Tickets/{int(ticket_id)}", action="Reading the Autotask ticket")
        item = (data or {}).get("item")
        if not item:
            raise PsaNotFoundError(
                f"Autotask ticket {ticket_id} does not exist any more or is not visible to the API user "
                "(deleted or merged).")
        return item

    def get_tickets(self, ticket_ids: Sequence[int]) -> dict[int, PsaTicket]:
        """Many tickets at once (for polling); ids Autotask doesn't return are absent."""
        ids = sorted({int(i) for i in ticket_ids})
        out: dict[int, PsaTicket] = {}
        for start in range(0, len(ids), MAX_PAGE):
            chunk = ids[start:start + MAX_PAGE]
            for item in self._query("Tickets", [{"op": "in", "field": "id", "value": chunk}],
                                    action="Reading Autotask tickets"):
                out[int(item["id"])] = self._ticket(item)
        return out

    def find_ticket_by_number(self, number: str) -> PsaTicket | None:
        number = (number or "").strip()
        if not number:
            return None
        items = self._query("Tickets", [{"op": "eq", "field": "ticketNumber", "value": number}],
                            action="Looking up the Autotask ticket number")
        return self._ticket(items[0]) if items else None

    def update_ticket(self, ticket_id: int, changes: Mapping[str, Any]) -> PsaTicket:
        """PATCH only the fields in ``changes`` whose value differs from Autotask's.

        ``None`` means "leave alone"; blank strings are refused (this never clears
        a field, least of all the description).
        """
        wanted = {k: v for k, v in changes.items() if v is not None and k.lower() != "id"}
        blank = [k for k, v in wanted.items() if isinstance(v, str) and not v.strip()]
        if blank:
            raise PsaValidationError(
                f"Refusing to blank {', '.join(sorted(blank))} on Autotask ticket {ticket_id}.")
        current = self._raw_ticket(ticket_id)
        by_lower = {k.lower(): k for k in current}
        diff = {}
        for key, value in wanted.items():
            real = by_lower.get(key.lower(), key)
            if current.get(real) != value:
                diff[real] = value
        if not diff:
            return self._ticket(current)
        try:
            self._request("PATCH", "Tickets", body={"id": int(ticket_id), **diff},
                          action="Updating the Autotask ticket")
        except PsaValidationError as exc:
            if exc.status != 405:
                raise
            self._put_full(current, diff)  # tenant refuses PATCH: full replace keeping every field
        return self.get_ticket(ticket_id)

    def _put_full(self, current: Mapping[str, Any], diff: Mapping[str, Any]) -> None:
        read_only = {f["name"] for f in self.fields("Tickets") if f.get("isReadOnly")} - {"id"}
        body = {k: v for k, v in current.items() if k not in read_only}
        body.update(diff)
        self._request("PUT", "Tickets", body=body, action="Updating the Autotask ticket")

    def add_ticket_note(self, ticket_id: int, title: str, text: str, *, note_type: int | None = None,
                        publish: int | None = None) -> PsaNote:
        title = (title or "").strip()
        text = (text or "").strip()
        if not title or not text:
            raise PsaValidationError("An Autotask ticket note needs a title and a text.")
        body = {
            "ticketID": int(ticket_id),
            "title": _clip(title, self._max_length("title", "TicketNotes") or 250),
            "description": _clip(text, self._max_length("description", "TicketNotes") or 32000),
            "noteType": note_type or self.config.note_type or self._default("noteType", "TicketNotes"),
            "publish": publish or self.config.note_publish or self._default("publish", "TicketNotes"),
        }
        try:
            data = self._request("POST", f"Tickets/{int(ticket_id)}/Notes", body=body, idempotent=False,
                                 action="Adding a note to the Autotask ticket")
            note_id = int(data["itemId"])
        except _MaybeProcessed:
            time.sleep(self.config.lost_create_recheck_delay)
            found = self._find_note(int(ticket_id), body["title"], body["description"])
            if found is None:
                data = self._request("POST", f"Tickets/{int(ticket_id)}/Notes", body=body, idempotent=False,
                                     action="Adding a note to the Autotask ticket")
                found = int(data["itemId"])
            note_id = found
        return PsaNote(id=note_id, ticket_id=int(ticket_id), title=body["title"], text=body["description"])

    def _find_note(self, ticket_id: int, title: str, text: str) -> int | None:
        items = self._query("TicketNotes", [{"op": "eq", "field": "ticketID", "value": ticket_id},
                                            {"op": "eq", "field": "title", "value": title}],
                            action="Looking for the Autotask ticket note")
        same = [i for i in items if (i.get("description") or "").strip() == text]
        return int(min(same, key=lambda i: i["id"])["id"]) if same else None

    def complete_ticket(self, ticket_id: int, note: str | None = None, *,
                        note_title: str = "Resolved in Backupchecks", resolution: str | None = None) -> PsaTicket:
        """Add the note (if any), then set status Complete (5)."""
        if note and note.strip():
            self.add_ticket_note(ticket_id, note_title, note)
        return self.update_ticket(ticket_id, {"status": STATUS_COMPLETE, "resolution": resolution or None})

    # --------------------------------------------------------------------- mapping

    def _ticket(self, item: Mapping[str, Any]) -> PsaTicket:
        status = item.get("status")
        labels = {v.value: v.label for v in self.picklist("status")}
        zone = self.zone()
        tid = int(item["id"])
        return PsaTicket(
            id=tid,
            number=str(item.get("ticketNumber") or ""),
            title=str(item.get("title") or ""),
            status=status,
            status_label=labels.get(status, "" if status is None else f"Status {status}"),
            completed=status in self._closed_statuses(),
            company_id=item.get("companyID"),
            queue_id=item.get("queueID"),
            priority=item.get("priority"),
            description=str(item.get("description") or ""),
            external_id=item.get("externalID"),
            created_at=_dt(item.get("createDate")),
            completed_at=_dt(item.get("completedDate")),
            last_activity_at=_dt(item.get("lastActivityDate")),
            web_url=f"{zone.web_url}Mvc/ServiceDesk/TicketDetail.mvc?workItemId={tid}" if zone.web_url else None,
            raw=dict(item),
        )


# --------------------------------------------------------------------------- helpers


def _company(item: Mapping[str, Any]) -> PsaCompany:
    return PsaCompany(id=int(item["id"]), name=str(item.get("companyName") or ""),
                      active=bool(item.get("isActive", True)),
                      number=item.get("companyNumber"))


def _num(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
