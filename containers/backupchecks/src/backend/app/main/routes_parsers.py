"""The parsers page (admin): every registered parser, the users' own rules (create, change, order,
delete, YAML export and import, try them on the Inbox), and "try a message" without storing it."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..parsers.normalize import normalize
from ..parsers.registry import all_parsers
from ..route_helpers import commit_or_flash, dated_download, import_upload, or_404, start_task
from ..security import roles_required
from ..services import parser_rules
from ..services.inbox import start_try_rules_on_inbox
from ..services.parser_rules import ParserRuleError
from .blueprint import main_bp

MAX_TRY_BYTES = 25 * 1024 * 1024
MAX_PASTE_CHARS = 2 * 1024 * 1024


def _try_posted():
    """The tester's outcome for the posted .eml file or pasted text; (None, None) after a flash."""
    upload = request.files.get("eml")
    pasted = request.form.get("pasted") or ""
    if upload and upload.filename:
        raw = upload.read(MAX_TRY_BYTES + 1)
        if len(raw) > MAX_TRY_BYTES:
            flash("That file is larger than 25 MB; nothing was parsed.", "danger")
            return None, None
        try:
            msg = normalize(raw)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is the tester's answer, not an error page
            flash(f"Unreadable message: {type(exc).__name__}: {exc}", "warning")
            return None, None
        return parser_rules.try_mail(msg), upload.filename
    if pasted.strip():
        if len(pasted) > MAX_PASTE_CHARS:
            flash("The pasted text is longer than 2 MB; nothing was parsed.", "danger")
            return None, None
        msg = parser_rules.tester_message(pasted, request.form.get("sender", ""), request.form.get("subject", ""))
        return parser_rules.try_mail(msg), "Pasted mail"
    flash("Choose an .eml file or paste a mail to try.", "warning")
    return None, None


@main_bp.route("/parsers", methods=["GET", "POST"])
@roles_required("admin")
def parsers():
    outcome, filename = _try_posted() if request.method == "POST" else (None, None)
    parsers = list(all_parsers())
    return render_template("main/parsers.html", parsers=parsers, outcome=outcome,
                           result=outcome.result if outcome else None, filename=filename,
                           products={p.name: p.product for p in parsers}, rules=parser_rules.list_rules(),
                           pasted=request.form.get("pasted", ""), sender=request.form.get("sender", ""),
                           subject=request.form.get("subject", ""), task_id=request.args.get("task", type=int))


def _rule_form(rule=None, values=None, errors=None, status=200):
    return render_template("main/parser_rule_form.html", rule=rule, v=values, errors=errors or [],
                           statuses=parser_rules.STATUSES), status


@main_bp.route("/parsers/rules/new", methods=["GET", "POST"])
@roles_required("admin")
def parser_rule_new():
    if request.method == "GET":
        start = {"match": {}, "status": [{"word": "", "status": "Success"}]}
        # "Create a rule from this mail" in the tester: its sender and subject to start from.
        if request.args.get("sender"):
            start["match"]["sender"] = {"contains": request.args["sender"]}
        if request.args.get("subject"):
            start["match"]["subject"] = {"contains": request.args["subject"]}
        return _rule_form(values=parser_rules.form_values(start))
    data = parser_rules.rule_from_form(request.form)
    with commit_or_flash(ParserRuleError, message=None) as saved:
        rule = parser_rules.create_rule(data, current_user)
    if saved.failed:
        return _rule_form(values=parser_rules.form_values(data), errors=saved.error.errors, status=400)
    flash(f"Rule '{rule.name}' saved. Try it on a mail below, or on the Inbox.", "success")
    return redirect(url_for("main.parsers") + "#rules")


@main_bp.route("/parsers/rules/<id:rule_id>", methods=["GET", "POST"])
@roles_required("admin")
def parser_rule_edit(rule_id: int):
    rule = or_404(parser_rules.get_rule(rule_id))
    if request.method == "GET":
        return _rule_form(rule, parser_rules.form_values(parser_rules.rule_data(rule)))
    data = parser_rules.rule_from_form(request.form)
    with commit_or_flash(ParserRuleError, message=None) as saved:
        parser_rules.update_rule(rule, data, current_user)
    if saved.failed:
        return _rule_form(rule, parser_rules.form_values(data), saved.error.errors, 400)
    flash(f"Rule '{rule.name}' saved.", "success")
    return redirect(url_for("main.parsers") + "#rules")


@main_bp.route("/parsers/rules/<id:rule_id>/delete", methods=["POST"])
@roles_required("admin")
def parser_rule_delete(rule_id: int):
    rule = or_404(parser_rules.get_rule(rule_id))
    name = rule.name
    with commit_or_flash(ParserRuleError):
        parser_rules.delete_rule(rule, current_user)
    flash(f"Rule '{name}' deleted.", "success")
    return redirect(url_for("main.parsers") + "#rules")


@main_bp.route("/parsers/rules/<id:rule_id>/move", methods=["POST"])
@roles_required("admin")
def parser_rule_move(rule_id: int):
    rule = or_404(parser_rules.get_rule(rule_id))
    with commit_or_flash(ParserRuleError):
        parser_rules.move_rule(rule, request.form.get("direction", ""), current_user)
    return redirect(url_for("main.parsers") + "#rules")


@main_bp.route("/parsers/rules/export")
@roles_required("admin")
def parser_rules_export():
    return dated_download(parser_rules.export_yaml(), "application/yaml", "parser-rules", "yaml")


@main_bp.route("/parsers/rules/import", methods=["POST"])
@roles_required("admin")
def parser_rules_import():
    return import_upload(parser_rules.import_yaml, ParserRuleError, what="Parser rules",
                         template="main/parser_rules_import.html", back=url_for("main.parsers") + "#rules",
                         choose="Choose a .yaml file of rules to import.",
                         conflict="Another change to the rules crossed this import; nothing was imported. Try again.")


@main_bp.route("/parsers/rules/try-inbox", methods=["POST"])
@roles_required("admin")
def parser_rules_try_inbox():
    return start_task(lambda: start_try_rules_on_inbox(current_app._get_current_object(), current_user),
                      "main.parsers", busy="The rules are already being tried on the Inbox; its progress is shown below.",
                      started="Trying the rules on the Inbox mails in the background.")
