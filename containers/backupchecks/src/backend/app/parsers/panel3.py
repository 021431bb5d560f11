"""Panel3 backup mails — intentionally no parser yet.

The original deployment listed "Panel3" among the backup software it
recognised, but no public description of Panel3's backup notification mails
(sender, subject, body layout, status wording) could be found in vendor
documentation, public code or forum posts, so the format could not be
established.  Rather than guess and mis-report runs, PARSERS stays empty:
such mails land in the Inbox as "not understood" where an operator sees
them.  Add a parser here once a real Panel3 mail (with invented names) is
available as a sample.
"""
from __future__ import annotations

from .base import Parser

PARSERS: list[Parser] = []
