"""Status badges: one unauthenticated URL per customer for NOC screens (Healthchecks' badges).

A badge is ``/badge/<key>.svg`` or ``/badge/<key>.json``; the key has 192 random bits, so it can't
be guessed and needs no rate limit. It is looked up by its SHA-256 (``key_hash``) and kept
encrypted (``EncryptedText``) so the page can show the URL again. A customer has at most one live
badge: making a new one revokes the old one (its URL then answers 404), and so does revoking.
Creating and revoking are audited; the caller commits.

What the badge says is today's Daily Jobs of that customer (the local day in the UI timezone, the
day rule of Settings), counted by ``daily_jobs.day_counts`` — what counts as missed is decided
there, never here. The badge's status is the worst of those rows:

* ``failed``: a job's day status is Failed; else
* ``missed``: a job's day status is Missed; else
* ``warning``: a job's day status is Warning; else
* ``no jobs``: the customer has no job on today's Daily Jobs (none expected, none ran; also a
  deactivated customer, whose jobs Daily Jobs leaves out); else
* ``ok``: every job is a success (an override counts), still expected later today, or in a
  maintenance window.

The SVG is drawn here (no external service), in the flat style of shields.io: the customer's name on
grey, the status on its colour, each part as wide as its text in Verdana 11 px.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional

from markupsafe import escape
from sqlalchemy import select

from ..extensions import db
from ..models import Customer, CustomerBadge, User, utcnow
from . import audit
from .daily_jobs import day_counts
from .settings import ui_zone
from .status import EXPECTED, FAILED, MAINTENANCE, MISSED, OVERRIDE_SUCCESS, SUCCESS, WARNING, configured_day_rule
from .timezones import local_day

KEY_BYTES = 24  # 192 random bits, 32 URL-safe characters
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,100}")
FORMATS = ("svg", "json")

OK, WARN, FAIL, MISS, NO_JOBS = "ok", "warning", "failed", "missed", "no jobs"
STATUSES = (OK, WARN, FAIL, MISS, NO_JOBS)
COLOURS = {OK: "#2e7d32", WARN: "#b26a00", FAIL: "#c62828", MISS: "#c62828", NO_JOBS: "#6c757d"}
LABEL_COLOUR = "#555"
LABEL_MAX = 60


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# --- Making and revoking --------------------------------------------------------------------

def live_badge(customer_id: int) -> Optional[CustomerBadge]:
    """The customer's live badge, or None."""
    return db.session.execute(select(CustomerBadge).where(CustomerBadge.customer_id == customer_id,
                                                          CustomerBadge.revoked_at.is_(None))).scalar_one_or_none()


def create_badge(customer: Customer, *, actor: Optional[User] = None, now: Optional[datetime] = None) -> CustomerBadge:
    """A new badge for ``customer``; a live one it had is revoked first (its URL answers 404)."""
    now = now or utcnow()
    revoke_badge(customer, actor=actor, now=now, replaced=True)
    key = secrets.token_urlsafe(KEY_BYTES)
    badge = CustomerBadge(customer_id=customer.id, key_hash=hash_key(key), key=key, created_at=now)
    db.session.add(badge)
    db.session.flush()
    audit.record("badge.create", f"Status badge of customer {customer.name} created", user=actor,
                 target_type="customer", target_id=customer.id, after={"badge": badge.id})
    return badge


def revoke_badge(customer: Customer, *, actor: Optional[User] = None, now: Optional[datetime] = None,
                 replaced: bool = False) -> bool:
    """Revoke the customer's live badge; False when it had none."""
    badge = live_badge(customer.id)
    if badge is None:
        return False
    badge.revoked_at = now or utcnow()
    db.session.flush()  # before a new live badge is inserted (one live badge per customer)
    audit.record("badge.revoke", f"Status badge of customer {customer.name} "
                                 f"{'replaced by a new one' if replaced else 'revoked'}",
                 user=actor, target_type="customer", target_id=customer.id,
                 before={"badge": badge.id, "state": "live"}, after={"state": "revoked"})
    return True


# --- Answering a badge URL ------------------------------------------------------------------

def find(key: str) -> Optional[CustomerBadge]:
    """The live badge of ``key`` (its customer loaded), or None: unknown, malformed or revoked look
    the same."""
    if not key or not _KEY_RE.fullmatch(key):
        return None
    return db.session.execute(
        select(CustomerBadge).join(CustomerBadge.customer)
        .where(CustomerBadge.key_hash == hash_key(key), CustomerBadge.revoked_at.is_(None))).scalar_one_or_none()


@dataclass(frozen=True)
class BadgeStatus:
    customer: str
    status: str
    counts: dict[str, int]
    day: date
    updated_at: datetime
    timezone: str

    def as_json(self) -> dict:
        return {"customer": self.customer, "status": self.status, "counts": self.counts,
                "date": self.day.isoformat(), "timezone": self.timezone,
                "updated_at": self.updated_at.isoformat().replace("+00:00", "Z")}


def status_of(counts: dict[str, int]) -> str:
    """The badge's word for a day's Daily Jobs counts (``day_counts``): the worst status present."""
    if counts.get(FAILED):
        return FAIL
    if counts.get(MISSED):
        return MISS
    if counts.get(WARNING):
        return WARN
    if not sum(counts.values()):
        return NO_JOBS
    return OK


def badge_status(badge: CustomerBadge, now: Optional[datetime] = None) -> BadgeStatus:
    """What the badge of ``badge``'s customer says at ``now``: today's Daily Jobs counts and their
    worst status. Three queries (settings, then day_counts' fingerprint and, on a cache miss, two)."""
    now = now or utcnow()
    zone = ui_zone()
    today = local_day(now, zone)
    shown = day_counts(today, zone, now, configured_day_rule(), customer_id=badge.customer_id)
    counts = {
        "jobs": sum(shown.values()),
        "success": shown.get(SUCCESS, 0) + shown.get(OVERRIDE_SUCCESS, 0),
        "warning": shown.get(WARNING, 0),
        "failed": shown.get(FAILED, 0),
        "missed": shown.get(MISSED, 0),
        "expected": shown.get(EXPECTED, 0),
        "maintenance": shown.get(MAINTENANCE, 0),
    }
    return BadgeStatus(customer=badge.customer.name, status=status_of(shown), counts=counts, day=today,
                       updated_at=now.replace(microsecond=0), timezone=zone.key)


# --- The SVG ------------------------------------------------------------------------------

# Advance widths of Verdana at 11 px (what shields.io measures with), for the printable ASCII
# characters; anything else counts as a wide letter.
_WIDTHS = dict(zip(
    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
    [3.87, 4.33, 5.05, 9.0, 7.0, 11.84, 7.99, 2.95, 5.0, 5.0, 7.0, 9.0, 4.0, 5.0, 4.0, 5.0,
     7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 5.0, 5.0, 9.0, 9.0, 9.0, 6.0, 11.0,
     7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.63, 5.0, 7.62, 6.12, 9.27, 8.23, 8.66,
     6.63, 8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.88, 7.54, 6.77, 7.54, 5.0, 5.0, 5.0, 9.0, 7.0, 7.0,
     6.61, 6.85, 5.73, 6.85, 6.55, 3.87, 6.85, 6.96, 3.02, 3.79, 6.51, 3.02, 10.7, 6.96, 6.68,
     6.85, 6.85, 4.69, 5.73, 4.33, 6.96, 6.51, 9.0, 6.51, 6.51, 5.78, 6.98, 5.0, 6.98, 9.0]))
_WIDE = 8.5
_PAD = 6  # on each side of a text


def text_width(text: str) -> float:
    """The width of ``text`` in Verdana 11 px."""
    return sum(_WIDTHS.get(ch, _WIDE) for ch in text)


def _label(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= LABEL_MAX else name[:LABEL_MAX - 1] + "…"


def render_svg(label: str, message: str, colour: str) -> str:
    """A flat, shields.io-style badge: ``label`` on grey, ``message`` on ``colour``. No script, no
    style element, no external reference."""
    label = _label(label)
    lw = round(text_width(label) + 2 * _PAD)
    mw = round(text_width(message) + 2 * _PAD)
    width = lw + mw
    title = escape(f"{label}: {message}")
    parts = []
    for x, text, w in ((lw / 2, label, lw - 2 * _PAD), (lw + mw / 2, message, mw - 2 * _PAD)):
        t = escape(text)
        parts.append(f'<text x="{x:.1f}" y="15" fill="#010101" fill-opacity=".3" textLength="{w}" lengthAdjust="spacingAndGlyphs">{t}</text>'
                     f'<text x="{x:.1f}" y="14" textLength="{w}" lengthAdjust="spacingAndGlyphs">{t}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}">'
            f'<title>{title}</title>'
            '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
            '<stop offset="1" stop-opacity=".1"/></linearGradient>'
            f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
            f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="{LABEL_COLOUR}"/>'
            f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
            f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
            '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
            f'font-size="11">{"".join(parts)}</g></svg>')


def svg_of(status: BadgeStatus) -> str:
    return render_svg(status.customer, status.status, COLOURS[status.status])
