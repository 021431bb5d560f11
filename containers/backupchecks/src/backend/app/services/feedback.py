"""Feedback: items (bug, feature, question), replies, votes, image attachments, soft and permanent delete.

Rules live here; the page module only reads the request and renders. Every change is audited.
Attachments are accepted by their CONTENT (magic bytes plus a header sanity check), never by
their file name or the browser's content type, and only up to MAX_DIMENSION pixels a side and
MAX_PIXELS in all (read from the headers, so an "image bomb" is refused before anything is
stored); they are stored in the database.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from markupsafe import Markup
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import FeedbackAttachment, FeedbackItem, FeedbackReply, FeedbackVote, User, utcnow
from . import audit, markdown_render
from .search import contains_text

KINDS = {"bug": "Bug", "feature": "Feature request", "question": "Question"}
STATUSES = {"open": "Open", "planned": "Planned", "in_progress": "In progress", "done": "Done",
            "rejected": "Rejected"}
SORTS = {"votes": "Most votes", "newest": "Newest"}
SHOW = {"active": "Active items", "deleted": "Deleted items", "all": "Active and deleted"}

MAX_FILES = 5                      # per item and per reply
MAX_FILE_BYTES = 5 * 1024 * 1024   # per file
MAX_DIMENSION = 10_000             # pixels per side
MAX_PIXELS = 40_000_000            # width x height: a small file can hold a huge image (a "bomb") that
                                   # costs every reader's browser width x height x 4 bytes to show
MAX_TITLE = 200
MAX_TEXT = markdown_render.MAX_LENGTH  # characters of Markdown in a description or a reply

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP"}
ACCEPTED = "PNG, JPEG, GIF and WebP images"


class FeedbackError(Exception):
    """A rule was broken; the message is shown to the user as is."""


class FeedbackForbidden(FeedbackError):
    """The user may not do this to this item."""


class ImageTooLarge(ValueError):
    """The image's header says it is wider, taller or bigger than MAX_DIMENSION / MAX_PIXELS."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        super().__init__(f"it is {width:,} x {height:,} pixels; images may be at most {MAX_DIMENSION:,} pixels "
                         f"on a side and {MAX_PIXELS // 1_000_000} megapixels in all")


# --- Attachments: checked by content -----------------------------------------------------------

@dataclass
class Upload:
    """One uploaded file as the page received it (data may be cut at MAX_FILE_BYTES + 1)."""

    filename: str
    data: bytes


@dataclass
class CheckedImage:
    filename: str
    content_type: str
    data: bytes
    width: int
    height: int


def clean_filename(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"<>]", "", name).strip().strip(".") or "image"
    return name[:200]


def _what_it_looks_like(data: bytes) -> str:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if data[:2] == b"MZ":
        return "a Windows program"
    if data[:4] == b"\x7fELF":
        return "a Linux program"
    if head.startswith(b"<svg") or b"<svg" in head:
        return "an SVG drawing (SVG can carry scripts)"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<script" in head:
        return "an HTML page"
    if head.startswith(b"<?xml"):
        return "an XML document"
    if data[:4] == b"%PDF":
        return "a PDF document"
    if data[:4] == b"PK\x03\x04":
        return "a ZIP archive or Office document"
    return "in no image format we recognise"


def _png(data: bytes) -> tuple[int, int]:
    if len(data) < 8 + 25 or data[12:16] != b"IHDR":
        raise ValueError("the PNG header is missing")
    pos, first, seen_idat = 8, True, False
    width = height = 0
    while True:
        if pos + 12 > len(data):
            raise ValueError("the PNG data ends early (the file is truncated)")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError("the PNG data ends early (the file is truncated)")
        body = data[pos + 8:end]
        (crc,) = struct.unpack(">I", data[end:end + 4])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise ValueError("a PNG chunk is damaged (checksum mismatch)")
        if first:
            if ctype != b"IHDR" or length != 13:
                raise ValueError("the PNG header is malformed")
            width, height = struct.unpack(">II", body[:8])
            first = False
        if ctype == b"IDAT":
            seen_idat = True
        if ctype == b"IEND":
            break
        pos = end + 4
    if not seen_idat:
        raise ValueError("the PNG has no image data")
    return width, height


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int]:
    pos, size = 2, None
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise ValueError("the JPEG data ends early or is malformed (the file may be truncated)")
        marker = data[pos + 1]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError("the JPEG data ends early (the file is truncated)")
        if marker in _SOF:
            if length < 7:
                raise ValueError("the JPEG frame header is malformed")
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            size = (width, height) if size is None else (max(size[0], width), max(size[1], height))
        if marker == 0xDA:  # start of scan: entropy-coded data follows, ending with EOI
            if size is None:
                raise ValueError("the JPEG has no frame header")
            if data.rfind(b"\xff\xd9", pos + 2 + length) < 0:
                raise ValueError("the JPEG data ends early (no end-of-image marker; the file is truncated)")
            return size
        pos += 2 + length


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a chain of GIF data sub-blocks (each a length byte and that many bytes; 0 ends it)."""
    while True:
        if pos >= len(data):
            raise ValueError("the GIF data ends early (the file is truncated)")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif(data: bytes) -> tuple[int, int]:
    """The logical screen, grown to hold every frame: a browser draws a frame that is larger than the
    screen at the frame's size, so a 1 x 1 GIF can carry a 10,000 x 10,000 frame."""
    if len(data) < 13:
        raise ValueError("the GIF header is missing")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)  # global colour table
    frames = 0
    while True:
        if pos >= len(data):
            raise ValueError("the GIF data ends early (no trailer; the file is truncated)")
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _gif_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor: left, top, width, height, flags
            if pos + 10 > len(data):
                raise ValueError("the GIF data ends early (the file is truncated)")
            left, top, w, h, fflags = struct.unpack("<HHHHB", data[pos + 1:pos + 10])
            width, height = max(width, left + w), max(height, top + h)
            pos += 10 + (3 * (2 << (fflags & 7)) if fflags & 0x80 else 0)  # local colour table
            pos = _gif_sub_blocks(data, pos + 1)  # LZW code size, then the image data
            frames += 1
        else:
            raise ValueError("the GIF data is malformed (an unknown block)")
    if not frames:
        raise ValueError("the GIF has no image data")
    return width, height


def _webp(data: bytes) -> tuple[int, int]:
    if len(data) < 20:
        raise ValueError("the WebP data ends early (the file is truncated)")
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data):
        raise ValueError("the WebP data ends early (the file is truncated)")
    chunk, (chunk_size,) = data[12:16], struct.unpack("<I", data[16:20])
    if 20 + chunk_size > len(data):
        raise ValueError("the WebP data ends early (the file is truncated)")
    body = data[20:20 + chunk_size]
    if chunk == b"VP8 ":
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            raise ValueError("the WebP (lossy) header is malformed")
        w, h = struct.unpack("<HH", body[6:10])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            raise ValueError("the WebP (lossless) header is malformed")
        (bits,) = struct.unpack("<I", body[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        if len(body) < 10:
            raise ValueError("the WebP (extended) header is malformed")
        w = int.from_bytes(body[4:7], "little") + 1
        h = int.from_bytes(body[7:10], "little") + 1
        return w, h
    raise ValueError("the WebP has no image data")


_SNIFFERS = (
    (b"\x89PNG\r\n\x1a\n", "image/png", _png),
    (b"\xff\xd8\xff", "image/jpeg", _jpeg),
    (b"GIF87a", "image/gif", _gif),
    (b"GIF89a", "image/gif", _gif),
)


def sniff_image(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) from the bytes themselves, read from the headers without decoding
    the pixels; ValueError says why not (ImageTooLarge: over MAX_DIMENSION or MAX_PIXELS)."""
    for magic, ctype, parse in _SNIFFERS:
        if data.startswith(magic):
            break
    else:
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            ctype, parse = "image/webp", _webp
        else:
            what = _what_it_looks_like(data)
            raise ValueError(f"its content is {what}" if what.startswith("in ") else f"its content is {what}, not an image")
    try:
        width, height = parse(data)
    except struct.error:
        raise ValueError(f"the {IMAGE_TYPES[ctype]} data ends early (the file is truncated)") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"its size of {width} x {height} pixels is not plausible for a screenshot")
    if width > MAX_DIMENSION or height > MAX_DIMENSION or width * height > MAX_PIXELS:
        raise ImageTooLarge(width, height)
    return ctype, width, height


def check_uploads(uploads: list[Upload]) -> list[CheckedImage]:
    """All files pass or none: the first refused file raises FeedbackError naming it."""
    uploads = [u for u in uploads if u.filename or u.data]
    if len(uploads) > MAX_FILES:
        raise FeedbackError(f"{len(uploads)} files were chosen; at most {MAX_FILES} images can be attached at once. "
                            "Nothing was saved: choose fewer files and send again.")
    checked = []
    mb = MAX_FILE_BYTES // (1024 * 1024)
    for u in uploads:
        name = clean_filename(u.filename)
        if not u.data:
            raise FeedbackError(f'"{name}" is empty. Nothing was saved: choose the file again.')
        if len(u.data) > MAX_FILE_BYTES:
            raise FeedbackError(f'"{name}" is larger than {mb} MB, the limit per image. Nothing was saved: '
                                "make the screenshot smaller (crop it, or save it as JPEG) and send again.")
        try:
            ctype, width, height = sniff_image(u.data)
        except ImageTooLarge as exc:
            raise FeedbackError(f'"{name}" was refused: {exc}. Nothing was saved: scale the image down (or crop it) '
                                "and send again.") from None
        except ValueError as exc:
            raise FeedbackError(f'"{name}" was refused: {exc}. Only {ACCEPTED} are accepted. Nothing was saved: '
                                "remove that file and send again.") from None
        checked.append(CheckedImage(name, ctype, u.data, width, height))
    return checked


def _store(item_id: int, reply_id: int | None, images: list[CheckedImage]) -> None:
    for img in images:
        db.session.add(FeedbackAttachment(item_id=item_id, reply_id=reply_id, filename=img.filename,
                                          content_type=img.content_type, size=len(img.data), data=img.data))


# --- Creating and changing items ----------------------------------------------------------------

def _markdown_text(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").strip()


def _check_length(text: str, what: str, advice: str = "shorten it") -> None:
    if len(text) > MAX_TEXT:
        raise FeedbackError(f"The {what} is {len(text):,} characters long; the limit is {MAX_TEXT:,}. "
                            f"Nothing was saved: {advice} and send again.")


def _clean_text(title: str | None, description: str | None) -> tuple[str, str]:
    title = (title or "").strip()
    description = _markdown_text(description)
    if not title:
        raise FeedbackError("Give the item a title: one line that says what it is about.")
    if len(title) > MAX_TITLE:
        raise FeedbackError(f"The title is {len(title)} characters long; keep it under {MAX_TITLE} "
                            "and put the rest in the description.")
    _check_length(description, "description", "shorten it (a screenshot can say the rest)")
    return title, description


def create_item(actor: User, kind: str, title: str, description: str, uploads: list[Upload]) -> FeedbackItem:
    """Validate everything first, so a refused request adds nothing to the session."""
    if kind not in KINDS:
        raise FeedbackError("Choose what kind of item this is: bug, feature request or question.")
    title, description = _clean_text(title, description)
    images = check_uploads(uploads)
    item = FeedbackItem(kind=kind, title=title, description=description, status="open", created_by_id=actor.id)
    db.session.add(item)
    db.session.flush()
    _store(item.id, None, images)
    audit.record("feedback.create", f"Feedback #{item.id} '{title}' ({kind}) with {len(images)} attachment(s)",
                 user=actor, target_type="feedback_item", target_id=item.id,
                 after={"kind": kind, "title": title, "status": "open",
                        "attachments": [i.filename for i in images]})
    return item


def _require_live(item: FeedbackItem, what: str) -> None:
    if item.deleted_at is not None:
        raise FeedbackError(f"This item is deleted, so it takes no {what}. An admin can restore it first.")


def add_reply(actor: User, item: FeedbackItem, body: str, uploads: list[Upload]) -> FeedbackReply:
    _require_live(item, "replies")
    body = _markdown_text(body)
    if not body:
        raise FeedbackError("The reply is empty: write something before sending.")
    _check_length(body, "reply")
    images = check_uploads(uploads)
    reply = FeedbackReply(item_id=item.id, user_id=actor.id, body=body)
    db.session.add(reply)
    db.session.flush()
    _store(item.id, reply.id, images)
    item.updated_at = utcnow()
    audit.record("feedback.reply", f"Reply on feedback #{item.id} '{item.title}'", user=actor,
                 target_type="feedback_item", target_id=item.id,
                 after={"reply_id": reply.id, "attachments": [i.filename for i in images]})
    return reply


def toggle_vote(actor: User, item: FeedbackItem) -> bool:
    """One vote per user: vote when not voted, take the vote back otherwise. Returns voted-now."""
    _require_live(item, "votes")
    existing = db.session.execute(select(FeedbackVote).where(FeedbackVote.item_id == item.id,
                                                             FeedbackVote.user_id == actor.id)).scalar_one_or_none()
    if existing is not None:
        db.session.delete(existing)
        audit.record("feedback.unvote", f"Vote taken back on feedback #{item.id} '{item.title}'", user=actor,
                     target_type="feedback_item", target_id=item.id)
        return False
    db.session.add(FeedbackVote(item_id=item.id, user_id=actor.id))
    audit.record("feedback.vote", f"Voted for feedback #{item.id} '{item.title}'", user=actor,
                 target_type="feedback_item", target_id=item.id)
    return True


def set_status(actor: User, item: FeedbackItem, status: str, *, is_admin: bool) -> None:
    if not is_admin:
        raise FeedbackForbidden("Only admins set the status of a feedback item.")
    if status not in STATUSES:
        raise FeedbackError(f"'{status}' is not a status; choose one of: {', '.join(STATUSES.values())}.")
    _require_live(item, "status changes")
    if status == item.status:
        raise FeedbackError(f"The status already is {STATUSES[status]}.")
    before = item.status
    item.status = status
    audit.record("feedback.status", f"Feedback #{item.id} '{item.title}': {STATUSES[before]} → {STATUSES[status]}",
                 user=actor, target_type="feedback_item", target_id=item.id,
                 before={"status": before}, after={"status": status})


def may_delete(actor: User, item: FeedbackItem, *, is_admin: bool) -> bool:
    return is_admin or (item.created_by_id is not None and item.created_by_id == actor.id)


def soft_delete(actor: User, item: FeedbackItem, *, is_admin: bool) -> None:
    if not may_delete(actor, item, is_admin=is_admin):
        raise FeedbackForbidden("You can delete only your own feedback items; ask an admin to delete this one.")
    if item.deleted_at is not None:
        raise FeedbackError("This item is already deleted.")
    item.deleted_at = utcnow()
    item.deleted_by_id = actor.id
    audit.record("feedback.delete", f"Feedback #{item.id} '{item.title}' deleted (can be restored)", user=actor,
                 target_type="feedback_item", target_id=item.id,
                 before={"deleted_at": None}, after={"deleted_at": item.deleted_at})


def restore(actor: User, item: FeedbackItem, *, is_admin: bool) -> None:
    if not is_admin:
        raise FeedbackForbidden("Only admins restore deleted feedback items.")
    if item.deleted_at is None:
        raise FeedbackError("This item is not deleted, so there is nothing to restore.")
    before = item.deleted_at
    item.deleted_at = None
    item.deleted_by_id = None
    audit.record("feedback.restore", f"Feedback #{item.id} '{item.title}' restored", user=actor,
                 target_type="feedback_item", target_id=item.id,
                 before={"deleted_at": before}, after={"deleted_at": None})


def purge(actor: User, item: FeedbackItem, *, is_admin: bool) -> None:
    """Permanent delete: admins only, and only an item that was soft-deleted first."""
    if not is_admin:
        raise FeedbackForbidden("Only admins delete feedback items permanently.")
    if item.deleted_at is None:
        raise FeedbackError("Delete the item first; only a deleted item can be deleted permanently. "
                            "Nothing was removed.")
    audit.record("feedback.purge", f"Feedback #{item.id} '{item.title}' deleted permanently, with its replies, "
                 "votes and attachments", user=actor, target_type="feedback_item", target_id=item.id,
                 before={"kind": item.kind, "title": item.title, "status": item.status,
                         "created_by_id": item.created_by_id})
    db.session.delete(item)  # replies, votes and attachments go with it (ON DELETE CASCADE)


# --- Reading -----------------------------------------------------------------------------------

@dataclass
class ListRow:
    item: FeedbackItem
    author: str | None
    votes: int
    replies: int
    attachments: int
    voted: bool


@dataclass
class ListFilters:
    kind: str = ""
    status: str = ""
    q: str = ""
    sort: str = "votes"
    show: str = "active"
    page: int = 1

    @classmethod
    def from_args(cls, args, *, is_admin: bool) -> "ListFilters":
        kind = args.get("kind", "")
        status = args.get("status", "")
        sort = args.get("sort", "votes")
        show = args.get("show", "active")
        try:
            page = max(1, int(args.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        return cls(kind=kind if kind in KINDS else "", status=status if status in STATUSES else "",
                   q=(args.get("q") or "").strip()[:200], sort=sort if sort in SORTS else "votes",
                   show=show if (is_admin and show in SHOW) else "active", page=page)


def list_items(viewer: User, filters: ListFilters, *, per_page: int = 25) -> tuple[list[ListRow], int]:
    """One page of items with vote, reply and attachment counts: two queries whatever the page size."""
    votes = (select(FeedbackVote.item_id, func.count().label("n"))
             .group_by(FeedbackVote.item_id).subquery("votes"))
    replies = (select(FeedbackReply.item_id, func.count().label("n"))
               .group_by(FeedbackReply.item_id).subquery("replies"))
    files = (select(FeedbackAttachment.item_id, func.count().label("n"))
             .group_by(FeedbackAttachment.item_id).subquery("files"))
    author = aliased(User)
    mine = exists().where(FeedbackVote.item_id == FeedbackItem.id, FeedbackVote.user_id == viewer.id)

    where = []
    if filters.show == "active":
        where.append(FeedbackItem.deleted_at.is_(None))
    elif filters.show == "deleted":
        where.append(FeedbackItem.deleted_at.is_not(None))
    if filters.kind:
        where.append(FeedbackItem.kind == filters.kind)
    if filters.status:
        where.append(FeedbackItem.status == filters.status)
    if filters.q:
        where.append(contains_text([FeedbackItem.title, FeedbackItem.description], filters.q))

    total = db.session.execute(select(func.count(FeedbackItem.id)).where(*where)).scalar_one()
    vote_count = func.coalesce(votes.c.n, 0)
    order = ([vote_count.desc(), FeedbackItem.created_at.desc()] if filters.sort == "votes"
             else [FeedbackItem.created_at.desc()])
    q = (select(FeedbackItem, author.username, vote_count, func.coalesce(replies.c.n, 0),
                func.coalesce(files.c.n, 0), mine)
         .outerjoin(author, author.id == FeedbackItem.created_by_id)
         .outerjoin(votes, votes.c.item_id == FeedbackItem.id)
         .outerjoin(replies, replies.c.item_id == FeedbackItem.id)
         .outerjoin(files, files.c.item_id == FeedbackItem.id)
         .where(*where).order_by(*order, FeedbackItem.id.desc())
         .limit(per_page).offset((filters.page - 1) * per_page))
    rows = [ListRow(item, name, int(v), int(r), int(a), bool(m))
            for item, name, v, r, a, m in db.session.execute(q).all()]
    return rows, total


def get_item(item_id: int, *, is_admin: bool) -> FeedbackItem | None:
    """The item if this user may see it: deleted items exist only for admins."""
    item = db.session.get(FeedbackItem, item_id)
    if item is None or (item.deleted_at is not None and not is_admin):
        return None
    return item


@dataclass
class AttachmentInfo:
    id: int
    filename: str
    content_type: str
    size: int
    reply_id: int | None


@dataclass
class ReplyView:
    reply: FeedbackReply
    author: str | None
    body_html: Markup
    attachments: list[AttachmentInfo] = field(default_factory=list)


@dataclass
class ItemView:
    item: FeedbackItem
    author: str | None
    deleted_by: str | None
    description_html: Markup
    votes: int
    voted: bool
    attachments: list[AttachmentInfo]
    replies: list[ReplyView]


def item_view(viewer: User, item: FeedbackItem) -> ItemView:
    """Everything the detail page shows, in a constant number of queries."""
    names = dict(db.session.execute(select(User.id, User.username).where(
        User.id.in_([i for i in (item.created_by_id, item.deleted_by_id) if i is not None]))).all())
    votes, voted = db.session.execute(
        select(func.count(FeedbackVote.id), func.count(FeedbackVote.id).filter(FeedbackVote.user_id == viewer.id))
        .where(FeedbackVote.item_id == item.id)).one()
    files = [AttachmentInfo(*row) for row in db.session.execute(
        select(FeedbackAttachment.id, FeedbackAttachment.filename, FeedbackAttachment.content_type,
               FeedbackAttachment.size, FeedbackAttachment.reply_id)
        .where(FeedbackAttachment.item_id == item.id).order_by(FeedbackAttachment.id)).all()]
    author = aliased(User)
    replies = [ReplyView(reply, name, markdown_render.html_of(reply)) for reply, name in db.session.execute(
        select(FeedbackReply, author.username).outerjoin(author, author.id == FeedbackReply.user_id)
        .where(FeedbackReply.item_id == item.id).order_by(FeedbackReply.created_at, FeedbackReply.id)).all()]
    by_reply = {r.reply.id: r for r in replies}
    for f in files:
        if f.reply_id in by_reply:
            by_reply[f.reply_id].attachments.append(f)
    return ItemView(item=item, author=names.get(item.created_by_id), deleted_by=names.get(item.deleted_by_id),
                    description_html=markdown_render.html_of(item), votes=int(votes), voted=bool(voted),
                    attachments=[f for f in files if f.reply_id is None], replies=replies)


def get_attachment(attachment_id: int, *, is_admin: bool) -> FeedbackAttachment | None:
    """The attachment if its item is visible to this user (deleted items: admins only)."""
    q = (select(FeedbackAttachment).join(FeedbackItem, FeedbackItem.id == FeedbackAttachment.item_id)
         .where(FeedbackAttachment.id == attachment_id))
    if not is_admin:
        q = q.where(FeedbackItem.deleted_at.is_(None))
    return db.session.execute(q).scalar_one_or_none()
