"""Mail sources: where backup report mails come from.

Each source hands raw RFC 822 bytes plus a source id to ingest. The registry
below maps the configured source name to its class, in a fixed order.
"""
from .base import MailSource, MailSourceError, RemoteMessage  # noqa: F401
from .folder import FolderMailSource  # noqa: F401
from .graph import GraphConfig, GraphMailSource  # noqa: F401

#: name -> class, in the order the settings page offers them
SOURCES: dict[str, type[MailSource]] = {
    GraphMailSource.name: GraphMailSource,
    FolderMailSource.name: FolderMailSource,
}
