"""Child app processes without paying the app's imports each time: a fork server.

A fresh ``python -c`` that creates the app spends 2-4 s importing Flask, SQLAlchemy, Alembic and the
app's ~1,200 modules before it does its step. :class:`ForkServer` starts one interpreter that imports
them once; every :meth:`ForkServer.run` then forks it, and the forked child takes the given
environment, working directory, argv and stdin, runs the script as ``__main__`` and exits with its
exit status (``sys.exit``, an uncaught exception: 1 and the traceback on stderr, or the signal that
killed it: SIGKILL gives -9 as for ``subprocess``). Its stdout and stderr go to files the caller reads.

The child is a real, separate process (its own PID, connections, memory; killing it kills nothing
else). What a fresh interpreter would read from the environment at import is read again in the
child: ``services/faults.py`` (BACKUPCHECKS_CRASH_AT, BACKUPCHECKS_PAUSE_AT) is re-read after the fork (faults.rearm).
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SERVER = r"""
import json, os, sys, traceback

import importlib

# What create_app and the steps import (the app package, Flask, SQLAlchemy, Alembic, the routes, the services).
for name in ("backend.app", "backend.app.models", "backend.app.config", "backend.app.web", "backend.app.auth",
             "backend.app.main", "backend.app.cli", "backend.app.errors", "backend.app.filters",
             "backend.app.security", "backend.app.docs", "backend.app.embedded_pg", "backend.app.services.importer",
             "backend.app.services.missed_runs", "backend.app.services.notifications.sender",
             "backend.app.services.reports", "backend.app.mail.imap", "backend.app.mail.graph",
             "backend.app.services.migrations", "flask_migrate", "alembic.command", "alembic.runtime.migration",
             "alembic.autogenerate"):
    importlib.import_module(name)
from backend.app.services import faults

control = sys.stdout
sys.stdout = open(os.devnull, "w")

def child(req):
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    faults.rearm()  # as if imported now
    fd = os.open(req["stdin"] or os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    for n, path in ((1, req["stdout"]), (2, req["stderr"])):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, n)
        os.close(fd)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    sys.argv = ["-c", *req["args"]]
    code = 0
    try:
        exec(compile(req["script"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            child(req)
        finally:
            os._exit(1)
    control.write(json.dumps({"pid": pid}) + "\n")
    control.flush()
    _, status = os.waitpid(pid, 0)
    control.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    control.flush()
"""


class ForkServer:
    """One pre-imported interpreter per fixture; ``run`` is ``subprocess.run(..., capture_output=True,
    text=True)`` for a ``python -c script *args`` child, forked from it."""

    def __init__(self, env: dict, cwd: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="forkserver-"))
        self._log = self.dir / "server.err"
        with open(self._log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], env=env, cwd=cwd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        self._n = 0

    def _read(self, deadline: float) -> dict:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise subprocess.TimeoutExpired("forkserver", 0)
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the fork server ended (rc={self.proc.poll()}): {self._log.read_text()[-4000:]}")
            return json.loads(line)

    def run(self, script: str, env: dict, cwd: Path, args: tuple = (), input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        self._n += 1
        out, err = self.dir / f"{self._n}.out", self.dir / f"{self._n}.err"
        stdin = None
        if input is not None:
            stdin = self.dir / f"{self._n}.in"
            stdin.write_text(input)
        req = {"script": script, "env": env, "cwd": str(cwd), "args": [str(a) for a in args],
               "stdin": str(stdin) if stdin else None, "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        pid = self._read(deadline)["pid"]
        try:
            code = self._read(deadline)["code"]
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self._read(time.monotonic() + 10)
            raise subprocess.TimeoutExpired([sys.executable, "-c", script, *args], timeout)
        return subprocess.CompletedProcess([sys.executable, "-c", script, *args], code,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
