"""Flask extensions, created unbound and bound in create_app with init_app."""
import time

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event, exc

# Stable constraint names so migrations are reproducible on every database.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


# A pooled connection idle for longer than this is checked (SELECT 1) before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0
_monotonic = time.monotonic


def ping_idle_connections(engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection with a round trip before use only when it has been idle for more
    than ``idle_seconds``; a dead one is replaced (the pool retries with a new connection).

    Like ``pool_pre_ping`` for every connection that could have gone stale (a database restart,
    a firewall's idle timeout), without a round trip for each of the many short transactions an
    import makes one after another (one per mail): a connection given back a moment ago was
    working a moment ago. A brand-new connection is not checked."""
    dialect = engine.dialect

    def remember_checkin(dbapi_connection, record):
        record.info["backupchecks_idle_since"] = _monotonic()

    def ping_if_idle(dbapi_connection, record, proxy):
        since = record.info.pop("backupchecks_idle_since", None)
        if since is None or _monotonic() - since <= idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure: replace the connection
            raise exc.DisconnectionError(f"a pooled connection failed its check: {error}") from error

    event.listen(engine, "checkin", remember_checkin)
    event.listen(engine, "checkout", ping_if_idle)
