"""FolderMailSource: a directory of .eml files."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.mail import FolderMailSource, MailSourceError
from tests.fakes.fake_graph import make_mime

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def mail_dir(tmp_path):
    (tmp_path / "b.eml").write_bytes(make_mime("Second", date=T0 + timedelta(hours=1), message_id="<b@fake.example>"))
    (tmp_path / "a.eml").write_bytes(make_mime("Third", date=T0 + timedelta(hours=2), message_id="<a@fake.example>"))
    (tmp_path / "c.EML").write_bytes(make_mime("First", date=T0, sender="Veeam@Customer.Example"))
    (tmp_path / "notes.txt").write_text("not a mail")
    return tmp_path


def test_lists_eml_files_oldest_first(mail_dir):
    messages = FolderMailSource(mail_dir).list_messages()

    assert [m.subject for m in messages] == ["First", "Second", "Third"]
    assert [m.source_id for m in messages] == ["c.EML", "b.eml", "a.eml"]
    assert messages[0].received_at == T0 and messages[0].from_address == "veeam@customer.example"
    assert messages[1].internet_message_id == "<b@fake.example>"


def test_limit(mail_dir):
    assert [m.subject for m in FolderMailSource(mail_dir).list_messages(limit=2)] == ["First", "Second"]


def test_mail_without_date_uses_the_file_time(tmp_path):
    (tmp_path / "x.eml").write_bytes(b"From: a@b.example\r\nSubject: no date\r\n\r\nbody\r\n")
    os.utime(tmp_path / "x.eml", (T0.timestamp(), T0.timestamp()))

    [message] = FolderMailSource(tmp_path).list_messages()

    assert message.received_at == T0 and message.internet_message_id == ""


def test_fetch_raw_and_mark_processed(mail_dir):
    src = FolderMailSource(mail_dir)
    raw = (mail_dir / "a.eml").read_bytes()

    assert src.fetch_raw("a.eml") == raw
    assert src.mark_processed("a.eml") == "a.eml"
    assert (mail_dir / "processed" / "a.eml").read_bytes() == raw
    assert [m.source_id for m in src.list_messages()] == ["c.EML", "b.eml"]
    with pytest.raises(MailSourceError) as info:
        src.fetch_raw("a.eml")
    assert info.value.code == "not_found"


def test_mark_processed_never_overwrites(mail_dir):
    src = FolderMailSource(mail_dir)
    src.mark_processed("a.eml")
    (mail_dir / "a.eml").write_bytes(make_mime("Again"))

    assert src.mark_processed("a.eml") == "a-1.eml"
    assert sorted(p.name for p in (mail_dir / "processed").iterdir()) == ["a-1.eml", "a.eml"]


@pytest.mark.parametrize("bad", ["../a.eml", "/etc/passwd", "", "..", "processed/a.eml"])
def test_source_ids_cannot_leave_the_folder(mail_dir, bad):
    with pytest.raises(MailSourceError):
        FolderMailSource(mail_dir).fetch_raw(bad)


def test_missing_folder_is_an_actionable_error(tmp_path):
    with pytest.raises(MailSourceError) as info:
        FolderMailSource(tmp_path / "nope").list_messages()
    assert info.value.code == "unknown_folder" and "nope" in info.value.message


def test_a_full_disk_while_moving_is_an_actionable_error_and_the_mail_stays(mail_dir, monkeypatch):
    import errno

    from backend.app.mail import folder

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(folder.Path, "mkdir", no_space)
    src = FolderMailSource(mail_dir)
    with pytest.raises(MailSourceError) as info:
        src.mark_processed("a.eml")
    assert "'a.eml' could not be moved into" in info.value.message
    assert info.value.message.endswith(": No space left on device.")
    assert (mail_dir / "a.eml").exists()  # still where it was: the next cycle moves it
