"""A private Dovecot IMAP server for the IMAP mail source's tests (Debian's dovecot-imapd).

Each :class:`Dovecot` runs its own ``dovecot -F`` as the current user, with its own
configuration, base_dir, state and Maildir under a temporary folder, listening on free
loopback ports only: plain IMAP (STARTTLS offered) and IMAPS, both with the test CA's
certificate (``tests/fakes/tls.py``). One user, ``backups``, with a generated password
(passwd-file). :meth:`Dovecot.stop` kills the server (its process group) and removes the folder.

Mails are delivered with APPEND through imaplib, so Dovecot assigns UIDs as it would for
real delivery. :meth:`Dovecot.kick` drops the user's IMAP connections (``doveadm kick``).
"""
from __future__ import annotations

import grp
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

from tests.fakes.tls import fake_tls
from tests.ports import free_port as _free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
USER = "backups"


def dovecot_installed() -> bool:
    return os.path.exists(DOVECOT) and os.access(DOVECOT, os.X_OK) and os.path.exists(DOVEADM)


def _accounts() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid): the current user for all of them, except
    as root, where Dovecot refuses root for its login processes: then Debian's own ``dovecot``
    and ``dovenull`` users (made by the package), and the mail belongs to ``dovecot``."""
    me = pwd.getpwuid(os.getuid())
    if os.getuid() != 0:
        return me.pw_name, me.pw_name, os.getuid(), os.getgid()
    internal = pwd.getpwnam("dovecot")
    login = "dovenull" if _has_user("dovenull") else "nobody"
    return internal.pw_name, login, internal.pw_uid, internal.pw_gid


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Dovecot:
    """One private Dovecot; use as a context manager or call start()/stop()."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.password = secrets.token_urlsafe(18)
        self.user = USER
        self.port = _free_port()
        self.ssl_port = _free_port()
        self.tls = fake_tls()
        self.proc: Optional[subprocess.Popen] = None
        self.config = self.dir / "dovecot.conf"

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> "Dovecot":
        internal, login, mail_uid, mail_gid = _accounts()
        group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        self.dir.chmod(0o755)  # the login and mail processes go through it
        for sub in ("run", "state", "mail", "home"):
            (self.dir / sub).mkdir(mode=0o755)
        for sub in ("mail", "home"):
            os.chown(self.dir / sub, mail_uid, mail_gid)
        passwd = self.dir / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}:{mail_uid}:{mail_gid}::"
                          f"{self.dir / 'home' / self.user}::\n")
        passwd.chmod(0o644)
        self.config.write_text(f"""
base_dir = {self.dir / 'run'}
state_dir = {self.dir / 'state'}
log_path = {self.dir / 'dovecot.log'}
info_log_path = {self.dir / 'dovecot.log'}
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {min(mail_uid, 500)}
first_valid_gid = {min(mail_gid, 500)}
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login answers at once (Dovecot's default holds it 2 s against guessing).
auth_failure_delay = 0
ssl = yes
ssl_cert = <{self.tls.cert_chain}
ssl_key = <{self.tls.key}
mail_location = maildir:{self.dir / 'mail'}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service stats {{
  chroot =
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot did not start: {out}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(200).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port}\n{log}")

    def stop(self) -> None:
        """SIGKILL the server and every process it started (its own process group): a graceful
        SIGTERM costs Dovecot a second, and the mail folder is thrown away anyway."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Dovecot":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return (self.dir / "dovecot.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- the test's hands on the mailbox --------------------------------------------------------
    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port)
        conn.login(self.user, self.password)
        return conn

    def deliver(self, mails: Iterable[bytes], folder: str = "INBOX") -> None:
        """APPEND each mail (oldest first) to ``folder`` (created when missing)."""
        conn = self.connect()
        try:
            self._ensure(conn, folder)
            for raw in mails:
                typ, data = conn.append(_quote(folder), None, None, raw)
                assert typ == "OK", data
        finally:
            conn.logout()

    def create(self, folder: str) -> None:
        conn = self.connect()
        try:
            self._ensure(conn, folder)
        finally:
            conn.logout()

    def delete(self, folder: str) -> None:
        conn = self.connect()
        try:
            typ, data = conn.delete(_quote(folder))
            assert typ == "OK", data
        finally:
            conn.logout()

    def rename(self, old: str, new: str) -> None:
        conn = self.connect()
        try:
            typ, data = conn.rename(_quote(old), _quote(new))
            assert typ == "OK", data
        finally:
            conn.logout()

    def messages(self, folder: str) -> list[bytes]:
        """The raw mails in ``folder`` that are not flagged \\Deleted, in UID order."""
        conn = self.connect()
        try:
            typ, _ = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("SEARCH", "NOT", "DELETED")
            uids = data[0].split()
            out = []
            for uid in uids:
                typ, got = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                out.append(next(part[1] for part in got if isinstance(part, tuple)))
            return out
        finally:
            conn.logout()

    def uidvalidity(self, folder: str) -> int:
        conn = self.connect()
        try:
            typ, data = conn.status(_quote(folder), "(UIDVALIDITY)")
            return int(data[0].split(b"UIDVALIDITY")[1].strip(b" ()"))
        finally:
            conn.logout()

    def kick(self) -> None:
        """Drop every IMAP connection of the test user (``doveadm kick``)."""
        done = subprocess.run([DOVEADM, "-c", str(self.config), "kick", self.user], capture_output=True, timeout=15)
        if done.returncode not in (0, 68):  # 68: nobody was connected
            raise RuntimeError(f"doveadm kick failed ({done.returncode}): {done.stderr.decode(errors='replace')}")

    @staticmethod
    def _ensure(conn: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() == "INBOX":
            return
        typ, data = conn.list('""', _quote(folder))
        if not data or data[0] is None:
            typ, data = conn.create(_quote(folder))
            assert typ == "OK", data


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
