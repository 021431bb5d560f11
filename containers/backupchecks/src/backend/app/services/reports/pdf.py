"""The PDF of a report (reportlab): cover, summary table, a chart, a page per customer,
"Page X of Y" and the generation time in the UI timezone on every page.

Pure rendering: it receives a ``data.ReportData`` and returns bytes; no queries.
"""
from __future__ import annotations

import io
import os
from html.parser import HTMLParser
from typing import Callable, Optional
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as canvas_mod
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ..status import FAILED, MISSED, OVERRIDE_SUCCESS, SUCCESS, WARNING
from .data import CustomerReport, ReportData
from .vocabulary import BUCKETS

# Status colours mean the same as the badges on the pages; a word is always printed beside them.
STATUS_COLOURS = {
    SUCCESS: colors.HexColor("#198754"),
    OVERRIDE_SUCCESS: colors.HexColor("#0d6efd"),
    WARNING: colors.HexColor("#e0a800"),
    FAILED: colors.HexColor("#dc3545"),
    MISSED: colors.HexColor("#842029"),
}
INK = colors.HexColor("#212529")
MUTED = colors.HexColor("#6c757d")
RULE = colors.HexColor("#dee2e6")
HEAD_BG = colors.HexColor("#f1f3f5")
ACCENT = colors.HexColor("#0b3d6e")

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
_fonts: Optional[tuple[str, str]] = None


def _register_fonts() -> tuple[str, str]:
    """DejaVu Sans when the system has it (all European characters), else Helvetica."""
    global _fonts
    if _fonts is not None:
        return _fonts
    for d in _FONT_DIRS:
        regular, bold = os.path.join(d, "DejaVuSans.ttf"), os.path.join(d, "DejaVuSans-Bold.ttf")
        if os.path.isfile(regular) and os.path.isfile(bold):
            try:
                pdfmetrics.registerFont(TTFont("BcSans", regular))
                pdfmetrics.registerFont(TTFont("BcSans-Bold", bold))
                pdfmetrics.registerFontFamily("BcSans", normal="BcSans", bold="BcSans-Bold",
                                              italic="BcSans", boldItalic="BcSans-Bold")
                _fonts = ("BcSans", "BcSans-Bold")
                return _fonts
            except Exception:  # noqa: BLE001 - a broken font file falls back to Helvetica
                break
    _fonts = ("Helvetica", "Helvetica-Bold")
    return _fonts


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _register_fonts()
    base = getSampleStyleSheet()
    s = {
        "body": ParagraphStyle("body", parent=base["Normal"], fontName=regular, fontSize=9.5, leading=13,
                               textColor=INK, alignment=TA_LEFT, spaceAfter=4),
        "small": ParagraphStyle("small", parent=base["Normal"], fontName=regular, fontSize=8, leading=10,
                                textColor=INK),
        "muted": ParagraphStyle("muted", parent=base["Normal"], fontName=regular, fontSize=8.5, leading=11,
                                textColor=MUTED),
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold, fontSize=26, leading=31,
                                textColor=ACCENT, alignment=TA_LEFT, spaceAfter=6),
        "subtitle": ParagraphStyle("subtitle", parent=base["Normal"], fontName=regular, fontSize=14, leading=18,
                                   textColor=INK, spaceAfter=4),
        "h1": ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=17, leading=21,
                             textColor=ACCENT, spaceBefore=0, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12, leading=15,
                             textColor=INK, spaceBefore=10, spaceAfter=4),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontName=bold, fontSize=10.5, leading=13,
                             textColor=INK, spaceBefore=6, spaceAfter=3),
        "cell": ParagraphStyle("cell", parent=base["Normal"], fontName=regular, fontSize=8, leading=10, textColor=INK),
        "kpi": ParagraphStyle("kpi", parent=base["Normal"], fontName=regular, fontSize=10, leading=14, textColor=INK),
    }
    s["bullet"] = ParagraphStyle("bullet", parent=s["body"], leftIndent=12, bulletIndent=2, spaceAfter=1)
    s["quote"] = ParagraphStyle("quote", parent=s["body"], leftIndent=12, textColor=MUTED)
    s["code"] = ParagraphStyle("code", parent=s["small"], fontName="Courier", leftIndent=8)
    return s


# --- Markdown intro (already sanitised HTML) to flowables --------------------------------------------

class _IntroParser(HTMLParser):
    """Block tags become paragraphs; inline tags become reportlab's mini-markup."""

    BLOCKS = {"p": "body", "h1": "h2", "h2": "h2", "h3": "h3", "h4": "h3", "h5": "h3", "h6": "h3", "li": "bullet",
              "pre": "code", "blockquote": "quote", "tr": "body"}  # a table row: one line, cells apart
    INLINE = {"strong": ("<b>", "</b>"), "b": ("<b>", "</b>"), "em": ("<i>", "</i>"), "i": ("<i>", "</i>"),
              "code": ('<font face="Courier">', "</font>")}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str, str]] = []  # (style, markup, bullet)
        self.buf: list[str] = []
        self.style = "body"
        self.lists: list[list] = []  # [kind, counter]
        self.bullet = ""

    def _flush(self):
        text = "".join(self.buf).strip()
        if text:
            self.blocks.append((self.style, text, self.bullet))
        self.buf, self.bullet = [], ""

    def handle_starttag(self, tag, attrs):
        if tag in ("ul", "ol"):
            self._flush()
            self.lists.append([tag, 0])
        elif tag in self.BLOCKS:
            self._flush()
            self.style = self.BLOCKS[tag]
            if tag == "li" and self.lists:
                self.lists[-1][1] += 1
                self.bullet = "•" if self.lists[-1][0] == "ul" else f"{self.lists[-1][1]}."
        elif tag in self.INLINE:
            self.buf.append(self.INLINE[tag][0])
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.buf.append(f'<a href="{escape(href, {chr(34): "&quot;"})}" color="#0b5ed7">')
            self._link_open = True
        elif tag == "br":
            self.buf.append("<br/>")
        elif tag in ("td", "th") and "".join(self.buf).strip():
            self.buf.append(" · ")
        elif tag == "hr":
            self._flush()

    def handle_endtag(self, tag):
        if tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
            self.style = "body"
        elif tag in self.BLOCKS:
            self._flush()
            self.style = "bullet" if self.lists else "body"
        elif tag in self.INLINE:
            self.buf.append(self.INLINE[tag][1])
        elif tag == "a" and getattr(self, "_link_open", False):
            self.buf.append("</a>")
            self._link_open = False

    def handle_data(self, data):
        self.buf.append(escape(data).replace("\n", "<br/>" if self.style == "code" else " "))

    def close(self):
        super().close()
        self._flush()


def intro_flowables(html: str, styles: dict) -> list:
    if not html:
        return []
    p = _IntroParser()
    p.feed(html)
    p.close()
    out = []
    for style, markup, bullet in p.blocks:
        try:
            out.append(Paragraph(markup, styles[style], bulletText=bullet or None))
        except ValueError:  # markup reportlab cannot read: print the text plainly
            out.append(Paragraph(escape(markup), styles[style]))
    return out


# --- Pieces ---------------------------------------------------------------------------------------------

def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _status_table(header: list[str], rows: list[list], col_widths: list[float], *, status_cols: dict[int, str] = None,
                  total_row: bool = False, numeric_from: int = 1) -> Table:
    regular, bold = _register_fonts()
    t = Table([header] + rows, colWidths=col_widths, repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, 0), bold, 7.5),
        ("FONT", (0, 1), (-1, -1), regular, 8),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    # Column headers named after a status carry its colour; the word is the header itself.
    for col, status in (status_cols or {}).items():
        style.append(("TEXTCOLOR", (col, 0), (col, 0), STATUS_COLOURS[status]))
    if total_row:
        style += [("FONT", (0, -1), (-1, -1), bold, 8), ("LINEABOVE", (0, -1), (-1, -1), 0.8, INK)]
    t.setStyle(TableStyle(style))
    return t


COUNT_HEADERS = ["Success", "Override", "Warning", "Failed", "Missed"]
COUNT_STATUS_COLS = dict(zip(range(5), BUCKETS))


def _counts(counter) -> list:
    return [counter[b] or "·" for b in BUCKETS]


class DailyChart(Flowable):
    """Stacked bars: runs per day by status, with a legend in words. Drawn straight onto the canvas
    (reportlab's chart widgets cost ~0.1 s each, which adds up to seconds for 100 customers)."""

    STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000)

    def __init__(self, daily: dict, width: float, height: float = 42 * mm, title: str = ""):
        super().__init__()
        self.days = sorted(daily)
        self.daily = daily
        self.width, self.height, self.title = width, height, title

    def wrap(self, avail_width, avail_height):
        return self.width, self.height

    def draw(self):
        regular, bold = _register_fonts()
        cv = self.canv
        w, h = self.width, self.height
        top_pad = (14 if self.title else 4) + 16   # title + legend
        left, bottom = 24, 14
        plot_w, plot_h = w - left - 4, h - bottom - top_pad
        totals = [sum(self.daily[d][b] for b in BUCKETS) for d in self.days]
        peak = max(totals or [0]) or 1
        step = next((s for s in self.STEPS if peak / s <= 5), self.STEPS[-1])
        vmax = step * (-(-peak // step))
        cv.saveState()
        if self.title:
            cv.setFont(bold, 8.5)
            cv.setFillColor(INK)
            cv.drawString(0, h - 10, self.title)
        # Legend: swatch + word.
        x, y = left, h - top_pad + 8
        cv.setFont(regular, 7)
        for b in BUCKETS:
            cv.setFillColor(STATUS_COLOURS[b])
            cv.rect(x, y, 7, 7, stroke=0, fill=1)
            cv.setFillColor(INK)
            cv.drawString(x + 10, y + 0.5, b)
            x += 16 + pdfmetrics.stringWidth(b, regular, 7)
        # Grid and value labels.
        cv.setLineWidth(0.3)
        cv.setStrokeColor(RULE)
        cv.setFont(regular, 6.5)
        v = 0
        while v <= vmax:
            gy = bottom + plot_h * v / vmax
            cv.line(left, gy, left + plot_w, gy)
            cv.setFillColor(MUTED)
            cv.drawRightString(left - 3, gy - 2, str(v))
            v += step
        n = max(1, len(self.days))
        slot = plot_w / n
        bar = slot * (0.8 if n > 20 else 0.6)
        every = 1 if n <= 16 else (2 if n <= 35 else max(1, n // 15))
        for i, d in enumerate(self.days):
            bx = left + i * slot + (slot - bar) / 2
            by = bottom
            for b in BUCKETS:
                count = self.daily[d][b]
                if count:
                    bh = plot_h * count / vmax
                    cv.setFillColor(STATUS_COLOURS[b])
                    cv.rect(bx, by, bar, bh, stroke=0, fill=1)
                    by += bh
            if i % every == 0:
                cv.setFillColor(MUTED)
                cv.drawCentredString(bx + bar / 2, bottom - 9, str(d.day))
        cv.restoreState()


def daily_chart(daily: dict, width: float, height: float = 52 * mm, title: str = "") -> DailyChart:
    return DailyChart(daily, width, height, title)


class _ProgressMark(Flowable):
    """Invisible; reports progress when the page it sits on is laid out (during build, the slow part)."""

    def __init__(self, callback: Callable[[int], None], done: int):
        super().__init__()
        self.callback, self.done = callback, done

    def wrap(self, avail_width, avail_height):
        return 0, 0

    def draw(self):
        self.callback(self.done)


# --- Page furniture: header line, footer with "Page X of Y" ---------------------------------------------

def _numbered_canvas(data: ReportData):
    regular, _ = _register_fonts()
    left = (data.company + " · " if data.company else "") + data.name + " · " + data.period.label
    right_tpl = "Page {} of {}"
    generated = f"Generated {data.generated_local}"

    class NumberedCanvas(canvas_mod.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._saved = []

        def showPage(self):
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self._furniture(total)
                super().showPage()
            super().save()

        def _furniture(self, total: int):
            w, h = A4
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(18 * mm, 14 * mm, w - 18 * mm, 14 * mm)
            self.setFont(regular, 7.5)
            self.setFillColor(MUTED)
            self.drawString(18 * mm, 9.5 * mm, left[:110])
            self.drawRightString(w - 18 * mm, 9.5 * mm, right_tpl.format(self._pageNumber, total))
            self.drawCentredString(w / 2, h - 10 * mm, generated) if self._pageNumber > 1 else None
            self.restoreState()

    return NumberedCanvas


# --- The document: cover, summary, a page per customer -------------------------------------------------

DAY_RULE_TEXT = {"worst": "worst run of the day", "last": "last run of the day", "best": "best run of the day"}


def render_pdf(data: ReportData, progress: Optional[Callable[[int], None]] = None) -> bytes:
    """The report as a PDF; ``progress(n)`` is called when customer ``n``'s page is laid out."""
    st = _styles()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=20 * mm, title=data.name, author=data.company or "Backupchecks",
                            subject=f"Backup status {data.period.label}", creator="Backupchecks")
    flow = _cover(data, st, doc.width)
    if data.content["summary"]:
        flow += _summary(data, st, doc.width)
    for index, cu in enumerate(data.customers, start=1):
        flow += _customer_page(cu, data, st, doc.width)
        if progress:
            flow.append(_ProgressMark(progress, index))
    if not data.customers:
        flow += [PageBreak(), Paragraph("No customers match this report.", st["h2"]),
                 Paragraph("Choose customers under Edit, or activate the customers this report should cover.", st["body"])]
    doc.build(flow, canvasmaker=_numbered_canvas(data))
    return buf.getvalue()


def _cover(data: ReportData, st: dict, width: float) -> list:
    """Title, the facts of the report (period, customers, when, day rule), the key figures, the
    intro, the chart of all customers and how the success rate is counted."""
    flow: list = [Spacer(1, 22 * mm)]
    if data.company:
        flow.append(Paragraph(escape(data.company), st["subtitle"]))
    flow.append(Paragraph(escape(data.name), st["title"]))
    flow.append(Paragraph(f"Backup status report · {escape(data.period.label)}", st["subtitle"]))
    flow += [Spacer(1, 6 * mm), _cover_facts(data, st, width), Spacer(1, 6 * mm)]
    kpi = (f"<b>{data.job_count}</b> jobs · <b>{data.total}</b> runs · success rate "
           f"<b>{_pct(data.success_rate)}</b> · <font color='#dc3545'><b>{data.counts[FAILED]}</b> failed</font> · "
           f"<font color='#842029'><b>{data.counts[MISSED]}</b> missed</font> · "
           f"<b>{data.counts[WARNING]}</b> warnings")
    flow.append(Paragraph(kpi, st["kpi"]))
    flow.append(Spacer(1, 5 * mm))
    flow += intro_flowables(data.intro_html, st)
    if data.content["chart"] and data.daily:
        flow += [Spacer(1, 4 * mm), daily_chart(data.daily, width, 60 * mm, "Runs per day by status, all customers")]
    flow.append(Spacer(1, 4 * mm))
    flow.append(Paragraph("Success rate: runs that ended in Success or Success (override) out of all runs, "
                          "missed runs included. Statuses are effective statuses, after overrides, as on the "
                          "Run Checks and Daily Jobs pages.", st["muted"]))
    return flow


def _cover_facts(data: ReportData, st: dict, width: float) -> Table:
    regular, bold = _register_fonts()
    first, last = data.period.start, data.period.end
    scope = (f"All customers ({len(data.customers)})" if data.all_customers
             else ", ".join(escape(cu.name) for cu in data.customers[:6])
             + (f" and {len(data.customers) - 6} more" if len(data.customers) > 6 else ""))
    facts = [
        ["Period", f"{data.period.label} ({(last - first).days + 1} day{'s' if last != first else ''}, "
                   f"{data.zone.key})"],
        ["Customers", Paragraph(scope, st["cell"])],
        ["Generated", data.generated_local],
        ["Day status rule", DAY_RULE_TEXT.get(data.day_rule, data.day_rule)],
    ]
    table = Table(facts, colWidths=[32 * mm, width - 32 * mm])
    table.setStyle(TableStyle([("FONT", (0, 0), (0, -1), bold, 9), ("FONT", (1, 0), (1, -1), regular, 9),
                               ("TEXTCOLOR", (0, 0), (0, -1), MUTED), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    return table


def _summary(data: ReportData, st: dict, width: float) -> list:
    """One line per customer and a total line."""
    rows = [[Paragraph(escape(cu.name), st["cell"]), len(cu.jobs), cu.total, *_counts(cu.counts), _pct(cu.success_rate)]
            for cu in data.customers]
    rows.append(["All customers", data.job_count, data.total, *_counts(data.counts), _pct(data.success_rate)])
    widths = [width - 12 * mm - 13 * mm - 5 * 16 * mm - 21 * mm] + [12 * mm, 13 * mm] + [16 * mm] * 5 + [21 * mm]
    return [PageBreak(), Paragraph("Summary per customer", st["h1"]),
            _status_table(["Customer", "Jobs", "Runs"] + COUNT_HEADERS + ["Success rate"], rows, widths,
                          status_cols={i + 3: b for i, b in enumerate(BUCKETS)}, total_row=True)]


def _customer_page(cu: CustomerReport, data: ReportData, st: dict, width: float) -> list:
    """A customer's page: key figures, chart, and the sections the report contains."""
    c = data.content
    flow: list = [PageBreak(), Paragraph(escape(cu.name), st["h1"]), Paragraph(
        f"<b>{len(cu.jobs)}</b> jobs · <b>{cu.total}</b> runs · success rate <b>{_pct(cu.success_rate)}</b> · "
        f"days OK <b>{cu.days_ok}</b> of {cu.days_total} · "
        f"<font color='#dc3545'>{cu.counts[FAILED]} failed</font> · "
        f"<font color='#842029'>{cu.counts[MISSED]} missed</font> · {cu.counts[WARNING]} warnings",
        st["kpi"])]
    if c["chart"]:
        flow += [Spacer(1, 2 * mm), daily_chart(cu.daily, width, 42 * mm)]
    if c["success_rate"]:
        flow += _section("Jobs", _jobs_table(cu, st, width), "No jobs for this customer.", st)
    if c["failures"]:
        flow += _section("Failures and missed runs", _failures_table(cu, data, st, width),
                         "None in this period.", st, keep=30 * mm)
    if c["overrides"]:
        flow += _section("Overrides applied", _overrides_table(cu, st, width),
                         "No overrides changed a status in this period.", st, keep=25 * mm)
    if c["tickets"]:
        flow += _section("Tickets open in the period", _tickets_table(cu, data, st, width),
                         "No tickets were open for this customer in this period.", st, keep=25 * mm)
    return flow


def _section(title: str, body: list, empty: str, st: dict, keep: Optional[float] = None) -> list:
    """A heading and its table, or a line saying there is nothing; ``keep``: the space the heading
    needs below it on the page, else it starts on the next one."""
    head = [CondPageBreak(keep)] if keep else []
    return head + [Paragraph(title, st["h2"])] + (body or [Paragraph(empty, st["muted"])])


def _jobs_table(cu: CustomerReport, st: dict, width: float) -> list:
    rows = []
    for j in cu.jobs:
        name = escape(j.name) + (f"<br/><font color='#6c757d' size='7'>{escape(j.software)}"
                                 f"{' · archived' if j.archived else ''}</font>" if j.software or j.archived else "")
        rows.append([Paragraph(name, st["cell"]), j.total or "no runs", *_counts(j.counts),
                     f"{j.days_ok}/{j.days_total}" if j.days_total else "—", _pct(j.success_rate)])
    if not rows:
        return []
    widths = [width - 12 * mm - 5 * 16 * mm - 16 * mm - 21 * mm] + [12 * mm] + [16 * mm] * 5 + [16 * mm, 21 * mm]
    return [_status_table(["Job", "Runs"] + COUNT_HEADERS + ["Days OK", "Success rate"], rows, widths,
                          status_cols={i + 2: b for i, b in enumerate(BUCKETS)})]


def _failures_table(cu: CustomerReport, data: ReportData, st: dict, width: float) -> list:
    """Failed and missed runs with their status in its colour (at most ``FAILURES_PER_CUSTOMER``)."""
    if not cu.failures:
        return []
    _, bold = _register_fonts()
    rows, colour_cells = [], []
    for i, f in enumerate(cu.failures, start=1):
        job = f.job_name if len(f.job_name) <= 28 else f.job_name[:27] + "…"
        message = Paragraph(escape(f.message), st["cell"]) if f.message else "no message"
        rows.append([_local(f.started_at, data, "%Y-%m-%d %H:%M"), job, f.shown, message])
        colour_cells.append(("TEXTCOLOR", (2, i), (2, i), STATUS_COLOURS[f.shown]))
        colour_cells.append(("FONT", (2, i), (2, i), bold, 8))
    table = _status_table(["Started", "Job", "Status", "Message"], rows,
                          [28 * mm, 42 * mm, 14 * mm, width - 84 * mm], numeric_from=99)
    table.setStyle(TableStyle(colour_cells))
    out = [table]
    if cu.failures_total > len(cu.failures):
        out.append(Paragraph(f"… and {cu.failures_total - len(cu.failures)} more; the CSV lists every run.",
                             st["muted"]))
    return out


def _overrides_table(cu: CustomerReport, st: dict, width: float) -> list:
    rows = [[Paragraph(escape(o.description), st["cell"]), Paragraph(escape(o.comment) or "—", st["cell"]),
             o.runs, o.objects] for o in cu.overrides]
    return [_status_table(["Override", "Reason", "Runs", "Objects"], rows,
                          [70 * mm, width - 100 * mm, 15 * mm, 15 * mm], numeric_from=2)] if rows else []


def _tickets_table(cu: CustomerReport, data: ReportData, st: dict, width: float) -> list:
    rows = [[Paragraph(escape(t.code), st["cell"]), Paragraph(escape(t.description) or "—", st["cell"]),
             _local(t.active_from, data, "%Y-%m-%d"),
             _local(t.resolved_at, data, "%Y-%m-%d") if t.resolved_at else "open"] for t in cu.tickets]
    return [_status_table(["Ticket", "Description", "Since", "Resolved"], rows,
                          [30 * mm, width - 76 * mm, 23 * mm, 23 * mm], numeric_from=99)] if rows else []


def _local(moment, data: ReportData, fmt: str) -> str:
    return moment.astimezone(data.zone).strftime(fmt)
