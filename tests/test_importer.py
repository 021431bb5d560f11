"""The mail importer end to end: FakeGraph (real HTTPS sockets) -> run_import_cycle / `flask import-mail`
-> ingest -> PostgreSQL.

The 60-mail corpus is built from the sample reports in tests/samples/emails (tests/corpus.py) with a unique
Message-ID per mail and, for the copies, a varied job name (or sender) so identities differ.
`corpus_mails()` is also used by tests/deploy/test_e2e_import.py and scripts/bench_import.py.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Optional

import pytest

from tests.corpus import CORPUS

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = CORPUS  # tests/samples/emails
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


# --- the corpus ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusMail:
    raw: bytes
    message_id: str          # with the angle brackets, as in the header
    sender: str
    software: Optional[str]
    job_name: Optional[str]
    status: Optional[str]
    is_report: bool
    received: datetime

    @property
    def identity(self) -> Optional[tuple[str, str, str]]:
        if not (self.is_report and self.software and self.job_name):
            return None
        return (self.sender, self.job_name, self.software)


@lru_cache(maxsize=1)
def sample_files() -> tuple[Path, ...]:
    files = tuple(sorted(SAMPLES.glob("**/*.eml")))
    assert files, f"no sample mails under {SAMPLES}"
    return files


def _parse(raw: bytes):
    from backend.app.parsers.normalize import normalize
    from backend.app.parsers.registry import parse_message

    nm = normalize(raw)
    return nm, parse_message(nm)


_MSGID_RE = re.compile(rb"(?mi)^Message-ID:[^\n]*\n(?:[ \t][^\n]*\n)*")


def _with_message_id(raw: bytes, message_id: str) -> bytes:
    crlf = b"\r\n" in raw[:2000]
    line = b"Message-ID: " + message_id.encode() + (b"\r\n" if crlf else b"\n")
    head_end = raw.find(b"\r\n\r\n" if crlf else b"\n\n")
    head, body = (raw[:head_end + 1], raw[head_end + 1:]) if head_end >= 0 else (raw, b"")
    if _MSGID_RE.search(head):
        head = _MSGID_RE.sub(lambda m: line, head, count=1)
    else:
        head = line + head
    return head + body


def _vary_job(raw: bytes, job_name: str, k: int) -> bytes:
    return raw.replace(job_name.encode(), f"{job_name}-n{k}".encode())


def _vary_sender(raw: bytes, sender: str, k: int) -> bytes:
    local, _, domain = sender.partition("@")
    return raw.replace(sender.encode(), f"{local}+n{k}@{domain}".encode())


@lru_cache(maxsize=1)
def _base_results() -> tuple:
    out = []
    for path in sample_files():
        raw = path.read_bytes()
        nm, res = _parse(raw)
        out.append((path.name, raw, nm.from_address or "", res))
    return tuple(out)


@lru_cache(maxsize=8192)
def _variant(sample_index: int, k: int) -> tuple:
    """Variant ``k`` of a sample: k = 0 is the sample itself; k >= 1 gets a varied job name, else a
    varied sender, kept only when the parser still reads the same software and status and the new
    identity. Returns (name, raw, sender, job_name, software, status, is_report)."""
    name, raw, sender, res = _base_results()[sample_index]
    job_name, software, status = res.job_name, res.software, res.overall_status
    if k and res.is_report and res.job_name:
        new_sender = _vary_sender(sender.encode(), sender, k).decode()
        for candidate, want in ((_vary_job(raw, res.job_name, k), (sender, f"{res.job_name}-n{k}")),
                                (_vary_sender(raw, sender, k), (new_sender, res.job_name))):
            nm2, res2 = _parse(candidate)
            if (nm2.from_address, res2.job_name) == want and res2.software == software \
                    and res2.overall_status == status and res2.is_report:
                raw, (sender, job_name) = candidate, want
                break
    return name, raw, sender, job_name, software, status, bool(res.is_report and res.parsed)


def build_mail(index: int, tag: str = "imp", variant: Optional[int] = None) -> CorpusMail:
    """Mail number ``index``: sample ``index % 33`` in variant ``index // 33`` (or ``variant``), with a
    unique Message-ID and a received time ``index`` minutes after T0."""
    count = len(_base_results())
    k = index // count if variant is None else variant
    name, raw, sender, job_name, software, status, is_report = _variant(index % count, k)
    message_id = f"<{tag}-{index:05d}.{name.split('.')[0]}@corpus.backupchecks.test>"
    return CorpusMail(raw=_with_message_id(raw, message_id), message_id=message_id, sender=sender,
                      software=software, job_name=job_name, status=status, is_report=is_report,
                      received=T0 + timedelta(minutes=index))


def corpus_mails(n: int, tag: str = "imp") -> list[CorpusMail]:
    return [build_mail(i, tag) for i in range(n)]


# --- fixtures --------------------------------------------------------------------------------

GRAPH_OPTIONS = dict(page_size=10, max_attempts=3, max_retry_wait=3, backoff_base=0.01, timeout=10)


@pytest.fixture
def graph_app(app, monkeypatch):
    """Returns ``aim(fake, secret=None)`` pointing the app's Graph settings at a FakeGraph (restored after)."""
    from backend.app.mail import graph as graph_module

    saved = {k: app.config.get(k) for k in ("GRAPH_ENV_OVERRIDES", "GRAPH_AUTHORITY_HOST", "GRAPH_API_BASE",
                                            "GRAPH_CLIENT_OPTIONS")}
    graph_module.reset_token_cache()

    def aim(fake, secret: Optional[str] = None):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        app.config["GRAPH_ENV_OVERRIDES"] = {
            "graph_tenant_id": fake.tenant_id, "graph_client_id": fake.client_id,
            "graph_client_secret": secret or fake.client_secret, "graph_mailbox": fake.mailbox,
            "graph_incoming_folder": fake.incoming, "graph_processed_folder": fake.processed,
        }
        app.config["GRAPH_AUTHORITY_HOST"] = fake.authority_host
        app.config["GRAPH_API_BASE"] = fake.api_base
        app.config["GRAPH_CLIENT_OPTIONS"] = dict(GRAPH_OPTIONS)

    yield aim
    app.config.update(saved)
    graph_module.reset_token_cache()


def _fake(mails):
    from tests.fakes.fake_graph import FakeGraph

    return FakeGraph([(m.raw, m.received) if isinstance(m, CorpusMail) else m for m in mails])


def _counts(output: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", output)}


def _mail_rows():
    from sqlalchemy import select

    from backend.app.extensions import db
    from backend.app.models import MailMessage

    db.session.expire_all()
    return db.session.execute(select(MailMessage).order_by(MailMessage.id)).scalars().all()


def _count(model) -> int:
    from sqlalchemy import func, select

    from backend.app.extensions import db

    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _known_jobs(mails: list[CorpusMail], every: int = 3):
    """Create a job for every ``every``-th distinct identity; returns the set of known identities."""
    from tests.conftest import make_customer, make_job

    customer = make_customer("Corpus Customer")
    identities = sorted({m.identity for m in mails if m.identity})
    known = set(identities[::every])
    for sender, job_name, software in known:
        make_job(customer, job_name=job_name, software=software, sender=sender, backup_type=None)
    return known


# --- 60 mails over repeated `flask import-mail` runs: each stored once, all moved ---------------

@pytest.mark.slow  # over 5 s
def test_sixty_mails_over_repeated_import_mail_runs_are_stored_once_and_all_moved(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import ImportCycle, JobRun, MailMessage
    from backend.app.services.importer import run_import_cycle
    from backend.app.services.settings import get_settings

    mails = corpus_mails(60)
    assert len({m.message_id for m in mails}) == 60
    assert len({m.job_name for m in mails if m.job_name}) > 40, "job names vary"
    known = _known_jobs(mails)
    expected_runs = sum(1 for m in mails if m.identity in known)
    assert 10 < expected_runs < 50

    with _fake(mails) as fake:
        graph_app(fake)
        settings = get_settings()
        settings.import_batch_size = 50
        db.session.commit()
        incoming = fake.messages_in(fake.incoming)
        unlucky_id = incoming[4].id   # its MIME download answers 503 for the whole first run
        fake.fail_mime_fetch(unlucky_id, status=503, times=GRAPH_OPTIONS["max_attempts"])
        fake.throttle(nth=2, retry_after=1, method="GET", path_contains="/messages")
        runner = app.test_cli_runner()

        first = runner.invoke(args=["import-mail"])
        assert first.exit_code == 0, first.output
        assert _counts(first.output) == dict(fetched=50, new=49, duplicates=0, auto_processed=_runs_in(mails[:50], known, skip=4),
                                             to_inbox=49 - _runs_in(mails[:50], known, skip=4), failed=1)
        assert "503" in first.output or "503" in (first.stderr if hasattr(first, "stderr") else "")
        assert [m.id for m in fake.messages_in(fake.incoming)][0] == unlucky_id

        second = runner.invoke(args=["import-mail"])
        assert second.exit_code == 0, second.output
        c2 = _counts(second.output)
        assert (c2["fetched"], c2["new"], c2["duplicates"], c2["failed"]) == (11, 11, 0, 0)

        third = run_import_cycle(trigger="cli")
        fourth = runner.invoke(args=["import-mail", "--batch-size", "100"])
        assert (third.fetched, third.new, third.failed, third.state) == (0, 0, 0, "done")
        assert _counts(fourth.output)["new"] == 0 and fourth.exit_code == 0

        # every mail exactly once, all 60 moved (the unlucky one on the second run)
        rows = _mail_rows()
        assert len(rows) == 60
        assert sorted(r.internet_message_id for r in rows) == sorted(m.message_id for m in mails)
        assert fake.messages_in(fake.incoming) == []
        processed = fake.messages_in(fake.processed)
        assert len(processed) == 60
        assert {p.internet_message_id for p in processed} == {m.message_id for m in mails}

        # the id change on move is recorded: each row holds the message's id in the processed folder
        assert len(fake.moves) == 60
        assert {r.source_id for r in rows} == {p.id for p in processed}
        assert not {old for old, _ in fake.moves} & {r.source_id for r in rows}
        assert all(r.source == "graph" and r.raw is not None for r in rows)

        # the 429 was honoured (Retry-After: 1) and the 503s were retried, then left for the next run
        listing = [r for r in fake.graph_requests if r.path.endswith("/messages")]
        throttled = [i for i, r in enumerate(listing) if r.status == 429]
        assert len(throttled) == 1 and listing[throttled[0] + 1].at - listing[throttled[0]].at >= 1.0
        assert len({r.query.get("$skiptoken") for r in listing}) >= 5, "several pages"
        unlucky_fetches = [r.status for r in fake.graph_requests if r.path.endswith(f"{unlucky_id}/$value")]
        assert unlucky_fetches == [503, 503, 503, 200]

    # known jobs' mails became runs, the rest wait in the Inbox
    by_mid = {r.internet_message_id: r for r in rows}
    for m in mails:
        row = by_mid[m.message_id]
        want = "processed" if m.identity in known else "inbox"
        assert row.state == want, (m.message_id, m.identity, row.parse_reason, row.parse_error)
        assert (row.job_id is not None) == (want == "processed")
    assert _count(JobRun) == expected_runs
    runs = db.session.execute(db.select(JobRun)).scalars().all()
    assert len({r.mail_message_id for r in runs}) == expected_runs
    assert all(r.objects or r.status for r in runs)

    cycles = db.session.execute(db.select(ImportCycle).order_by(ImportCycle.id)).scalars().all()
    assert [(c.trigger, c.state, c.fetched, c.new, c.failed) for c in cycles] == [
        ("cli", "done", 50, 49, 1), ("cli", "done", 11, 11, 0), ("cli", "done", 0, 0, 0), ("cli", "done", 0, 0, 0)]
    assert "503" in cycles[0].error and cycles[1].error is None
    assert _count(MailMessage) == 60


def _runs_in(mails, known, skip=None) -> int:
    return sum(1 for i, m in enumerate(mails) if m.identity in known and i != skip)


# --- duplicates ------------------------------------------------------------------------------------

def test_a_mail_uploaded_with_import_eml_after_the_graph_import_adds_nothing(app, graph_app, tmp_path):
    from backend.app.models import JobRun, MailMessage
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(6)
    _known_jobs(mails, every=1)
    with _fake(mails) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
    assert (cycle.new, cycle.failed) == (6, 0)
    runs_before = _count(JobRun)
    files = []
    for i, m in enumerate(mails[:3]):
        path = tmp_path / f"again-{i}.eml"
        path.write_bytes(m.raw)
        files.append(str(path))

    result = app.test_cli_runner().invoke(args=["import-eml", *files])

    assert result.exit_code == 0, result.output
    assert "new=0 duplicates=3" in result.output
    assert _count(MailMessage) == 6 and _count(JobRun) == runs_before


def test_the_same_mail_twice_in_the_mailbox_is_stored_once_and_both_copies_are_moved(app, graph_app):
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(3)
    with _fake(mails + [mails[1]]) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
        assert (cycle.fetched, cycle.new, cycle.duplicates, cycle.failed) == (4, 3, 1, 0)
        assert len(fake.messages_in(fake.processed)) == 4
    assert len(_mail_rows()) == 3


# --- two importers at once -----------------------------------------------------------------------

def test_two_importers_started_at_once_only_one_imports(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import ImportCycle
    from backend.app.services.importer import ImportBusy, run_import_cycle

    mails = corpus_mails(12)
    with _fake(mails) as fake:
        graph_app(fake)
        # the first listing answers slowly, so the winner holds the lock while the other tries
        fake.fail(429, method="GET", path_contains="/messages", retry_after="0", delay=1.5)
        barrier = threading.Barrier(2)
        results: list = [None, None]

        def importer(slot):
            with app.app_context():
                barrier.wait()
                try:
                    cycle = run_import_cycle(trigger="manual")
                    results[slot] = ("imported", cycle.new)
                except ImportBusy as exc:
                    results[slot] = ("busy", str(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=importer, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r[0] for r in results) == ["busy", "imported"], results
        assert ("imported", 12) in results
        assert "Another import is running" in next(r[1] for r in results if r[0] == "busy")
        assert len(fake.messages_in(fake.processed)) == 12
    assert len(_mail_rows()) == 12
    assert _count(ImportCycle) == 1


@pytest.mark.slow
def test_two_import_mail_processes_at_once_only_one_imports(app, graph_app, database_url, tmp_path):
    """Two real `flask import-mail` processes on the same database: one imports, the other is told
    another import is running; every mail is stored once."""
    import os
    import subprocess
    import sys

    mails = corpus_mails(8)
    with _fake(mails) as fake:
        fake.fail(429, method="GET", path_contains="/messages", retry_after="0", delay=8)  # covers start-up jitter
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "PYTEST"))}
        env.update(fake.env(), DATABASE_URL=database_url.replace("+psycopg", ""), BACKGROUND_JOBS="0",
                   RUN_MIGRATIONS="0", PYTHONPATH=str(REPO_ROOT / "containers" / "backupchecks" / "src"),
                   APP_INSTANCE_PATH=str(tmp_path))
        cmd = [sys.executable, "-m", "flask", "--app", "backend.app", "import-mail"]
        procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        codes = [p.returncode for p in procs]
        winner = [o for o, c in zip(outs, codes) if c == 0]
        loser = [o for o, c in zip(outs, codes) if c != 0]
        assert len(winner) == 1 and len(loser) == 1, (codes, outs)
        assert _counts(winner[0][0])["new"] == 8
        assert "Another import is running" in loser[0][1]
        assert len(fake.messages_in(fake.processed)) == 8
    assert len(_mail_rows()) == 8


# --- a failing cycle records its error, the next one runs ---------------------------------------

def test_a_wrong_secret_fails_the_cycle_with_an_actionable_message_and_the_next_cycle_runs(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import ImportCycle
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(5)
    with _fake(mails) as fake:
        wrong = "fake-wrong-" + fake.client_secret[::-1]
        graph_app(fake, secret=wrong)

        result = app.test_cli_runner().invoke(args=["import-mail"])

        assert result.exit_code == 1
        failed = db.session.execute(db.select(ImportCycle)).scalar_one()
        assert failed.state == "failed" and failed.finished_at is not None
        assert "AADSTS7000215" in failed.error and "Client secret" in failed.error
        assert wrong not in failed.error and fake.client_secret not in failed.error
        assert (failed.fetched, failed.new) == (0, 0)
        assert len(fake.messages_in(fake.incoming)) == 5

        graph_app(fake)  # the admin fixes the secret
        cycle = run_import_cycle(trigger="auto")

        assert (cycle.state, cycle.fetched, cycle.new, cycle.error) == ("done", 5, 5, None)
        assert len(fake.messages_in(fake.processed)) == 5
    assert _count(ImportCycle) == 2


def test_an_unconfigured_mailbox_is_a_failed_cycle_with_what_to_fill_in(app, graph_app):
    from backend.app.services.importer import run_import_cycle

    app.config["GRAPH_ENV_OVERRIDES"] = {}
    cycle = run_import_cycle(trigger="auto")

    assert cycle.state == "failed" and "Settings → Mail" in cycle.error and "Tenant ID" in cycle.error


# --- one bad mail never stops the batch ---------------------------------------------------------

GARBAGE = bytes(range(256)) * 3 + b"\x00\xff\xfe garbage that is no mail \x00" * 10


def test_a_malformed_mail_is_stored_with_its_error_in_the_inbox_and_the_batch_goes_on(app, graph_app):
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(4)
    with _fake([mails[0], mails[1], GARBAGE, mails[2], mails[3]]) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
        assert (cycle.fetched, cycle.new, cycle.failed, cycle.state) == (5, 5, 0, "done")
        assert len(fake.messages_in(fake.processed)) == 5
        again = run_import_cycle(trigger="cli")
        assert (again.fetched, again.new) == (0, 0)
    rows = _mail_rows()
    assert len(rows) == 5
    bad = next(r for r in rows if r.raw_sha256 and r.raw == GARBAGE)
    assert bad.state == "inbox" and not bad.parsed and bad.job_id is None
    assert bad.parse_reason or bad.parse_error


def test_a_mail_whose_run_creation_raises_stays_in_the_inbox_with_the_error(app, graph_app, monkeypatch):
    from backend.app.services import ingest
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(3)
    _known_jobs(mails, every=1)
    calls = []

    def flaky(run, **options):
        calls.append(run.id)
        if len(calls) == 2:
            raise RuntimeError("override service broke")

    monkeypatch.setattr(ingest, "after_run_created", flaky)
    with _fake(mails) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
        assert (cycle.new, cycle.auto_processed, cycle.to_inbox, cycle.failed) == (3, 2, 1, 0)
        assert len(fake.messages_in(fake.processed)) == 3
    rows = _mail_rows()
    broken = [r for r in rows if r.state == "inbox"]
    assert len(broken) == 1 and "override service broke" in broken[0].parse_error
    assert broken[0].job_id is None
    from backend.app.models import JobRun
    assert _count(JobRun) == 2


# --- raw mail retention --------------------------------------------------------------------------

def test_retention_purges_old_raw_bytes_but_keeps_parsed_data_and_runs(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import JobRun, MailMessage
    from backend.app.services.importer import purge_raw_mails, run_import_cycle
    from backend.app.services.settings import get_settings

    mails = corpus_mails(6)
    _known_jobs(mails, every=1)
    with _fake(mails) as fake:
        graph_app(fake)
        run_import_cycle(trigger="cli")
    rows = _mail_rows()
    old_ids = [r.id for r in rows[:4]]
    db.session.execute(db.update(MailMessage).where(MailMessage.id.in_(old_ids))
                       .values(imported_at=datetime.now(timezone.utc) - timedelta(days=31)))
    db.session.commit()
    runs = _count(JobRun)

    assert purge_raw_mails(30) == 4
    assert purge_raw_mails(30) == 0

    rows = _mail_rows()
    purged = [r for r in rows if r.id in old_ids]
    kept = [r for r in rows if r.id not in old_ids]
    assert all(r.raw is None and r.raw_purged_at is not None for r in purged)
    assert all(r.raw is not None and r.raw_purged_at is None for r in kept)
    assert all(r.parsed and r.subject and r.job_name and r.raw_sha256 and r.body_text for r in purged)
    assert _count(JobRun) == runs == 6

    # the importer applies the retention setting on every cycle
    db.session.execute(db.update(MailMessage).where(MailMessage.id == kept[0].id)
                       .values(imported_at=datetime.now(timezone.utc) - timedelta(days=8)))
    get_settings().raw_retention_days = 7
    db.session.commit()
    with _fake(corpus_mails(7)[6:]) as fake:
        graph_app(fake)
        run_import_cycle(trigger="auto")
    assert db.session.get(MailMessage, kept[0].id).raw is None
    assert _count(JobRun) == runs


def test_keep_raw_off_stores_no_raw_bytes(app, graph_app):
    from backend.app.extensions import db
    from backend.app.services.importer import run_import_cycle
    from backend.app.services.settings import get_settings

    get_settings().keep_raw_mails = False
    db.session.commit()
    mails = corpus_mails(5)
    with _fake(mails) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
    assert cycle.new == 5
    rows = _mail_rows()
    assert all(r.raw is None and r.raw_size and len(r.raw_sha256) == 64 for r in rows)
    assert all(r.subject for r in rows) and any(r.parsed for r in rows)


# --- "Import now" in the background with progress ---------------------------------------------

def test_import_now_runs_in_the_background_and_records_progress(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import BackgroundTask
    from backend.app.services.importer import start_import_now

    mails = corpus_mails(7)
    with _fake(mails) as fake:
        graph_app(fake)
        task = start_import_now(app, actor_id=None)
        task_id = task.id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.expire_all()
            task = db.session.get(BackgroundTask, task_id)
            if task.state in ("done", "failed"):
                break
            time.sleep(0.1)
    assert task.state == "done", task.message
    assert (task.progress, task.total) == (7, 7)
    assert "7 new" in task.message
    assert len(_mail_rows()) == 7


def test_a_failed_move_is_retried_next_cycle_and_the_row_follows_the_new_id(app, graph_app):
    from backend.app.services.importer import run_import_cycle

    mails = corpus_mails(4)
    with _fake(mails) as fake:
        graph_app(fake)
        stuck_id = fake.messages_in(fake.incoming)[2].id
        fake.fail(504, method="POST", path_contains=f"/messages/{stuck_id}/move")

        first = run_import_cycle(trigger="cli")
        assert (first.new, first.failed, first.state) == (4, 0, "done")
        assert "Stored but not moved" in first.error
        assert [m.id for m in fake.messages_in(fake.incoming)] == [stuck_id]
        assert stuck_id in {r.source_id for r in _mail_rows()}

        second = run_import_cycle(trigger="cli")
        assert (second.fetched, second.new, second.duplicates, second.error) == (1, 0, 1, None)
        assert fake.messages_in(fake.incoming) == []
        processed_ids = {p.id for p in fake.messages_in(fake.processed)}
    rows = _mail_rows()
    assert len(rows) == 4 and {r.source_id for r in rows} == processed_ids


def test_the_same_file_without_a_message_id_uploaded_twice_is_stored_once(app, tmp_path):
    from backend.app.models import MailMessage

    no_id = b"From: nas@customer.example\r\nSubject: Backup finished\r\n\r\nThe backup finished.\r\n"
    path = tmp_path / "no-id.eml"
    path.write_bytes(no_id)
    runner = app.test_cli_runner()

    first = runner.invoke(args=["import-eml", str(path)])
    second = runner.invoke(args=["import-eml", str(path), str(path)])

    assert "new=1 duplicates=0" in first.output
    assert "new=0 duplicates=2" in second.output, second.output
    assert _count(MailMessage) == 1


def test_a_cycle_cut_off_by_a_dying_process_is_marked_failed_by_the_next_cycle(app, graph_app):
    from backend.app.extensions import db
    from backend.app.models import ImportCycle
    from backend.app.services.importer import run_import_cycle

    stale = ImportCycle(trigger="auto", state="running", started_at=datetime.now(timezone.utc) - timedelta(hours=1))
    db.session.add(stale)
    db.session.commit()
    with _fake(corpus_mails(2)) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="auto")

    db.session.refresh(stale)
    assert (cycle.state, cycle.new) == ("done", 2)
    assert stale.state == "failed" and "Interrupted" in stale.error and stale.finished_at is not None


# --- the database can't work in the middle of a cycle ----------------------------------------------

def test_a_full_database_disk_stops_the_cycle_the_rest_stays_in_the_mailbox_and_the_next_cycle_takes_it(
        app, graph_app, monkeypatch):
    """The second mail's run can't be written (the disk is full): nothing of that mail is stored
    (not the mail alone in the Inbox), the cycle stops and says why, the dashboard says what to do;
    the next cycle takes the three left, once each (tests/deploy/test_disk_full.py: a real ENOSPC)."""
    from backend.app.models import JobRun, MailMessage
    from backend.app.services import ingest
    from backend.app.services.dashboard import import_status
    from backend.app.services.importer import run_import_cycle
    from tests.test_ingest import database_error

    mails = corpus_mails(4)
    _known_jobs(mails, every=1)
    calls = []
    real = ingest.after_run_created

    def disk_fills(run, **options):
        calls.append(1)
        if len(calls) == 2:
            raise database_error("disk_full")
        real(run, **options)

    monkeypatch.setattr(ingest, "after_run_created", disk_fills)
    with _fake(mails) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")
        assert (cycle.state, cycle.fetched, cycle.new, cycle.failed) == ("failed", 4, 1, 1)
        assert cycle.error == ("The database could not store a mail: its disk is full (could not extend file "
                               "\"base/1/2\": No space left on device). 1 new mail was stored; the other 3 stay "
                               "in the mailbox and the next import takes them.")
        assert (_count(MailMessage), _count(JobRun)) == (1, 1)
        assert len(fake.messages_in(fake.processed)) == 1 and len(fake.messages_in(fake.incoming)) == 3
        status = import_status(cycle)
        assert status.level == "danger" and "free space on its disk" in status.advice

        monkeypatch.setattr(ingest, "after_run_created", real)  # space freed
        again = run_import_cycle(trigger="cli")
        assert (again.state, again.fetched, again.new, again.failed, again.error) == ("done", 3, 3, 0, None)
        assert fake.messages_in(fake.incoming) == [] and len(fake.messages_in(fake.processed)) == 4
    assert (_count(MailMessage), _count(JobRun)) == (4, 4)


def test_a_cycle_whose_end_cannot_be_committed_is_written_with_its_totals_by_the_next_cycle(app, graph_app,
                                                                                          monkeypatch):
    from backend.app.extensions import db
    from backend.app.models import ImportCycle, ImportCycleStats
    from backend.app.services import importer
    from tests.test_ingest import database_error

    real = importer.record_import_cycle
    calls = []

    def full_once(session, cycle):
        calls.append(cycle.id)
        if len(calls) == 1:
            raise database_error("disk_full")
        real(session, cycle)

    monkeypatch.setattr(importer, "record_import_cycle", full_once)
    with _fake(corpus_mails(2)) as fake:
        graph_app(fake)
        first = importer.run_import_cycle(trigger="cli")
        assert (first.state, first.new) == ("done", 2)  # what the caller is told, though its totals wait
        row = db.session.get(ImportCycle, first.id)
        assert (row.state, row.new) == ("done", 2) and row.finished_at is not None  # its row alone fitted
        assert db.session.query(ImportCycleStats).count() == 0
        second = importer.run_import_cycle(trigger="cli")
    stats = db.session.query(ImportCycleStats).one()
    assert (stats.trigger, stats.state, stats.cycles_total, stats.new_total) == ("cli", "done", 2, 2)
    assert calls == [first.id, first.id, second.id] and importer._unrecorded == {}
