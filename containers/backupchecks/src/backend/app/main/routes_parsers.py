"""The parsers page (admin): every registered parser, and "try a message" without storing it."""
from flask import flash, render_template, request

from ..parsers.registry import all_parsers, parse_raw
from ..security import roles_required
from .blueprint import main_bp

MAX_TRY_BYTES = 25 * 1024 * 1024


@main_bp.route("/parsers", methods=["GET", "POST"])
@roles_required("admin")
def parsers():
    result = None
    filename = None
    if request.method == "POST":
        upload = request.files.get("eml")
        if not upload or not upload.filename:
            flash("Choose an .eml file to try.", "warning")
        else:
            raw = upload.read(MAX_TRY_BYTES + 1)
            if len(raw) > MAX_TRY_BYTES:
                flash("That file is larger than 25 MB; nothing was parsed.", "danger")
            else:
                filename = upload.filename
                result = parse_raw(raw, explain=True)  # with the criteria the mail met: "why it matched"
    parsers = list(all_parsers())
    return render_template("main/parsers.html", parsers=parsers, result=result, filename=filename,
                           products={p.name: p.product for p in parsers})
