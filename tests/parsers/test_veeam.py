"""Veeam session reports: what an operator sees in the review queue."""
from __future__ import annotations

from email.message import EmailMessage

import pytest

from backend.app.parsers.registry import parse_raw

CELL = 'style="padding: 2px 3px;border: 1px solid #a7a9ac;font-family: Tahoma;font-size: 12px;"'


def report_html(header: str, status: str, desc: str = "", date: str = "Saturday, 12 October 2024 22:00:13",
                start: str = "22:00:13", end: str = "22:31:40", cols=("Name", "Status", "Start time", "End time", "Details"),
                rows=(), session_message: str = "", cls: str = "", processed: str = "1 of 1 VMs processed") -> str:
    grid = [["Success", "1", "Start time", start, "Total size", "10 GB"],
            ["Warning", "0", "End time", end, "Data read", "1 GB"],
            ["Error", "0", "Duration", "0:31:27", "Transferred", "1 GB"]]
    out = ['<html><body><table><tr><td><table><tr>',
           f'<td>{header}<div class="{cls}jobDescription">{desc}</div></td>',
           f'<td>{status}<div class="{cls}jobDescription">{processed}</div></td></tr>',
           f'<tr><td colspan="2"><table class="{cls}inner">',
           f'<tr><td colspan="{len(cols)}" class="{cls}sessionDetails"><span>{date}</span></td></tr>']
    for i, r in enumerate(grid):
        extra = f'<td rowspan="3"><span class="small_label">{session_message}</span></td>' if i == 0 else ""
        out.append("<tr>" + "".join(f"<td nowrap {CELL}><b>{c}</b></td>" if j % 2 == 0 else f"<td nowrap {CELL}>{c}</td>"
                                    for j, c in enumerate(r)) + extra + "</tr>")
    out.append(f'<tr><td colspan="{len(cols)}">Details</td></tr>')
    out.append(f'<tr class="{cls}processObjectsHeader">' + "".join(f"<td {CELL}><b>{c}</b></td>" for c in cols) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td {CELL}>{c}</td>" for c in r) + "</tr>")
    out.append("</table></td></tr></table></td></tr></table></body></html>")
    return "\n".join(out)


def mail(html: str, subject: str, sender: str = "Backup Server <backup@northwind-sample.example>",
         date: str = "Sat, 12 Oct 2024 22:32:05 +0200", text: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "reports@msp-sample.example"
    m["Subject"] = subject
    m["Date"] = date
    if text is not None:
        m.set_content(text)
        if html:
            m.add_alternative(html, subtype="html")
    else:
        m.set_content(html, subtype="html")
    return m.as_bytes()


def test_backup_job_with_failed_vm_gives_objects_in_report_order_and_failed_status():
    rows = [("app-01", "Success", "22:00:20", "22:10:00", ""),
            ("db-01", "Error", "22:00:21", "22:31:30", "Error: Failed to create snapshot<br>Retrying snapshot creation")]
    r = parse_raw(mail(report_html("Backup job: Nightly SAN (Full)", "Failed", rows=rows),
                       "[Failed] Nightly SAN (2 objects) 1 failed"))
    assert (r.software, r.backup_type, r.job_name, r.overall_status) == (
        "Veeam Backup & Replication", "Backup Job", "Nightly SAN", "Failed")
    assert [(o.name, o.type, o.status) for o in r.objects] == [("app-01", "VM", "Success"), ("db-01", "VM", "Failed")]
    assert r.objects[1].message == "Error: Failed to create snapshot Retrying snapshot creation"
    assert r.objects[0].message == ""


def test_times_come_from_the_report_in_the_mail_dates_zone_and_cross_midnight():
    rows = [("vm1", "Success", "23:50:00", "00:20:00", "")]
    r = parse_raw(mail(report_html("Backup job: Late", "Success", date="Saturday, 12 October 2024 23:50:00",
                                   start="23:50:00", end="0:20:00", rows=rows), "[Success] Late (1 objects)"))
    assert r.started_at.isoformat() == "2024-10-12T23:50:00+02:00"
    assert r.ended_at.isoformat() == "2024-10-13T00:20:00+02:00"


def test_us_formatted_report_date_and_12_hour_times():
    rows = [("vm1", "Success", "10:00:41 PM", "10:06:12 PM", "")]
    r = parse_raw(mail(report_html("Backup job: US", "Success", date="Tuesday, March 5, 2024 10:00:14 PM",
                                   start="10:00:14 PM", end="10:32:40 PM", rows=rows),
                       "[Success] US (1 objects)", date="Tue, 05 Mar 2024 22:32:51 -0600"))
    assert r.started_at.isoformat() == "2024-03-05T22:00:14-06:00"
    assert r.ended_at.isoformat() == "2024-03-05T22:32:40-06:00"


@pytest.mark.parametrize("header, backup_type, obj_type", [
    ("Backup job: J", "Backup Job", "VM"),
    ("Backup Copy job: J", "Backup Copy Job", "VM"),
    ("Replication job: J", "Replication Job", "VM"),
    ("Agent Backup job: J", "Agent Backup Job", "Computer"),
    ("Agent backup policy: J", "Agent Backup Policy", "Computer"),
    ("File Backup job: J", "File Share Backup Job", "File Share"),
    ("NAS Backup job: J", "File Share Backup Job", "File Share"),
    ("Configuration Backup job: J", "Configuration Backup", "Server"),
    ("SureBackup job: J", "SureBackup Job", "VM"),
    ("Backup to Tape job: J", "Tape Job", "Backup"),
    ("File to Tape job: J", "File to Tape Job", "File"),
    ("VM Copy job: J", "VM Copy Job", "VM"),
    ("Object Storage Backup job: J", "Object Storage Backup Job", "Object Storage"),
])
def test_job_kinds_map_to_backup_types_and_object_types(header, backup_type, obj_type):
    rows = [("thing-1", "Success", "22:00:20", "22:10:00", "")]
    r = parse_raw(mail(report_html(header, "Success", rows=rows), "[Success] J (1 objects)"))
    assert (r.backup_type, r.job_name) == (backup_type, "J")
    assert r.objects[0].type == obj_type


@pytest.mark.parametrize("desc, software", [
    ("Veeam Agent for Microsoft Windows", "Veeam Agent for Microsoft Windows"),
    ("Veeam Agent for Linux", "Veeam Agent for Linux"),
    ("Veeam Backup for Microsoft 365", "Veeam Backup for Microsoft 365"),
    ("Created by CORP\\admin at 1/1/2024 9:00 AM.", "Veeam Backup & Replication"),
])
def test_product_comes_from_the_description_line(desc, software):
    rows = [("x1", "Success", "22:00:20", "22:10:00", "")]
    r = parse_raw(mail(report_html("Agent Backup job: Laptop", "Success", desc=desc, rows=rows), "[Success] Laptop"))
    assert r.software == software


def test_job_name_keeps_its_own_parentheses_but_drops_the_run_kind():
    rows = [("vm1", "Success", "1", "2", "")]
    r = parse_raw(mail(report_html("Backup job: Web (DMZ) (Retry 2)", "Success", rows=rows),
                       "[Success] Web (DMZ) (1 objects) (Retry 2)"))
    assert r.job_name == "Web (DMZ)"


def test_outlook_rewritten_class_names_do_not_matter():
    rows = [("vm1", "Warning", "1", "2", "Changed block tracking is disabled")]
    r = parse_raw(mail(report_html("Backup job: Fwd", "Warning", rows=rows, cls="x_"), "[Warning] Fwd (1 objects) 1 warning"))
    assert r.overall_status == "Warning"
    assert r.objects[0].message == "Changed block tracking is disabled"


def test_vb365_type_column_is_used_per_object():
    cols = ("Name", "Type", "Status", "Start time", "End time", "Details")
    rows = [("Sales", "Group", "Success", "1", "2", ""), ("Projects", "Site", "Warning", "1", "2", "Item skipped")]
    r = parse_raw(mail(report_html("Backup job: M365", "Warning", desc="Veeam Backup for Microsoft 365", cols=cols,
                                   rows=rows), "[Warning] tenant.onmicrosoft.com - M365 (2 objects), 1 issues"))
    assert r.software == "Veeam Backup for Microsoft 365"
    assert [(o.name, o.type, o.status, o.message) for o in r.objects] == [
        ("Sales", "Group", "Success", ""), ("Projects", "Site", "Warning", "Item skipped")]


def test_job_level_failure_without_objects_keeps_the_session_message():
    r = parse_raw(mail(report_html("Backup job: Offline", "Failed", rows=(),
                                   session_message="Error: Failed to connect to host esx01.sample.example"),
                       "[Failed] Offline (0 objects)"))
    assert r.overall_status == "Failed" and r.objects == []
    assert "Failed to connect to host esx01" in r.reason


def test_status_falls_back_to_the_subject_tag():
    rows = [("vm1", "Success", "1", "2", "")]
    html = report_html("Backup job: Tagless", "", rows=rows)
    r = parse_raw(mail(html, "[Warning] Tagless (1 objects) 1 warning"))
    assert r.overall_status == "Warning"


def test_text_only_rendering_is_read_when_html_is_gone():
    text = ("Backup job: Text Only (Incremental)\nCreated by CORP\\svc at 1/1/2024 9:00 AM.\n\nWarning\n"
            "2 of 2 VMs processed\n\nSaturday, 12 October 2024 22:00:13\n\nSuccess\t1\tStart time\t22:00:13\n"
            "Warning\t1\tEnd time\t22:31:40\nError\t0\tDuration\t0:31:27\n\nDetails\n"
            "Name\tStatus\tStart time\tEnd time\tDetails\n"
            "srv-a\tSuccess\t22:00:20\t22:10:00\n"
            "srv-b\tWarning\t22:00:21\t22:31:30\tLow free space on datastore\n")
    r = parse_raw(mail("", "[Warning] Text Only (2 objects) 1 warning", text=text))
    assert (r.job_name, r.overall_status) == ("Text Only", "Warning")
    assert [(o.name, o.status, o.message) for o in r.objects] == [
        ("srv-a", "Success", ""), ("srv-b", "Warning", "Low free space on datastore")]
    assert r.started_at.isoformat() == "2024-10-12T22:00:13+02:00"


def test_subject_only_mail_from_veeam_still_gives_job_and_status():
    r = parse_raw(mail("<html><body><p>See attachment.</p></body></html>", "[Failed] Exchange DAG (3 objects) 2 failed",
                       sender="Veeam Backup <veeam@northwind-sample.example>"))
    assert (r.software, r.job_name, r.overall_status) == ("Veeam Backup & Replication", "Exchange DAG", "Failed")


@pytest.mark.parametrize("subject, body", [
    ("Backup job: Files completed", "<html><body><p>Backup job: Files completed at 22:00. Everything fine.</p></body></html>"),
    ("NAKIVO Backup & Replication: Job \"Daily\" completed", "<html><body><table><tr><td>Job: Daily</td><td>Successful</td>"
     "</tr><tr><td>Start time</td><td>22:00</td></tr></table></body></html>"),
    ("[Success] Lunch order", "<html><body>Your lunch order (3 objects) is ready</body></html>"),
])
def test_other_mail_is_not_taken_for_veeam(subject, body):
    r = parse_raw(mail(body, subject, sender="nas@fabrikam-sample.example"))
    assert r.parser != "veeam"


def test_vee_mail_log_lines_become_the_object_message():
    html = report_html("Agent Backup job: web01 nightly", "Failed", desc="Veeam Agent for Linux",
                       cols=("Name", "Status", "Start time", "End time"),
                       rows=[("web01", "Failed", "02:00:01", "02:03:52")])
    html = html.replace("</table></td></tr></table></td></tr></table>",
                        '<tr class="processObjectsHeader"><td colspan="4"><b>Details</b></td></tr>'
                        '<tr><td colspan="4"><span class="small_label">[12.10.2024 02:03:51] &lt;1398&gt; lpbcore| WARN |Retrying'
                        '<br>[12.10.2024 02:03:51] &lt;1398&gt; lpbcore| ERR |Repository unreachable.</span></td></tr>'
                        "</table></td></tr><tr><td>Vee-Mail footer 1.0</td></tr></table></td></tr></table>", 1)
    r = parse_raw(mail(html, "[Failed] WEB01 - Saturday, 12 October 2024 02:00:01", sender="root@web01.sample.example"))
    assert r.software == "Veeam Agent for Linux"
    assert r.objects[0].message == "Retrying Repository unreachable."


# --- forwarded reports (HTML bodies of common mail clients) ------------------------------

_FWD_SUBJECT = "[Failed] Nightly Files (2 objects) 1 failed"
_FWD_BLOCKS = {
    "gmail": ('<div dir="ltr">fyi<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
              '---------- Forwarded message ---------<br>From: <strong class="gmail_sendername" dir="auto">Veeam Backup'
              '</strong> <span dir="auto">&lt;<a href="mailto:vbr@orig-sample.example">vbr@orig-sample.example</a>&gt;'
              '</span><br>Date: Sat, Oct 12, 2024 at 10:32 PM<br>Subject: ' + _FWD_SUBJECT + '<br>To: &lt;<a href="'
              'mailto:m@orig-sample.example">m@orig-sample.example</a>&gt;<br></div><br><br>{report}</div></div>'),
    "thunderbird": ('<p>see below</p><div class="moz-forward-container"><br><br>-------- Forwarded Message --------\n'
                    '<table class="moz-email-headers-table"><tbody><tr><th nowrap align="RIGHT">Subject: </th><td>'
                    + _FWD_SUBJECT + '</td></tr><tr><th nowrap align="RIGHT">Date: </th><td>Sat, 12 Oct 2024 22:32:00 +0200'
                    '</td></tr><tr><th nowrap align="RIGHT">From: </th><td>Veeam Backup <a href="mailto:vbr@orig-sample.example">'
                    '&lt;vbr@orig-sample.example&gt;</a></td></tr><tr><th nowrap align="RIGHT">To: </th><td>m@orig-sample.example'
                    '</td></tr></tbody></table><br><br>{report}</div>'),
    "outlook_web": ('<div>please check</div><hr tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri">'
                    '<b>From:</b> Veeam Backup &lt;vbr@orig-sample.example&gt;<br><b>Sent:</b> Saturday, October 12, 2024 '
                    '10:32 PM<br><b>To:</b> Monitoring &lt;m@orig-sample.example&gt;<br><b>Subject:</b> ' + _FWD_SUBJECT
                    + '</font><div>&nbsp;</div></div>{report}'),
    "outlook_nl": ('<p class=MsoNormal>Graag controleren.</p><div style="border:none;border-top:solid #E1E1E1 1.0pt">'
                   '<p class=MsoNormal><b>Van:</b> Veeam Backup &lt;vbr@orig-sample.example&gt;<br><b>Verzonden:</b> '
                   'zaterdag 12 oktober 2024 22:32<br><b>Aan:</b> Monitoring &lt;m@orig-sample.example&gt;<br>'
                   '<b>Onderwerp:</b> ' + _FWD_SUBJECT + '</p></div>{report}'),
}


@pytest.mark.parametrize("client", sorted(_FWD_BLOCKS))
def test_report_forwarded_inline_in_html_parses_like_the_original(client):
    rows = [("vm-a", "Error", "22:00:20", "22:31:00", "Disk full"), ("vm-b", "Success", "22:00:21", "22:10:00", "")]
    report = report_html("Backup job: Nightly Files", "Failed", rows=rows).split("<body>")[1].split("</body>")[0]
    html = "<html><body>" + _FWD_BLOCKS[client].replace("{report}", report) + "</body></html>"
    r = parse_raw(mail(html, "Fwd: " + _FWD_SUBJECT, sender="Desk <desk@msp-sample.example>",
                       date="Sun, 13 Oct 2024 09:00:00 +0200"))
    assert (r.parser, r.job_name, r.overall_status) == ("veeam", "Nightly Files", "Failed")
    assert [(o.name, o.status, o.message) for o in r.objects] == [("vm-a", "Failed", "Disk full"), ("vm-b", "Success", "")]
    assert r.started_at.isoformat() == "2024-10-12T22:00:13+02:00"


def test_without_a_session_date_times_are_anchored_to_the_mail_date():
    rows = [("vm1", "Success", "23:10:00", "00:05:00", "")]
    html = report_html("Backup job: No Date", "Success", date="", start="23:10:00", end="0:05:00", rows=rows)
    r = parse_raw(mail(html, "[Success] No Date (1 objects)", date="Sun, 13 Oct 2024 00:05:30 +0200"))
    assert r.started_at.isoformat() == "2024-10-12T23:10:00+02:00"
    assert r.ended_at.isoformat() == "2024-10-13T00:05:00+02:00"


def test_text_rendering_with_cells_joined_by_spaces():
    text = ("Backup job: Spaces Job (Incremental)\nCreated by CORP\\svc at 1/1/2024 9:00 AM.\nFailed\n2 of 2 VMs processed\n"
            "Saturday, 12 October 2024 22:00:13\nSuccess 1 Start time 22:00:13 Total size 10 GB\n"
            "Warning 0 End time 22:31:40 Data read 1 GB\nError 1 Duration 0:31:27 Transferred 1 GB\nDetails\n"
            "Name Status Start time End time Size Read Transferred Duration Details\n"
            "file server 01 Success 22:00:20 22:10:00 80 GB 3.1 GB 1.2 GB 0:09:40\n"
            "sql-02 Error 22:00:21 22:31:30 420 GB 0 B 0 B 0:31:09 Failed to quiesce: 2 snapshots exist\n")
    r = parse_raw(mail("", "[Failed] Spaces Job (2 objects) 1 failed", text=text))
    assert [(o.name, o.status, o.message) for o in r.objects] == [
        ("file server 01", "Success", ""), ("sql-02", "Failed", "Failed to quiesce: 2 snapshots exist")]


def test_custom_subject_and_unknown_layout_still_gives_product_status_and_job():
    body = "<html><body><p>Veeam Backup for Microsoft 365</p><p>Job finished.</p></body></html>"
    r = parse_raw(mail(body, "[Warning] contoso.onmicrosoft.com - Teams Backup", sender="m365@contoso-sample.example"))
    assert (r.software, r.job_name, r.overall_status) == ("Veeam Backup for Microsoft 365", "Teams Backup", "Warning")


def test_backup_copy_of_agent_backups_lists_computers():
    rows = [("laptop-07", "Success", "1", "2", "")]
    r = parse_raw(mail(report_html("Backup Copy job: Agents Offsite", "Success", rows=rows,
                                   processed="1 of 1 machines processed"), "[Success] Agents Offsite (1 objects)"))
    assert (r.backup_type, r.objects[0].type) == ("Backup Copy Job", "Computer")


def _encoded_subject_mail(html: str, subject: str) -> bytes:
    """A mail as vee-mail writes it: the subject through `echo | base64`, so it ends in a newline."""
    import base64
    enc = base64.b64encode((subject + "\n").encode("utf-8")).decode()
    return (f"From: veeam@lab-web02.example.invalid\nTo: ops@example.invalid\nSubject: =?UTF-8?B?{enc}?=\n"
            "Date: Tue, 04 Mar 2025 01:43:10 +0100\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
            + html).encode("utf-8")


@pytest.mark.parametrize("header", ["Agent Backup job: web-nightly ()", "Agent Backup job: web-nightly",
                                    "Agent Backup job: web-nightly (Incremental)", "Agent Backup job: web-nightly (Full)"])
def test_agent_title_with_or_without_backup_type_gives_the_job_name(header):
    html = report_html(header, "Failed", desc="Veeam Agent for Linux", rows=[("LAB-WEB02", "Failed", "01:30", "01:41", "")])
    r = parse_raw(mail(html, "[Failed] LAB-WEB02 - Tuesday, 04 March 2025 01:30:02"))
    assert (r.software, r.job_name, r.overall_status) == ("Veeam Agent for Linux", "web-nightly", "Failed")


def test_veemail_encoded_subject_with_newline_names_the_job_over_an_old_template_header():
    html = report_html("Agent Backup job: Backup Job LAB-WEB02", "Warning", desc="Veeam Agent for Linux",
                       rows=[("LAB-WEB02", "Warning", "01:30", "01:41", "")])
    r = parse_raw(_encoded_subject_mail(html, "[Warning] LAB-WEB02 - Dienstag, 04 März 2025 01:30:02 (web (nightly) - Full)"))
    assert (r.job_name, r.overall_status) == ("web (nightly)", "Warning")


def test_vbr_title_without_run_kind_gives_job_and_status():
    html = report_html("Backup job: SQL Tier", "Warning", rows=[("sql-01", "Warning", "22:00", "22:30", "Low space")])
    r = parse_raw(mail(html, "[Warning] SQL Tier"))
    assert (r.software, r.job_name, r.overall_status) == ("Veeam Backup & Replication", "SQL Tier", "Warning")


@pytest.mark.parametrize("header", ["Backup policy: Branch Laptops", "Agent backup policy: Branch Laptops",
                                    "Windows backup policy: Branch Laptops"])
@pytest.mark.parametrize("name_col,status_col", [("Name", "Status"), ("Computer name", "Status"), ("Hostname", "Status"),
                                                 ("Computer", "Result")])
def test_agent_backup_policy_lists_its_computers(header, name_col, status_col):
    rows = [("lt-01", "Success", "21:00", "21:18", ""), ("lt-02", "Failed", "21:00", "21:02", "Network path not found")]
    html = report_html(header, "Failed", cols=(name_col, status_col, "Start time", "End time", "Details"), rows=rows,
                       processed="1 of 2 computers processed")
    r = parse_raw(mail(html, "[Failed] Branch Laptops (2 computers) 1 failed"))
    assert (r.backup_type, r.job_name) == ("Agent Backup Policy", "Branch Laptops")
    assert [(o.name, o.type, o.status, o.message) for o in r.objects] == [
        ("lt-01", "Computer", "Success", ""), ("lt-02", "Computer", "Failed", "Network path not found")]


def test_a_vm_backup_job_is_not_made_a_policy():
    r = parse_raw(mail(report_html("Backup job: Nightly", "Success", rows=[("vm-01", "Success", "22:00", "22:10", "")],
                                   processed="1 of 1 VMs processed"), "[Success] Nightly (1 VM)"))
    assert (r.backup_type, [o.type for o in r.objects]) == ("Backup Job", ["VM"])
