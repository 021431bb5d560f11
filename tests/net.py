"""Clients at a chosen network address, for the tests about who-is-where (login throttling,
session binding):

- ``client_at(app, "10.0.0.7")``: a Flask test client whose requests come from that address;
- ``http_from("127.0.0.2")``: a real ``requests`` session whose socket is bound to that source
  address (anything in 127.0.0.0/8 reaches a server on 127.0.0.1 on Linux);
- ``app_behind_proxy(app)``: a second app on the same database, built by create_app with
  APP_BEHIND_PROXY=true (trusting one proxy's X-Forwarded-For).
"""
from __future__ import annotations

import re

import requests
from requests.adapters import HTTPAdapter

from .conftest import PASSWORD, csrf_token

_TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def client_at(app, address: str):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return c


def login_at(c, username: str, password: str = PASSWORD, headers: dict | None = None):
    token = csrf_token(c, "/auth/login")
    return c.post("/auth/login", data={"username": username, "password": password, "csrf_token": token},
                  headers=headers)


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, source: str, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def http_from(source: str) -> requests.Session:
    s = requests.Session()
    adapter = _SourceAddressAdapter(source)
    s.mount("http://", adapter)
    return s


def http_token(session: requests.Session, url: str) -> str:
    r = session.get(url, timeout=30)
    m = _TOKEN_RE.search(r.text)
    assert m, f"no CSRF token on {url} ({r.status_code})"
    return m.group(1)


def http_login(session: requests.Session, base: str, username: str, password: str = PASSWORD):
    token = http_token(session, base + "/auth/login")
    return session.post(base + "/auth/login", data={"username": username, "password": password,
                                                     "csrf_token": token}, allow_redirects=False, timeout=30)


def app_behind_proxy(app):
    """The same app (database, secret key) as create_app builds it with APP_BEHIND_PROXY=true. It reads
    from its own session, so what the test built so far is committed here."""
    from backend.app import create_app
    from backend.app.extensions import db

    db.session.commit()

    keys = ("TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SERVER_NAME")
    return create_app({**{k: app.config[k] for k in keys}, "BACKGROUND_JOBS": False, "RUN_MIGRATIONS": False,
                       "APP_BEHIND_PROXY": True})
