"""Mailing generated reports through Microsoft Graph sendMail (Mail.Send). A failed delivery is
kept, shown and retried with back-off (``DELIVERY_BACKOFF``); every attempt is audited."""
from __future__ import annotations

import html as html_lib
import logging
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select, update

from ...extensions import db
from ...mail import MailSourceError
from ...mail.graph import GraphConfig, GraphMailSource
from ...models import ReportDefinition, ReportRun, utcnow
from .. import audit
from ..faults import crash_point
from ..importer import graph_settings_mapping
from ..settings import get_settings, ui_zone
from .definitions import parse_recipients
from .periods import run_period
from .vocabulary import ReportError

log = logging.getLogger(__name__)

DELIVERY_BACKOFF = (timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
                    timedelta(hours=3), timedelta(hours=6))
MAX_DELIVERY_ATTEMPTS = len(DELIVERY_BACKOFF) + 1
DELIVERY_LEASE = timedelta(minutes=10)   # a claimed delivery is not picked up again within this


def _mail_source() -> GraphMailSource:
    """The Graph source used to send (the same settings as the import, environment winning)."""
    cfg = GraphConfig.from_settings(graph_settings_mapping(), **(current_app.config.get("GRAPH_CLIENT_OPTIONS") or {}))
    missing = [m for m in cfg.missing() if m != "Incoming folder"]
    if missing:
        raise MailSourceError(f"Mail is not configured: fill in {', '.join(missing)} under Settings → Mail "
                              f"(sending needs the Mail.Send application permission).", code="not_configured")
    return GraphMailSource(cfg)


def delivery_body(defn: ReportDefinition, run: ReportRun, zone: ZoneInfo) -> str:
    company = get_settings().company_name or "Backupchecks"
    e = html_lib.escape
    return (f"<p>Attached: <strong>{e(defn.name)}</strong>, the backup status report for "
            f"{e(run_period(run, zone).label)}.</p>"
            f"<p>Sent by {e(company)} with Backupchecks.</p>")


def deliver_run(run: ReportRun, now: Optional[datetime] = None) -> bool:
    """Send one generated report to its definition's recipients. Records the outcome (sent, or failed
    with the reason and the next attempt), audits it and commits. Never raises."""
    now = now or utcnow()
    defn = db.session.get(ReportDefinition, run.definition_id)
    attempts = (run.delivery_attempts or 0) + 1
    zone = ui_zone()
    try:
        recipients = parse_recipients(defn.recipients)
        if not recipients:
            raise ReportError("The report has no recipients; add them under Edit.")
        source = _mail_source()
        source.send_mail(recipients, f"{defn.name} – {run_period(run, zone).label}", delivery_body(defn, run, zone),
                         attachments=[(run.filename, run.content_type, run.data)])
        # Died here, the lease expires and the report is sent again: at least once.
        crash_point("reports.after_send")
    except (MailSourceError, ReportError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        _record_failed_attempt(run, defn, attempts, message, now, zone,
                               permanent=getattr(exc, "code", "") == "too_large")
        log.warning("report %s delivery failed (attempt %d): %s", run.id, attempts, message)
        return False
    except Exception as exc:  # noqa: BLE001 - unexpected: keep it retrying, never dropped
        db.session.rollback()
        log.exception("report %s delivery failed unexpectedly", run.id)
        _record_failed_attempt(db.session.get(ReportRun, run.id), defn, attempts,
                               f"Unexpected error: {type(exc).__name__}: {exc}", now, zone)
        return False
    run.delivery_state, run.delivery_attempts, run.delivery_error = "sent", attempts, None
    run.delivered_at, run.next_attempt_at = now, None
    audit.record("report.delivered", f"Report '{defn.name}' sent to {', '.join(recipients)}", username="system",
                 target_type="report", target_id=defn.id,
                 after={"report_run": run.id, "recipients": recipients, "attempt": attempts})
    db.session.commit()
    return True


def _record_failed_attempt(run: ReportRun, defn: ReportDefinition, attempts: int, message: str, now: datetime,
                           zone: ZoneInfo, permanent: bool = False) -> None:
    """A failed attempt: the reason and the next try (back-off) on the run, audited and committed;
    no next try after ``MAX_DELIVERY_ATTEMPTS`` or when retrying cannot help (``permanent``)."""
    last = permanent or attempts >= MAX_DELIVERY_ATTEMPTS
    next_at = None if last else now + DELIVERY_BACKOFF[min(attempts - 1, len(DELIVERY_BACKOFF) - 1)]
    run.delivery_state, run.delivery_attempts, run.delivery_error = "failed", attempts, message[:2000]
    run.next_attempt_at = next_at
    audit.record("report.delivery_failed",
                 f"Report '{defn.name}' not sent (attempt {attempts}): {message[:300]}"
                 + (f"; next try {next_at.astimezone(zone):%Y-%m-%d %H:%M}" if next_at else "; no more retries"),
                 username="system", target_type="report", target_id=defn.id,
                 after={"report_run": run.id, "attempt": attempts, "error": message[:300]})
    db.session.commit()


def retry_delivery(run: ReportRun, user) -> None:
    """'Retry now' on a failed delivery: queued for the next loop step with a fresh set of attempts."""
    if run.state != "done":
        raise ReportError("Only a generated report can be sent; generate it again first.")
    if run.delivery_state not in ("failed", "pending"):
        raise ReportError("This report is not waiting to be sent.")
    run.delivery_state, run.delivery_attempts, run.next_attempt_at = "pending", 0, utcnow()
    audit.record("report.delivery_retry", f"Delivery of report run #{run.id} queued again", user=user,
                 target_type="report", target_id=run.definition_id, after={"report_run": run.id})


def deliver_due(now: datetime) -> tuple[int, int]:
    """Send every generated report whose (next) delivery time has come; each is leased with a
    conditional UPDATE first, so two runners never send it twice. Returns (sent, failed)."""
    sent = failed = 0
    due = db.session.execute(select(ReportRun).where(
        ReportRun.state == "done", ReportRun.delivery_state.in_(("pending", "failed")),
        ReportRun.next_attempt_at.is_not(None), ReportRun.next_attempt_at <= now).order_by(ReportRun.id)).scalars().all()
    for run in due:
        old = run.next_attempt_at
        res = db.session.execute(update(ReportRun).where(ReportRun.id == run.id, ReportRun.next_attempt_at == old)
                                 .values(next_attempt_at=now + DELIVERY_LEASE).execution_options(synchronize_session=False))
        db.session.commit()
        if res.rowcount != 1:
            continue
        db.session.refresh(run)
        if deliver_run(run, now):
            sent += 1
        else:
            failed += 1
    return sent, failed
