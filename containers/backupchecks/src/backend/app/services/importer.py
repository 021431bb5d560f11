"""The mail importer: one cycle fetches a batch from the mail source and ingests it.

A message is moved to the processed folder only after the transaction that
stored it committed. One failing message never stops the batch; a failing
cycle records its error and the next one runs. A database that can't work
(its disk is full, it went away: ``db_errors.database_unavailable``) does stop
the batch: the mail under way and the rest stay in the mailbox, the cycle is
recorded as failed with the reason, and the next cycle takes them. Across workers
and containers only one process imports at a time (a PostgreSQL advisory lock).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Callable, Optional

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..mail import MailSourceError
from ..mail.graph import GraphConfig, GraphMailSource
from ..mail.imap import ImapConfig, ImapMailSource
from ..models import BackgroundTask, ImportCycle, MailMessage, utcnow
from .db_errors import DATABASE_FAILED, database_unavailable, describe
from .faults import crash_point
from .ingest import content_source_id, ingest_message, record_reviewed_on_arrival
from .parser_rules import load_ruleset
from .locks import LeaderLock
from .metrics import record_import_cycle
from .settings import get_settings
from .tasks import TaskFailed, start_task

log = logging.getLogger(__name__)

IMPORT_LOCK = "backupchecks-import"


class ImportBusy(RuntimeError):
    """Another process is importing right now."""


class _DatabaseFailed(Exception):
    """The database could not store a mail (full disk, lost connection): the batch stops."""


#: The end of a cycle of this process that could not be committed (the database was gone or its
#: disk full): id -> (its columns, the runs it marked reviewed on arrival). The next cycle writes
#: it, with its totals for /metrics and its audit entry, instead of the generic "Interrupted".
_unrecorded: dict[int, tuple[dict, list[int]]] = {}

_CYCLE_COLUMNS = tuple(c.key for c in ImportCycle.__table__.columns)


def graph_settings_mapping() -> dict:
    """Graph settings: the Settings page's values, with environment values winning."""
    s = get_settings()
    values = {
        "graph_tenant_id": s.graph_tenant_id, "graph_client_id": s.graph_client_id,
        "graph_client_secret": s.graph_client_secret, "graph_mailbox": s.graph_mailbox,
        "graph_incoming_folder": s.graph_incoming_folder, "graph_processed_folder": s.graph_processed_folder,
    }
    values.update(current_app.config.get("GRAPH_ENV_OVERRIDES") or {})
    values["graph_authority_host"] = current_app.config.get("GRAPH_AUTHORITY_HOST")
    values["graph_api_base"] = current_app.config.get("GRAPH_API_BASE")
    return values


def graph_source_unchecked() -> GraphMailSource:
    """A Graph source from the settings without requiring the folders (for the folder picker)."""
    cfg = GraphConfig.from_settings(graph_settings_mapping(), **(current_app.config.get("GRAPH_CLIENT_OPTIONS") or {}))
    missing = [m for m in cfg.missing() if m != "Incoming folder"]
    if missing:
        raise MailSourceError(f"Fill in {', '.join(missing)} under Settings → Mail and save first.", code="not_configured")
    return GraphMailSource(cfg)


def graph_source() -> GraphMailSource:
    cfg = GraphConfig.from_settings(graph_settings_mapping(), **(current_app.config.get("GRAPH_CLIENT_OPTIONS") or {}))
    missing = cfg.missing()
    if missing:
        raise MailSourceError(f"Mail import is not configured: fill in {', '.join(missing)} under Settings → Mail.",
                              code="not_configured")
    if not cfg.processed_folder:
        raise MailSourceError("Choose a processed folder under Settings → Mail, so imported mails can be moved "
                              "out of the incoming folder.", code="not_configured")
    return GraphMailSource(cfg)


def mail_source_kind() -> str:
    """Where mail is imported from: "graph" or "imap" (MAIL_SOURCE wins over Settings → Mail)."""
    env = current_app.config.get("IMAP_ENV_OVERRIDES") or {}
    return env.get("mail_source") or get_settings().mail_source or "graph"


def imap_settings_mapping() -> dict:
    """IMAP settings: the Settings page's values, with environment values winning."""
    from .settings import IMAP_FIELDS

    s = get_settings()
    values = {f: getattr(s, f) for f in IMAP_FIELDS + ("imap_password",)}
    values.update({k: v for k, v in (current_app.config.get("IMAP_ENV_OVERRIDES") or {}).items() if k != "mail_source"})
    return values


def imap_config(values: Optional[dict] = None) -> ImapConfig:
    """The IMAP configuration from ``values`` (default: the saved settings with the environment's),
    with the app's client options (``IMAP_CLIENT_OPTIONS``: timeout, ca_file)."""
    return ImapConfig.from_settings(imap_settings_mapping() if values is None else values,
                                    **(current_app.config.get("IMAP_CLIENT_OPTIONS") or {}))


def imap_source(require_processed: bool = True) -> ImapMailSource:
    cfg = imap_config()
    missing = cfg.missing()
    if missing:
        raise MailSourceError(f"Mail import is not configured: fill in {', '.join(missing)} under Settings → Mail "
                              "(IMAP).", code="not_configured")
    if require_processed and not cfg.processed_folder:
        raise MailSourceError("Choose a processed folder under Settings → Mail (IMAP), so imported mails can be "
                              "moved out of the incoming folder.", code="not_configured")
    return ImapMailSource(cfg)


def imap_source_unchecked() -> ImapMailSource:
    """An IMAP source from the settings without requiring the folders (for the folder picker)."""
    cfg = imap_config()
    missing = [m for m in cfg.missing() if m != "Incoming folder"]
    if missing:
        raise MailSourceError(f"Fill in {', '.join(missing)} under Settings → Mail and save first.",
                              code="not_configured")
    return ImapMailSource(cfg)


#: the mail sources Settings → Mail chooses from: kind -> (ready to import, for the folder picker)
SOURCES: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "graph": (lambda: graph_source(), lambda: graph_source_unchecked()),
    "imap": (lambda: imap_source(), lambda: imap_source_unchecked()),
}


def mail_source():
    """The configured mail source, ready to import (MailSourceError 'not_configured' when it is not)."""
    return SOURCES.get(mail_source_kind(), SOURCES["graph"])[0]()


def mail_source_unchecked():
    """The configured mail source without requiring the folders (for the folder picker)."""
    return SOURCES.get(mail_source_kind(), SOURCES["graph"])[1]()


@dataclass
class CycleCounts:
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    auto_processed: int = 0
    to_inbox: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    reviewed_on_arrival: list[int] = field(default_factory=list)  # run ids ("Successful runs need no review")


def run_import_cycle(source=None, *, trigger: str = "auto", batch_size: Optional[int] = None,
                     progress: Optional[Callable[[int, int], None]] = None) -> ImportCycle:
    """One import cycle under the import lock. Raises ImportBusy when another process imports."""
    lock = LeaderLock(db.engine, IMPORT_LOCK)
    if not lock.try_acquire():
        raise ImportBusy("Another import is running right now; try again in a minute.")
    try:
        return _cycle(source, trigger, batch_size, progress)
    finally:
        lock.release()


def _cycle(source, trigger, batch_size, progress) -> ImportCycle:
    settings = get_settings()
    keep_raw = bool(settings.keep_raw_mails)
    auto_review = bool(settings.auto_review_successes)  # read once: the same for the whole cycle
    if batch_size is None:
        batch_size = settings.manual_import_batch_size if trigger == "manual" else settings.import_batch_size
    # We hold the import lock, so a cycle still marked running was cut off: by the database
    # (this process knows how it ended) or by the process dying.
    for values, reviewed in _unrecorded.values():
        _write_end(values)
        record_import_cycle(db.session, SimpleNamespace(**values))
        record_reviewed_on_arrival(reviewed, target_type="import_cycle", target_id=values["id"],
                                   what=f" by import cycle {values['id']} ({values['trigger']})")
    db.session.execute(update(ImportCycle).where(ImportCycle.state == "running")
                       .values(state="failed", finished_at=utcnow(),
                               error="Interrupted: the process stopped during this cycle; the next cycle "
                                     "imported what was left."))
    cycle = ImportCycle(trigger=trigger, started_at=utcnow(), state="running")
    db.session.add(cycle)
    db.session.flush()
    # What the cycle's end needs even when the database is gone by then (a rollback expires the row).
    known = {"id": cycle.id, "trigger": trigger, "started_at": cycle.started_at}
    db.session.commit()
    _unrecorded.clear()
    counts = CycleCounts()
    try:
        if source is None:
            source = mail_source()
        remote = source.list_messages(limit=batch_size)
        crash_point("importer.after_list")
        counts.fetched = len(remote)
        rules = load_ruleset() if remote else None  # the users' parser rules: once for the whole cycle
        for i, rm in enumerate(remote):
            _import_one(source, rm.source_id, counts, keep_raw, auto_review, rules)
            if progress:
                progress(i + 1, len(remote))
        purge_raw_mails(settings.raw_retention_days)
        cycle.state = "failed" if counts.failed and not (counts.new or counts.duplicates) else "done"
        cycle.error = "; ".join(counts.errors[:5])[:4000] or None
    except MailSourceError as exc:
        db.session.rollback()
        cycle.state, cycle.error = "failed", exc.message
    except _DatabaseFailed as exc:
        db.session.rollback()
        left = counts.fetched - counts.new - counts.duplicates
        cycle.state = "failed"
        cycle.error = (f"{DATABASE_FAILED}could not store a mail: {exc}. {counts.new} new "
                       f"mail{'s were' if counts.new != 1 else ' was'} stored; the other {left} "
                       f"stay{'s' if left == 1 else ''} in the mailbox and the next import takes "
                       f"{'it' if left == 1 else 'them'}.")[:4000]
    except Exception as exc:  # noqa: BLE001 - record and let the next cycle run
        log.exception("import cycle failed")
        db.session.rollback()
        cycle.state = "failed"
        cycle.error = (f"{DATABASE_FAILED}failed: {describe(exc)}." if database_unavailable(exc)
                       else f"Unexpected error: {type(exc).__name__}: {exc}")
    finally:
        try:
            close = getattr(source, "close", None)
            if close:
                close()
        except Exception:  # noqa: BLE001
            pass
    for attr in ("fetched", "new", "duplicates", "auto_processed", "to_inbox", "failed"):
        setattr(cycle, attr, getattr(counts, attr))
    cycle.finished_at = utcnow()
    # the others were all set above, so reading them needs no database
    ended = {k: known[k] if k in known else getattr(cycle, k) for k in _CYCLE_COLUMNS}
    try:
        db.session.add(cycle)
        record_import_cycle(db.session, cycle)  # the totals /metrics reads, in the cycle's own commit
        # One audit entry for the cycle, however many successful runs it marked reviewed on arrival.
        record_reviewed_on_arrival(counts.reviewed_on_arrival, target_type="import_cycle", target_id=cycle.id,
                                   what=f" by import cycle {cycle.id} ({trigger})")
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - only a database that can't work now is handled here
        db.session.rollback()
        if not database_unavailable(exc):
            raise
        # The database is gone or its disk full: the next cycle of this process writes this end
        # with its totals (after a restart of the process: the generic "Interrupted").
        log.error("import cycle %s ended (%s) but could not be recorded: %s", ended["id"], ended["state"],
                  describe(exc))
        _unrecorded[ended["id"]] = (ended, list(counts.reviewed_on_arrival))
        db.session.expunge(cycle)
        for key, value in ended.items():
            set_committed_value(cycle, key, value)
        try:  # a full disk may still take the row's own change (its page has room): the pages say why
            _write_end(ended)
            db.session.commit()
        except Exception:  # noqa: BLE001 - the next cycle writes it
            db.session.rollback()
    return cycle


def _write_end(values: dict) -> None:
    """A cycle's end on its row, unless written already."""
    db.session.execute(update(ImportCycle)
                       .where(ImportCycle.id == values["id"], ImportCycle.finished_at.is_(None))
                       .values({k: v for k, v in values.items() if k not in ("id", "trigger", "started_at")}))


def _import_one(source, source_id: str, counts: CycleCounts, keep_raw: bool, auto_review: bool = False,
                rules=None) -> None:
    try:
        raw = source.fetch_raw(source_id)
    except MailSourceError as exc:
        counts.failed += 1
        counts.errors.append(exc.message)
        return  # stays in the mailbox; the next cycle tries again
    crash_point("importer.after_fetch")
    try:
        outcome = ingest_message(raw, source=getattr(source, "name", "graph") or "graph",
                                 source_id=source_id, keep_raw=keep_raw, auto_review=auto_review,
                                 audit_auto_review=False, rules=rules)
    except Exception as exc:  # noqa: BLE001 - the database refused it: leave it in the mailbox
        db.session.rollback()
        counts.failed += 1
        if database_unavailable(exc):
            log.error("the import stops at message %s: the database could not store it: %s", source_id,
                      describe(exc))
            raise _DatabaseFailed(describe(exc)) from exc
        log.exception("storing message %s failed", source_id)
        counts.errors.append(f"Storing a message failed: {type(exc).__name__}")
        return
    if outcome.state == "duplicate":
        counts.duplicates += 1
    else:
        counts.new += 1
        if outcome.state == "processed":
            counts.auto_processed += 1
        else:
            counts.to_inbox += 1
        if outcome.reviewed_on_arrival:
            counts.reviewed_on_arrival.append(outcome.run_id)
    # Only now, after the commit, move it out of the incoming folder.
    crash_point("importer.after_commit")
    try:
        new_id = source.mark_processed(source_id)
    except MailSourceError as exc:
        counts.errors.append(f"Stored but not moved: {exc.message}")
        return
    crash_point("importer.after_move")
    if new_id and new_id != source_id:
        # Also for a duplicate: a mail stored by an earlier cycle whose move failed then is moved
        # now, and its row must follow the new id.
        source_name = getattr(source, "name", "graph") or "graph"
        db.session.execute(update(MailMessage).where(MailMessage.source == source_name,
                                                     MailMessage.source_id == source_id)
                           .values(source_id=new_id))
        db.session.commit()


def import_raw_files(files: list[tuple[str, bytes]], *, source: str = "upload", keep_raw: Optional[bool] = None) -> dict:
    """Import uploaded or CLI-given .eml files through the same pipeline. Returns counts and per-file results."""
    settings = get_settings()
    if keep_raw is None:
        keep_raw = bool(settings.keep_raw_mails)
    auto_review = bool(settings.auto_review_successes)
    result = {"new": 0, "duplicates": 0, "auto_processed": 0, "to_inbox": 0, "failed": 0, "files": [],
              "reviewed_on_arrival": 0}
    reviewed: list[int] = []
    rules = load_ruleset()  # the users' parser rules: once for all the files
    for name, raw in files:
        try:
            # The file's hash is its source id: the same file uploaded again is a duplicate even
            # when it has no Message-ID header.
            outcome = ingest_message(raw, source=source, source_id=content_source_id(raw),
                                     keep_raw=keep_raw, auto_review=auto_review, audit_auto_review=False,
                                     rules=rules)
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            result["failed"] += 1
            result["files"].append((name, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        if outcome.state == "duplicate":
            result["duplicates"] += 1
        else:
            result["new"] += 1
            result["auto_processed" if outcome.state == "processed" else "to_inbox"] += 1
        if outcome.reviewed_on_arrival:
            reviewed.append(outcome.run_id)
        result["files"].append((name, outcome.state, outcome.error or ""))
    if reviewed:
        # One audit entry for the whole upload.
        record_reviewed_on_arrival(reviewed, target_type="upload", target_id=None,
                                   what=f" by an import of {len(files)} file{'s' if len(files) != 1 else ''} ({source})")
        db.session.commit()
        result["reviewed_on_arrival"] = len(reviewed)
    return result


def purge_raw_mails(retention_days: int) -> int:
    """Drop raw bytes older than the retention; parsed data and runs stay."""
    if not retention_days or retention_days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=retention_days)
    res = db.session.execute(update(MailMessage).where(MailMessage.raw.is_not(None), MailMessage.imported_at < cutoff)
                             .values(raw=None, raw_purged_at=utcnow()))
    db.session.commit()
    return res.rowcount or 0


# --- Background: the automatic importer and "Import now" ------------------------------------

def _interval(app: Flask) -> float:
    return max(1, get_settings().import_interval_minutes or 15) * 60.0


def _auto_step(app: Flask) -> None:
    settings = get_settings()
    if not settings.auto_import_enabled:
        return
    try:
        run_import_cycle(trigger="auto")
    except ImportBusy:
        log.info("import skipped: another process is importing")


def start_auto_importer(app: Flask) -> None:
    """Register the importer with the single background runner (one process imports)."""
    from .background import register_loop
    register_loop("mail-import", _auto_step, _interval)


def start_import_now(app: Flask, actor_id: Optional[int]) -> BackgroundTask:
    """'Import now': a cycle on the task runner with progress stored for the page to poll.
    Raises ``tasks.TaskBusy`` when an import task is already queued or running."""
    def work(progress) -> str:
        try:
            cycle = run_import_cycle(trigger="manual",
                                     progress=lambda done, total: progress(done, total, f"Imported {done} of {total}"))
        except ImportBusy as exc:
            raise TaskFailed(str(exc)) from None
        msg = (f"{cycle.fetched} fetched, {cycle.new} new, {cycle.auto_processed} became runs, "
               f"{cycle.to_inbox} to the Inbox, {cycle.failed} failed"
               + (f" — {cycle.error}" if cycle.error else ""))
        if cycle.state == "failed":
            raise TaskFailed(msg)
        return msg

    return start_task(app, "import", actor_id, work, first_message="Connecting to the mailbox")


def recent_cycles(limit: int = 20) -> list[ImportCycle]:
    return db.session.execute(select(ImportCycle).order_by(ImportCycle.started_at.desc()).limit(limit)).scalars().all()
