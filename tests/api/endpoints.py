"""Every API operation with a concrete address in the test world (tests/api/conftest.py ``world``),
for the tests that walk them all: role and token matrix, portal scope, documentation."""
from __future__ import annotations


def operations(w) -> list[tuple[str, str, dict | None]]:
    """(method, path, body) for every operation of the API, with ids of customer A's rows."""
    return [
        ("GET", "/customers", None),
        ("GET", f"/customers/{w.a.id}", None),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{w.job_a.id}", None),
        ("GET", "/runs", None),
        ("GET", f"/runs/{w.failed_a.id}", None),
        ("POST", f"/runs/{w.failed_a.id}/review", None),
        ("POST", "/runs/review", {"ids": [w.ok_a.id]}),
        ("POST", f"/runs/{w.failed_a.id}/remarks", {"text": "Looking into it"}),
        ("GET", f"/days/{w.yesterday}", None),
        ("GET", "/tickets", None),
        ("POST", "/tickets", {"code": "T-NEW", "description": "From the API", "job_id": w.job_a.id}),
        ("GET", f"/tickets/{w.ticket_a.id}", None),
        ("POST", f"/tickets/{w.ticket_a.id}/resolve", {"note": "done"}),
        ("GET", "/remarks", None),
        ("GET", f"/remarks/{w.remark_a.id}", None),
        ("GET", "/inbox", None),
        ("POST", f"/inbox/{w.inbox_mail.id}/approve", {"customer_id": w.a.id}),
    ]


def template_of(path: str) -> str:
    """The document's template of a concrete path (ids and the day become {…})."""
    import re

    parts = []
    names = {"customers": "customer_id", "jobs": "job_id", "runs": "run_id", "tickets": "ticket_id",
             "remarks": "remark_id", "inbox": "message_id", "days": "day"}
    segments = path.strip("/").split("/")
    for i, seg in enumerate(segments):
        if i > 0 and (re.fullmatch(r"\d+", seg) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", seg)):
            parts.append("{" + names[segments[i - 1]] + "}")
        else:
            parts.append(seg)
    return "/" + "/".join(parts)
