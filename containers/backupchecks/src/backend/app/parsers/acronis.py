"""Parsers for this vendor (to be written)."""
from __future__ import annotations

from .base import Parser

PARSERS: list[Parser] = []
