"""Reading report tables: the cells of an HTML row, two-cell 'label | value' rows, header columns,
and text lines split into columns. Pure helpers for the vendor parsers."""
from __future__ import annotations

import re
from typing import Iterable, Iterator, Optional

from .base import Message, clean_text

_COLUMN_SPLIT_RE = re.compile(r"\t+|\s{2,}|\s*\|\s*")


def row_cells(tr) -> list:
    """The <td>/<th> children of a table row."""
    return [c for c in tr if c.tag in ("td", "th")]


def cell_text(cell) -> str:
    """A cell's text, whitespace collapsed."""
    return clean_text(cell.text_content())


def row_texts(tr) -> list[str]:
    """The texts of a table row's cells."""
    return [cell_text(c) for c in row_cells(tr)]


def label_value_rows(tree) -> Iterator[tuple[str, str]]:
    """(label, value) texts of every two-cell row of the tree's tables, in document order."""
    for tr in tree.iter("tr"):
        cells = row_cells(tr)
        if len(cells) == 2:
            yield cell_text(cells[0]), cell_text(cells[1])


def html_label_text(msg: Message) -> str:
    """'label: value' lines built from the two-cell rows of the mail's HTML tables ('' when none)."""
    tree = msg.html_tree()
    if tree is None:
        return ""
    out = []
    for k, v in label_value_rows(tree):
        k = k.rstrip(":")
        if k and v and len(k) <= 40:
            out.append(f"{k}: {v}")
    return "\n".join(out)


def column_index(header: Iterable[str], names: Iterable[str]) -> Optional[int]:
    """The index of the first header cell that is one of ``names``; None when none is."""
    return next((i for i, h in enumerate(header) if h in names), None)


def cell_at(cells: list[str], index: Optional[int]) -> str:
    """``cells[index]``, '' when there is no such column or the row is shorter."""
    return cells[index] if index is not None and index < len(cells) else ""


def split_columns(line: str) -> list[str]:
    """A text line's columns: cells separated by tabs, two or more spaces or '|' (stripped)."""
    return [c.strip() for c in _COLUMN_SPLIT_RE.split(line.strip())]
