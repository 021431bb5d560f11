"""The outcome of one delivery (a notification to a channel, a mail to a server): sent, or not sent
and whether trying again later may help, with the reason. ``notifications.delivery`` and
``mail_transport`` both answer with it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    sent: bool
    retry: bool = False
    error: str = ""
