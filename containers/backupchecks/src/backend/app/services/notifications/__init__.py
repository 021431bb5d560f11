"""Notifications: run events go to channels (webhook, Slack, Teams, Discord, any Apprise URL).

``events`` decides which runs make an event and queues one outbox row per enabled channel that
wants it, in the caller's transaction; ``sender`` delivers due rows (only the background leader,
claiming rows with a conditional UPDATE); ``delivery`` speaks to each kind of channel;
``channels`` validates and saves channels (Settings → Notifications).
"""
from .events import enqueue, enqueue_run_events
from .sender import register, send_due

__all__ = ["enqueue", "enqueue_run_events", "register", "send_due"]
