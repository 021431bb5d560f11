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
