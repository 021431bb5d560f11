"""Settings → Mail → Test connection: test the values in the form, without saving them.

The form's chosen source is tested (MAIL_SOURCE wins): Microsoft 365 through Graph, or an IMAP
mailbox (server reachable, TLS, sign-in, both folders; a blank password means the stored one).

The values are tested as the import would use them once saved: a field the
environment sets uses the environment's value, a blank client secret means the
stored one (as saving does), and the two endpoints come from the environment
(``GRAPH_AUTHORITY_HOST``, ``GRAPH_API_BASE``). Nothing is written to the
settings. The first step that fails is told in plain words, naming the field on
the page (or the environment variable) to correct; no secret is ever part of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from flask import current_app

from ..mail.graph import GraphConfig, GraphMailSource
from ..mail.imap import ImapMailSource
from . import audit
from .settings import (
    SettingsError,
    get_settings,
    typed_imap_password,
    typed_imap_values,
    typed_mail_values,
    typed_secret,
    validate_mail_values,
)

log = logging.getLogger(__name__)

#: the steps in the order they are checked (key, label on the page)
STEPS = (("settings", "Settings filled in"), ("token", "Sign-in (token)"), ("mailbox", "Mailbox"),
         ("permission", "Mail.ReadWrite permission"), ("incoming_folder", "Incoming folder"),
         ("processed_folder", "Processed folder"))

FIELDS = {"graph_tenant_id": ("Tenant ID", "GRAPH_TENANT_ID"), "graph_client_id": ("Client ID", "GRAPH_CLIENT_ID"),
          "graph_client_secret": ("Client secret", "GRAPH_CLIENT_SECRET"),
          "graph_mailbox": ("Mailbox", "GRAPH_MAILBOX"),
          "graph_incoming_folder": ("Incoming folder", "GRAPH_INCOMING_FOLDER"),
          "graph_processed_folder": ("Processed folder", "GRAPH_PROCESSED_FOLDER")}
_BY_LABEL = {label: key for key, (label, _env) in FIELDS.items()}

AZURE_APP = "Azure portal → App registrations → your app"
RETRY = "test again in a few minutes"


@dataclass
class MailCheck:
    """What Test connection found: ``steps`` is [(label, "ok" | "failed" | "not checked")]."""

    ok: bool
    message: str
    failed_step: Optional[str] = None
    code: Optional[str] = None
    steps: list[tuple[str, str]] = field(default_factory=list)


def values_to_test(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> dict:
    """The graph_* values the import would use if the form were saved now."""
    values: dict[str, Any] = typed_mail_values(form, env_overrides)
    values.update({k: v for k, v in env_overrides.items() if k in FIELDS})
    if "graph_client_secret" not in env_overrides:
        secret, clear = typed_secret(form, env_overrides)
        values["graph_client_secret"] = None if clear else (secret or get_settings().graph_client_secret)
    return values


def check_mail_form(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> MailCheck:
    """Test the form's values of the chosen source step by step (Graph: token, mailbox, permission,
    both folders; IMAP: server, TLS, sign-in, both folders); saves nothing, records the outcome
    (never a value) in the audit log."""
    source = env_overrides.get("mail_source") or (form.get("mail_source") or "graph").strip().lower()
    if source == "imap":
        check, steps = _run_imap(form, env_overrides), IMAP_STEPS
    else:
        check, steps = _run(values_to_test(form, env_overrides), env_overrides), STEPS
    log.info("Mail connection test (%s): %s", source,
             "ok" if check.ok else f"failed at {check.failed_step} ({check.code})")
    audit.record("settings.mail_test",
                 f"Tested the mail connection ({'IMAP' if source == 'imap' else 'Microsoft 365'}) with the form's "
                 "values (not saved): " + ("ok" if check.ok else f"failed at {_label(check.failed_step, steps)}"),
                 target_type="settings", target_id="mail",
                 after={"ok": check.ok, "step": check.failed_step, "code": check.code, "source": source}, commit=True)
    return check


# --- IMAP ----------------------------------------------------------------------------------------

IMAP_STEPS = (("settings", "Settings filled in"), ("connect", "Server reachable"), ("tls", "Secure connection (TLS)"),
              ("login", "Sign-in"), ("incoming_folder", "Incoming folder"), ("processed_folder", "Processed folder"))
IMAP_FIELDS = {"imap_host": ("IMAP server", "IMAP_HOST"), "imap_port": ("Port", "IMAP_PORT"),
               "imap_tls": ("TLS", "IMAP_TLS"), "imap_username": ("User name", "IMAP_USER"),
               "imap_password": ("Password", "IMAP_PASSWORD"), "imap_folder": ("Incoming folder", "IMAP_FOLDER"),
               "imap_processed_folder": ("Processed folder", "IMAP_PROCESSED_FOLDER")}
_IMAP_BY_LABEL = {label: key for key, (label, _env) in IMAP_FIELDS.items()}
_IMAP_FIX = {"connect": ("imap_host", "imap_port"), "tls": ("imap_tls", "imap_port"),
             "login": ("imap_username", "imap_password"), "incoming_folder": ("imap_folder",),
             "processed_folder": ("imap_processed_folder",)}


def imap_values_to_test(form: Mapping[str, str], env_overrides: Mapping[str, str]) -> dict:
    """The imap_* values the import would use if the form were saved now (a blank password means
    the stored one); SettingsError when a typed value can't be right."""
    values: dict[str, Any] = typed_imap_values(form, env_overrides)
    values.update({k: v for k, v in env_overrides.items() if k in IMAP_FIELDS})
    if "imap_password" not in env_overrides:
        password, clear = typed_imap_password(form, env_overrides)
        values["imap_password"] = None if clear else (password or get_settings().imap_password)
    return values


def _run_imap(form: Mapping[str, str], env: Mapping[str, str]) -> MailCheck:
    from .importer import imap_config

    try:
        values = imap_values_to_test(form, env)
    except SettingsError as exc:
        return _failed("settings", "invalid", str(exc), IMAP_STEPS)
    cfg = imap_config(values)
    missing = cfg.missing()
    if missing:
        fields = [_where(_IMAP_BY_LABEL[m], env, IMAP_FIELDS) for m in missing]
        return _failed("settings", "not_configured", f"Fill in {_join(fields)}, then test again.", IMAP_STEPS)
    with ImapMailSource(cfg) as source:
        report = source.test_connection()
    if not report["ok"]:
        step = report["step"] or "settings"
        fix = [_where(k, env, IMAP_FIELDS) for k in _IMAP_FIX.get(step, ())]
        message = report["error"] + (f" (Correct {_join(fix)}.)" if fix and any(k in env for k in _IMAP_FIX[step])
                                     else "")
        return _failed(step, report["error_code"], message, IMAP_STEPS)
    if not cfg.processed_folder:
        return _failed("processed_folder", "not_configured",
                       f"The server, sign-in and incoming folder work, but no processed folder is set: fill in "
                       f"{_where('imap_processed_folder', env, IMAP_FIELDS)} (a folder imported mails are moved "
                       f"to, e.g. {cfg.folder}/Processed).", IMAP_STEPS)
    count = report.get("message_count")
    security = {"ssl": "over TLS", "starttls": "with STARTTLS", "none": "WITHOUT encryption"}[cfg.tls]
    return MailCheck(
        ok=True, steps=[(label, "ok") for _key, label in IMAP_STEPS],
        message=(f"Connection works: signed in to {cfg.where()} {security} as {cfg.username}, and found the "
                 f"incoming folder '{cfg.folder}' ({count if count is not None else '?'} message(s)) and the "
                 f"processed folder '{cfg.processed_folder}'. Testing saved nothing: press “Save mail settings” "
                 f"to keep these values."))


def _run(values: Mapping[str, Any], env: Mapping[str, str]) -> MailCheck:
    cfg = GraphConfig.from_settings({**values, "graph_authority_host": current_app.config.get("GRAPH_AUTHORITY_HOST"),
                                     "graph_api_base": current_app.config.get("GRAPH_API_BASE")},
                                    **(current_app.config.get("GRAPH_CLIENT_OPTIONS") or {}))
    missing = cfg.missing()
    if missing:
        fields = [_where(_BY_LABEL[m], env) for m in missing]
        return _failed("settings", "not_configured", f"Fill in {_join(fields)}, then test again.")
    try:
        validate_mail_values({k: v for k, v in values.items() if k not in env})
    except SettingsError as exc:
        return _failed("settings", "invalid", str(exc))
    with GraphMailSource(cfg, shared_token_cache=False) as source:
        report = source.test_connection()
    if not report["ok"]:
        return _failed(report["step"] or "settings", report["error_code"],
                       _explain(report, cfg, env))
    processed = (cfg.processed_folder or "").strip()
    if not processed:
        return _failed("processed_folder", "not_configured",
                       f"Sign-in, mailbox and incoming folder work, but no processed folder is set: fill in "
                       f"{_where('graph_processed_folder', env)} (a folder in {cfg.mailbox} that imported "
                       f"mails are moved to, e.g. {cfg.incoming_folder}/Processed).")
    count = report.get("message_count")
    return MailCheck(
        ok=True, steps=[(label, "ok") for _key, label in STEPS],
        message=(f"Connection works: got a token from tenant {cfg.tenant_id} for app {cfg.client_id}, opened "
                 f"the mailbox {cfg.mailbox}, and found the incoming folder '{cfg.incoming_folder}' "
                 f"({count if count is not None else '?'} message(s)) and the processed folder '{processed}'. "
                 f"Testing saved nothing: press “Save mail settings” to keep these values."))


def _failed(step: str, code: Optional[str], message: str, all_steps=STEPS) -> MailCheck:
    steps, seen = [], False
    for key, label in all_steps:
        if key == step:
            steps.append((label, "failed"))
            seen = True
        else:
            steps.append((label, "not checked" if seen else "ok"))
    return MailCheck(ok=False, message=message, failed_step=step, code=code, steps=steps)


def _explain(report: Mapping[str, Any], cfg: GraphConfig, env: Mapping[str, str]) -> str:
    """The first failing step in plain words, from the error's code and details."""
    code, details, step = report["error_code"], report.get("error_details") or {}, report["step"]
    aadsts, graph_code = details.get("aadsts"), details.get("graph_code")
    if code == "unknown_tenant":
        return (f"No tenant with this ID: Microsoft Entra does not know the tenant '{cfg.tenant_id}' (AADSTS90002). "
                f"Copy the Directory (tenant) ID from {AZURE_APP} → Overview into {_where('graph_tenant_id', env)}.")
    if code == "unknown_client":
        return (f"No app with this client ID in the tenant: Microsoft Entra has no application '{cfg.client_id}' in "
                f"tenant '{cfg.tenant_id}' (AADSTS700016). Copy the Application (client) ID from {AZURE_APP} → "
                f"Overview into {_where('graph_client_id', env)}, and check the Tenant ID.")
    if code == "invalid_secret" and aadsts == 7000222:
        return (f"The client secret has expired (AADSTS7000222). Create a new one in {AZURE_APP} → Certificates & "
                f"secrets and paste its Value into {_where('graph_client_secret', env)}.")
    if code == "invalid_secret" and aadsts == 7000215:
        return (f"The tenant refused the client secret (AADSTS7000215): it is wrong, or the secret's ID was pasted "
                f"instead of its Value. Copy the Value from {AZURE_APP} → Certificates & secrets into "
                f"{_where('graph_client_secret', env)}.")
    if code == "invalid_secret":
        return (f"The tenant refused the app's credentials ({details.get('error') or 'invalid_client'}). Check "
                f"{_where('graph_client_id', env)} and {_where('graph_client_secret', env)}.")
    if code == "auth_failed" and step == "token":
        why = details.get("error") or "unknown error"
        return (f"The tenant refused the sign-in ({why}{f', AADSTS{aadsts}' if aadsts else ''}). Check the app "
                f"registration, {_where('graph_client_id', env)} and {_where('graph_client_secret', env)}.")
    if code == "auth_failed":
        return (f"Microsoft Graph refused the token ({graph_code or 401}): check that the app registration belongs "
                f"to tenant '{cfg.tenant_id}' ({_where('graph_tenant_id', env)}).")
    if code == "access_denied":
        granted = details.get("granted")
        why = (f"its token grants only {', '.join(granted) or 'nothing'}" if granted is not None
               else f"Microsoft Graph answered {graph_code or '403 Forbidden'}")
        return (f"The app has no Mail.ReadWrite permission on this mailbox ({cfg.mailbox}): {why}. In {AZURE_APP} → "
                f"API permissions add the Microsoft Graph application permission Mail.ReadWrite and grant admin "
                f"consent; if an Exchange application access policy limits the app, include this mailbox.")
    if code == "unknown_mailbox":
        return (f"No mailbox {cfg.mailbox}: Microsoft 365 has no user with this address, or the user has no "
                f"Exchange Online mailbox ({graph_code}). Enter the mailbox's primary address in "
                f"{_where('graph_mailbox', env)}.")
    if code == "unknown_folder":
        key = "graph_processed_folder" if step == "processed_folder" else "graph_incoming_folder"
        path = details.get("path") or getattr(cfg, key.removeprefix("graph_"))
        parent = details.get("parent")
        where = f"inside '{parent}'" if parent else "at the top of the mailbox"
        return (f"No folder named '{path}' in {cfg.mailbox}: there is no '{details.get('folder', '')}' {where} "
                f"(folders there: {details.get('existing') or 'none'}). Correct {_where(key, env)}.")
    if code in ("unavailable", "throttled"):
        service = "The Microsoft sign-in service" if step == "token" else "Microsoft Graph"
        return f"{service} is not available right now{f' ({graph_code})' if graph_code else ''}; {RETRY}."
    return report["error"] or "The test failed for an unknown reason; see the application log."


def _where(key: str, env: Mapping[str, str], fields=FIELDS) -> str:
    label, var = fields[key]
    return f"the environment variable {var} (it wins over this page)" if key in env else label


def _label(step: Optional[str], steps=STEPS) -> str:
    return dict(steps).get(step or "", step or "")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
