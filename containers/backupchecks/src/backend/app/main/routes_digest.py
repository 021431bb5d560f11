"""Settings → Digest preview (admin): the morning digest of a day as its mail would show it. The mail's
HTML (inline styles, as mail clients need) is served on its own address with a strict policy of its own
and shown in a sandboxed frame, so the page itself keeps the app's Content Security Policy."""
from __future__ import annotations

from datetime import date
from typing import Optional

from flask import Response, abort, render_template, request

from ..security import roles_required
from ..services import digest
from ..services.settings import ui_zone
from ..services.timezones import check_day_in_range, parse_day
from .blueprint import main_bp
from .routes_inbox import BODY_CSP


def _day() -> Optional[date]:
    """The day asked in ?date= (None: the digest's default, yesterday); 400 for a bad one."""
    raw = (request.args.get("date") or "").strip()
    if not raw:
        return None
    try:
        return check_day_in_range(parse_day(raw, ui_zone()))
    except ValueError as exc:
        abort(400, f"Digest preview: {exc}")


def _digest() -> digest.Digest:
    return digest.build_digest(_day(), base_url=digest.default_base_url() or request.host_url)


@main_bp.route("/settings/digest-preview")
@roles_required("admin")
def digest_preview():
    d = _digest()
    return render_template("main/digest_preview.html", d=d, subject=digest.subject(d))


@main_bp.route("/settings/digest-preview/mail")
@roles_required("admin")
def digest_preview_mail():
    """The digest's mail HTML for the sandboxed frame: no scripts, no remote loads."""
    resp = Response(digest.render_html(_digest()), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = BODY_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp
