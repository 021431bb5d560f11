"""Syncovery job report mails — intentionally no parser yet.

Syncovery (Super Flexible Software) can mail a report after a profile run,
but no public copy of that mail (subject template, body layout, result
wording, localisations) could be found: the product's help pages that were
searchable (profile settings, scheduling, versioning) do not document the
notification mail, and no public parser, mail filter or forum post quoting
one turned up.  Rather than guess a format and mis-report runs, PARSERS
stays empty, so such mails land in the Inbox as "not understood" where an
operator sees them.  Add a parser here once a real Syncovery mail (with
invented names) is available as a sample.
"""
from __future__ import annotations

from .base import Parser

PARSERS: list[Parser] = []
