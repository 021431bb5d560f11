"""The normaliser: what every parser can rely on, whatever the mail client did."""
from __future__ import annotations

from email.message import EmailMessage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from backend.app.parsers.htmltext import html_to_text
from backend.app.parsers.normalize import normalize, strip_subject_prefixes

REPORT_TEXT = "Backup job: Nightly Files\n\nSuccess\n\nStart time 22:00:01\nEnd time 22:10:00\n"


def _mail(body: str, subject: str = "FW: report", sender: str = "Desk <desk@msp-sample.example>",
          subtype: str = "plain", charset: str = "utf-8", date: str = "Wed, 13 Mar 2024 08:05:12 +0100") -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "backupchecks@msp-sample.example"
    m["Subject"] = subject
    m["Date"] = date
    m.set_content(body, subtype=subtype, charset=charset)
    return m.as_bytes()


# --- subjects --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("FW: [Success] Daily (3 objects)", "[Success] Daily (3 objects)"),
    ("RE: FW: Fwd: [Warning] Daily (2 objects) 1 warning", "[Warning] Daily (2 objects) 1 warning"),
    ("WG: AW: [Failed] Nacht (1 objects) 1 failed", "[Failed] Nacht (1 objects) 1 failed"),
    ("Doorst: Antw: Back-up gelukt", "Back-up gelukt"),
    ("TR: SV: Sauvegarde", "Sauvegarde"),
    ("[EXTERNAL] [Warning] Job A (1 objects)", "[Warning] Job A (1 objects)"),
    ("[EXT] FW: [Success] Job B", "[Success] Job B"),
    ("*** EXTERNAL *** Backup completed", "Backup completed"),
    ("Caution: External Email - [Failed] Job C", "[Failed] Job C"),
    ("FW: [EXTERN] WG: [Success] Job D", "[Success] Job D"),
    ("AW[2]: Backup report", "Backup report"),
    ("[Warning] Job kept as is", "[Warning] Job kept as is"),
    ("[Failed] Job kept as is", "[Failed] Job kept as is"),
    ("Re: ", "Re:"),
])
def test_subject_prefixes_are_removed_but_result_tags_stay(raw, clean):
    assert strip_subject_prefixes(raw) == clean


def test_normalized_message_carries_clean_and_raw_subject():
    msg = normalize(_mail("hello", subject="WG: [EXTERNAL] [Failed] Job E (1 objects) 1 failed"))
    assert msg.subject == "[Failed] Job E (1 objects) 1 failed"
    assert msg.raw_subject.startswith("WG:")


# --- charsets and encodings -----------------------------------------------------------

def test_latin1_labelled_windows_1252_text_keeps_curly_quotes_and_umlauts():
    body = "Sicherung \u201eNacht\u201c f\u00fcr M\u00fcller \u2013 abgeschlossen".encode("cp1252")
    raw = (b"From: nas@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body)
    msg = normalize(raw)
    assert msg.text == "Sicherung \u201eNacht\u201c f\u00fcr M\u00fcller \u2013 abgeschlossen"


def test_unknown_charset_falls_back_to_utf8_then_cp1252():
    raw = (b"From: nas@example.com\r\nSubject: t\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
           + "Gr\u00fc\u00dfe".encode("utf-8"))
    assert normalize(raw).text == "Gr\u00fc\u00dfe"
    raw = (b"From: nas@example.com\r\nSubject: t\r\nContent-Type: text/plain; charset=unknown-8bit\r\n\r\n"
           + "Gr\u00fc\u00dfe".encode("cp1252"))
    assert normalize(raw).text == "Gr\u00fc\u00dfe"


def test_us_ascii_label_on_utf8_body_is_read_as_utf8():
    raw = (b"From: a@example.com\r\nSubject: t\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
           + "Caf\u00e9 backup".encode("utf-8"))
    assert normalize(raw).text == "Caf\u00e9 backup"


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
def test_transfer_encodings_are_decoded(cte):
    m = EmailMessage()
    m["From"] = "a@example.com"
    m["Subject"] = "=?iso-8859-1?q?Sicherung_f=FCr_B=FCro?="
    m.set_content("R\u00e9sultat: \u00e9chec \u2013 Zo\u00eb", charset="utf-8", cte=cte)
    msg = normalize(m.as_bytes())
    assert msg.text.strip() == "R\u00e9sultat: \u00e9chec \u2013 Zo\u00eb"
    assert msg.subject == "Sicherung f\u00fcr B\u00fcro"


def test_html_only_mail_gets_text_with_table_cells_separated():
    html = ("<html><body><p>Result</p><table><tr><td>Name</td><td>Status</td></tr>"
            "<tr><td>vm01</td><td>Success</td></tr></table><div>Footer<div>inner</div></div></body></html>")
    msg = normalize(_mail(html, subject="report", subtype="html"))
    lines = msg.text.split("\n")
    # Cells of a row share a line, separated by whitespace (never glued together).
    assert "Name Status" in lines
    assert "vm01 Success" in lines
    assert "Footer" in lines and "inner" in lines
    assert msg.html.startswith("<html>")


def test_html_to_text_drops_scripts_and_styles():
    assert html_to_text("<style>p{color:red}</style><script>x=1</script><p>Backup ok</p>") == "Backup ok"


def test_date_header_is_timezone_aware():
    msg = normalize(_mail("x", date="Tue, 05 Mar 2024 22:32:51 -0600"))
    assert msg.date.utcoffset().total_seconds() == -6 * 3600


def test_attachment_names_are_listed_and_not_read_as_body():
    m = MIMEMultipart()
    m["From"] = "a@example.com"
    m["Subject"] = "report"
    m.attach(MIMEText("Body text", "plain"))
    att = MIMEText("log line that is not the body", "plain")
    att.add_header("Content-Disposition", "attachment", filename="job.log")
    m.attach(att)
    msg = normalize(m.as_bytes())
    assert msg.attachments == ["job.log"]
    assert "not the body" not in msg.text


# --- forwarded reports ------------------------------------------------------------------

FORWARD_HEADERS = {
    "outlook_en": ("-----Original Message-----\nFrom: Veeam Backup <vbr@orig-sender.example>\n"
                   "Sent: Tuesday, March 12, 2024 10:48 PM\nTo: monitoring@orig-sender.example\n"
                   "Subject: [Failed] Nightly Files (1 objects) 1 failed\n\n"),
    "outlook_new_en": ("________________________________\nFrom: Veeam Backup <vbr@orig-sender.example>\n"
                       "Sent: Tuesday, March 12, 2024 10:48 PM\nTo: monitoring@orig-sender.example\n"
                       "Subject: [Failed] Nightly Files (1 objects) 1 failed\n\n"),
    "outlook_de": ("-----Ursprüngliche Nachricht-----\nVon: Veeam Backup <vbr@orig-sender.example>\n"
                   "Gesendet: Dienstag, 12. März 2024 22:48\nAn: monitoring@orig-sender.example\n"
                   "Betreff: [Failed] Nightly Files (1 objects) 1 failed\n\n"),
    "outlook_nl": ("Van: Veeam Backup <vbr@orig-sender.example>\nVerzonden: dinsdag 12 maart 2024 22:48\n"
                   "Aan: monitoring@orig-sender.example\nCC: beheer@orig-sender.example\n"
                   "Onderwerp: [Failed] Nightly Files (1 objects) 1 failed\n\n"),
    "gmail_en": ("---------- Forwarded message ---------\nFrom: Veeam Backup <vbr@orig-sender.example>\n"
                 "Date: Tue, Mar 12, 2024 at 10:48 PM\nSubject: [Failed] Nightly Files (1 objects) 1 failed\n"
                 "To: <monitoring@orig-sender.example>\n\n\n"),
    "thunderbird_de": ("-------- Weitergeleitete Nachricht --------\nBetreff: \t[Failed] Nightly Files (1 objects) 1 failed\n"
                       "Datum: \tTue, 12 Mar 2024 22:48:00 +0100\nVon: \tVeeam Backup <vbr@orig-sender.example>\n"
                       "An: \tmonitoring@orig-sender.example\n\n\n\n"),
    "apple_mail": ("Begin forwarded message:\n\nFrom: Veeam Backup <vbr@orig-sender.example>\n"
                   "Subject: [Failed] Nightly Files (1 objects) 1 failed\nDate: 12 March 2024 at 22:48:00 CET\n"
                   "To: monitoring@orig-sender.example\n\n"),
}


@pytest.mark.parametrize("style", sorted(FORWARD_HEADERS))
def test_inline_forward_gives_original_sender_subject_date_and_body(style):
    body = "Please check this one.\n\nRegards, Desk\n\n" + FORWARD_HEADERS[style] + REPORT_TEXT
    msg = normalize(_mail(body, subject="FW: [Failed] Nightly Files (1 objects) 1 failed"))
    assert msg.forwarded is True
    assert msg.from_address == "vbr@orig-sender.example"
    assert msg.subject == "[Failed] Nightly Files (1 objects) 1 failed"
    assert msg.text.startswith("Backup job: Nightly Files")
    assert "Please check" not in msg.text
    assert (msg.date.year, msg.date.month, msg.date.day, msg.date.hour, msg.date.minute) == (2024, 3, 12, 22, 48)


def test_inline_forward_without_zone_takes_the_forwarders_zone():
    body = FORWARD_HEADERS["outlook_de"] + REPORT_TEXT
    msg = normalize(_mail(body, subject="WG: x", date="Wed, 13 Mar 2024 08:05:12 +0100"))
    assert msg.date.utcoffset().total_seconds() == 3600


def test_quoted_forward_lines_are_unquoted():
    quoted = "".join("> " + ln + "\n" for ln in (FORWARD_HEADERS["gmail_en"] + REPORT_TEXT).split("\n"))
    msg = normalize(_mail("See below\n\n" + quoted, subject="Fwd: x"))
    assert msg.forwarded and msg.text.startswith("Backup job: Nightly Files")


def test_forward_of_a_forward_uses_the_innermost_report():
    inner = FORWARD_HEADERS["outlook_en"] + REPORT_TEXT
    outer = ("---------- Forwarded message ---------\nFrom: Colleague <colleague@middle.example>\n"
             "Date: Wed, Mar 13, 2024 at 9:00 AM\nSubject: FW: [Failed] Nightly Files\nTo: <desk@msp-sample.example>\n\n"
             "fyi\n\n" + inner)
    msg = normalize(_mail(outer, subject="Fwd: FW: [Failed] Nightly Files"))
    assert msg.from_address == "vbr@orig-sender.example"
    assert msg.text.startswith("Backup job: Nightly Files")


def test_outlook_html_forward_keeps_the_forwarded_html_only():
    html = ("<html><body><p>Hallo,</p><p>siehe unten.</p>"
            "<div style='border-top:solid #E1E1E1 1.0pt'><p class=MsoNormal><b>Von:</b> Veeam Backup "
            "&lt;vbr@orig-sender.example&gt;<br><b>Gesendet:</b> Dienstag, 12. März 2024 22:48<br>"
            "<b>An:</b> monitoring@orig-sender.example<br><b>Betreff:</b> [Success] Nightly Files</p></div>"
            "<table><tr><td>Backup job: Nightly Files</td><td>Success</td></tr></table></body></html>")
    msg = normalize(_mail(html, subject="WG: [Success] Nightly Files", subtype="html"))
    assert msg.forwarded
    assert msg.from_address == "vbr@orig-sender.example"
    assert "siehe unten" not in msg.html and "Betreff" not in msg.html
    assert msg.html_tree().xpath("//td")[0].text == "Backup job: Nightly Files"
    assert msg.text.startswith("Backup job: Nightly Files")


def test_forward_as_attachment_uses_the_attached_message():
    inner = MIMEText("<html><body><p>" + REPORT_TEXT.replace("\n", "<br>") + "</p></body></html>", "html", "utf-8")
    inner["From"] = "Veeam Agent <agent@orig-sender.example>"
    inner["Subject"] = "[Success] Laptop backup"
    inner["Date"] = "Sat, 16 Mar 2024 01:06:45 +0000"
    outer = MIMEMultipart()
    outer["From"] = "Desk <desk@msp-sample.example>"
    outer["Subject"] = "FW: look"
    outer["Date"] = "Mon, 18 Mar 2024 10:00:00 +0100"
    outer.attach(MIMEText("see attached", "plain"))
    outer.attach(MIMEMessage(inner))
    msg = normalize(outer.as_bytes())
    assert msg.forwarded
    assert msg.from_address == "agent@orig-sender.example"
    assert msg.subject == "[Success] Laptop backup"
    assert msg.date.isoformat() == "2024-03-16T01:06:45+00:00"
    assert "Backup job: Nightly Files" in msg.text and "see attached" not in msg.text


def test_plain_report_mentioning_from_and_subject_is_not_taken_for_a_forward():
    body = ("Backup job: Nightly Files\nSource: from: server01\nSubject: none\nStatus: Success\n")
    msg = normalize(_mail(body, subject="[Success] Nightly Files", sender="nas@orig-sender.example"))
    assert not msg.forwarded
    assert msg.from_address == "nas@orig-sender.example"
    assert msg.text.startswith("Backup job")


def test_garbage_never_raises():
    for raw in (b"", b"\x00\xff\xfe", b"Subject: =?utf-8?b?####?=\r\n\r\n\xff", "text \udcff".encode("utf-8", "surrogateescape")):
        msg = normalize(raw)
        assert isinstance(msg.text, str)


def test_stub_text_part_is_replaced_by_text_from_the_html():
    m = MIMEMultipart("alternative")
    m["From"] = "nas@example.com"
    m["Subject"] = "report"
    m.attach(MIMEText("This message requires an HTML capable mail client.", "plain"))
    m.attach(MIMEText("<html><body><table><tr><td>Task</td><td>Nightly</td></tr><tr><td>Result</td><td>Failed</td></tr>"
                      "<tr><td>Details</td><td>The destination share could not be reached in time.</td></tr>"
                      "</table></body></html>", "html"))
    msg = normalize(m.as_bytes())
    assert "Task Nightly" in msg.text and "Result Failed" in msg.text


def test_format_flowed_text_is_unwrapped():
    from backend.app.parsers.normalize import normalize
    raw = (b"From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=utf-8; format=flowed\n\n"
           b"Unable to truncate the transaction logs. Details: Failed to call RPC \nfunction: Access is denied.\n"
           b" From here on\nnext line\n")
    msg = normalize(raw)
    assert msg.text.splitlines() == [
        "Unable to truncate the transaction logs. Details: Failed to call RPC function: Access is denied.",
        "From here on", "next line"]


def test_forwarded_subject_hard_wrapped_over_two_lines():
    from backend.app.parsers.normalize import normalize
    raw = (b"From: desk@example.com\nSubject: FW: x\nContent-Type: text/plain; charset=utf-8\n\n"
           b"-----Original Message-----\nFrom: NAS <nas@example.com>\nSent: Tuesday, March 18, 2025 3:22 AM\n"
           b"To: ops@example.com\nSubject: [Warning] [Hybrid Backup Sync] Notification from your device:\n"
           b"NAS-01 about the job Nightly\n\nbody line\n")
    msg = normalize(raw)
    assert msg.subject == "[Warning] [Hybrid Backup Sync] Notification from your device: NAS-01 about the job Nightly"
    assert msg.text == "body line"


def test_forwarded_long_subject_followed_by_body_without_blank_line_is_not_extended():
    from backend.app.parsers.normalize import normalize
    raw = (b"From: desk@example.com\nSubject: FW: x\nContent-Type: text/plain; charset=utf-8\n\n"
           b"-----Original Message-----\nFrom: NAS <nas@example.com>\nSent: Tuesday, March 18, 2025 3:22 AM\n"
           b"To: ops@example.com\nSubject: [Warning] [Hybrid Backup Sync] Notification from your device: NAS\n"
           b"Line one of the body\nLine two of the body\nLine three\n")
    msg = normalize(raw)
    assert msg.subject == "[Warning] [Hybrid Backup Sync] Notification from your device: NAS"
