"""Feedback: items, replies, votes, safe Markdown, image attachments checked by content, delete rules."""
from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from sqlalchemy import func, select

from backend.app.extensions import db
from backend.app.main import routes_feedback
from backend.app.models import AuditLog, FeedbackAttachment, FeedbackItem, FeedbackReply, FeedbackVote
from backend.app.services import feedback as fb
from backend.app.services import markdown_render

from .conftest import active_html, post_form
from .helpers import count_queries


# --- Image builders (tiny, valid by construction) ----------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width=2, height=2) -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def jpeg(width=3, height=2) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + app0 + sof + sos + b"\x12\x34\x56" + b"\xff\xd9"


def gif() -> bytes:
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
            b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def webp(width=4, height=3) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + b"\x00\x00\x00"
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _riff(chunk: bytes, body: bytes) -> bytes:
    data = chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(data)) + b"WEBP" + data


def webp_lossy(width, height) -> bytes:
    """A VP8 (lossy) key frame header: frame tag, start code, 14-bit width and height."""
    return _riff(b"VP8 ", b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8)


def webp_extended(width, height) -> bytes:
    """A VP8X (extended) header: flags, reserved, 24-bit canvas width - 1 and height - 1."""
    body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _riff(b"VP8X", body)


def gif_of(width, height, frame=None) -> bytes:
    """A GIF with a logical screen of width x height and one frame (left, top, w, h), by default the screen."""
    left, top, w, h = frame or (0, 0, width, height)
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\xff\xff\xff\x00\x00\x00"
            + b"," + struct.pack("<HHHHB", left, top, w, h, 0) + b"\x02\x02D\x01\x00" + b";")


def jpeg_progressive(width, height) -> bytes:
    return jpeg(width, height).replace(b"\xff\xc0", b"\xff\xc2", 1)


def png_of_zeros(width, height, colour_type=0) -> bytes:
    """A real, complete PNG of width x height black pixels (8-bit grey by default): the rows are all
    zeros, so zlib squeezes a 10,000 x 10,000 image (100 MB of pixels) into about 100 KB."""
    channels = {0: 1, 2: 3}[colour_type]
    row = b"\x00" * (1 + width * channels)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run in DOS mode."
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def files(*pairs):
    return [(io.BytesIO(data), name) for name, data in pairs]


def create(client, title="Export button does nothing", description="", kind="bug", attachments=(), **kw):
    data = {"kind": kind, "title": title, "description": description}
    if attachments:
        data["attachments"] = files(*attachments)
    return post_form(client, "/feedback/new", data, content_type="multipart/form-data", **kw)


def counts():
    return tuple(db.session.execute(select(func.count()).select_from(m)).scalar_one()
                 for m in (FeedbackItem, FeedbackAttachment, FeedbackReply))


def events():
    return [e for (e,) in db.session.execute(select(AuditLog.event).order_by(AuditLog.id)).all()]


def make_item(user, title="Item", deleted=False, **kw):
    item = FeedbackItem(kind=kw.pop("kind", "bug"), title=title, description=kw.pop("description", ""),
                        created_by_id=user.id, **kw)
    if deleted:
        item.deleted_at = fb.utcnow()
        item.deleted_by_id = user.id
    db.session.add(item)
    db.session.commit()
    return item


# --- Creating, with attachments checked by content --------------------------------------------

@pytest.mark.parametrize("name,data,ctype", [
    ("screen.png", png(), "image/png"),
    ("photo.jpg", jpeg(), "image/jpeg"),
    ("spinner.gif", gif(), "image/gif"),
    ("shot.webp", webp(), "image/webp"),
    ("no-extension", png(), "image/png"),        # the name does not matter ...
    ("really-a-png.jpg", png(), "image/png"),    # ... the content does
])
def test_valid_images_are_accepted_and_served_with_safe_headers(as_user, name, data, ctype):
    c = as_user("viewer")
    r = create(c, attachments=[(name, data)])
    assert r.status_code == 302, r.get_data(as_text=True)
    att = db.session.execute(select(FeedbackAttachment)).scalar_one()
    assert att.content_type == ctype and att.size == len(data) and bytes(att.data) == data
    r = c.get(f"/feedback/attachments/{att.id}")
    assert r.status_code == 200 and r.data == data
    assert r.headers["Content-Type"] == ctype
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"].startswith("inline")
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    # The detail page shows it as an image.
    page = c.get(r.request.path.replace(f"attachments/{att.id}", str(att.item_id))).get_data(as_text=True)
    assert f'src="/feedback/attachments/{att.id}"' in page


def test_several_images_on_one_item(as_user):
    c = as_user("operator")
    r = create(c, attachments=[("a.png", png()), ("b.jpg", jpeg()), ("c.gif", gif()), ("d.webp", webp())])
    assert r.status_code == 302
    assert counts() == (1, 4, 0)
    assert "feedback.create" in events()


@pytest.mark.parametrize("name,data,says", [
    ("setup.png", EXE, '"setup.png" was refused: its content is a Windows program, not an image'),
    ("logo.png", SVG, '"logo.png" was refused: its content is an SVG drawing'),
    ("photo.jpg", HTML, '"photo.jpg" was refused: its content is an HTML page, not an image'),
    ("cut.png", png(40, 40)[:-30], '"cut.png" was refused: the PNG data ends early (the file is truncated)'),
    ("cut.jpg", jpeg()[:-2], '"cut.jpg" was refused: the JPEG data ends early'),
    ("cut.gif", gif()[:20], '"cut.gif" was refused: the GIF'),
    ("cut.webp", webp()[:24], '"cut.webp" was refused: the WebP'),
    ("header-only.png", png()[:8], '"header-only.png" was refused'),
    ("empty.png", b"", '"empty.png" is empty'),
])
def test_bad_files_are_refused_by_content_and_nothing_is_saved(as_user, name, data, says):
    c = as_user("operator")
    r = create(c, title="Keep this title", description="and *this* text",
               attachments=[("fine.png", png()), (name, data)])
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert says.replace('"', "&#34;") in html or says in html, html[html.find("feedback-error"):][:400]
    assert "Nothing was saved" in html
    assert counts() == (0, 0, 0)  # not even the item: nothing half-created
    # What was typed is kept.
    assert 'value="Keep this title"' in html and "and *this* text" in html
    assert "Traceback" not in html


def test_an_oversized_image_is_refused_naming_the_file(as_user):
    big = png()
    big = big[:-12] + _chunk(b"tEXt", b"x" * (fb.MAX_FILE_BYTES + 10)) + big[-12:]
    r = create(as_user("viewer"), attachments=[("huge.png", big)])
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "huge.png" in html and "larger than 5 MB" in html
    assert counts() == (0, 0, 0)


def test_too_many_files_are_refused(as_user):
    r = create(as_user("reporter"), attachments=[(f"s{i}.png", png()) for i in range(fb.MAX_FILES + 1)])
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert f"{fb.MAX_FILES + 1} files were chosen; at most {fb.MAX_FILES}" in html
    assert counts() == (0, 0, 0)


def test_implausible_dimensions_are_refused():
    with pytest.raises(ValueError, match="not plausible"):
        fb.sniff_image(png(0, 10))
    with pytest.raises(fb.ImageTooLarge, match="16,000 x 16,000 pixels"):
        fb.sniff_image(webp(16000, 16000))


# --- Image bombs: a small file that is a huge image ---------------------------------------------

@pytest.fixture(scope="module")
def png_bomb():
    """A real 10,000 x 10,000 PNG (100 megapixels, about 100 KB): zlib-compressed zeros."""
    return png_of_zeros(10_000, 10_000)


def test_a_real_10000_by_10000_png_is_a_valid_png_refused_for_its_size(png_bomb):
    assert len(png_bomb) < 200_000
    # It is a real image: its one IDAT inflates to the full 100 MB of rows (checked in pieces).
    pos = png_bomb.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", png_bomb[pos - 8:pos - 4])
    d, size = zlib.decompressobj(), 0
    for i in range(0, length, 4096):
        size += len(d.decompress(png_bomb[pos + i:pos + min(i + 4096, length)], 1 << 20))
        while d.unconsumed_tail:
            size += len(d.decompress(d.unconsumed_tail, 1 << 20))
    assert size == 10_000 * (1 + 10_000)
    with pytest.raises(fb.ImageTooLarge) as exc:
        fb.sniff_image(png_bomb)
    assert str(exc.value) == ("it is 10,000 x 10,000 pixels; images may be at most 10,000 pixels on a side "
                              "and 40 megapixels in all")


@pytest.mark.parametrize("reply", [False, True])
def test_the_png_bomb_posted_through_the_upload_form_is_refused_and_nothing_is_stored(as_user, personas, png_bomb,
                                                                                      reply):
    c = as_user("viewer")
    if reply:
        item = make_item(personas["admin"], title="Screenshots please")
        before = counts()
        r = post_form(c, f"/feedback/{item.id}/reply",
                      {"body": "Here it is", "attachments": files(("fine.png", png()), ("bomb.png", png_bomb))},
                      content_type="multipart/form-data")
    else:
        before = (0, 0, 0)
        r = create(c, title="Look at this", description="Huge screenshot",
                   attachments=[("fine.png", png()), ("bomb.png", png_bomb)])
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert ("&#34;bomb.png&#34; was refused: it is 10,000 x 10,000 pixels; images may be at most 10,000 pixels "
            "on a side and 40 megapixels in all. Nothing was saved: scale the image down (or crop it) and send "
            "again.") in html
    assert counts() == before  # no item, reply or attachment, not even the fine one
    assert "each at most 5 MB and 10,000 pixels on a side (40 megapixels)" in html  # the form says so up front
    assert "feedback.create" not in events() and "feedback.reply" not in events()
    assert ("Huge screenshot" if not reply else "Here it is") in html  # the text is kept


@pytest.mark.parametrize("data,size", [
    pytest.param(png_of_zeros(8_000, 5_000), (8_000, 5_000), id="exactly 40 MP"),
    pytest.param(png_of_zeros(10_000, 4_000), (10_000, 4_000), id="10,000 wide"),
    pytest.param(jpeg(10_000, 4_000), (10_000, 4_000), id="JPEG at the limit"),
    pytest.param(gif_of(4_000, 10_000), (4_000, 10_000), id="GIF at the limit"),
    pytest.param(webp_lossy(8_000, 5_000), (8_000, 5_000), id="WebP VP8 at the limit"),
    pytest.param(webp_extended(10_000, 4_000), (10_000, 4_000), id="WebP VP8X at the limit"),
])
def test_images_up_to_the_limits_are_accepted(data, size):
    assert fb.sniff_image(data)[1:] == size


@pytest.mark.parametrize("data,size", [
    pytest.param(png_of_zeros(8_000, 5_001), (8_000, 5_001), id="PNG one pixel over 40 MP"),
    pytest.param(png(10_001, 1), (10_001, 1), id="PNG one pixel too wide"),
    pytest.param(jpeg(7_000, 7_000), (7_000, 7_000), id="JPEG baseline SOF0, too many pixels"),
    pytest.param(jpeg_progressive(100, 10_001), (100, 10_001), id="JPEG progressive SOF2, too tall"),
    pytest.param(jpeg(65_535, 65_535), (65_535, 65_535), id="JPEG at the format's maximum"),
    pytest.param(gif_of(10_001, 1), (10_001, 1), id="GIF screen too wide"),
    pytest.param(gif_of(1, 1, frame=(0, 0, 9_000, 9_000)), (9_000, 9_000), id="GIF 1 x 1 screen with a 9,000 x 9,000 frame"),
    pytest.param(gif_of(10, 10, frame=(9_995, 0, 10, 10)), (10_005, 10), id="GIF frame placed beyond the side limit"),
    pytest.param(webp_lossy(16_383, 16_383), (16_383, 16_383), id="WebP VP8 lossy at its maximum"),
    pytest.param(webp(10_001, 1), (10_001, 1), id="WebP VP8L lossless too wide"),
    pytest.param(webp_extended(10_000, 10_000), (10_000, 10_000), id="WebP VP8X too many pixels"),
    pytest.param(webp_extended(1 << 24, 1), (1 << 24, 1), id="WebP VP8X canvas far too wide"),
])
def test_image_bombs_are_refused_from_their_headers(data, size):
    with pytest.raises(fb.ImageTooLarge) as exc:
        fb.sniff_image(data)
    assert (exc.value.width, exc.value.height) == size


def test_a_gif_frame_that_ends_early_is_refused_as_truncated():
    with pytest.raises(ValueError, match="the GIF data ends early"):
        fb.sniff_image(gif_of(10, 10)[:-4])


def test_a_title_is_required_and_a_bad_kind_refused(as_user):
    c = as_user("viewer")
    r = create(c, title="   ", description="text stays")
    assert r.status_code == 400 and "Give the item a title" in r.get_data(as_text=True)
    assert "text stays" in r.get_data(as_text=True)
    r = create(c, kind="rant")
    assert r.status_code == 400 and "bug, feature request or question" in r.get_data(as_text=True)
    assert counts() == (0, 0, 0)


def test_serving_a_non_image_row_is_a_download_never_inline(as_user, personas):
    item = make_item(personas["viewer"])
    att = FeedbackAttachment(item_id=item.id, filename="x.html", content_type="text/html", size=len(HTML), data=HTML)
    db.session.add(att)
    db.session.commit()
    r = as_user("viewer").get(f"/feedback/attachments/{att.id}")
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_attachments_of_deleted_items_are_for_admins_only(as_user, personas):
    item = make_item(personas["operator"], deleted=True)
    att = FeedbackAttachment(item_id=item.id, filename="a.png", content_type="image/png", size=len(png()), data=png())
    db.session.add(att)
    db.session.commit()
    assert as_user("operator").get(f"/feedback/attachments/{att.id}").status_code == 404
    assert as_user("admin").get(f"/feedback/attachments/{att.id}").status_code == 200
    assert as_user("viewer").get("/feedback/attachments/999").status_code == 404


# --- Markdown rendered safely -----------------------------------------------------------------

XSS = """**bold** and [ok](https://example.test/x)

<script>alert('xss')</script>
<img src=x onerror="alert(1)">
<a href="javascript:alert(2)">click</a>
[md link](javascript:alert(3))
<iframe src="https://evil.example"></iframe>
<div style="background:url(javascript:alert(4))" onclick="alert(5)">styled</div>
"""


def test_markdown_is_rendered_and_html_neutralised(personas):
    item = fb.create_item(personas["viewer"], "bug", "XSS", XSS, [])
    db.session.flush()
    html = str(markdown_render.html_of(item))
    assert "<strong>bold</strong>" in html
    assert 'href="https://example.test/x"' in html
    assert active_html(html) == []  # typed HTML shows as text; nothing runs or loads
    assert "&lt;script&gt;alert('xss')&lt;/script&gt;" in html


def test_xss_in_an_item_and_a_reply_is_neutralised_on_the_page(as_user):
    c = as_user("viewer")
    r = create(c, title="<script>alert('t')</script>", description=XSS)
    item_id = int(r.headers["Location"].rsplit("/", 1)[-1])
    post_form(c, f"/feedback/{item_id}/reply", {"body": XSS})
    for path in (f"/feedback/{item_id}", "/feedback"):
        assert "<script>alert" not in c.get(path).get_data(as_text=True).lower()
    page = c.get(f"/feedback/{item_id}").get_data(as_text=True)
    written = re.findall(r'id="feedback-description">(.*?)</div></article>', page, re.S)
    written += re.findall(r'class="card mb-2 feedback-reply"[^>]*>(.*?)</div></div>', page, re.S)
    assert len(written) == 2 and all("&lt;script&gt;" in w and active_html(w) == [] for w in written), written
    assert "&lt;script&gt;alert(" in page  # the title, shown as text


# --- Replies ------------------------------------------------------------------------------------

def test_reply_with_image_and_bad_reply_keeps_the_text(as_user, personas):
    item = make_item(personas["admin"], title="Question about schedules", kind="question")
    c = as_user("viewer")
    r = post_form(c, f"/feedback/{item.id}/reply", {"body": "Same *here*", "attachments": files(("s.png", png()))},
                  content_type="multipart/form-data")
    assert r.status_code == 302
    reply = db.session.execute(select(FeedbackReply)).scalar_one()
    att = db.session.execute(select(FeedbackAttachment)).scalar_one()
    assert att.reply_id == reply.id and att.item_id == item.id
    page = c.get(f"/feedback/{item.id}").get_data(as_text=True)
    assert "Same <em>here</em>" in page and f"/feedback/attachments/{att.id}" in page
    r = post_form(c, f"/feedback/{item.id}/reply", {"body": "Keep me", "attachments": files(("x.png", EXE))},
                  content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "x.png" in html and "Keep me" in html
    assert counts() == (1, 1, 1)
    r = post_form(c, f"/feedback/{item.id}/reply", {"body": "  "})
    assert r.status_code == 400 and "The reply is empty" in r.get_data(as_text=True)
    assert events().count("feedback.reply") == 1


# --- Votes ----------------------------------------------------------------------------------------

def test_one_vote_per_user_toggles(as_user, personas):
    item = make_item(personas["admin"])
    c = as_user("viewer")
    r = post_form(c, f"/feedback/{item.id}/vote", {}, follow_redirects=True)
    assert "is counted" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 1
    r = post_form(c, f"/feedback/{item.id}/vote", {}, follow_redirects=True)
    assert "taken back" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 0
    post_form(c, f"/feedback/{item.id}/vote", {})
    post_form(as_user("operator"), f"/feedback/{item.id}/vote", {})
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 2
    assert events().count("feedback.vote") == 3 and events().count("feedback.unvote") == 1


def test_the_database_refuses_a_second_vote_by_the_same_user(personas):
    from sqlalchemy.exc import IntegrityError
    item = make_item(personas["admin"])
    db.session.add(FeedbackVote(item_id=item.id, user_id=personas["viewer"].id))
    db.session.commit()
    db.session.add(FeedbackVote(item_id=item.id, user_id=personas["viewer"].id))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_vote_redirect_stays_on_the_feedback_pages(as_user, personas):
    item = make_item(personas["admin"])
    r = post_form(as_user("viewer"), f"/feedback/{item.id}/vote", {"next": "https://evil.example/"})
    assert r.headers["Location"].endswith(f"/feedback/{item.id}")
    r = post_form(as_user("operator"), f"/feedback/{item.id}/vote", {"next": "/feedback?sort=newest"})
    assert r.headers["Location"].endswith("/feedback?sort=newest")


# --- Status (admins) ------------------------------------------------------------------------------

def test_only_admins_set_the_status(as_user, personas):
    item = make_item(personas["viewer"])
    assert post_form(as_user("operator"), f"/feedback/{item.id}/status", {"status": "done"}).status_code == 403
    r = post_form(as_user("admin"), f"/feedback/{item.id}/status", {"status": "in_progress"}, follow_redirects=True)
    assert "set to In progress" in r.get_data(as_text=True)
    db.session.refresh(item)
    assert item.status == "in_progress"
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "feedback.status")).scalar_one()
    assert entry.before == {"status": "open"} and entry.after == {"status": "in_progress"}
    r = post_form(as_user("admin"), f"/feedback/{item.id}/status", {"status": "{nonsense}"}, follow_redirects=True)
    assert "is not a status" in r.get_data(as_text=True)


def test_status_form_is_shown_to_admins_only(as_user, personas):
    item = make_item(personas["viewer"])
    assert 'id="status-form"' in as_user("admin").get(f"/feedback/{item.id}").get_data(as_text=True)
    assert 'id="status-form"' not in as_user("viewer").get(f"/feedback/{item.id}").get_data(as_text=True)


# --- Delete rules ---------------------------------------------------------------------------------

def test_users_soft_delete_their_own_items_only(as_user, personas):
    own = make_item(personas["viewer"], title="mine")
    other = make_item(personas["operator"], title="theirs")
    c = as_user("viewer")
    r = post_form(c, f"/feedback/{other.id}/delete", {}, follow_redirects=True)
    assert "only your own feedback items" in r.get_data(as_text=True)
    db.session.refresh(other)
    assert other.deleted_at is None
    assert 'action="/feedback/%d/delete"' % other.id not in c.get(f"/feedback/{other.id}").get_data(as_text=True)
    r = post_form(c, f"/feedback/{own.id}/delete", {}, follow_redirects=True)
    assert "deleted. An admin can restore it" in r.get_data(as_text=True)
    db.session.refresh(own)
    assert own.deleted_at is not None and own.deleted_by_id == personas["viewer"].id
    # Hidden from non-admins now, on the list, the detail page and by direct address.
    assert "mine" not in c.get("/feedback").get_data(as_text=True)
    assert c.get(f"/feedback/{own.id}").status_code == 404
    assert c.get("/feedback?show=deleted").get_data(as_text=True).count('data-item="') == 1  # 'show' is admin-only
    assert post_form(c, f"/feedback/{own.id}/restore", {}).status_code == 403
    assert "feedback.delete" in events()


def test_admin_deletes_any_item_sees_and_restores_it(as_user, personas):
    item = make_item(personas["operator"], title="operator item")
    c = as_user("admin")
    post_form(c, f"/feedback/{item.id}/delete", {}, follow_redirects=True)
    db.session.refresh(item)
    assert item.deleted_at is not None
    assert "operator item" not in c.get("/feedback").get_data(as_text=True)
    assert "operator item" in c.get("/feedback?show=deleted").get_data(as_text=True)
    page = c.get(f"/feedback/{item.id}").get_data(as_text=True)
    assert "Only admins see this item" in page and "Delete permanently" in page
    r = post_form(c, f"/feedback/{item.id}/restore", {}, follow_redirects=True)
    assert "restored" in r.get_data(as_text=True)
    db.session.refresh(item)
    assert item.deleted_at is None
    assert {"feedback.delete", "feedback.restore"} <= set(events())


def test_permanent_delete_is_admin_only_and_only_after_a_soft_delete(as_user, personas):
    item = make_item(personas["viewer"], title="to purge")
    db.session.add_all([FeedbackVote(item_id=item.id, user_id=personas["viewer"].id),
                        FeedbackReply(item_id=item.id, user_id=personas["admin"].id, body="ok")])
    db.session.commit()
    db.session.add(FeedbackAttachment(item_id=item.id, filename="a.png", content_type="image/png",
                                      size=len(png()), data=png()))
    db.session.commit()
    admin = as_user("admin")
    r = post_form(admin, f"/feedback/{item.id}/purge", {}, follow_redirects=True)
    assert "Delete the item first" in r.get_data(as_text=True)
    assert counts() == (1, 1, 1)
    viewer = as_user("viewer")
    post_form(viewer, f"/feedback/{item.id}/delete", {})
    assert post_form(viewer, f"/feedback/{item.id}/purge", {}).status_code == 403
    assert post_form(as_user("operator"), f"/feedback/{item.id}/purge", {}).status_code == 403
    assert counts() == (1, 1, 1)
    r = post_form(admin, f"/feedback/{item.id}/purge", {}, follow_redirects=True)
    assert "deleted permanently" in r.get_data(as_text=True)
    db.session.expire_all()
    assert counts() == (0, 0, 0)
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 0
    entry = db.session.execute(select(AuditLog).where(AuditLog.event == "feedback.purge")).scalar_one()
    assert entry.before["title"] == "to purge" and entry.username == "alice"


def test_deleted_items_take_no_votes_or_replies(as_user, personas):
    item = make_item(personas["admin"], deleted=True)
    c = as_user("admin")
    r = post_form(c, f"/feedback/{item.id}/vote", {}, follow_redirects=True)
    assert "takes no votes" in r.get_data(as_text=True)
    r = post_form(c, f"/feedback/{item.id}/reply", {"body": "x"})
    assert r.status_code == 400 and "takes no replies" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 0


# --- The list: filters, sort, paging, constant queries ------------------------------------------

def test_list_filters_sorts_and_counts_votes(as_user, personas):
    a = make_item(personas["admin"], title="Alpha export bug", kind="bug")
    b = make_item(personas["admin"], title="Beta dark theme", kind="feature", description="please add a toggle")
    make_item(personas["admin"], title="Gamma question", kind="question", status="done")
    for u in ("viewer", "operator", "reporter"):
        db.session.add(FeedbackVote(item_id=b.id, user_id=personas[u].id))
    db.session.add(FeedbackVote(item_id=a.id, user_id=personas["viewer"].id))
    db.session.commit()
    c = as_user("viewer")
    html = c.get("/feedback").get_data(as_text=True)
    assert html.index("Beta dark theme") < html.index("Alpha export bug") < html.index("Gamma question")
    assert 'aria-pressed="true"' in html  # the viewer's own votes show
    html = c.get("/feedback?sort=newest").get_data(as_text=True)
    assert html.index("Gamma question") < html.index("Beta dark theme")
    html = c.get("/feedback?kind=feature").get_data(as_text=True)
    assert "Beta dark theme" in html and "Alpha" not in html
    html = c.get("/feedback?status=done").get_data(as_text=True)
    assert "Gamma question" in html and "Beta" not in html
    html = c.get("/feedback?q=TOGGLE").get_data(as_text=True)  # text search covers the description
    assert "Beta dark theme" in html and "Alpha" not in html
    html = c.get("/feedback?q=nothing-like-this").get_data(as_text=True)
    assert "No feedback items match these filters" in html
    assert c.get("/feedback?kind=<x>&sort=drop&page=abc").status_code == 200


def test_empty_list_says_what_to_do(as_user):
    html = as_user("reporter").get("/feedback").get_data(as_text=True)
    assert "No feedback yet" in html and 'href="/feedback/new"' in html


def test_list_page_uses_a_constant_number_of_queries(as_user, personas):
    c = as_user("viewer")
    c.get("/feedback")  # warm up (settings, session)

    def add(n):
        for i in range(n):
            item = make_item(personas["admin"], title=f"Item {i}")
            db.session.add_all([FeedbackVote(item_id=item.id, user_id=personas["viewer"].id),
                                FeedbackReply(item_id=item.id, user_id=personas["admin"].id, body="r")])
        db.session.commit()

    add(2)
    few = count_queries(lambda: c.get("/feedback"))
    add(28)
    many = count_queries(lambda: c.get("/feedback"))
    assert few == many, (few, many)
    html = c.get("/feedback?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in html and html.count('data-item="') == 5


def test_detail_page_uses_a_constant_number_of_queries(as_user, personas):
    item = make_item(personas["admin"])
    c = as_user("viewer")
    c.get(f"/feedback/{item.id}")

    def add(n):
        for _ in range(n):
            reply = FeedbackReply(item_id=item.id, user_id=personas["operator"].id, body="reply")
            db.session.add(reply)
            db.session.flush()
            db.session.add(FeedbackAttachment(item_id=item.id, reply_id=reply.id, filename="a.png",
                                              content_type="image/png", size=len(png()), data=png()))
        db.session.commit()

    add(1)
    few = count_queries(lambda: c.get(f"/feedback/{item.id}"))
    add(10)
    many = count_queries(lambda: c.get(f"/feedback/{item.id}"))
    assert few == many


def test_every_role_can_use_feedback(as_user):
    for role in ("admin", "operator", "reporter", "viewer"):
        c = as_user(role)
        assert c.get("/feedback").status_code == 200
        assert c.get("/feedback/new").status_code == 200
        assert create(c, title=f"from {role}").status_code == 302
    assert counts()[0] == 4
    assert events().count("feedback.create") == 4


def test_a_vote_that_races_another_gives_a_message_not_an_error(as_user, personas, monkeypatch):
    item = make_item(personas["admin"])
    c = as_user("viewer")
    db.session.add(FeedbackVote(item_id=item.id, user_id=personas["viewer"].id))
    db.session.commit()
    # Simulate the race: the check for an existing vote sees none, the insert hits the unique constraint.
    # The vote route calls toggle_vote by the name it imported, so that name is the one replaced.
    real = routes_feedback.toggle_vote

    def racing(actor, it):
        db.session.add(FeedbackVote(item_id=it.id, user_id=actor.id))
        return True
    monkeypatch.setattr(routes_feedback, "toggle_vote", racing)
    r = post_form(c, f"/feedback/{item.id}/vote", {}, follow_redirects=True)
    assert r.status_code == 200 and "nothing was changed" in r.get_data(as_text=True)
    monkeypatch.setattr(routes_feedback, "toggle_vote", real)
    assert db.session.execute(select(func.count(FeedbackVote.id))).scalar_one() == 1


def test_an_unknown_format_is_refused_in_plain_words():
    ico = b"\x00\x00\x01\x00\x03\x0000\x00\x00\x01\x00 \x00\xa8%" + b"\x00" * 64
    with pytest.raises(fb.FeedbackError, match='"favicon.png" was refused: its content is in no image format we recognise'):
        fb.check_uploads([fb.Upload("favicon.png", ico)])
