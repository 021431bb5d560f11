"""Backup report parsers: pure functions from mail bytes to a ParseResult."""
from .base import Message, ParsedObject, ParseResult, Parser  # noqa: F401
