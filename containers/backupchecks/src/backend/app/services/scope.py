"""Which customers a user may see: the one home of that rule.

Staff users (admin, operator, reporter, viewer) see every customer: ``visible_customer_ids``
answers None. A portal user sees only the customers bound to them (``user_customers``); with none
bound they see nothing. Every query that lists or loads customers, jobs, runs, tickets, remarks,
reports or search results for a user passes through ``restrict`` (a SELECT) or ``allows`` (one
id), so an id of another customer is "not found" (404), never "forbidden", and never named.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import false, select

from ..extensions import db
from ..models import user_customers


def is_portal(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and bool(getattr(user, "is_portal", False))


def visible_customer_ids(user) -> Optional[frozenset[int]]:
    """None: every customer (a staff user). Otherwise the ids of the customers ``user`` may see
    (empty for an anonymous user or a portal user bound to none). One query, cached per user
    object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    if not is_portal(user):
        return None
    cached = getattr(user, "_visible_customer_ids", None)
    if cached is None:
        rows = db.session.execute(select(user_customers.c.customer_id)
                                  .where(user_customers.c.user_id == user.id)).scalars()
        cached = frozenset(rows)
        try:
            user._visible_customer_ids = cached
        except AttributeError:  # a proxy that refuses attributes: no cache
            pass
    return cached


def restrict(statement, customer_id_column, user):
    """``statement`` limited to the customers ``user`` may see (unchanged for staff)."""
    ids = visible_customer_ids(user)
    if ids is None:
        return statement
    if not ids:
        return statement.where(false())
    return statement.where(customer_id_column.in_(sorted(ids)))


def allows(user, customer_id) -> bool:
    """May ``user`` see the customer with this id?"""
    ids = visible_customer_ids(user)
    return ids is None or customer_id in ids


def forget(user) -> None:
    """Drop the cached ids (after the user's customers changed)."""
    if hasattr(user, "_visible_customer_ids"):
        try:
            del user._visible_customer_ids
        except AttributeError:
            pass


# --- Helpers over the rows a customer owns (jobs, runs): the same rule, one id at a time ---------

def job_visible(user, job) -> bool:
    """``job`` (a Job, or None) exists for ``user``: a staff user sees every job, a portal user
    only their customers' jobs. Routes answer 404 when this is false, so an id never leaks."""
    return job is not None and allows(user, job.customer_id)


def hides_customer(user, customer_id) -> bool:
    """Does a customer filter (an id from a query string, or None for "all") name a customer
    ``user`` may not see? Such a filter is answered 404, as an id in the path would be."""
    return customer_id is not None and not allows(user, customer_id)


def mail_bodies_allowed(user) -> bool:
    """May ``user`` read the mails behind runs? Staff: the route's role decides (True here); a
    portal user only when an admin ticked "may see mail bodies" (``users.portal_mail_bodies``)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return not is_portal(user) or bool(getattr(user, "portal_mail_bodies", False))


def sees_internal_notes(user) -> bool:
    """Tickets, remarks, snoozes, reviews: the provider's own notes on runs. Staff see them (as their
    role allows); a portal user never does, so no ticket text can name another customer."""
    return not is_portal(user)


def allows_all(user, customer_ids) -> bool:
    """May ``user`` see everything about these customers together (a report over them)? Staff: yes.
    A portal user: only a non-empty list of named customers, every one of them theirs; ``None``
    ("every customer") never."""
    ids = visible_customer_ids(user)
    if ids is None:
        return True
    if not customer_ids:
        return False
    return all(isinstance(i, int) and i in ids for i in customer_ids)
