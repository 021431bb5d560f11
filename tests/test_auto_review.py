"""Successful runs need no review (Settings → General, off by default): with it on, an imported run
whose effective status is Success or Success (override) is reviewed on arrival (at its import
moment, without a reviewer) and never enters the Run Checks queue; failed, warning and missed runs
still do. The setting change is audited like every settings change, and each import records ONE
audit entry with how many runs it marked reviewed on arrival.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import g
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import AuditLog, JobRun, MailMessage
from backend.app.services.importer import import_raw_files, run_import_cycle
from backend.app.services.ingest import ingest_message
from backend.app.services.run_checks import ALL, queue
from backend.app.services.settings import get_settings, save_general
from backend.app.services.status import display_status
from tests.conftest import make_override, make_user, post_form
from tests.test_importer import _fake, _known_jobs, corpus_mails, graph_app  # noqa: F401 (fixture)
from tests.test_ingest import job_with_identity, sample

VBR = "Veeam Backup & Replication"
SUCCESS_MAIL = "veeam/v01_vbr_backup_vmware_success.eml"
WARNING_MAIL = "veeam/v02_vbr_backup_hyperv_warning.eml"
FAILED_MAIL = "veeam/v03_vbr_backup_failed.eml"


def jobs():
    """The jobs of the three Veeam samples: success, warning, failed."""
    return (job_with_identity("veeam-vbr01@northwind-logistics.example", "Daily VM Backup", VBR),
            job_with_identity("backup@contoso-care.example", "HV Cluster Backup", VBR, customer_name="Contoso"),
            job_with_identity("noreply-veeam@wideworldimporters.example", "SQL Tier Backup", VBR,
                              customer_name="Wide World"))


def turn(on: bool) -> None:
    save_general({"ui_timezone": "Europe/Amsterdam", "daily_status_rule": "worst",
                  "auto_review_successes": "on" if on else ""})
    db.session.commit()


def queued_jobs() -> set[int]:
    """The jobs in the Run Checks queue, the folded ones (only successful runs) too."""
    return {r.job_id for group in queue(expand=ALL) for r in group.rows}


def entries(event: str = "run.reviewed_on_arrival") -> list[AuditLog]:
    return db.session.execute(select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)).scalars().all()


def run_of(outcome) -> JobRun:
    return db.session.get(JobRun, outcome.run_id)


def test_it_is_off_by_default_and_every_run_goes_to_run_checks(app):
    success_job, _, failed_job = jobs()
    assert get_settings().auto_review_successes is False

    ok = ingest_message(sample(SUCCESS_MAIL))
    failed = ingest_message(sample(FAILED_MAIL))

    assert not ok.reviewed_on_arrival and run_of(ok).reviewed_at is None and run_of(failed).reviewed_at is None
    assert queued_jobs() == {success_job.id, failed_job.id}
    assert entries() == []


def test_on_a_successful_run_is_reviewed_on_arrival_and_a_failed_one_is_queued(app):
    success_job, _, failed_job = jobs()
    turn(True)

    ok = ingest_message(sample(SUCCESS_MAIL))
    failed = ingest_message(sample(FAILED_MAIL))

    run = run_of(ok)
    imported_at = db.session.get(MailMessage, ok.message_id).imported_at
    assert ok.reviewed_on_arrival and run.effective_status == "Success"
    assert run.reviewed_at == imported_at and run.reviewed_by_id is None and run.reviewed_on_arrival
    assert not failed.reviewed_on_arrival and run_of(failed).reviewed_at is None
    assert queued_jobs() == {failed_job.id}
    # One entry for each single-mail import that marked a run; none for the failed one.
    (entry,) = entries()
    assert entry.after == {"count": 1, "run_ids": [run.id]} and entry.user_id is None
    assert entry.target_type == "mail" and entry.target_id == str(ok.message_id)


def test_an_overridden_warning_counts_as_successful_and_a_plain_warning_does_not(app):
    _, warning_job, _ = jobs()
    turn(True)
    plain = ingest_message(sample(WARNING_MAIL))
    make_override(warning_job, match_status="Warning", treat_as_success=True)
    db.session.commit()

    overridden = ingest_message(sample(WARNING_MAIL, message_id="<warning-again@example.test>"))

    assert not plain.reviewed_on_arrival and run_of(plain).reviewed_at is None
    run = run_of(overridden)
    assert display_status(run) == "Success (override)" and run.status == "Warning"
    assert overridden.reviewed_on_arrival and run.reviewed_on_arrival
    assert queued_jobs() == {warning_job.id}  # the plain warning still waits
    assert [e.after["run_ids"] for e in entries()] == [[run.id]]


def test_a_cycle_records_one_entry_with_the_number_of_runs_it_marked(app, graph_app):  # noqa: F811
    mails = corpus_mails(20)
    _known_jobs(mails, every=1)
    db.session.commit()
    turn(True)

    with _fake(mails) as fake:
        graph_app(fake)
        cycle = run_import_cycle(trigger="cli")

    runs = db.session.execute(select(JobRun)).scalars().all()
    successful = [r for r in runs if r.effective_status == "Success"]
    assert cycle.auto_processed == len(runs) and successful and len(successful) < len(runs)
    assert all(r.reviewed_on_arrival for r in successful)
    assert all(r.reviewed_at is None for r in runs if r.effective_status != "Success")
    (entry,) = entries()
    assert entry.after["count"] == len(successful) and entry.after["run_ids"] == sorted(r.id for r in successful)
    assert entry.target_type == "import_cycle" and entry.target_id == str(cycle.id)
    assert f"{len(successful)} successful runs marked reviewed on arrival" in entry.summary

    # A cycle that marks nothing records nothing.
    with _fake([]) as fake:
        graph_app(fake)
        run_import_cycle(trigger="cli")
    assert len(entries()) == 1


def test_an_upload_of_several_files_records_one_entry(app):
    jobs()
    turn(True)
    files = [("ok.eml", sample(SUCCESS_MAIL)), ("failed.eml", sample(FAILED_MAIL)),
             ("ok-again.eml", sample(SUCCESS_MAIL, message_id="<ok-again@example.test>"))]

    result = import_raw_files(files, source="upload")

    assert result["auto_processed"] == 3 and result["reviewed_on_arrival"] == 2
    (entry,) = entries()
    assert entry.after["count"] == 2 and entry.target_type == "upload"


def test_turning_it_off_again_queues_new_successes(app):
    success_job, _, _ = jobs()
    turn(True)
    ingest_message(sample(SUCCESS_MAIL))
    turn(False)

    later = ingest_message(sample(SUCCESS_MAIL, message_id="<later@example.test>"))

    assert not later.reviewed_on_arrival and run_of(later).reviewed_at is None
    assert queued_jobs() == {success_job.id}
    assert len(entries()) == 1


def test_the_setting_is_admin_only_shown_with_its_explanation_and_audited(app, as_user):
    admin, operator = as_user("admin"), as_user("operator")
    page = admin.get("/settings?section=general").get_data(as_text=True)
    assert 'name="auto_review_successes"' in page and "Successful runs need no review" in page
    assert "never enters Run Checks" in page

    refused = post_form(operator, "/settings/general", {"ui_timezone": "Europe/Amsterdam",
                                                        "auto_review_successes": "on"})
    assert refused.status_code in (302, 403)
    g.pop("system_settings", None)
    assert get_settings().auto_review_successes is False

    saved = post_form(admin, "/settings/general", {"ui_timezone": "Europe/Amsterdam", "daily_status_rule": "worst",
                                                   "auto_review_successes": "on"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert get_settings().auto_review_successes is True
    (entry,) = entries("settings.general")
    assert entry.before == {"auto_review_successes": False} and entry.after == {"auto_review_successes": True}
    assert entry.username == "alice"
    assert 'name="auto_review_successes" checked' in admin.get("/settings?section=general").get_data(as_text=True)


def test_pages_show_a_run_reviewed_on_arrival_without_a_reviewer(app, as_user, clock):
    # The morning after the sample's backup (it started 2024-03-05 22:00 UTC), so Run Checks lists
    # it among the reviewed runs of the last days.
    clock.move_to(datetime(2024, 3, 6, 7, 30, tzinfo=timezone.utc))
    success_job, _, _ = jobs()
    turn(True)
    run_id = ingest_message(sample(SUCCESS_MAIL)).run_id
    # A run reviewed by someone whose account was removed later also has no reviewer.
    gone = make_user("gone", roles=("operator",))
    db.session.commit()
    by_gone = ingest_message(sample(SUCCESS_MAIL, message_id="<by-gone@example.test>"), auto_review=False)
    run = run_of(by_gone)
    run.reviewed_at, run.reviewed_by_id = run.created_at + timedelta(minutes=5), gone.id
    db.session.commit()
    db.session.delete(gone)
    db.session.commit()

    admin = as_user("admin")
    job_page = admin.get(f"/jobs/{success_job.id}").get_data(as_text=True)
    assert "on arrival" in job_page and "deleted user" in job_page
    checks = admin.get(f"/run-checks?job={success_job.id}&include_reviewed=1").get_data(as_text=True)
    assert f'data-run-id="{run_id}"' in checks and "reviewed-on-arrival" in checks
