"""Tables recovered from a plain-text rendering of an HTML report.

When a report is forwarded as plain text (Outlook "forward as text", a mail
gateway that drops the HTML part), its tables arrive as text in one of two
shapes:

* one row per line, the cells separated by tabs;
* every cell on a line of its own (an empty cell an empty line), the column
  headers first, one per line.

:func:`tables_html` turns both back into HTML ``<table>`` markup, so the
parsers' HTML table readers work on such a message as on the original. Lines
that are not table rows become paragraphs. Pure and cheap: one pass over the
lines.
"""
from __future__ import annotations

import html as _html
import re

# Words column headers of backup reports are made of (EN, DE, NL). A line made only
# of these (and short) is a column header in the one-cell-per-line shape.
_HEADER_WORDS = frozenset("""
name names status state result results ergebnis resultaat size sizes time times start started end ended
finished duration details detail message messages error errors warning warnings notes note remarks
vm vms vmid id data source sources selected processed transferred read type object objects item items
job jobs filename file files volume volumes disk disks host hosts server machine machines computer
guest guests progress total speed rate dedupe compression backup bytes count last session sessions
date description target destination repository bottleneck info information
virtual physical kind task tasks entity entities client clients policy tenant property value
virtuelle maschine virtuele hinweise datenquelle datenquellen ausgewählte verarbeitet gegevensbron gegevensbronnen geselecteerde opmerkingen eigenschaft wert eigenschap waarde ergebnisse
quelle größe groesse zeit dauer meldung fehler warnungen objekt objekte typ datei dateien startzeit
endzeit beginn ende naam grootte tijd duur bericht fout fouten waarschuwingen gegevens bron
begintijd eindtijd starttijd verwerkt geselecteerd übertragen gelesen verarbeitet ausgewählt
of and und en von van in at the der die das de het
""".split())
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_NUM_RE = re.compile(r"\d")


def _header_like(line: str) -> bool:
    s = line.strip()
    if not s or len(s) > 30 or _NUM_RE.search(s) or s.endswith(":"):
        return False
    words = _WORD_RE.findall(s.lower())
    return bool(words) and all(w in _HEADER_WORDS for w in words) and any(
        w not in ("of", "and", "und", "en", "von", "van", "in", "at", "the", "der", "die", "das", "de", "het")
        for w in words)


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{_html.escape(c.strip())}</{tag}>" for c in cells) + "</tr>"


def has_tables(text: str) -> bool:
    """Cheap test: could the text hold a table in one of the two shapes?"""
    return "\t" in text or _header_run_possible(text)


def _header_run_possible(text: str) -> bool:
    # at least three short lines in a row: the start of a one-cell-per-line header
    return re.search(r"(?m)^[^\W\d][^\n\d:]{0,29}\n[^\W\d][^\n\d:]{0,29}\n[^\W\d][^\n\d:]{0,29}$", text) is not None


_PAIR_HEADERS = frozenset(("property", "value", "eigenschaft", "wert", "eigenschap", "waarde", "field",
                           "setting", "parameter", "item"))


_LABEL_VALUE_RE = re.compile(r"^\s*[^\W\d][^:]{0,40}:\s+\S")


def _shape(cell: str) -> str:
    c = cell.strip()
    if not c:
        return "e"
    if c.isdigit():
        return "n"
    return "d" if _NUM_RE.search(c) else "a"


def _cells_table(lines: list[str], i: int, j: int):
    """(header start, width, end) of a one-cell-per-line table whose headers lie in lines[i:j].

    A caption may precede the headers and the first data cell may look like a header,
    so every (start, end) inside the run is tried. A candidate counts when its rows
    end cleanly (at a blank line or the end of the text) and no row starts with an
    empty cell (the name column is never empty); among those the one whose columns
    are most consistent (numbers under numbers, words under words) wins, with a
    bonus for taking the whole run as headers; the widest on a tie.
    """
    n = len(lines)
    best = None
    best_score = -1.0
    for start in range(i, j - 1):
        for end in range(j, start + 1, -1):
            width = end - start
            if width == 2 and not all(lines[x].strip().lower() in _PAIR_HEADERS for x in range(start, end)):
                continue
            k = end
            rows = []
            while k + width <= n:
                group = lines[k:k + width]
                if not group[0].strip() or any("\t" in c for c in group):
                    break
                if _header_like(group[0]) and not any(c.strip() for c in group[1:]):
                    break
                if _LABEL_VALUE_RE.match(group[0]):
                    break  # "Total running time: 4m 42s": the text after the table
                rows.append(group)
                k += width
            # Clean end: a blank line (or the end) after the rows; or the last row's last cell
            # is empty, which took the blank line that ended the table.
            if not rows or not (k >= n or not lines[k].strip() or not lines[k - 1].strip()):
                continue
            if len(rows) == 1:
                score = 0.75
            else:
                agree = 0
                for col in range(width):
                    shapes = [_shape(r[col]) for r in rows]
                    agree += max(shapes.count(x) for x in set(shapes))
                score = agree / (width * len(rows))
            if end == j:
                score += 0.2  # by default every header-like line of the run is a header
            if k < n and lines[k].strip():
                score -= 0.1  # ended only by an empty last cell: weaker evidence
            if width == 2:
                score += 0.3  # "Property / Value": a key-value table, whatever the keys look like
            if score > best_score:
                best, best_score = (start, width, k), score
    return best


def tables_html(text: str) -> str:
    """HTML with the text's tables as ``<table>`` elements and its other lines as paragraphs."""
    lines = text.split("\n")
    n = len(lines)
    out: list[str] = ["<html><body>"]
    i = 0
    while i < n:
        line = lines[i]
        # Shape 1: tab-separated rows (blank lines between rows allowed).
        if "\t" in line:
            rows = []
            while i < n:
                if "\t" in lines[i]:
                    rows.append(lines[i].split("\t"))
                    i += 1
                elif (not lines[i].strip() and i + 1 < n and "\t" in lines[i + 1]
                      and lines[i + 1].count("\t") == lines[i - 1].count("\t")):
                    i += 1  # a blank line between rows of the same width: same table
                else:
                    break
            width = max(len(r) for r in rows)
            out.append("<table>" + "".join(_row(r + [""] * (width - len(r))) for r in rows) + "</table>")
            continue
        # Shape 2: a run of column headers, one per line, then the cells one per line.
        if _header_like(line):
            j = i
            while j < n and _header_like(lines[j]):
                j += 1
            found = _cells_table(lines, i, j)
            if found:
                start, width, k = found
                for extra in lines[i:start]:  # a caption above the header ("Data sources")
                    out.append("<p>" + _html.escape(extra) + "</p>")
                rows = [lines[start + r * width:start + (r + 1) * width] for r in range((k - start) // width)]
                out.append("<table>" + _row(rows[0], "th") + "".join(_row(r) for r in rows[1:])
                           + "</table>")
                i = k
                continue
        out.append("<p>" + _html.escape(line) + "</p>" if line.strip() else "")
        i += 1
    out.append("</body></html>")
    return "".join(out)


def label_lines(text: str, labels) -> dict:
    """{label: value} where a line is exactly one of ``labels`` (lower case, an optional
    colon) and the next line holds its value: a two-cell row rendered one cell per line."""
    wanted = set(labels)
    out: dict = {}
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        key = lines[i].strip().rstrip(":").strip().lower()
        if key in wanted and key not in out:
            value = lines[i + 1].strip()
            if value and value.lower().rstrip(":") not in wanted:
                out[key] = value
    return out
