"""Tables recovered from plain-text renderings of HTML reports (texttables)."""
import lxml.html

from backend.app.parsers.texttables import has_tables, tables_html


def _rows(text):
    doc = lxml.html.document_fromstring(tables_html(text))
    return [[" ".join(c.text_content().split()) for c in tr if c.tag in ("td", "th")] for tr in doc.iter("tr")]


def test_tab_separated_rows():
    text = "Items\n\nVM\tStatus\tMessage\napp01\tSuccessful\t-\n\napp02\tFailed\tDisk full\n\nFooter"
    assert _rows(text) == [["VM", "Status", "Message"], ["app01", "Successful", "-"], ["app02", "Failed", "Disk full"]]


def test_tab_tables_of_other_width_stay_apart():
    text = "Result:\tFailed\n\nName\tStatus\tSize\nC:\tFailed\t61 GB"
    assert _rows(text) == [["Result:", "Failed"], ["Name", "Status", "Size"], ["C:", "Failed", "61 GB"]]


def test_one_cell_per_line_with_caption_and_empty_cell():
    text = ("Details\nVMID\nName\nStatus\nTime\nSize\nFilename\n120\napp\nok\n4m\n64 GiB\nvm/120\n"
            "305\nrelay\nerr\n2s\n0 B\n\n\nTotal running time: 4m 42s")
    assert _rows(text) == [["VMID", "Name", "Status", "Time", "Size", "Filename"],
                           ["120", "app", "ok", "4m", "64 GiB", "vm/120"],
                           ["305", "relay", "err", "2s", "0 B", ""]]


def test_property_value_pairs_one_per_line():
    text = "Job Report\nProperty\nValue\nJob name\nNightly\nStatus\nFailed\n\nItems"
    assert _rows(text) == [["Property", "Value"], ["Job name", "Nightly"], ["Status", "Failed"]]


def test_prose_is_no_table():
    text = "Dear user,\n\nThe backup finished.\nSee you."
    assert not has_tables(text) or _rows(text) == []
