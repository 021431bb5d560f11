"""Windows Server Backup reports (scripted) and the not-a-report recogniser around them."""
from __future__ import annotations

from email.message import EmailMessage

import pytest

from backend.app.parsers.registry import parse_raw


def mail(body: str, subject: str, subtype: str = "plain", sender: str = "FS01 <fs01@contoso-sample.example>",
         date: str = "Thu, 07 Mar 2024 06:30:11 +0100", charset: str = "utf-8") -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "reports@msp-sample.example"
    m["Subject"] = subject
    m["Date"] = date
    m.set_content(body, subtype=subtype, charset=charset)
    return m.as_bytes()


def script_report(result: str, items: list[tuple[str, str]], start: str = "07/03/2024 01:00:04",
                  end: str = "07/03/2024 01:47:19", error: str = "") -> str:
    rows = "".join(f"<tr><td>{n}</td><td>{s}</td><td>1 GB</td></tr>" for n, s in items)
    return (f"<html><body><div id='Report'><p><h3>Contoso Backup Report for FS01</h3></p>"
            f"<table id='summary'><tbody><tr><td>Todays date:</td><td>2024-03-07 06:30</td></tr>"
            f"<tr><td>Last Successful Backup:</td><td>2024-03-06 01:00</td></tr>"
            f"<tr><td>Start time last backup:</td><td>{start}</td></tr>"
            f"<tr><td>End time last backup:</td><td>{end}</td></tr>"
            f"<tr><td>Duration last backup:</td><td>00:47:15</td></tr>"
            f"<tr><td>Backup Result:</td><td><b id='{result}'>{result}</b></td></tr>"
            f"<tr><td>Error Message (if applicable):</td><td>{error}</td></tr></tbody></table>"
            f"<table id='items'><tr><th>Name</th><th>Status</th><th>Size</th></tr>{rows}</table></div></body></html>")


def test_script_report_success_lists_volumes_in_order():
    r = parse_raw(mail(script_report("Successful", [("C:", "Completed"), ("D:", "Completed")]),
                       "Successful Backup on FS01", subtype="html"))
    assert (r.software, r.backup_type, r.job_name, r.overall_status) == (
        "Microsoft Windows Server Backup", "Windows Server Backup", "FS01", "Success")
    assert [(o.name, o.type, o.status) for o in r.objects] == [("C:", "Volume", "Success"), ("D:", "Volume", "Success")]
    assert r.started_at.isoformat() == "2024-03-07T01:00:04+01:00"
    assert r.ended_at.isoformat() == "2024-03-07T01:47:19+01:00"


def test_script_report_failure_puts_the_error_on_the_failed_volume():
    r = parse_raw(mail(script_report("Failed", [("C:", "Failed"), ("System Reserved", "Completed")],
                                     error="The shadow copy provider had an error."),
                       "Failed Backup on FS01", subtype="html"))
    assert r.overall_status == "Failed"
    assert [(o.name, o.status, o.message) for o in r.objects] == [
        ("C:", "Failed", "The shadow copy provider had an error."), ("System Reserved", "Success", "")]


def test_script_report_dates_are_read_in_the_order_closest_to_the_mail():
    # en-US culture writes month first; the mail was sent on 7 March.
    r = parse_raw(mail(script_report("Successful", [("C:", "Completed")], start="3/7/2024 1:00:04 AM",
                                     end="3/7/2024 1:47:19 AM"), "Successful Backup on FS01", subtype="html"))
    assert r.started_at.isoformat() == "2024-03-07T01:00:04+01:00"


def test_script_report_as_plain_text_still_parses():
    text = ("Contoso Backup Report for FS01\nTodays date: 2024-03-07 06:30\nLast Successful Backup: 2024-03-07 01:00\n"
            "Start time last backup: 07/03/2024 01:00:04\nEnd time last backup: 07/03/2024 01:47:19\n"
            "Backup Result: Failed\nError Message (if applicable): Access denied\n\nName Status Size\n"
            "C: Completed 118 GB\nD: Failed 0 B\n")
    r = parse_raw(mail(text, "FW: Failed Backup on FS01"))
    assert (r.job_name, r.overall_status) == ("FS01", "Failed")
    assert [(o.name, o.status) for o in r.objects] == [("C:", "Success"), ("D:", "Failed")]


WBADMIN_EN = """wbadmin 1.0 - Backup command-line tool
(C) Copyright Microsoft Corporation. All rights reserved.

Summary of the backup operation:
------------------

The backup operation stopped before completing.
The backup of volume (C:) completed successfully.
The backup of volume (E:) did not complete successfully.
Detailed error: There is not enough disk space to create the volume shadow copy on the storage location.
"""


def test_wbadmin_output_gives_per_volume_results_and_overall_failure():
    r = parse_raw(mail(WBADMIN_EN, "Windows Server Backup - APP02"))
    assert (r.software, r.job_name, r.overall_status) == ("Microsoft Windows Server Backup", "APP02", "Failed")
    assert [(o.name, o.status) for o in r.objects] == [("C:", "Success"), ("E:", "Failed")]


def test_event_log_success_text_is_a_success():
    body = ("Windows Server Backup on HV03\n\nLog Name: Microsoft-Windows-Backup\nEvent ID: 4\n"
            "The backup operation has finished successfully.\n")
    r = parse_raw(mail(body, "Backup notification from HV03"))
    assert (r.parser, r.overall_status, r.job_name) == ("windows_server_backup_wbadmin", "Success", "HV03")


def test_get_wbsummary_output_uses_the_result_code():
    body = ("Get-WBSummary on SRV9\n\nNextBackupTime            : 08.03.2024 21:00:00\nNumberOfVersions          : 14\n"
            "LastSuccessfulBackupTime  : 05.03.2024 21:00:00\nLastBackupResultHR        : 2155348010\n")
    r = parse_raw(mail(body, "WSB status SRV9"))
    assert r.software == "Microsoft Windows Server Backup"
    assert r.overall_status == "Failed"


def test_mail_that_merely_mentions_windows_server_backup_is_not_a_wsb_report():
    body = "Our guide explains how Windows Server Backup and wbadmin work. Read more on our blog."
    r = parse_raw(mail(body, "Tips for Windows admins"))
    assert r.software is None


# --- not a report ------------------------------------------------------------------------

@pytest.mark.parametrize("subject, body, headers", [
    ("New software packages available (pve2)", "The following updates are available:\n\n  pve-manager: 8.1.4 -> 8.1.10\n", {}),
    ("DSM-Update verfügbar", "Eine neue DSM-Version ist für DS-01 verfügbar: DSM 7.2.2.\n", {}),
    ("Monthly product news", "<p>Great features.</p><p><a href='#'>Unsubscribe</a></p>", {}),
    ("Spring event", "Join our event.", {"List-Unsubscribe": "<mailto:leave@vendor-sample.example>"}),
    ("Automatic reply: [Failed] Daily (1 objects) 1 failed", "I am out of the office until Monday.", {}),
    ("Undeliverable: [Success] Daily", "Delivery has failed to these recipients.", {}),
    ("Test message from NAS-01", "This is a test message.", {}),
    ("Veeam Backup & Replication: license expiration", "Your license will expire in 14 days. Renew it soon.", {}),
    ("Lizenzhinweis", "Ihre Lizenz läuft in 30 Tagen ab.", {}),
])
def test_not_a_report_is_recognised_with_a_reason(subject, body, headers):
    m = EmailMessage()
    m["From"] = "sender@vendor-sample.example"
    m["Subject"] = subject
    for k, v in headers.items():
        m[k] = v
    m.set_content(body, subtype="html" if body.startswith("<") else "plain")
    r = parse_raw(m.as_bytes())
    assert (r.parsed, r.is_report, r.software, r.objects) == (True, False, None, [])
    assert r.parser == "not_report" and r.reason


def test_a_report_with_an_unsubscribe_footer_is_still_a_report():
    html = script_report("Successful", [("C:", "Completed")]).replace(
        "</div></body>", "<p>Manage email preferences or unsubscribe</p></div></body>")
    r = parse_raw(mail(html, "Successful Backup on FS01", subtype="html"))
    assert r.is_report and r.software == "Microsoft Windows Server Backup"


def test_update_notice_with_backup_status_lines_is_left_to_the_report_parsers():
    body = "Backup job: Nightly\nStatus: Failed\nStart time: 22:00\nNote: updates are available for this NAS.\n"
    r = parse_raw(mail(body, "Backup job Nightly failed"))
    assert r.parser != "not_report"


def test_reply_quoting_a_report_reads_the_quoted_report():
    body = ("Thanks, we will look at it.\n\n-----Original Message-----\nFrom: FS01 <fs01@contoso-sample.example>\n"
            "Sent: Thursday, March 7, 2024 6:30 AM\nTo: reports@msp-sample.example\nSubject: Failed Backup on FS01\n\n"
            "Backup Result: Failed\nStart time last backup: 07/03/2024 01:00:04\n")
    r = parse_raw(mail(body, "RE: Failed Backup on FS01"))
    assert (r.software, r.job_name, r.overall_status) == ("Microsoft Windows Server Backup", "FS01", "Failed")


def test_bounce_carrying_a_report_is_not_a_report():
    from email.mime.multipart import MIMEMultipart
    from email.mime.message import MIMEMessage
    from email.mime.text import MIMEText
    import email as email_pkg
    original = email_pkg.message_from_bytes(mail(script_report("Failed", [("C:", "Failed")]),
                                                  "Failed Backup on FS01", subtype="html"))
    dsn = MIMEMultipart("report", report_type="delivery-status")
    dsn["From"] = "postmaster@msp-sample.example"
    dsn["Subject"] = "Returned to sender: delivery problem"
    dsn.attach(MIMEText("Your message could not be delivered.", "plain"))
    dsn.attach(MIMEMessage(original))
    r = parse_raw(dsn.as_bytes())
    assert (r.is_report, r.software) == (False, None)


def test_event_5_text_alone_is_a_failed_wsb_run_with_its_start_time():
    body = ("The backup operation that started at '\u200e2024\u200e-\u200e03\u200e-\u200e07T00:00:04.512000000Z' has failed "
            "with following error code '0x807800C5' (There was a failure in preparing the backup image of one of the "
            "volumes in the backup set.). Please rerun backup once issue is resolved.")
    r = parse_raw(mail(body, "Backup failure on HV07"))
    assert (r.software, r.job_name, r.overall_status) == ("Microsoft Windows Server Backup", "HV07", "Failed")
    assert r.started_at.isoformat() == "2024-03-07T00:00:04+00:00"
    assert "0x807800C5" in r.reason
