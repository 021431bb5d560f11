"""Searching text columns with LIKE: the one place that escapes what a user typed, so ``%`` and ``_``
in a search are the characters themselves, never wildcards."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import or_

LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` with the LIKE wildcards and the escape character escaped (use with ``LIKE_ESCAPE``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(columns: Iterable, text: str):
    """Case-insensitive "one of the columns contains ``text``" as one WHERE condition."""
    pattern = f"%{escape_like(text)}%"
    return or_(*[column.ilike(pattern, escape=LIKE_ESCAPE) for column in columns])


def starts_with_text(column, text: str):
    """``column`` starts with ``text``, ignoring case, as a WHERE condition (or an ordering key)."""
    return column.ilike(f"{escape_like(text)}%", escape=LIKE_ESCAPE)


def starts_with(column, text: str):
    """``column`` starts with ``text`` (case-sensitive) as a WHERE condition."""
    return column.like(f"{escape_like(text)}%", escape=LIKE_ESCAPE)
