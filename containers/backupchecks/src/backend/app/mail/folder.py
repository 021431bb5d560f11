"""A folder of .eml files as a mail source (local use, demos and tests).

``source_id`` is the file name. :meth:`FolderMailSource.mark_processed` moves
the file into a ``processed`` subfolder, so a second run does not see it again.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Optional, Union

from .base import MailSource, MailSourceError, RemoteMessage, decode_header_text, header_date

PROCESSED_DIR = "processed"


class FolderMailSource(MailSource):
    name = "folder"

    def __init__(self, path: Union[str, os.PathLike], processed_dir: str = PROCESSED_DIR):
        self.path = Path(path)
        self.processed_path = self.path / processed_dir

    # -- MailSource --------------------------------------------------------
    def list_messages(self, limit: Optional[int] = None) -> list[RemoteMessage]:
        if not self.path.is_dir():
            raise MailSourceError(
                f"The mail folder {str(self.path)!r} does not exist or is not a folder; "
                "create it or correct the folder path in the settings.",
                code="unknown_folder",
            )
        found = []
        for entry in self.path.iterdir():
            if entry.is_file() and entry.suffix.lower() == ".eml":
                found.append(self._describe(entry))
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        found.sort(key=lambda m: (m.received_at or epoch, m.source_id))
        return found[:limit] if limit is not None else found

    def fetch_raw(self, source_id: str) -> bytes:
        file = self._file(source_id)
        try:
            return file.read_bytes()
        except OSError as exc:
            raise MailSourceError(f"The message file {source_id!r} could not be read: {exc.strerror}.",
                                  code="error") from exc

    def mark_processed(self, source_id: str) -> Optional[str]:
        src = self._file(source_id)
        try:
            self.processed_path.mkdir(parents=True, exist_ok=True)
            target = self.processed_path / src.name
            counter = 1
            while target.exists():  # never overwrite an earlier message with the same name
                target = self.processed_path / f"{src.stem}-{counter}{src.suffix}"
                counter += 1
            os.replace(src, target)
        except OSError as exc:  # e.g. a full disk: no room for the processed folder
            raise MailSourceError(f"The message file {source_id!r} could not be moved into "
                                  f"{str(self.processed_path)!r}: {exc.strerror}.", code="error") from exc
        return target.name

    # -- helpers -----------------------------------------------------------
    def _file(self, source_id: str) -> Path:
        if not source_id or source_id != os.path.basename(source_id) or source_id in (".", ".."):
            raise MailSourceError(f"{source_id!r} is not a file name in the mail folder.", code="not_found")
        file = self.path / source_id
        if not file.is_file():
            raise MailSourceError(
                f"The message file {source_id!r} is no longer in {str(self.path)!r}; "
                "it may have been processed or removed already.",
                code="not_found",
            )
        return file

    def _describe(self, file: Path) -> RemoteMessage:
        with file.open("rb") as fh:
            headers = BytesHeaderParser(policy=policy.compat32).parse(fh)
        received = header_date(headers.get("Date"))
        if received is None:
            received = datetime.fromtimestamp(file.stat().st_mtime, tz=timezone.utc)
        addresses = getaddresses([str(headers.get("From", ""))])
        from_address = addresses[0][1].lower() if addresses else ""
        return RemoteMessage(
            source_id=file.name,
            internet_message_id=str(headers.get("Message-ID", "") or "").strip(),
            received_at=received,
            subject=decode_header_text(headers.get("Subject", "")),
            from_address=from_address,
        )
