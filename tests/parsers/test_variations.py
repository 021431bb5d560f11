"""Mutation harness: every sample of both corpora, delivered the ways real mail arrives.

For each ``NAME.eml`` with its ``NAME.expected.json`` this builds realistic
variants and checks that the parse result (software, backup_type, job_name,
overall_status, objects) still equals the expected one, and that the report's
own start/end times are the same instants as for the original:

* forwarded inline by Outlook in HTML: ``fwd_html_en`` (From/Sent/To/Subject),
  ``fwd_html_de`` (Von/Gesendet/An/Betreff), ``fwd_html_nl_word`` (Dutch,
  and the report re-rendered by Outlook's Word engine: MsoNormal paragraphs
  in every cell, header cells as bold data cells, classes prefixed ``x_``),
  ``fwd_html_mac_word`` (Outlook for Mac wording), ``fwd_display_name_only``
  (an internal sender shown without its address), ``fwd_gmail``,
  ``fwd_thunderbird`` (header table), ``fwd_apple`` (blockquote, CET/CEST),
  ``fwd_twice`` (forwarded, then forwarded again);
* forwarded inline as TEXT only: ``fwd_text_tabs`` (table cells separated
  by tabs, one row per line), ``fwd_text_lines`` (every cell on a line of its
  own, an empty cell an empty line), ``fwd_text_flowed`` (format=flowed,
  long lines wrapped at 72 characters), ``fwd_text_hardwrap`` (hard-wrapped at
  76 columns: objects not compared, see VARIANT_LOSSY); ``reply_quoted`` (a reply quoting it
  with "> ");
* forwarded as an attachment: ``fwd_attachment`` (message/rfc822),
  ``fwd_attachment_octet`` (an .eml file as application/octet-stream);
* subjects: ``prefix_*`` (RE:, FW:, [EXTERNAL], WG: AW:, Doorst: Antw:, [EXT] Fwd:), ``subject_encoded``
  (UTF-8 encoded words, folded), ``external_banner`` (a gateway's banner on
  top, a "-- " scan notice below, [EXTERNAL] tag);
* encodings: ``enc_qp_cp1252``, ``enc_b64_latin1``, ``enc_8bit_utf8``,
  ``enc_undeclared_cp1252`` (no charset declared), ``crlf``, ``lf``;
* ``no_date``: the Date header missing;
* ``html_only`` / ``text_only``: one half of a text+HTML mail dropped;
* ``job_renamed``: the same report for a job called "Büro Sicherung Nacht 2".

A variant that cannot be built for a sample is not collected for it (a
report with characters the variant's charset cannot encode; html_only/text_only
for a mail without both parts; job_renamed for a job name without a space). A
variant that legitimately loses information is listed in ``VARIANT_LOSSY``
(all samples) or ``LOSSY`` (one sample) with its reason; only the keys named
there are compared besides software, job name and status.
"""
from __future__ import annotations

import base64
import email
import copy
import email.charset
import email.header
import email.policy
import html as htmlmod
import json
import quopri
import re
from datetime import timedelta
import email.utils
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

from backend.app.parsers.registry import parse_raw
from tests.corpus import CORPUS

HERE = Path(__file__).resolve().parent
LOCAL = HERE / "samples"
KEYS = ("software", "backup_type", "job_name", "overall_status", "objects")
CORE_KEYS = ("software", "job_name", "overall_status")
OBJECT_KEYS = ("name", "type", "status", "message")


def _samples() -> list[Path]:
    found: list[Path] = []
    for root in (CORPUS, LOCAL):
        found += sorted(root.rglob("*.eml"))
    return found


# --- reading a sample ---------------------------------------------------------------

class Original:
    """The parts of a sample a mail client works with when it forwards or re-encodes it."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        pol = email.message_from_bytes(raw, policy=email.policy.default)
        self.subject = str(pol.get("Subject", "") or "")
        self.from_ = str(pol.get("From", "") or "")
        self.to = str(pol.get("To", "") or "ops@example.invalid")
        self.date = str(pol.get("Date", "") or "")
        self.text = None
        self.html = None
        self.other_parts = 0
        self.nested = False
        for part in pol.walk():
            if part.get_content_type() == "message/rfc822":
                self.nested = True
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            if part.get_filename() or part.get_content_disposition() == "attachment":
                self.other_parts += 1
                continue
            try:
                content = part.get_content()
            except Exception:  # noqa: BLE001
                content = None
            if not isinstance(content, str):
                self.other_parts += 1
                continue
            if ctype == "text/html" and self.html is None:
                self.html = content
            elif ctype == "text/plain" and self.text is None:
                self.text = content
            else:
                self.other_parts += 1

    @property
    def both(self) -> bool:
        return bool(self.text and self.text.strip()) and bool(self.html and self.html.strip())

    def from_name_addr(self) -> tuple[str, str]:
        pairs = getaddresses([self.from_])
        return pairs[0] if pairs else ("", "")

    def sent(self):
        try:
            return parsedate_to_datetime(self.date)
        except Exception:  # noqa: BLE001
            return None


# --- how Outlook renders things ----------------------------------------------------

_BLOCKS = {"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "pre",
           "blockquote", "hr", "tbody", "thead", "center", "dl", "dt", "dd"}


def outlook_text(html: str, cells: str) -> str:
    """Plain-text rendering of an HTML body, as Outlook's "forward as plain text" does.

    ``cells='tabs'``: the cells of a table row on one line, separated by a tab;
    ``cells='lines'``: every cell on a line of its own (an empty cell an empty
    line), rows following each other. Whitespace in the markup collapses as a
    browser shows it. Written independently of normalize.html_to_text on purpose.
    """
    import lxml.html
    doc = lxml.html.document_fromstring(html)
    for bad in doc.xpath("//script|//style|//head|//title"):
        bad.drop_tree()
    out: list[str] = []

    def put(s, pre):
        if s:
            out.append(s if pre else re.sub(r"[ \t\r\n]+", " ", s))  # &nbsp; is kept

    def walk(el, pre=False):
        tag = el.tag if isinstance(el.tag, str) else None
        if tag is None:
            put(el.tail, pre)
            return
        pre = pre or tag == "pre"
        if tag == "span" and "mso-tab-count" in (el.get("style") or ""):
            out.append("\t")  # Outlook's tab in a plain-text mail it turned into HTML
            put(el.tail, pre)
            return
        if tag == "br":
            out.append("\n")
        elif tag == "p" and ("Mso" in (el.get("class") or "") or el.getparent().tag in ("td", "th")):
            pass  # Outlook's margin-less paragraphs: one line each; a cell's paragraph: no break
        elif tag in _BLOCKS and tag not in ("tr", "tbody", "thead") and not (cells == "lines" and tag == "table"):
            out.append("\n")
        put(el.text, pre)
        for child in el:
            walk(child, pre)
        if tag in ("td", "th"):
            out.append("\t" if cells == "tabs" else "\n")
        elif tag == "tr":
            out.append("\n" if cells == "tabs" else "")
        elif tag == "p" and el.getparent().tag in ("td", "th"):
            pass
        elif tag in _BLOCKS and tag not in ("tbody", "thead") and not (cells == "lines" and tag == "table"):
            out.append("\n")
        if el.getparent() is not None:
            put(el.tail, pre and el.getparent().tag == "pre")

    body = doc.find("body")
    walk(body if body is not None else doc)
    text = "".join(out)
    lines = []
    for ln in text.split("\n"):
        ln = re.sub(r" *\t *", "\t", re.sub(r"[ ]+", " ", ln)).replace("\xa0", " ").strip(" ").rstrip("\t")
        lines.append(ln)
    text = "\n".join(lines)
    if cells == "tabs":
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
_MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
              "Oktober", "November", "Dezember")


_DAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_MONTHS_NL = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
              "oktober", "november", "december")


def sent_line(orig: Original, lang: str) -> str:
    d = orig.sent()
    if d is None:
        return "Tuesday, March 18, 2025 3:22 AM" if lang == "en" else "Dienstag, 18. März 2025 03:22"
    if lang in ("en", "exchange"):
        h12 = d.hour % 12 or 12
        return (f"{_DAYS_EN[d.weekday()]}, {_MONTHS_EN[d.month - 1]} {d.day}, {d.year} "
                f"{h12}:{d.minute:02d} {'PM' if d.hour >= 12 else 'AM'}")
    if lang == "nl":
        return f"{_DAYS_NL[d.weekday()]} {d.day} {_MONTHS_NL[d.month - 1]} {d.year} {d.hour:02d}:{d.minute:02d}"
    if lang == "mac":
        return f"{_DAYS_EN[d.weekday()]}, {d.day} {_MONTHS_EN[d.month - 1]} {d.year} at {d.hour:02d}:{d.minute:02d}"
    return f"{_DAYS_DE[d.weekday()]}, {d.day}. {_MONTHS_DE[d.month - 1]} {d.year} {d.hour:02d}:{d.minute:02d}"


def header_block(orig: Original, lang: str) -> list[tuple[str, str]]:
    name, addr = orig.from_name_addr()
    if lang == "en":
        frm = f"{name} <{addr}>" if name else addr
        return [("From", frm), ("Sent", sent_line(orig, "en")), ("To", orig.to), ("Subject", orig.subject)]
    if lang == "nl":
        frm = f"{name} <{addr}>" if name else addr
        return [("Van", frm), ("Verzonden", sent_line(orig, "nl")), ("Aan", orig.to),
                ("Onderwerp", orig.subject)]
    if lang == "exchange":  # an internal sender: Outlook shows the display name only
        return [("From", name or addr.split("@")[0]), ("Sent", sent_line(orig, "en")), ("To", orig.to),
                ("Subject", orig.subject)]
    if lang == "mac":  # Outlook for Mac / new Outlook: Date before To, "at" in the date
        frm = f"{name} <{addr}>" if name else addr
        return [("From", frm), ("Date", sent_line(orig, "mac")), ("To", orig.to), ("Subject", orig.subject)]
    frm = f"{name} [mailto:{addr}]" if name else addr
    return [("Von", frm), ("Gesendet", sent_line(orig, "de")), ("An", orig.to), ("Betreff", orig.subject)]


def original_as_html(orig: Original) -> str:
    """The original body as HTML: its own HTML, or its text the way Outlook shows plain text."""
    if orig.html and orig.html.strip():
        return orig.html
    lines = (orig.text or "").split("\n")
    def keep_spaces(ln: str) -> str:  # Outlook keeps runs of spaces as &nbsp;, tabs as tab spans
        ln = re.sub(r" {2,}", lambda m: " " + "&nbsp;" * (len(m.group(0)) - 1), htmlmod.escape(ln))
        return ln.replace("\t", "<span style='mso-tab-count:1'>&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;&nbsp; </span>")
    return "".join(
        f"<p class=MsoPlainText>{keep_spaces(ln) if ln.strip() else '<o:p>&nbsp;</o:p>'}</p>\n"
        for ln in lines)


def original_as_text(orig: Original, cells: str) -> str:
    if orig.html and orig.html.strip():
        return outlook_text(orig.html, cells)
    return (orig.text or "").replace("\r\n", "\n")


def _inner_body(html: str) -> str:
    m = re.search(r"<body[^>]*>(.*)</body>", html, re.IGNORECASE | re.DOTALL)
    if m:
        return m.group(1)
    return re.sub(r"</?html[^>]*>|<head>.*?</head>", "", html, flags=re.IGNORECASE | re.DOTALL)


def _qp(charset: str = "utf-8"):
    cs = email.charset.Charset(charset)
    cs.body_encoding = email.charset.QP
    return cs


def _outer_headers(m, orig: Original, subject: str):
    m["From"] = "Service Desk <servicedesk@example.invalid>"
    m["To"] = "backups@example.invalid"
    m["Subject"] = subject
    sent = orig.sent()
    # Forwarded the next morning from the same zone as the report was sent in.
    m["Date"] = email.utils.format_datetime(sent + timedelta(hours=9, minutes=14)) if sent else \
        "Wed, 19 Mar 2025 09:14:02 +0100"
    m["Message-ID"] = "<fwd-variant@example.invalid>"
    m["X-Mailer"] = "Microsoft Outlook 16.0"
    return m


def build_fwd_html(orig: Original, lang: str) -> bytes:
    block = header_block(orig, lang)
    intro = {"de": "Zur Info", "nl": "Ter info"}.get(lang, "FYI")
    hb = "<br>\n".join(f"<b>{k}:</b> {htmlmod.escape(v)}" for k, v in block)
    html = (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style><!-- p.MsoNormal {margin:0cm;} --></style></head>'
        '<body lang="EN-US" link="#0563C1"><div class="WordSection1">'
        f'<p class="MsoNormal">{intro}<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        f'<p class="MsoNormal">{hb}<o:p></o:p></p></div>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        + _inner_body(original_as_html(orig)) +
        '</div></body></html>'
    )
    text = (intro + "\n\n" + "\n".join(f"{k}: {v}" for k, v in block) + "\n\n"
            + original_as_text(orig, "tabs") + "\n")
    m = MIMEMultipart("alternative")
    m.attach(MIMEText(text, "plain", _qp()))
    m.attach(MIMEText(html, "html", _qp()))
    prefix = "FW: " if lang == "en" else "WG: "
    return _outer_headers(m, orig, prefix + orig.subject).as_bytes()


def wordize(html: str) -> str:
    """The report's HTML as Outlook's Word engine re-renders it when forwarding.

    Cell contents wrapped in ``<p class=MsoNormal><span style=...>``, header cells
    turned into bold data cells, classes prefixed ``x_``.
    """
    import lxml.html
    doc = lxml.html.document_fromstring(html)
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        cls = el.get("class")
        if cls:
            el.set("class", " ".join("x_" + c for c in cls.split()))
    for cell in list(doc.iter("td", "th")):
        p = lxml.html.Element("p")
        p.set("class", "MsoNormal")
        span = lxml.html.Element("span")
        span.set("style", "font-size:9.0pt;font-family:Tahoma")
        p.append(span)
        span.text = cell.text
        cell.text = None
        for child in list(cell):
            span.append(child)
        if cell.tag == "th":
            cell.tag = "td"
            b = lxml.html.Element("b")
            b.text, span.text = span.text, None
            for child in list(span):
                b.append(child)
            span.append(b)
        cell.append(p)
    return lxml.html.tostring(doc, encoding="unicode")


def build_fwd_html_word(orig: Original, lang: str) -> bytes:
    if not (orig.html and orig.html.strip()):
        return build_fwd_html(orig, lang)
    clone = copy.copy(orig)
    clone.html = wordize(orig.html)
    return build_fwd_html(clone, lang)


def build_fwd_gmail(orig: Original) -> bytes:
    name, addr = orig.from_name_addr()
    d = orig.sent()
    date = (f"{_DAYS_EN[d.weekday()][:3]}, {_MONTHS_EN[d.month - 1][:3]} {d.day}, {d.year} at "
            f"{d.hour % 12 or 12}:{d.minute:02d}\u202f{'PM' if d.hour >= 12 else 'AM'}") if d else "Tue, Mar 18, 2025"
    html = (
        '<div dir="ltr"><br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        '---------- Forwarded message ---------<br>'
        f'From: <strong class="gmail_sendername" dir="auto">{htmlmod.escape(name)}</strong> '
        f'<span dir="auto">&lt;<a href="mailto:{addr}">{addr}</a>&gt;</span><br>'
        f'Date: {date}<br>Subject: {htmlmod.escape(orig.subject)}<br>To: &lt;{htmlmod.escape(orig.to)}&gt;<br>'
        '</div><br><br>' + _inner_body(original_as_html(orig)) + '</div></div>'
    )
    text = ("\n\n---------- Forwarded message ---------\n"
            f"From: {name} <{addr}>\nDate: {date}\nSubject: {orig.subject}\nTo: <{orig.to}>\n\n\n"
            + original_as_text(orig, "lines") + "\n")
    m = MIMEMultipart("alternative")
    m.attach(MIMEText(text, "plain", _qp()))
    m.attach(MIMEText(html, "html", _qp()))
    return _outer_headers(m, orig, "Fwd: " + orig.subject).as_bytes()


def build_fwd_thunderbird(orig: Original) -> bytes:
    """Thunderbird's inline forward: a header table (th label, td value) above the report."""
    name, addr = orig.from_name_addr()
    frm = f"{name} <{addr}>" if name else addr
    rows = [("Subject", orig.subject), ("Date", orig.date or "Tue, 18 Mar 2025 03:22:10 +0100"),
            ("From", frm), ("To", orig.to)]
    table = ('<table class="moz-email-headers-table" cellspacing="0" cellpadding="0" border="0"><tbody>'
             + "".join(f'<tr><th valign="BASELINE" nowrap="nowrap" align="RIGHT">{k}: </th>'
                       f'<td>{htmlmod.escape(v)}</td></tr>' for k, v in rows) + '</tbody></table>')
    html = ('<html><head><meta http-equiv="content-type" content="text/html; charset=UTF-8"></head><body>'
            '<p><br></p><div class="moz-forward-container"><br><br>-------- Forwarded Message --------'
            + table + '<br>' + _inner_body(original_as_html(orig)) + '</div></body></html>')
    text = ("\n\n\n-------- Forwarded Message --------\n" + "\n".join(f"{k}: \t{v}" for k, v in rows)
            + "\n\n\n" + original_as_text(orig, "tabs") + "\n")
    m = MIMEMultipart("alternative")
    m.attach(MIMEText(text, "plain", _qp()))
    m.attach(MIMEText(html, "html", _qp()))
    m = _outer_headers(m, orig, "Fwd: " + orig.subject)
    m.replace_header("X-Mailer", "Mozilla Thunderbird")
    return m.as_bytes()


def build_fwd_apple(orig: Original) -> bytes:
    """Apple Mail: 'Begin forwarded message:' and a blockquote with bold labels, zone as CET/CEST."""
    name, addr = orig.from_name_addr()
    d = orig.sent()
    when = (f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year} at {d.hour:02d}:{d.minute:02d}:{d.second:02d} "
            f"{'CEST' if d.utcoffset() == timedelta(hours=2) else 'CET'}") if d else "18 March 2025 at 03:22:10 CET"
    rows = [("From", f"{name} <{addr}>" if name else addr), ("Subject", orig.subject), ("Date", when),
            ("To", orig.to)]
    head = "".join(f'<div style="margin:0px;"><span style="font-family:-apple-system;"><b>{k}: </b></span>'
                   f'<span style="font-family:-apple-system;">{htmlmod.escape(v)}</span></div>' for k, v in rows)
    html = ('<html><body style="word-wrap:break-word;"><div><br><blockquote type="cite">'
            '<div>Begin forwarded message:</div><br>' + head + '<br><div>'
            + _inner_body(original_as_html(orig)) + '</div></blockquote></div><br></body></html>')
    text = ("\n\nBegin forwarded message:\n\n" + "\n".join(f"{k}: {v}" for k, v in rows) + "\n\n"
            + original_as_text(orig, "lines") + "\n")
    m = MIMEMultipart("alternative")
    m.attach(MIMEText(text, "plain", _qp()))
    m.attach(MIMEText(html, "html", _qp()))
    m = _outer_headers(m, orig, "Fwd: " + orig.subject)
    m.replace_header("X-Mailer", "Apple Mail (2.3774)")
    return m.as_bytes()


def build_fwd_twice(orig: Original) -> bytes:
    first = Original(build_fwd_html(orig, "en"))
    return build_fwd_html(first, "nl")


def build_subject_encoded(orig: Original) -> bytes:
    """The subject as UTF-8 base64 encoded words, folded (as Exchange writes it)."""
    msg = email.message_from_bytes(orig.raw, policy=email.policy.compat32)
    del msg["Subject"]
    words = []
    data = orig.subject
    while data:
        chunk, data = data[:20], data[20:]
        words.append("=?utf-8?B?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?=")
    msg["Subject"] = email.header.Header("\r\n ".join(words) if words else "")
    raw = msg.as_bytes()
    return raw


_BANNER_TEXT = ("CAUTION: This email originated from outside of the organization. Do not click links or "
                "open attachments unless you recognize the sender and know the content is safe.")
_FOOTER_TEXT = "This message has been scanned for viruses and dangerous content by MailGuard."


def build_external_banner(orig: Original) -> bytes:
    """A mail gateway's external-sender banner on top and a scan notice below, subject tagged."""
    msg = email.message_from_bytes(orig.raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text" or part.get_filename():
            continue
        content = email.message_from_bytes(part.as_bytes(), policy=email.policy.default).get_content()
        if part.get_content_type() == "text/html":
            banner = ('<table style="border:1px solid #c00"><tr><td style="background:#fee;padding:4px">'
                      f'<b>{_BANNER_TEXT}</b></td></tr></table>')
            footer = f'<p style="font-size:8pt;color:#888">{_FOOTER_TEXT}</p>'
            if re.search(r"<body[^>]*>", content, re.IGNORECASE):
                content = re.sub(r"(<body[^>]*>)", lambda mm: mm.group(1) + banner, content, count=1,
                                 flags=re.IGNORECASE)
            else:
                content = banner + content
            if re.search(r"</body>", content, re.IGNORECASE):
                content = re.sub(r"</body>", lambda mm: footer + "</body>", content, count=1, flags=re.IGNORECASE)
            else:
                content += footer
        elif part.get_content_type() == "text/plain":
            content = _BANNER_TEXT + "\n\n" + content.rstrip("\n") + "\n\n-- \n" + _FOOTER_TEXT + "\n"
        else:
            continue
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "base64"
        part.set_param("charset", "utf-8")
        part.set_payload(base64.encodebytes(content.encode("utf-8")).decode("ascii"))
    del msg["Subject"]
    msg["Subject"] = email.header.Header("[EXTERNAL] " + orig.subject, "utf-8")
    return msg.as_bytes()


def build_reply_quoted(orig: Original) -> bytes:
    """A plain-text reply quoting the report with '> ' (a colleague answering the alert)."""
    name, addr = orig.from_name_addr()
    d = orig.sent()
    when = f"{_DAYS_EN[d.weekday()][:3]}, {d.day} {_MONTHS_EN[d.month - 1][:3]} {d.year} {d.hour:02d}:{d.minute:02d}" \
        if d else "Tue, 18 Mar 2025 03:22"
    quoted = "\n".join(("> " + ln) if ln else ">" for ln in original_as_text(orig, "tabs").split("\n"))
    text = ("I will look into this today.\n\n-----Original Message-----\n"
            f"From: {name} <{addr}>\nSent: {when}\nTo: {orig.to}\nSubject: {orig.subject}\n\n{quoted}\n")
    m = MIMEText(text, "plain", _qp())
    return _outer_headers(m, orig, "RE: " + orig.subject).as_bytes()


NEW_JOB_NAME = "Büro Sicherung Nacht 2"


def renamable(orig: Original, job: str) -> bool:
    """A job name with a space that the mail spells out verbatim (and safely replaceable)."""
    if not job or " " not in job or re.search(r"[&<>\"']", job) or len(job) < 6:
        return False
    return job in orig.subject or job in (orig.text or "") or job in (orig.html or "")


def build_job_renamed(orig: Original, job: str) -> bytes:
    """The same report for a job with another name (non-ASCII, spaces, a digit)."""
    msg = email.message_from_bytes(orig.raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text" or part.get_filename():
            continue
        content = email.message_from_bytes(part.as_bytes(), policy=email.policy.default).get_content()
        if job not in content:
            continue
        content = content.replace(job, NEW_JOB_NAME)
        content = re.sub(r'(<meta[^>]+charset\s*=\s*["\']?)[\w-]+', lambda mm: mm.group(1) + "utf-8", content,
                         flags=re.IGNORECASE)
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "base64"
        part.set_param("charset", "utf-8")
        part.set_payload(base64.encodebytes(content.encode("utf-8")).decode("ascii"))
    del msg["Subject"]
    msg["Subject"] = email.header.Header(orig.subject.replace(job, NEW_JOB_NAME), "utf-8")
    return msg.as_bytes()


def renamed_expected(want: dict, job: str) -> dict:
    out = json.loads(json.dumps(want).replace(json.dumps(job)[1:-1], json.dumps(NEW_JOB_NAME)[1:-1]))
    return out


def flow(text: str, width: int = 72) -> str:
    """RFC 3676 format=flowed: long lines wrapped at spaces, each soft break a trailing space."""
    out = []
    for line in text.split("\n"):
        if line.startswith((" ", "From ", ">")):
            line = " " + line if not line.startswith(">") else line  # space-stuffing
        while len(line) > width and " " in line[1:width]:
            cut = line.rfind(" ", 1, width)
            out.append(line[:cut + 1])
            line = line[cut + 1:]
        out.append(line.rstrip(" "))  # a hard line break never ends in a space
    return "\n".join(out)


def build_fwd_text_flowed(orig: Original) -> bytes:
    """Forwarded as plain text by a client that sends format=flowed (Thunderbird, Apple Mail)."""
    block = header_block(orig, "en")
    text = ("-------- Forwarded Message --------\n" + "\n".join(f"{k}: {v}" for k, v in block) + "\n\n"
            + original_as_text(orig, "tabs") + "\n")
    m = MIMEText(flow(text), "plain", _qp())
    m.set_param("format", "flowed")
    return _outer_headers(m, orig, "Fwd: " + orig.subject).as_bytes()


def build_fwd_text_hardwrap(orig: Original) -> bytes:
    """Forwarded as plain text by a client that hard-wraps at 76 columns (no format=flowed)."""
    block = header_block(orig, "en")
    text = ("-----Original Message-----\n" + "\n".join(f"{k}: {v}" for k, v in block) + "\n\n"
            + original_as_text(orig, "tabs") + "\n")
    wrapped = "\n".join(ln.rstrip(" ") for ln in flow(text, 76).split("\n"))
    m = MIMEText(wrapped, "plain", _qp())
    return _outer_headers(m, orig, "FW: " + orig.subject).as_bytes()


def build_fwd_text(orig: Original, cells: str, lang: str) -> bytes:
    block = header_block(orig, lang)
    sep = "-----Original Message-----" if lang == "en" else "-----Ursprüngliche Nachricht-----"
    text = ("Please check.\n\n" + sep + "\n" + "\n".join(f"{k}: {v}" for k, v in block) + "\n\n"
            + original_as_text(orig, cells) + "\n")
    m = MIMEText(text, "plain", _qp())
    prefix = "FW: " if lang == "en" else "WG: "
    return _outer_headers(m, orig, prefix + orig.subject).as_bytes()


def build_fwd_attachment(orig: Original) -> bytes:
    m = MIMEMultipart("mixed")
    m.attach(MIMEText("See the attached report.\n", "plain", _qp()))
    inner = email.message_from_bytes(orig.raw, policy=email.policy.compat32)
    att = MIMEMessage(inner)
    att.add_header("Content-Disposition", "attachment", filename="report.eml")
    m.attach(att)
    return _outer_headers(m, orig, "FW: " + orig.subject).as_bytes()


def build_fwd_attachment_octet(orig: Original) -> bytes:
    """Forwarded as an .eml file: application/octet-stream, base64 (how some clients attach it)."""
    from email.mime.application import MIMEApplication
    m = MIMEMultipart("mixed")
    m.attach(MIMEText("Report attached.\n", "plain", _qp()))
    att = MIMEApplication(orig.raw, "octet-stream", name="Backup report.eml")
    att.add_header("Content-Disposition", "attachment", filename="Backup report.eml")
    m.attach(att)
    return _outer_headers(m, orig, "FW: " + orig.subject).as_bytes()


def build_prefix(orig: Original, prefix: str) -> bytes:
    msg = email.message_from_bytes(orig.raw, policy=email.policy.default)
    del msg["Subject"]
    msg["Subject"] = prefix + orig.subject
    return msg.as_bytes()


def _reencode_part(part, charset: str, cte: str) -> bool:
    """Re-encode one text leaf in place; False when the text cannot be written in ``charset``."""
    content = email.message_from_bytes(part.as_bytes(), policy=email.policy.default).get_content()
    if part.get_content_type() == "text/html":
        content = re.sub(r'(<meta[^>]+charset\s*=\s*["\']?)[\w-]+', lambda mm: mm.group(1) + charset,
                         content, flags=re.IGNORECASE)
    try:
        data = content.encode(charset)
    except UnicodeEncodeError:
        return False
    if cte == "quoted-printable":
        payload = quopri.encodestring(data.replace(b"\r\n", b"\n")).decode("ascii")
    elif cte == "base64":
        payload = base64.encodebytes(data).decode("ascii")
    else:
        payload = data.decode("ascii", "surrogateescape")  # written back as the raw 8-bit bytes
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = cte
    part.set_param("charset", charset)
    part.set_payload(payload)
    return True


def build_undeclared_cp1252(orig: Original):
    """Windows-1252 bytes with no charset declared at all (scripts and old tools send that)."""
    raw = build_reencoded(orig, "windows-1252", "8bit")
    if raw is None:
        return None
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if not part.is_multipart() and part.get_content_maintype() == "text":
            part.del_param("charset")
    return msg.as_bytes(policy=email.policy.compat32.clone(cte_type="8bit"))


def build_reencoded(orig: Original, charset: str, cte: str):
    msg = email.message_from_bytes(orig.raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_filename():
            continue
        if not _reencode_part(part, charset, cte):
            return None
    if cte == "8bit":
        return msg.as_bytes(policy=email.policy.compat32.clone(cte_type="8bit"))
    return msg.as_bytes()


def build_line_endings(orig: Original, crlf: bool) -> bytes:
    lf = orig.raw.replace(b"\r\n", b"\n")
    return lf.replace(b"\n", b"\r\n") if crlf else lf


def build_no_date(orig: Original) -> bytes:
    raw = orig.raw
    head_end = min(p for p in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n"), len(raw)) if p >= 0)
    head = re.sub(rb"(?im)^Date:[^\n]*\n(?:[ \t][^\n]*\n)*", b"", raw[:head_end + 1])
    return head + raw[head_end + 1:]


def build_single(orig: Original, which: str) -> bytes:
    pol = email.message_from_bytes(orig.raw, policy=email.policy.default)
    body = orig.html if which == "html" else orig.text
    m = MIMEText(body, which, _qp())
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        if pol.get(name) is not None:
            m[name] = str(pol.get(name))
    return m.as_bytes()


PREFIXES = {"prefix_re": "RE: ", "prefix_fw": "FW: ", "prefix_external": "[EXTERNAL] ",
            "prefix_wg_aw": "WG: AW: ", "prefix_nl": "Doorst: Antw: ", "prefix_ext_fwd": "[EXT] Fwd: "}


def _expected_job(orig: Original):
    return getattr(orig, "expected_job", None)


def variants_for(orig: Original) -> dict:
    out = {
        "fwd_html_en": lambda: build_fwd_html(orig, "en"),
        "fwd_html_de": lambda: build_fwd_html(orig, "de"),
        "fwd_text_tabs": lambda: build_fwd_text(orig, "tabs", "en"),
        "fwd_text_lines": lambda: build_fwd_text(orig, "lines", "de"),
        "fwd_text_flowed": lambda: build_fwd_text_flowed(orig),
        "fwd_text_hardwrap": lambda: build_fwd_text_hardwrap(orig),
        "fwd_attachment": lambda: build_fwd_attachment(orig),
        "fwd_html_nl_word": lambda: build_fwd_html_word(orig, "nl"),
        "fwd_html_mac_word": lambda: build_fwd_html_word(orig, "mac"),
        "fwd_gmail": lambda: build_fwd_gmail(orig),
        "fwd_display_name_only": lambda: build_fwd_html(orig, "exchange"),
        "fwd_twice": lambda: build_fwd_twice(orig),
        "fwd_thunderbird": lambda: build_fwd_thunderbird(orig),
        "fwd_apple": lambda: build_fwd_apple(orig),
        "subject_encoded": lambda: build_subject_encoded(orig),
        "external_banner": lambda: build_external_banner(orig),
        "reply_quoted": lambda: build_reply_quoted(orig),
        "enc_qp_cp1252": lambda: build_reencoded(orig, "windows-1252", "quoted-printable"),
        "enc_b64_latin1": lambda: build_reencoded(orig, "iso-8859-1", "base64"),
        "enc_8bit_utf8": lambda: build_reencoded(orig, "utf-8", "8bit"),
        "enc_undeclared_cp1252": lambda: build_undeclared_cp1252(orig),
        "fwd_attachment_octet": lambda: build_fwd_attachment_octet(orig),
        "crlf": lambda: build_line_endings(orig, True),
        "lf": lambda: build_line_endings(orig, False),
        "no_date": lambda: build_no_date(orig),
    }
    job = _expected_job(orig)
    if renamable(orig, job):
        out["job_renamed"] = lambda: build_job_renamed(orig, job)
    for key, prefix in PREFIXES.items():
        out[key] = (lambda p: (lambda: build_prefix(orig, p)))(prefix)
    if orig.both and orig.other_parts == 0 and not orig.nested:
        out["html_only"] = lambda: build_single(orig, "html")
        out["text_only"] = lambda: build_single(orig, "plain")
    return out


# --- what a variant may lose, per sample (with the reason) -------------------------
# key: (sample file name, variant) -> (reason, keys compared besides CORE_KEYS)
LOSSY: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}

# Variants that lose information for every sample, with the reason and the keys still compared
# besides software, job_name and overall_status.
VARIANT_LOSSY: dict[str, tuple[str, tuple[str, ...]]] = {
    "fwd_text_hardwrap": (
        "a client that hard-wraps plain text at 76 columns without format=flowed splits long table rows "
        "and messages over several lines: a row's continuation cannot be told from the next row, so the "
        "objects are not compared; product, type, job, status and times must survive", ("backup_type",)),
}

ALL_VARIANTS = ("fwd_html_en", "fwd_html_de", "fwd_text_tabs", "fwd_text_lines", "fwd_attachment",
                "fwd_html_nl_word", "fwd_html_mac_word", "fwd_gmail", "fwd_twice", "subject_encoded",
                "external_banner", "reply_quoted", "job_renamed", "fwd_display_name_only",
                "enc_undeclared_cp1252", "fwd_attachment_octet", "fwd_thunderbird", "fwd_apple", "fwd_text_flowed",
                "fwd_text_hardwrap",
                "enc_qp_cp1252", "enc_b64_latin1", "enc_8bit_utf8", "crlf", "lf", "no_date",
                *PREFIXES, "html_only", "text_only")


# Re-encodings whose builder returns None when the report holds characters the charset cannot encode.
MAY_NOT_ENCODE = ("enc_qp_cp1252", "enc_b64_latin1", "enc_8bit_utf8", "enc_undeclared_cp1252")


def _applicable(path: Path) -> list[str]:
    """The variants that can be built for the sample at ``path``, in ALL_VARIANTS order."""
    builders = variants_for(_original(path))
    return [v for v in ALL_VARIANTS
            if v in builders and (v not in MAY_NOT_ENCODE or builders[v]() is not None)]


def _cases():
    """Only the applicable (sample, variant) pairs, in sorted sample order: the same ids on every
    xdist worker."""
    return [pytest.param(path, variant, id=f"{path.stem}-{variant}")
            for path in _samples() for variant in _applicable(path)]


def _expected(path: Path) -> dict:
    exp = json.loads(path.with_name(path.name[:-4] + ".expected.json").read_text(encoding="utf-8"))
    want = {k: exp[k] for k in KEYS}
    want["objects"] = [{k: o.get(k) for k in OBJECT_KEYS} for o in want["objects"]]
    return want


def _got(raw: bytes):
    r = parse_raw(raw)
    got = r.to_dict()
    got["objects"] = [{k: o[k] for k in OBJECT_KEYS} for o in got["objects"]]
    return r, {k: got[k] for k in KEYS}


_ORIGINALS: dict = {}


def _original(path: Path) -> Original:
    if path not in _ORIGINALS:
        _ORIGINALS[path] = Original(path.read_bytes())
        _ORIGINALS[path].expected_job = _expected(path)["job_name"]
    return _ORIGINALS[path]


@pytest.mark.parametrize("path,variant", _cases())
def test_variant_parses_as_expected(path: Path, variant: str):
    orig = _original(path)
    raw = variants_for(orig)[variant]()
    assert raw is not None, "collected as applicable, so the variant builds"
    want = _expected(path)
    base = _base_result(path)
    if variant == "job_renamed":
        want = renamed_expected(want, orig.expected_job)
    result, got = _got(raw)
    lossy = LOSSY.get((path.name, variant)) or VARIANT_LOSSY.get(variant)
    if lossy:
        reason, extra = lossy
        keys = CORE_KEYS + tuple(extra)
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, f"{result.parser}: {result.reason}"
    else:
        assert got == want, f"{result.parser}: {result.reason}"
    if variant not in NO_TIME_CHECK and not (orig.nested and variant in INLINE_FORWARDS):
        # The report's own times survive (same instants; a forward cannot move the run).
        assert (result.started_at, result.ended_at) == (base.started_at, base.ended_at), \
            f"times {result.started_at} / {result.ended_at} instead of {base.started_at} / {base.ended_at}"


# Without a Date header a report that writes no zone is read as UTC: the instant moves.
NO_TIME_CHECK = ("no_date",)
# A sample that is itself a forward-as-attachment, forwarded again inline: the inline header
# carries the outer forward's Sent time and zone, not the attached report's; times written
# without a zone are then read in the forwarder's zone.
INLINE_FORWARDS = ("fwd_html_en", "fwd_html_de", "fwd_text_tabs", "fwd_text_lines", "fwd_html_nl_word",
                   "fwd_html_mac_word", "fwd_gmail", "fwd_twice", "fwd_display_name_only", "reply_quoted",
                   "fwd_thunderbird", "fwd_apple", "fwd_text_flowed", "fwd_text_hardwrap")
_BASE: dict = {}


def _base_result(path: Path):
    if path not in _BASE:
        _BASE[path] = parse_raw(path.read_bytes())
    return _BASE[path]
