"""The IMAP mail source against a real Dovecot (tests/fakes/dovecot.py): each mail stored once and
moved only after its commit, across dropped connections, crashes, two importers and a recreated
folder; clear sentences for what an operator can fix; Settings → Mail for IMAP."""
from __future__ import annotations

import html
import re
import threading

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.models import AuditLog, MailMessage, SystemSettings
from tests.conftest import post_form
from tests.test_importer import corpus_mails

PROCESSED = "Processed"


@pytest.fixture
def imap_app(app, dovecot):
    """Returns ``aim(**over)``: the app's IMAP settings (environment) pointed at the Dovecot."""
    saved = {k: app.config.get(k) for k in ("IMAP_ENV_OVERRIDES", "IMAP_CLIENT_OPTIONS")}

    def aim(**over):
        values = {"mail_source": "imap", "imap_host": "127.0.0.1", "imap_port": dovecot.ssl_port, "imap_tls": "ssl",
                  "imap_username": dovecot.user, "imap_password": dovecot.password, "imap_folder": "INBOX",
                  "imap_processed_folder": PROCESSED}
        if over.get("imap_tls") in ("starttls", "none"):
            values["imap_port"] = dovecot.port
        values.update(over)
        app.config["IMAP_ENV_OVERRIDES"] = {k: v for k, v in values.items() if v is not None}
        app.config["IMAP_CLIENT_OPTIONS"] = {"ca_file": dovecot.tls.ca_bundle, "timeout": 10}

    dovecot.create(PROCESSED)
    aim()
    yield aim
    app.config.update(saved)


def _source(**over):
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import imap_config, imap_settings_mapping

    return ImapMailSource(imap_config({**imap_settings_mapping(), **over}))


def _rows():
    db.session.expire_all()
    return db.session.execute(select(MailMessage).order_by(MailMessage.id)).scalars().all()


def _message_ids(raws) -> list[str]:
    return sorted(re.search(rb"(?mi)^Message-ID:\s*(\S+)", r).group(1).decode() for r in raws)


def _cycle(source=None):
    from backend.app.services.importer import run_import_cycle

    return run_import_cycle(source, trigger="manual")


@pytest.mark.parametrize("tls", ["ssl", "starttls", "none"])
def test_the_sample_mails_are_stored_once_and_moved_to_the_processed_folder(app, dovecot, imap_app, tls):
    imap_app(imap_tls=tls)
    mails = corpus_mails(8, tag=f"imap-{tls}")
    dovecot.deliver(m.raw for m in mails)
    cycle = _cycle()
    assert (cycle.state, cycle.fetched, cycle.new, cycle.failed, cycle.error) == ("done", 8, 8, 0, None)
    rows = _rows()
    assert sorted(r.internet_message_id for r in rows) == sorted(m.message_id for m in mails)
    validity = dovecot.uidvalidity("INBOX")
    assert {r.source for r in rows} == {"imap"}
    assert all(re.fullmatch(rf"INBOX:{validity}:\d+", r.source_id) for r in rows)
    assert dovecot.messages("INBOX") == []
    assert _message_ids(dovecot.messages(PROCESSED)) == sorted(m.message_id for m in mails)
    again = _cycle()
    assert (again.state, again.fetched, again.new) == ("done", 0, 0)
    assert len(_rows()) == 8


def test_without_move_a_mail_is_copied_flagged_and_expunged(app, dovecot, imap_app):
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import imap_config

    mails = corpus_mails(4, tag="imap-copy")
    dovecot.deliver(m.raw for m in mails)
    cycle = _cycle(ImapMailSource(imap_config(), use_move=False))
    assert (cycle.state, cycle.new, cycle.error) == ("done", 4, None)
    assert dovecot.messages("INBOX") == []
    assert len(dovecot.messages(PROCESSED)) == 4
    assert len(_rows()) == 4


def test_a_connection_dropped_mid_fetch_fails_the_cycle_cleanly_and_the_next_imports_the_rest(app, dovecot,
                                                                                                imap_app):
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import imap_config

    mails = corpus_mails(6, tag="imap-drop")
    dovecot.deliver(m.raw for m in mails)

    class Dropping(ImapMailSource):
        fetched = 0

        def fetch_raw(self, source_id):
            Dropping.fetched += 1
            if Dropping.fetched == 3:
                dovecot.kick()  # the server drops the connection before the third fetch
            return super().fetch_raw(source_id)

    cycle = _cycle(Dropping(imap_config()))
    assert cycle.new == 2 and cycle.failed == 4
    assert "connection to the IMAP server" in cycle.error and "dropped" in cycle.error
    assert dovecot.password not in cycle.error
    assert len(_rows()) == 2 and len(dovecot.messages(PROCESSED)) == 2
    nxt = _cycle()
    assert (nxt.state, nxt.fetched, nxt.new, nxt.duplicates, nxt.failed) == ("done", 4, 4, 0, 0)
    assert sorted(r.internet_message_id for r in _rows()) == sorted(m.message_id for m in mails)
    assert dovecot.messages("INBOX") == [] and len(dovecot.messages(PROCESSED)) == 6


def test_a_crash_between_store_and_move_is_moved_by_the_next_cycle_without_storing_again(app, dovecot, imap_app):
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import imap_config

    mails = corpus_mails(3, tag="imap-crash")
    dovecot.deliver(m.raw for m in mails)

    class Crashing(ImapMailSource):
        def mark_processed(self, source_id):
            raise RuntimeError("the process died after the commit")  # committed, not moved

    crashed = _cycle(Crashing(imap_config()))
    assert crashed.state == "failed" and "died after the commit" in crashed.error
    assert len(_rows()) == 1 and len(dovecot.messages("INBOX")) == 3
    nxt = _cycle()
    assert (nxt.state, nxt.fetched, nxt.new, nxt.duplicates) == ("done", 3, 2, 1)
    assert len(_rows()) == 3
    assert dovecot.messages("INBOX") == [] and len(dovecot.messages(PROCESSED)) == 3


def test_two_importers_at_once_store_each_mail_once(app, dovecot, imap_app):
    """Two importers, each with its own IMAP connection, both list the same mails and work through
    them at once (the import lock left out): the database stores each mail once and the incoming
    folder ends empty. (Two MOVEs of one message racing may both copy it: the processed folder can
    then hold a second copy. The import lock keeps real cycles from racing: the next test.)"""
    from backend.app.services.importer import CycleCounts, _import_one

    from backend.app.services.settings import get_settings

    mails = corpus_mails(10, tag="imap-two")
    dovecot.deliver(m.raw for m in mails)
    get_settings()
    db.session.commit()  # the settings row exists before the threads read it
    barrier = threading.Barrier(2)
    counts = [CycleCounts(), CycleCounts()]

    def importer(slot):
        with app.app_context():
            try:
                with _source() as source:
                    listed = source.list_messages()
                    barrier.wait()
                    for rm in listed:
                        _import_one(source, rm.source_id, counts[slot], keep_raw=True)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=importer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(c.new for c in counts) == 10, counts
    assert sorted(r.internet_message_id for r in _rows()) == sorted(m.message_id for m in mails)
    assert dovecot.messages("INBOX") == []
    assert set(_message_ids(dovecot.messages(PROCESSED))) == {m.message_id for m in mails}


def test_two_import_cycles_started_at_once_only_one_imports(app, dovecot, imap_app):
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import ImportBusy, imap_config, run_import_cycle

    from backend.app.services.settings import get_settings

    mails = corpus_mails(5, tag="imap-lock")
    dovecot.deliver(m.raw for m in mails)
    get_settings()
    db.session.commit()  # the settings row exists before the threads read it
    barrier = threading.Barrier(2)
    listing = threading.Event()
    results: list = [None, None]

    class Slow(ImapMailSource):
        def list_messages(self, limit=None):
            listing.set()
            got = super().list_messages(limit)
            threading.Event().wait(1.0)  # hold the lock while the other tries
            return got

    def importer(slot):
        with app.app_context():
            barrier.wait()
            if slot == 1:
                listing.wait(10)
            try:
                results[slot] = ("imported", run_import_cycle(Slow(imap_config()), trigger="manual").new)
            except ImportBusy as exc:
                results[slot] = ("busy", str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=importer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r[0] for r in results) == ["busy", "imported"], results
    assert len(_rows()) == 5 and len(dovecot.messages(PROCESSED)) == 5


def test_a_recreated_folder_with_a_new_uidvalidity_imports_nothing_twice(app, dovecot, imap_app):
    from backend.app.mail import MailSourceError
    from backend.app.mail.imap import ImapMailSource
    from backend.app.services.importer import imap_config

    imap_app(imap_folder="Reports")
    mails = corpus_mails(4, tag="imap-validity")
    dovecot.deliver((m.raw for m in mails), folder="Reports")
    old_validity = dovecot.uidvalidity("Reports")

    class NoMove(ImapMailSource):  # stored, then the moves fail: all four stay in Reports
        def mark_processed(self, source_id):
            raise MailSourceError("the move failed", code="error")

    first = _cycle(NoMove(imap_config()))
    assert first.new == 4 and "Stored but not moved" in first.error
    old_ids = [r.source_id for r in _rows()]
    # The folder is recreated (restored from a backup): same mails, new UIDVALIDITY, new UIDs.
    dovecot.rename("Reports", "Reports-old")
    dovecot.deliver((m.raw for m in mails), folder="Reports")
    assert dovecot.uidvalidity("Reports") != old_validity
    with _source() as source:
        with pytest.raises(MailSourceError) as stale:
            source.fetch_raw(old_ids[0])
        assert stale.value.code == "stale"
        with pytest.raises(MailSourceError):
            source.mark_processed(old_ids[0])
    assert len(dovecot.messages("Reports")) == 4  # the old id moved nothing
    nxt = _cycle()
    assert (nxt.state, nxt.fetched, nxt.new, nxt.duplicates, nxt.error) == ("done", 4, 0, 4, None)
    assert [r.source_id for r in _rows()] == old_ids  # nothing stored again
    assert dovecot.messages("Reports") == [] and len(dovecot.messages(PROCESSED)) == 4


def test_a_wrong_password_fails_the_cycle_with_a_clear_sentence(app, dovecot, imap_app):
    imap_app(imap_password="not-the-password")
    dovecot.deliver(m.raw for m in corpus_mails(1, tag="imap-pw"))
    cycle = _cycle()
    assert cycle.state == "failed"
    assert "refused the user name or password for 'backups'" in cycle.error
    assert "app password" in cycle.error and "not-the-password" not in cycle.error
    assert _rows() == [] and len(dovecot.messages("INBOX")) == 1


def test_a_missing_folder_fails_the_cycle_with_the_folders_there(app, dovecot, imap_app):
    imap_app(imap_folder="Backup reports")
    cycle = _cycle()
    assert cycle.state == "failed"
    assert "No folder named 'Backup reports'" in cycle.error and "INBOX, Processed" in cycle.error


def test_a_missing_processed_folder_leaves_the_mail_stored_and_in_place(app, dovecot, imap_app):
    imap_app(imap_processed_folder="Archive")
    dovecot.deliver(m.raw for m in corpus_mails(1, tag="imap-noproc"))
    cycle = _cycle()
    assert cycle.new == 1 and "Stored but not moved: No folder named 'Archive'" in cycle.error
    assert len(dovecot.messages("INBOX")) == 1


def test_an_unreachable_server_and_an_untrusted_certificate_are_told_apart(app, dovecot, imap_app):
    from backend.app.mail import MailSourceError

    with _source(imap_port=1) as source:
        with pytest.raises(MailSourceError) as unreachable:
            source.list_messages()
    assert unreachable.value.code == "unreachable" and "Cannot reach the IMAP server 127.0.0.1:1" in str(unreachable.value)
    app.config["IMAP_CLIENT_OPTIONS"] = {"timeout": 10}  # the test CA not trusted
    with _source() as source:
        with pytest.raises(MailSourceError) as untrusted:
            source.list_messages()
    assert untrusted.value.code == "tls_failed" and "certificate is not trusted" in str(untrusted.value)
    with _source(imap_tls="ssl", imap_port=dovecot.port) as source:  # TLS spoken to the plain port
        with pytest.raises(MailSourceError) as handshake:
            source.list_messages()
    assert handshake.value.code == "tls_failed" and "TLS handshake failed" in str(handshake.value)


# --- Settings → Mail -------------------------------------------------------------------------------

def imap_form(**over):
    data = {"mail_source": "imap", "graph_tenant_id": "", "graph_client_id": "", "graph_mailbox": "",
            "graph_incoming_folder": "", "graph_processed_folder": "", "graph_client_secret": "",
            "imap_host": "imap.example.test", "imap_port": "", "imap_tls": "ssl", "imap_username": "backups@example.test",
            "imap_password": "", "imap_folder": "INBOX", "imap_processed_folder": "INBOX/Processed"}
    data.update(over)
    return data


def _settings():
    db.session.expire_all()
    return db.session.get(SystemSettings, 1) or SystemSettings(mail_source="graph")


@pytest.fixture
def no_env(app):
    saved = {k: app.config.get(k) for k in ("IMAP_ENV_OVERRIDES", "IMAP_CLIENT_OPTIONS", "GRAPH_ENV_OVERRIDES")}
    app.config.update(IMAP_ENV_OVERRIDES={}, GRAPH_ENV_OVERRIDES={})
    yield
    app.config.update(saved)


def test_saving_imap_settings_is_audited_with_the_password_masked_and_write_only(app, as_user, no_env):
    c = as_user("admin")
    r = post_form(c, "/settings/mail", imap_form(imap_password="app-pass-1234-wxyz"), follow_redirects=True)
    assert "Mail settings saved" in r.get_data(as_text=True)
    row = _settings()
    assert (row.mail_source, row.imap_host, row.imap_port, row.imap_tls, row.imap_password) == (
        "imap", "imap.example.test", 993, "ssl", "app-pass-1234-wxyz")
    raw = db.session.execute(db.text("SELECT imap_password FROM system_settings")).scalar_one()
    assert "app-pass" not in raw and raw.startswith("fernet:"), "stored encrypted"
    page = c.get("/settings?section=mail").get_data(as_text=True)
    assert "app-pass-1234-wxyz" not in page and "A password is stored" in page
    # an empty password keeps the stored one; an empty port is the TLS mode's usual port
    post_form(c, "/settings/mail", imap_form(imap_tls="starttls"))
    row = _settings()
    assert row.imap_password == "app-pass-1234-wxyz" and row.imap_tls == "starttls" and row.imap_port == 143
    entries = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail")
                                 .order_by(AuditLog.id)).scalars().all()
    assert len(entries) == 2
    assert entries[0].after["imap_password"] == "••••••" and entries[0].after["mail_source"] == "imap"
    assert all("app-pass" not in str(e.after) + str(e.before) + e.summary for e in entries)
    assert entries[1].before == {"imap_tls": "ssl", "imap_port": 993}
    assert entries[1].after == {"imap_tls": "starttls", "imap_port": 143}


@pytest.mark.parametrize("field,value,message", [
    ("imap_port", "70000", "The IMAP port must be a number from 1 to 65535"),
    ("imap_port", "99x", "The IMAP port must be a number from 1 to 65535"),
    ("imap_tls", "tls13", "TLS must be SSL/TLS (port 993), STARTTLS (port 143) or none"),
    ("imap_host", "imap.example.test:993", "without a port"),
    ("imap_processed_folder", "INBOX", "must differ from the incoming folder"),
    ("mail_source", "pop3", "The mail source must be Microsoft 365 or IMAP"),
])
def test_bad_imap_values_are_refused_and_nothing_is_saved(app, as_user, no_env, field, value, message):
    c = as_user("admin")
    r = post_form(c, "/settings/mail", imap_form(**{field: value, "imap_password": "typed-pw"}))
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 400 and message in page and "Nothing was saved" in page
    row = _settings()
    assert (row.mail_source, row.imap_host, row.imap_password) == ("graph", None, None)
    assert db.session.execute(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.event == "settings.mail")).scalar_one() == 0


def test_environment_values_win_and_are_shown_read_only(app, as_user, no_env):
    app.config["IMAP_ENV_OVERRIDES"] = {"mail_source": "imap", "imap_host": "env-imap.example.test",
                                        "imap_password": "env-secret-pw"}
    c = as_user("admin")
    page = c.get("/settings?section=mail").get_data(as_text=True)
    assert "Set by the environment (IMAP_HOST)" in page and "Set by the environment (MAIL_SOURCE)" in page
    assert "Set by the environment (IMAP_PASSWORD)" in page and "env-secret-pw" not in page
    post_form(c, "/settings/mail", imap_form(imap_host="typed.example.test", mail_source="graph",
                                             imap_password="typed-pw"))
    row = _settings()
    assert row.imap_host is None and row.mail_source == "graph" and row.imap_password is None


def test_test_connection_and_the_folder_picker_work_for_imap(app, as_user, dovecot, imap_app):
    c = as_user("admin")
    env = app.config["IMAP_ENV_OVERRIDES"]
    app.config["IMAP_ENV_OVERRIDES"] = {}
    form = imap_form(imap_host="127.0.0.1", imap_port=str(dovecot.ssl_port), imap_username=dovecot.user,
                     imap_password=dovecot.password, imap_processed_folder=PROCESSED)
    page = html.unescape(post_form(c, "/settings/mail/test", form).get_data(as_text=True))
    assert "Connection test: it works" in page and "signed in to 127.0.0.1" in page
    assert _settings().imap_host is None  # testing saved nothing
    bad = html.unescape(post_form(c, "/settings/mail/test", {**form, "imap_password": "wrong"}).get_data(as_text=True))
    assert "Connection test: failed" in bad and "refused the user name or password" in bad
    missing = html.unescape(post_form(c, "/settings/mail/test", {**form, "imap_folder": "Nope"}).get_data(as_text=True))
    assert "No folder named 'Nope'" in missing
    tests = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.mail_test")
                               .order_by(AuditLog.id)).scalars().all()
    assert [t.after["ok"] for t in tests] == [True, False, False]
    assert all(dovecot.password not in str(t.after) + t.summary for t in tests)
    # the folder picker reads the saved settings (here: the environment's)
    app.config["IMAP_ENV_OVERRIDES"] = env
    folders = c.get("/settings/mail/folders").get_json()
    assert folders == {"ok": True, "folders": ["INBOX", PROCESSED]}


def test_the_imap_environment_is_checked_at_start():
    from backend.app.config import ConfigError, imap_env_overrides

    assert imap_env_overrides({"MAIL_SOURCE": "IMAP", "IMAP_PORT": "993", "IMAP_TLS": "SSL", "IMAP_USER": "u"}) == {
        "mail_source": "imap", "imap_port": 993, "imap_tls": "ssl", "imap_username": "u"}
    for env, message in [({"MAIL_SOURCE": "pop3"}, "MAIL_SOURCE must be graph or imap"),
                         ({"IMAP_TLS": "tls"}, "IMAP_TLS must be ssl, starttls or none"),
                         ({"IMAP_PORT": "0"}, "IMAP_PORT must be a port number"),
                         ({"IMAP_PORT": "x"}, "IMAP_PORT must be a whole number")]:
        with pytest.raises(ConfigError, match=message):
            imap_env_overrides(env)
