"""Secrets at rest: the Graph client secret and the Autotask secret are stored encrypted (Fernet),
with a key from APP_ENCRYPTION_KEY (development: derived from APP_SECRET_KEY), a rotation command,
and a production that refuses to store or hold secrets without a key."""
from __future__ import annotations

import base64

import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from backend.app import crypto
from backend.app.extensions import db
from backend.app.models import AuditLog, SystemSettings

from .conftest import post_form

# Test keys only.
# Two obviously-made-up keys, the same in every xdist worker (test ids must not differ between workers).
KEY_A = base64.urlsafe_b64encode(bytes(range(32))).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()
GRAPH_SECRET = "graph-secret-for-tests-only"
AUTOTASK_SECRET = "autotask-secret-for-tests-only"


def stored(column: str):
    """The column as it is in the database (no decryption)."""
    db.session.commit()
    return db.session.execute(text(f"SELECT {column} FROM system_settings WHERE id = 1")).scalar()


def clear(column: str):
    db.session.expire_all()
    return getattr(db.session.get(SystemSettings, 1), column)


@pytest.fixture
def key(app, monkeypatch):
    """Set APP_ENCRYPTION_KEY for this test: key("new,old")."""
    def set_key(value):
        monkeypatch.setitem(app.config, "APP_ENCRYPTION_KEY", value)
        db.session.expire_all()
    return set_key


def save_secrets(as_user):
    c = as_user("admin")
    r = post_form(c, "/settings/mail", {"graph_tenant_id": "", "graph_client_id": "", "graph_mailbox": "",
                                        "graph_incoming_folder": "", "graph_processed_folder": "",
                                        "graph_client_secret": GRAPH_SECRET}, follow_redirects=True)
    assert "Mail settings saved" in r.get_data(as_text=True)
    r = post_form(c, "/settings/autotask", {"autotask_environment": "sandbox", "autotask_api_user": "api@example.test",
                                            "autotask_integration_code": "CODE", "autotask_secret": AUTOTASK_SECRET},
                  follow_redirects=True)
    assert r.status_code == 200
    return c


def test_secrets_saved_on_the_settings_pages_are_stored_encrypted(as_user, key):
    key(KEY_A)
    save_secrets(as_user)
    for column, secret in (("graph_client_secret", GRAPH_SECRET), ("autotask_secret", AUTOTASK_SECRET)):
        raw = stored(column)
        assert raw.startswith("fernet:") and secret not in raw
        assert Fernet(KEY_A.encode()).decrypt(raw[len("fernet:"):].encode()).decode() == secret
        assert clear(column) == secret  # the app reads the clear value
    assert set(SystemSettings.secret_columns()) == {"graph_client_secret", "autotask_secret", "smtp_password",
                                                    "imap_password", "oidc_client_secret"}


def test_development_derives_a_key_from_the_secret_key_and_a_changed_one_reads_as_not_set(
        app, as_user, key, monkeypatch, caplog):
    key(None)
    save_secrets(as_user)
    raw = stored("graph_client_secret")
    assert raw.startswith("fernet:")
    assert Fernet(crypto.derived_key(app.config["SECRET_KEY"])).decrypt(raw[7:].encode()).decode() == GRAPH_SECRET
    monkeypatch.setitem(app.config, "SECRET_KEY", "another-secret-key-for-tests")
    monkeypatch.setattr("backend.app.models.EncryptedText._warned", False)
    with caplog.at_level(logging.WARNING):
        assert clear("graph_client_secret") is None
    assert "can't be decrypted with derived from APP_SECRET_KEY" in caplog.text
    assert GRAPH_SECRET not in caplog.text and raw not in caplog.text


def test_production_without_a_key_refuses_to_store_a_secret(as_user, key, app, monkeypatch):
    key(None)
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    c = as_user("admin")
    r = post_form(c, "/settings/mail", {"graph_tenant_id": "", "graph_client_id": "", "graph_mailbox": "",
                                        "graph_incoming_folder": "", "graph_processed_folder": "",
                                        "graph_client_secret": GRAPH_SECRET})
    page = r.get_data(as_text=True)
    assert "APP_ENCRYPTION_KEY is not set, so secrets can&#39;t be stored" in page and "Nothing was saved" in page
    r = post_form(c, "/settings/autotask", {"autotask_environment": "sandbox", "autotask_secret": AUTOTASK_SECRET},
                  follow_redirects=True)
    assert "APP_ENCRYPTION_KEY is not set" in r.get_data(as_text=True)
    assert stored("graph_client_secret") is None and stored("autotask_secret") is None


def test_an_environment_secret_is_never_written_to_the_database(app, as_user, key):
    key(KEY_A)
    app.config["GRAPH_ENV_OVERRIDES"] = {"graph_client_secret": "env-secret-for-tests-only"}
    try:
        c = as_user("admin")
        form = {"graph_tenant_id": "", "graph_client_id": "", "graph_mailbox": "", "graph_incoming_folder": "",
                "graph_processed_folder": ""}
        post_form(c, "/settings/mail", dict(form, graph_client_secret="typed"))
        post_form(c, "/settings/mail", dict(form, clear_secret="on"))
        post_form(c, "/settings/mail/test", dict(form))
        assert stored("graph_client_secret") is None
        assert "env-secret-for-tests-only" not in str(db.session.execute(text("SELECT * FROM system_settings")).all())
        assert "env-secret-for-tests-only" not in str(db.session.execute(select(AuditLog.after, AuditLog.summary)).all())
    finally:
        app.config["GRAPH_ENV_OVERRIDES"] = {}


# --- Rotation ------------------------------------------------------------------------------------

def test_rotate_secrets_re_encrypts_with_the_first_key_and_the_old_key_can_go(app, as_user, key):
    key(KEY_A)
    save_secrets(as_user)
    key(f"{KEY_B},{KEY_A}")
    assert clear("graph_client_secret") == GRAPH_SECRET  # the old key still reads
    result = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted with the first key of APP_ENCRYPTION_KEY: autotask_secret, graph_client_secret." \
        in result.output
    assert "The old key(s) can now be removed" in result.output
    for column in ("graph_client_secret", "autotask_secret"):
        token = stored(column)[len("fernet:"):].encode()
        with pytest.raises(InvalidToken):
            Fernet(KEY_A.encode()).decrypt(token)
        Fernet(KEY_B.encode()).decrypt(token)
    key(KEY_B)  # the old key is gone
    assert clear("graph_client_secret") == GRAPH_SECRET and clear("autotask_secret") == AUTOTASK_SECRET
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "settings.rotate_secrets")).scalar_one()
    assert entry.username == "cli" and GRAPH_SECRET not in entry.summary


def test_rotate_secrets_encrypts_a_value_left_in_clear(app, key):
    key(KEY_A)
    db.session.add(SystemSettings(id=1))
    db.session.commit()
    db.session.execute(text("UPDATE system_settings SET graph_client_secret = :v WHERE id = 1"), {"v": GRAPH_SECRET})
    db.session.commit()
    assert clear("graph_client_secret") == GRAPH_SECRET  # a clear value from before encryption still works
    result = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0 and "graph_client_secret" in result.output
    assert stored("graph_client_secret").startswith("fernet:")
    assert clear("graph_client_secret") == GRAPH_SECRET


def test_rotate_secrets_without_the_old_key_changes_nothing_and_says_so(app, as_user, key):
    key(KEY_A)
    save_secrets(as_user)
    before = stored("graph_client_secret")
    key(KEY_B)  # the key the secrets were stored with is missing
    result = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 1
    assert "Not readable with any key of APP_ENCRYPTION_KEY, left as they are: autotask_secret, graph_client_secret" \
        in result.output
    assert stored("graph_client_secret") == before


def test_rotate_secrets_with_nothing_stored(app, key):
    key(KEY_A)
    result = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0 and "No secrets are stored in the database" in result.output


# --- Configuration and start-up ------------------------------------------------------------------

@pytest.mark.parametrize("value,where", [
    ("not-a-key", "it is not a Fernet key"),
    (f"{KEY_A},short", "key 2 of 2 is not a Fernet key"),
], ids=["not-a-key", "second-key-short"])
def test_a_bad_key_is_refused_with_one_line_that_never_shows_it(value, where):
    from backend.app.config import ConfigError, check_encryption_key

    with pytest.raises(ConfigError) as info:
        check_encryption_key({"APP_ENCRYPTION_KEY": value})
    assert where in str(info.value) and "short" not in str(info.value) and "not-a-key" not in str(info.value)
    check_encryption_key({"APP_ENCRYPTION_KEY": f" {KEY_A} , {KEY_B} "})
    check_encryption_key({})


def _start(database_url, tmp_path, monkeypatch, **config):
    from backend.app import create_app

    monkeypatch.setenv("APP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("APP_ENCRYPTION_KEY", raising=False)
    return create_app({"APP_ENV": "production", "SECRET_KEY": "a-long-production-secret-for-tests",
                       "SQLALCHEMY_DATABASE_URI": database_url, "BACKGROUND_JOBS": False,
                       "RUN_MIGRATIONS": False, "TESTING": True, **config})


def test_production_without_a_key_starts_while_no_secret_is_stored(app, database_url, tmp_path, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("production runs on PostgreSQL")
    db.session.add(SystemSettings(id=1))
    db.session.commit()
    assert _start(database_url, tmp_path, monkeypatch) is not None


@pytest.mark.parametrize("how,message", [
    ("encrypted", "the database holds encrypted secrets (graph_client_secret); set it to the key they were stored with"),
    ("clear", "the database holds secrets (graph_client_secret) that an earlier version stored in clear; "
              "set it to a new key"),
])
def test_production_without_a_key_refuses_to_start_when_a_secret_is_stored(
        app, database_url, tmp_path, monkeypatch, capsys, key, how, message):
    if not database_url.startswith("postgresql"):
        pytest.skip("production runs on PostgreSQL")
    key(KEY_A)
    row = SystemSettings(id=1)
    db.session.add(row)
    db.session.commit()
    value = crypto.encrypt(GRAPH_SECRET) if how == "encrypted" else GRAPH_SECRET
    db.session.execute(text("UPDATE system_settings SET graph_client_secret = :v WHERE id = 1"), {"v": value})
    db.session.commit()
    with pytest.raises(SystemExit) as info:
        _start(database_url, tmp_path, monkeypatch)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"Backupchecks cannot start: APP_ENCRYPTION_KEY is not set, but {message}" in err
    assert GRAPH_SECRET not in err
    assert _start(database_url, tmp_path, monkeypatch, APP_ENCRYPTION_KEY=KEY_A) is not None
