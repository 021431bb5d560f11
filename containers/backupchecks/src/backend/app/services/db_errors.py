"""Which database errors mean "the database can't do anything now" rather than "this row is wrong".

An import treats them differently: a value the database refuses (too long, an unknown character)
is a fault of that one mail, which is stored anyway with the error and shown in the Inbox. A
database that can't write (its disk is full), went away (a restart, an outage, a lost
connection) or is out of resources is a fault of the moment: nothing of the mail is stored, it
stays in the mailbox and the next import takes it (services/ingest.py, services/importer.py).
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import exc as sa_exc

#: SQLSTATE classes of a database that can't work now: 08 connection exception, 53 insufficient
#: resources (disk full, out of memory, too many connections), 57 operator intervention
#: (shutdown, restart, cancelled), 58 system error (I/O error)
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")

_WHAT = {
    "53100": "its disk is full",
    "53200": "it is out of memory",
    "53300": "it has too many connections",
    "57P01": "the server was shut down or restarted",
    "57P02": "the server crashed and restarted",
    "57P03": "the server is starting or shutting down",
    "58030": "it hit an I/O error on its disk",
}


def sqlstate(error: BaseException) -> Optional[str]:
    return getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(error, "sqlstate", None)


def database_unavailable(error: BaseException) -> bool:
    """True for a database that can't work now (connection lost or refused, a restart, a full disk,
    out of resources); False for an error about the statement or its values."""
    if isinstance(error, sa_exc.DisconnectionError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        import psycopg

        if not isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
            return False
    elif error.connection_invalidated:
        return True
    elif not isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    state = sqlstate(error)
    return state is None or state[:2] in _UNAVAILABLE_CLASSES


def describe(error: BaseException) -> str:
    """One clause for a page or a log: what happened to the database ("its disk is full (could not
    extend file …: No space left on device)"), without a stack trace or a password."""
    state = sqlstate(error)
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = detail[0][:300] if detail else type(error).__name__
    if state in _WHAT:
        what = _WHAT[state]
    elif state is None or state.startswith("08") or getattr(error, "connection_invalidated", False):
        what = "the connection to it was lost or refused"
    else:
        what = "it failed"
    return f"{what} ({detail})"


#: How an import cycle's error starts when the database, not the mailbox, failed (the dashboard's
#: advice tells the two apart).
DATABASE_FAILED = "The database "
