"""Each list costs the same number of queries for 2 rows as for 40: no query per row."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.app.extensions import db
from backend.app.services.tickets import create_remark, create_ticket

from tests.clock import TEST_NOW
from tests.helpers import count_queries, make_customer, make_job, make_mail, make_run


def _grow(n: int, offset: int) -> None:
    for i in range(offset, offset + n):
        customer = make_customer(f"Customer {i:03d}")
        job = make_job(customer, f"Job {i}", sender=f"job{i}@example.test")
        make_run(job, "Failed", started_at=TEST_NOW - timedelta(hours=2, minutes=i))
        make_mail(f"new{i}@example.test", f"Mail {i}", state="inbox", parsed=True)
        create_ticket(f"T-{i}", "x", [{"type": "job", "job_id": job.id}], None)
        create_remark(f"R {i}", [{"type": "customer", "customer_id": customer.id}], None)
    db.session.commit()


@pytest.mark.parametrize("path", ["/customers", "/jobs", "/runs", "/tickets", "/remarks", "/inbox",
                                  f"/days/{(TEST_NOW - timedelta(days=0)).date().isoformat()}"])
def test_a_list_costs_the_same_queries_for_few_and_many_rows(api, personas, clock, path):
    token = api.token(personas["admin"])
    _grow(2, 0)
    api.get(path, token)  # the token's first use is noted (once a minute): not part of the measure
    clock.move_to(TEST_NOW)  # the same minute for both: the same rate-limit statement, no last-use update
    few = count_queries(lambda: api.get(path, token))
    _grow(38, 2)
    clock.move_to(TEST_NOW)
    many = count_queries(lambda: api.get(path, token))
    assert many == few, (path, few, many)
